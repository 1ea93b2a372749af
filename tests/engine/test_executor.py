"""The executor: against PyTorch, against hand-written loops, dependencies, shapes, errors,
and huge inputs that give finite outputs with no floating-point warnings, repeatably."""

from __future__ import annotations

import tracemalloc

import networkx as nx
import numpy as np
import pytest

from composer.engine.batches import run
from composer.engine.executor import execute
from composer.engine.memory import execute_bytes
from composer.engine.plan import bind_params, compile_plan
from composer.errors import DataError
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.graph.weights import init_params
from composer.kinds import fused
from composer.spec.model import NetworkSpec
from composer.spec.reader import load_spec
from tests.builders import input_, layer, lecture, output, readout, spec
from tests.conftest import SPECS
from tests.oracles import SCENARIOS, lstm
from tests.tolerances import assert_close, run_depth

TORCH_KINDS = [("elman", "tanh"), ("elman", "relu"), ("lstm", None), ("gru", None)]
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # PyTorch's, per layer


def normal_params(graph, seed: int = 0, scale: float = 0.5) -> dict:
    """Random normal weights with the right keys and shapes (float64)."""
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, scale, v.shape) for k, v in init_params(graph).items()}


def normal_inputs(graph, steps: int, batch: int = 2, seed: int = 1) -> dict:
    """Random (B, T_in, F) inputs for every input of a graph at `steps` steps."""
    plan = compile_plan(unroll(graph, steps))
    rng = np.random.default_rng(seed)
    return {
        name: rng.integers(0, graph.nodes[name]["vocab"], (batch, len(plan.window(name))))
        if graph.nodes[name].get("vocab")
        else rng.normal(size=(batch, len(plan.window(name)), graph.nodes[name]["size"]))
        for name in plan.inputs
    }


# ------------------------------------------------------------------ PyTorch as the oracle


def _torch_network(kind, activation, layers, bidirectional, F, H, seed):
    """A PyTorch RNN with random normal weights, and the same weights under our keys."""
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
    for index in range(layers):
        for ours, theirs in copies:
            w = {n: getattr(model, f"{n}_l{index}{theirs}").detach().numpy() for n in NAMES}
            params[f"l{index}.Wx{ours}"] = w["weight_ih"].T
            params[f"l{index}.Ws{ours}"] = w["weight_hh"].T
            if kind == "gru":
                params[f"l{index}.bx{ours}"] = w["bias_ih"]
                params[f"l{index}.bs{ours}"] = w["bias_hh"]
            else:
                params[f"l{index}.b{ours}"] = w["bias_ih"] + w["bias_hh"]
    return model, params


def _stacked_spec(kind, activation, layers, bidirectional, F, H, alignment) -> NetworkSpec:
    extra = {"activation": activation} if kind == "elman" else {}
    return spec(
        [
            layer(f"l{i}", kind, f"l{i - 1}" if i else "x", H, bidirectional=bidirectional, **extra)
            for i in range(layers)
        ],
        inputs=[input_("x", F)],
        outputs=[output("o")],
        alignment=alignment,
    )


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
    graph = build(_stacked_spec(kind, activation, layers, bidirectional, F, H, alignment))
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
    graph = build(spec)
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
def test_chunk_size_changes_results_by_rounding_only(name):
    """Small chunks exercise the sliding history of a streaming plan. A chunk's input
    projection is a product over its steps' rows: BLAS may round one of 1 row and one of
    T rows differently (it blocks by size and CPU), so the same numbers to float64
    rounding, not bit for bit."""
    spec, steps, _ = SCENARIOS[name]
    graph = build(spec)
    params, inputs = normal_params(graph), normal_inputs(graph, steps)
    plan = compile_plan(unroll(graph, steps))
    reference = execute(plan, params, inputs, "float64", chunk=steps)
    depth = run_depth(steps, len(spec.layers))
    for chunk in (1, 2, 3):
        out = execute(plan, params, inputs, "float64", chunk=chunk)
        for key in reference:
            assert_close(out[key], reference[key], np.float64, depth, err_msg=f"{key} {chunk}")


def test_longer_runs_stream_in_chunks_like_a_single_pass():
    spec, _, oracle = SCENARIOS["jordan-two-layers"]
    graph = build(spec)
    params, inputs = normal_params(graph, scale=0.3), normal_inputs(graph, 300, batch=3)
    plan = compile_plan(unroll(graph, 300))
    assert plan.streaming
    out = execute(plan, params, inputs, "float64", chunk=64)
    np.testing.assert_allclose(out["o"], oracle(params, inputs, 300)["o"], atol=1e-10)


TWO_PASS = {"from": "enc", "at": "end"}


def test_a_state_handed_over_after_its_reader_starts_is_computed_first():
    """The encoder's last state (step 6) starts a decoder active from step 4: two passes,
    said explicitly (`at: end`)."""
    graph = build(
        spec(
            [
                layer("enc", "lstm", size=3),
                layer("dec", "lstm", size=3, active="4:", initial_state=TWO_PASS),
            ],
            inputs=[input_("x", 2)],
            outputs=[output("o", "dec", "4:")],
        )
    )
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
    graph = build(spec)
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
                # exact: the same products on the same shapes; a value changes only if
                # one it reads does
                if not np.array_equal(out[o][:, j], base[o][:, j])
            }
            reached = nx.descendants(dag, (source, step)) if (source, step) in dag else set()
            expected = {node for node in reached if node[0] in plan.outputs}
            assert changed == expected, (source, step)


# ------------------------------------------------------------------ dtypes, shapes, API


def _lecture_graph(alignment="many-to-many"):
    """The lecture's network at six steps."""
    return build(lecture(alignment=alignment, steps=6))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_in_is_dtype_out_whatever_the_params(dtype):
    graph = _lecture_graph()
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(dtype)
    for params_dtype in ("float32", "float64"):
        out = run(graph, init_params(graph, dtype=params_dtype), x, dtype=dtype)
        assert out["y"].dtype == np.dtype(dtype)


def test_float32_and_float64_agree():
    graph = _lecture_graph()
    x = np.random.default_rng(0).normal(size=(2, 6, 3))
    params = normal_params(graph)
    a, b = (run(graph, params, x, dtype=d)["y"] for d in ("float32", "float64"))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_two_dimensional_input_gives_two_dimensional_outputs():
    graph = _lecture_graph()
    x = np.random.default_rng(0).normal(size=(6, 3))
    params = init_params(graph)
    flat, batched = run(graph, params, x), run(graph, params, {"x": x[None]})
    assert flat["y"].shape == (6, 2) and batched["y"].shape == (1, 6, 2)
    np.testing.assert_array_equal(flat["y"], batched["y"][0])  # exact: the same shapes


def test_inputs_nothing_reads_are_not_required_and_numpy_steps_work():
    """It used to fail with `missing 'unused'`: an input no output depends on is now
    neither asked for nor read (`validate` warns of it), and ignored when given."""
    graph = build(
        spec(
            [layer("a"), layer("b", "gru", "unused", 2)],
            inputs=[input_("x", 3), input_("unused", 2)],
            outputs=[output("o", "a")],
            alignment="many-to-one",
        )
    )
    params, x = init_params(graph), np.ones((2, 5, 3))
    assert "unused" not in compile_plan(unroll(graph, 5)).vectors
    out = run(graph, params, {"x": x, "unused": np.ones((2, 5, 2))}, steps=np.int64(5))
    assert out["o"].shape == (2, 1, 4)
    np.testing.assert_array_equal(run(graph, params, {"x": x})["o"], out["o"])  # exact: same run
    assert run(graph, params, x[0])["o"].shape == (1, 4)  # one needed input: a bare array


def test_bound_params_are_reused_across_steps_and_checked():
    graph = _lecture_graph()
    bound = bind_params(graph, init_params(graph), "float64")
    for steps in (3, 9):
        plan = compile_plan(unroll(graph, steps))
        x = np.ones((1, steps, 3))
        assert execute(plan, bound, {"x": x}, "float64")["y"].shape == (1, steps, 2)
    with pytest.raises(DataError, match="bound for another"):
        execute(plan, bound, {"x": x}, "float32")


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
    plan = compile_plan(unroll(_lecture_graph(), 6))
    with pytest.raises(DataError, match=message):
        execute(plan, init_params(plan.folded), inputs)


def test_run_refuses_bad_dtypes_and_missing_params():
    graph = _lecture_graph()
    with pytest.raises(DataError, match="float32 or float64"):
        run(graph, init_params(graph), np.zeros((6, 3)), dtype="float16")
    params = init_params(graph)
    del params["rnn.Wy"]
    with pytest.raises(DataError, match=r"missing rnn.Wy \(4, 2\)"):
        run(graph, params, np.zeros((6, 3)))


def test_memory_of_a_many_to_one_pass_does_not_grow_with_steps():
    graph = build(
        spec(
            [layer("a", "lstm", size=8), layer("b", "elman", "a", 8, output=readout(2))],
            inputs=[input_("x", 4)],
            outputs=[output("o")],
            alignment="many-to-one",
        )
    )
    bound = bind_params(graph, init_params(graph))
    fused.prepare(2 * 20_000)  # loading the optional compiled steps is once per process
    peaks = []
    for steps in (2_000, 20_000):
        plan = compile_plan(unroll(graph, steps))
        x = np.ones((2, steps, 4), dtype=np.float32)
        tracemalloc.start()
        execute(plan, bound, {"x": x})
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert 0.5 * peaks[-1] <= execute_bytes(plan, 2) <= 1.5 * peaks[-1]
    assert peaks[1] < 1.5 * peaks[0]


# ------------------------------------------------------------------ numerics


def _huge_inputs(plan, scale: float, dtype: str) -> dict[str, np.ndarray]:
    """Values of +-scale; a token input's ids (its embedding is scaled instead)."""
    rng = np.random.default_rng(7)
    inputs = {}
    for name in plan.inputs:
        shape = (2, len(plan.window(name)), plan.vectors[name].size)
        vocab = plan.folded.nodes[name].get("vocab")
        if vocab:
            inputs[name] = rng.integers(0, vocab, shape[:2])
        else:
            inputs[name] = (scale * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)
    return inputs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [1e4, 1e30])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_huge_inputs_give_finite_outputs_without_warnings(path, scale, dtype):
    spec = load_spec(path)
    folded = build(spec)
    plan = compile_plan(unroll(folded, min(spec.steps, 12)))
    params = init_params(folded, 0, dtype)
    inputs = _huge_inputs(plan, scale, dtype)
    for key in [k for k in params if k.endswith(".E")]:  # embeddings: huge vectors read
        params[key] = (scale * np.sign(params[key])).astype(dtype)
    with np.errstate(all="raise"):
        first = execute(plan, params, inputs, dtype)
        again = execute(plan, params, inputs, dtype)
    for name, value in first.items():
        assert value.dtype == np.dtype(dtype)
        assert np.isfinite(value).all(), name
        assert value.tobytes() == again[name].tobytes()  # exact: the same run, repeated
