"""The executor: against PyTorch, against hand-written loops, dependencies, shapes, errors."""

from __future__ import annotations

import tracemalloc

import networkx as nx
import numpy as np
import pytest

from composer.errors import DataError
from composer.run.executor import bind_params, estimate_bytes, execute, infer_steps, run
from composer.graph.folded import build
from composer.run.inputs import fitting_steps, read_csv, read_inputs
from composer.graph.weights import init_params
from composer.run.plan import compile_plan
from composer.spec.model import NetworkSpec
from composer.graph.unrolled import unroll, unrolled_graph
from tests.oracles import SCENARIOS, lstm

TORCH_KINDS = [("elman", "tanh"), ("elman", "relu"), ("lstm", None), ("gru", None)]
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # PyTorch's, per layer


def graph_of(spec: dict):
    return build(NetworkSpec.model_validate(spec))


def normal_params(graph, seed: int = 0, scale: float = 0.5) -> dict:
    """Random normal weights with the right keys and shapes (float64)."""
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, scale, v.shape) for k, v in init_params(graph).items()}


def normal_inputs(graph, steps: int, batch: int = 2, seed: int = 1) -> dict:
    """Random (B, T_in, F) inputs for every input of a graph at `steps` steps."""
    plan = compile_plan(unroll(graph, steps))
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(batch, len(plan.window(name)), graph.nodes[name]["size"]))
        for name in plan.inputs
    }


# ------------------------------------------------------------------ PyTorch as the oracle


def _torch_network(kind, activation, layers, bidirectional, F, H, seed):
    """A PyTorch RNN with random normal weights, and the same weights under DESIGN keys."""
    torch = pytest.importorskip("torch")
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    extra = {"nonlinearity": activation} if kind == "elman" else {}
    model = cls(F, H, num_layers=layers, bidirectional=bidirectional, batch_first=True, **extra)
    model = model.double()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.copy_(torch.from_numpy(rng.normal(0, 0.4, tuple(tensor.shape))))
    params = {}
    copies = [("", "")] + ([("_rev", "_reverse")] if bidirectional else [])
    for layer in range(layers):
        for ours, theirs in copies:
            w = {n: getattr(model, f"{n}_l{layer}{theirs}").detach().numpy() for n in NAMES}
            params[f"l{layer}.Wx{ours}"] = w["weight_ih"].T
            params[f"l{layer}.Ws{ours}"] = w["weight_hh"].T
            if kind == "gru":
                params[f"l{layer}.bx{ours}"] = w["bias_ih"]
                params[f"l{layer}.bs{ours}"] = w["bias_hh"]
            else:
                params[f"l{layer}.b{ours}"] = w["bias_ih"] + w["bias_hh"]
    return model, params


def _stacked_spec(kind, activation, layers, bidirectional, F, H, alignment):
    extra = {"activation": activation} if kind == "elman" else {}
    return {
        "inputs": [{"name": "x", "size": F}],
        "layers": [
            {
                "name": f"l{i}",
                "kind": kind,
                "input": f"l{i - 1}" if i else "x",
                "state_size": H,
                "bidirectional": bidirectional,
                **extra,
            }
            for i in range(layers)
        ],
        "outputs": [{"name": "o", "from": f"l{layers - 1}"}],
        "alignment": alignment,
    }


@pytest.mark.torch
@pytest.mark.parametrize("alignment", ["many-to-one", "many-to-many"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize(
    ("kind", "activation"), TORCH_KINDS, ids=["rnn-tanh", "rnn-relu", "lstm", "gru"]
)
def test_matches_pytorch(kind, activation, layers, bidirectional, batch, alignment):
    torch = pytest.importorskip("torch")
    F, H, T = 3, 5, 6
    model, params = _torch_network(kind, activation, layers, bidirectional, F, H, seed=layers)
    graph = graph_of(_stacked_spec(kind, activation, layers, bidirectional, F, H, alignment))
    x = np.random.default_rng(batch).normal(size=(batch, T, F))
    with torch.no_grad():
        expected = model(torch.from_numpy(x))[0].numpy()
    if alignment == "many-to-one":
        expected = expected[:, -1:]
    for dtype, tolerance in TOLERANCE.items():
        out = run(graph, params, {"x": x}, dtype=dtype)["o"]
        assert out.dtype == np.dtype(dtype) and out.shape == expected.shape
        np.testing.assert_allclose(out, expected, atol=tolerance, rtol=0)


# ------------------------------------------------------------------ hand-written oracles


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_the_hand_written_loop(name):
    spec, steps, oracle = SCENARIOS[name]
    graph = graph_of(spec)
    params = normal_params(graph)
    inputs = normal_inputs(graph, steps)
    expected = oracle(params, inputs, steps)
    plan = compile_plan(unroll(graph, steps))
    for dtype, tolerance in TOLERANCE.items():
        out = execute(plan, params, inputs, dtype)
        assert sorted(out) == sorted(expected)
        for key, value in expected.items():
            assert out[key].dtype == np.dtype(dtype)
            np.testing.assert_allclose(out[key], value, atol=tolerance, rtol=0, err_msg=key)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_chunk_size_never_changes_results(name):
    """Small chunks exercise the sliding history of a streaming plan."""
    spec, steps, _ = SCENARIOS[name]
    graph = graph_of(spec)
    params, inputs = normal_params(graph), normal_inputs(graph, steps)
    plan = compile_plan(unroll(graph, steps))
    reference = execute(plan, params, inputs, "float64", chunk=steps)
    for chunk in (1, 2, 3):
        out = execute(plan, params, inputs, "float64", chunk=chunk)
        for key in reference:
            np.testing.assert_array_equal(out[key], reference[key])


def test_longer_runs_stream_in_chunks_like_a_single_pass():
    spec, _, oracle = SCENARIOS["jordan-two-layers"]
    graph = graph_of(spec)
    params, inputs = normal_params(graph, scale=0.3), normal_inputs(graph, 300, batch=3)
    plan = compile_plan(unroll(graph, 300))
    assert plan.streaming
    out = execute(plan, params, inputs, "float64", chunk=64)
    np.testing.assert_allclose(out["o"], oracle(params, inputs, 300)["o"], atol=1e-10)


def test_plans_are_streaming_unless_time_runs_backwards():
    streaming = {
        name: compile_plan(unroll(graph_of(s), t)).streaming
        for name, (s, t, _) in SCENARIOS.items()
    }
    assert not streaming["backward"] and not streaming["bidirectional-readout"]
    assert streaming["jordan"] and streaming["encoder-decoder-lstm-lstm"]


def test_a_state_handed_over_after_its_reader_starts_is_computed_first():
    """The encoder's last state (step 6) starts a decoder active from step 4."""
    spec = {
        "inputs": [{"name": "x", "size": 2}],
        "layers": [
            {"name": "enc", "kind": "lstm", "input": "x", "state_size": 3},
            {
                "name": "dec",
                "kind": "lstm",
                "input": "x",
                "state_size": 3,
                "active": "4:",
                "initial_state": "enc",
            },
        ],
        "outputs": [{"name": "o", "from": "dec", "window": "4:"}],
    }
    graph = graph_of(spec)
    params, inputs = normal_params(graph), normal_inputs(graph, 7)
    plan = compile_plan(unroll(graph, 7))
    assert not plan.streaming
    h, c, outs = np.zeros((2, 3)), np.zeros((2, 3)), []
    for t in range(7):
        h, c = lstm(inputs["x"][:, t] @ params["enc.Wx"], h, c, params, "enc")
    for t in range(4, 7):
        h, c = lstm(inputs["x"][:, t] @ params["dec.Wx"], h, c, params, "dec")
        outs.append(h)
    out = execute(plan, params, inputs, "float64")["o"]
    np.testing.assert_allclose(out, np.stack(outs, 1), atol=1e-12)


# ------------------------------------------------------------------ dependencies


@pytest.mark.parametrize(
    "name",
    [
        "jordan",
        "many-to-many-delay-3",
        "encoder-decoder-gru-lstm",
        "backward",
        "dilation",
        "bidirectional-readout",
        "self-connection",
        "skip-connections",
        "concatenated-inputs",
        "delayed-input",
    ],
)
def test_an_input_step_changes_exactly_the_outputs_that_depend_on_it(name):
    spec, steps, _ = SCENARIOS[name]
    graph = graph_of(spec)
    unrolled = unroll(graph, steps)
    dag, plan = unrolled_graph(unrolled), compile_plan(unrolled)
    params, inputs = normal_params(graph), normal_inputs(graph, steps, batch=1)
    base = execute(plan, params, inputs, "float64")
    for source in plan.inputs:
        window = plan.window(source)
        for index, step in enumerate(window):
            changed_inputs = {k: v.copy() for k, v in inputs.items()}
            changed_inputs[source][:, index] += 1.0
            out = execute(plan, params, changed_inputs, "float64")
            changed = {
                (o, plan.window(o)[j])
                for o in plan.outputs
                for j in range(len(plan.window(o)))
                if not np.array_equal(out[o][:, j], base[o][:, j])
            }
            reached = nx.descendants(dag, (source, step)) if (source, step) in dag else set()
            expected = {node for node in reached if node[0] in plan.outputs}
            assert changed == expected, (source, step)


# ------------------------------------------------------------------ dtypes, shapes, API


def _elman(alignment="many-to-many", window=None):
    inputs = [{"name": "x", "size": 3, **({"window": window} if window else {})}]
    return graph_of(
        {
            "inputs": inputs,
            "layers": [
                {
                    "name": "rnn",
                    "kind": "elman",
                    "input": "x",
                    "state_size": 4,
                    "output": {"size": 2, "activation": "softmax"},
                }
            ],
            "outputs": [{"name": "y", "from": "rnn"}],
            "alignment": alignment,
            "steps": 6,
        }
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_in_is_dtype_out_whatever_the_params(dtype):
    graph = _elman()
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(dtype)
    for params_dtype in ("float32", "float64"):
        out = run(graph, init_params(graph, dtype=params_dtype), x, dtype=dtype)
        assert out["y"].dtype == np.dtype(dtype)


def test_float32_and_float64_agree():
    graph = _elman()
    x = np.random.default_rng(0).normal(size=(2, 6, 3))
    params = normal_params(graph)
    a, b = (run(graph, params, x, dtype=d)["y"] for d in ("float32", "float64"))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_two_dimensional_input_gives_two_dimensional_outputs():
    graph = _elman()
    x = np.random.default_rng(0).normal(size=(6, 3))
    params = init_params(graph)
    flat, batched = run(graph, params, x), run(graph, params, {"x": x[None]})
    assert flat["y"].shape == (6, 2) and batched["y"].shape == (1, 6, 2)
    np.testing.assert_array_equal(flat["y"], batched["y"][0])


def test_inputs_nothing_needs_are_still_required_and_numpy_steps_work():
    graph = graph_of(
        {
            "inputs": [{"name": "x", "size": 3}, {"name": "unused", "size": 2}],
            "layers": [
                {"name": "a", "kind": "elman", "input": "x", "state_size": 4},
                {"name": "b", "kind": "gru", "input": "unused", "state_size": 2},
            ],
            "outputs": [{"name": "o", "from": "a"}],
            "alignment": "many-to-one",
        }
    )
    params, x = init_params(graph), np.ones((2, 5, 3))
    assert "unused" not in compile_plan(unroll(graph, 5)).vectors
    out = run(graph, params, {"x": x, "unused": np.ones((2, 5, 2))}, steps=np.int64(5))
    assert out["o"].shape == (2, 1, 4)
    with pytest.raises(DataError, match="missing 'unused'"):
        run(graph, params, {"x": x})


def test_bound_params_are_reused_across_steps_and_checked():
    graph = _elman()
    bound = bind_params(graph, init_params(graph), "float64")
    for steps in (3, 9):
        plan = compile_plan(unroll(graph, steps))
        x = np.ones((1, steps, 3))
        assert execute(plan, bound, {"x": x}, "float64")["y"].shape == (1, steps, 2)
    with pytest.raises(DataError, match="bound for another"):
        execute(plan, bound, {"x": x}, "float32")


@pytest.mark.parametrize(
    ("window", "length", "expected"),
    [(":", 5, 5), (":-3", 5, 8), ("2:", 4, 6), ("0:1", 1, 6), ("-2:", 2, 6), ("1:-1", 3, 5)],
)
def test_steps_are_inferred_from_input_lengths_and_windows(window, length, expected):
    graph = _elman(window=window)
    assert infer_steps(graph, {"x": np.zeros((1, length, 3))}) == expected


def test_windows_give_their_length_as_exact_step_ranges():
    assert fitting_steps(":-3", 5) == [range(8, 9)]
    assert fitting_steps("-5:3", 2) == [range(2, 3), range(6, 7)]
    assert fitting_steps("0:1", 2) == []


def test_inferring_steps_names_what_does_not_fit():
    with pytest.raises(DataError, match="no number of steps"):
        infer_steps(_elman(window="0:1"), {"x": np.zeros((1, 2, 3))})
    with pytest.raises(DataError, match="cannot tell T"):
        infer_steps(_elman(window="-8:"), {"x": np.zeros((1, 8, 3))})


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "missing 'x'"),
        ({"x": np.zeros((1, 6, 3)), "z": np.zeros((1, 6, 3))}, "unexpected 'z'"),
        ({"x": np.zeros((1, 5, 3))}, r"input 'x': expected shape \(B, 6, 3\).*got \(1, 5, 3\)"),
        ({"x": np.zeros((1, 6, 4))}, r"expected shape \(B, 6, 3\).*got \(1, 6, 4\)"),
        ({"x": np.zeros((6, 3))}, r"got \(6, 3\)"),
        ({"x": np.array([["a"] * 3] * 6)[None]}, "expected numbers"),
    ],
)
def test_execute_names_the_input_expected_and_received(inputs, message):
    plan = compile_plan(unroll(_elman(), 6))
    with pytest.raises(DataError, match=message):
        execute(plan, init_params(plan.folded), inputs)


def test_run_refuses_bad_dtypes_and_missing_params():
    graph = _elman()
    with pytest.raises(DataError, match="float32 or float64"):
        run(graph, init_params(graph), np.zeros((6, 3)), dtype="float16")
    params = init_params(graph)
    del params["rnn.Wy"]
    with pytest.raises(DataError, match=r"missing rnn.Wy \(4, 2\)"):
        run(graph, params, np.zeros((6, 3)))


def test_memory_of_a_many_to_one_pass_does_not_grow_with_steps():
    graph = graph_of(
        {
            "inputs": [{"name": "x", "size": 4}],
            "layers": [
                {"name": "a", "kind": "lstm", "input": "x", "state_size": 8},
                {
                    "name": "b",
                    "kind": "elman",
                    "input": "a",
                    "state_size": 8,
                    "output": {"size": 2},
                },
            ],
            "outputs": [{"name": "o", "from": "b"}],
            "alignment": "many-to-one",
        }
    )
    bound = bind_params(graph, init_params(graph))
    peaks = []
    for steps in (2_000, 20_000):
        plan = compile_plan(unroll(graph, steps))
        x = np.ones((2, steps, 4), dtype=np.float32)
        tracemalloc.start()
        execute(plan, bound, {"x": x})
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert 0.5 * peaks[-1] <= estimate_bytes(plan, 2) <= 1.5 * peaks[-1]
    assert peaks[1] < 1.5 * peaks[0]


# ------------------------------------------------------------------ input files


def _two_inputs():
    return graph_of(
        {
            "inputs": [{"name": "a", "size": 2}, {"name": "b", "size": 1}],
            "layers": [{"name": "l", "kind": "elman", "input": ["a", "b"], "state_size": 3}],
            "outputs": [{"name": "o", "from": "l"}],
        }
    )


def test_reads_npy_npz_and_csv(tmp_path):
    graph = _elman()
    x = np.arange(18.0).reshape(6, 3)
    np.save(tmp_path / "x.npy", x)
    arrays, flat = read_inputs(tmp_path / "x.npy", graph)
    assert flat and arrays["x"].shape == (1, 6, 3)
    np.savez(tmp_path / "x.npz", x=np.stack([x, x]))
    arrays, flat = read_inputs(tmp_path / "x.npz", graph)
    assert not flat and arrays["x"].shape == (2, 6, 3)
    (tmp_path / "x.csv").write_text("\n".join(",".join(map(str, row)) for row in x) + "\n\n")
    arrays, flat = read_inputs(tmp_path / "x.csv", graph)
    assert flat
    np.testing.assert_array_equal(arrays["x"][0], x)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a,b,c\n1,2,3\n", r"row 1, column 1: 'a' is not a number; a header line"),
        ("1,2,3\n4,5\n", "row 2 has 2 columns, expected 3 like row 1"),
        ("1,2,3\n4,x,6\n", r"row 2, column 2: 'x' is not a number$"),
        ("1,2,nan\n", "row 1, column 3: 'nan' is not finite"),
    ],
)
def test_csv_errors_name_row_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_csv(path)


def test_input_file_errors_name_file_key_expected_and_received(tmp_path):
    graph = _two_inputs()
    np.savez(tmp_path / "in.npz", a=np.zeros((1, 4, 2)), c=np.zeros((1, 4, 1)))
    with pytest.raises(DataError, match=r"in.npz: missing 'b'; unexpected 'c'"):
        read_inputs(tmp_path / "in.npz", graph)
    np.savez(tmp_path / "in.npz", a=np.zeros((1, 4, 2)), b=np.zeros((1, 4, 5)))
    with pytest.raises(DataError, match=r"key 'b': expected 1 features .* got 5"):
        read_inputs(tmp_path / "in.npz", graph)
    np.savez(tmp_path / "in.npz", a=np.zeros((4, 2)), b=np.zeros((1, 4, 1)))
    with pytest.raises(DataError, match=r"every input as \(B, T_in, F\)"):
        read_inputs(tmp_path / "in.npz", graph)
    np.savez(tmp_path / "in.npz", a=np.zeros((2, 4, 2)), b=np.zeros((3, 4, 1)))
    with pytest.raises(DataError, match="batch size"):
        read_inputs(tmp_path / "in.npz", graph)
    np.save(tmp_path / "in.npy", np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"a \.npy file holds one input.*a, b"):
        read_inputs(tmp_path / "in.npy", graph)
    (tmp_path / "in.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=r"a \.csv file holds one input"):
        read_inputs(tmp_path / "in.csv", graph)
    np.save(tmp_path / "one.npy", np.zeros((2, 2, 4, 3)))
    with pytest.raises(DataError, match=r"\(2, 2, 4, 3\)"):
        read_inputs(tmp_path / "one.npy", _elman())


# -- a CSV's parse within its estimate (issue 18, item 20) ---------------------------------


@pytest.mark.parametrize(
    ("rows", "columns", "cell"),
    [(20_000, 1, "1"), (5_000, 4, "0.25"), (1, 40_000, "0"), (300, 300, "-1.5e-3")],
)
def test_reading_a_csv_stays_within_its_estimate(tmp_path, rows, columns, cell):
    import tracemalloc

    from composer.run.inputs import csv_bytes, read_csv

    path = tmp_path / "x.csv"
    path.write_text(("\n".join([",".join([cell] * columns)] * rows)) + "\n\n")
    tracemalloc.start()
    try:
        array = read_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert array.shape == (rows, columns) and array[0, 0] == float(cell)
    assert peak <= csv_bytes(path), (peak, csv_bytes(path))
    assert csv_bytes(path) < 16 * path.stat().st_size + (16 << 20)
