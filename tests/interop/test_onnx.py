"""ONNX export: what ONNX Runtime computes on an exported model equals `run`, for every
example spec, every plain stack shape and every one of the hand-written oracles' networks
(tapped delays, merges, input-free layers, two passes and bidirectional hand-overs
included: unrolled, each recurrent step the kind's one step)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from composer import build, init_params, load_spec, run
from composer.engine.plan import compile_plan
from composer.graph.unrolled import unroll
from composer.interop.onnx import build_model, run_model
from tests.builders import input_, layer, output, random_input, random_networks, readout, spec
from tests.conftest import SPECS
from tests.oracles import SCENARIOS

pytest.importorskip("onnxruntime")

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def normal_params(graph, seed: int = 0, scale: float = 0.5) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, scale, v.shape) for k, v in init_params(graph).items()}


def normal_inputs(graph, steps: int, batch: int = 2, seed: int = 1) -> dict:
    plan = compile_plan(unroll(graph, steps))
    rng = np.random.default_rng(seed)
    return {
        name: random_input(graph, name, batch, len(plan.window(name)), rng) for name in plan.inputs
    }


def assert_same(got: dict, want: dict, dtype: str) -> None:
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype == np.dtype(dtype), name
        assert got[name].shape == value.shape, name
        np.testing.assert_allclose(got[name], value, atol=TOLERANCE[dtype], rtol=0, err_msg=name)


def op_types(model) -> set[str]:
    return {node.op_type for node in model.graph.node}


# -- every example spec, at its T ----------------------------------------------------------


@pytest.fixture(scope="module", params=SPECS, ids=[p.stem for p in SPECS])
def example(request):
    graph = build(load_spec(request.param))
    return graph, graph.graph["steps"], normal_params(graph, scale=0.3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_example_spec_runs_the_same_in_onnx_runtime(example, dtype):
    graph, steps, params = example
    model, _ = build_model(graph, params, dtype=dtype, steps=steps)
    for batch in (1, 3):
        inputs = normal_inputs(graph, steps, batch)
        assert_same(run_model(model, inputs), run(graph, params, inputs, steps, dtype), dtype)


# -- against the hand-written loops (an oracle independent of the executor) ---------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_the_hand_written_loop(name):
    network, steps, oracle = SCENARIOS[name]
    graph = build(network)
    params = normal_params(graph)
    inputs = normal_inputs(graph, steps)
    model, _ = build_model(graph, params, dtype="float64", steps=steps)
    got, expected = run_model(model, inputs), oracle(params, inputs, steps)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=1e-10, rtol=0, err_msg=key)


# -- plain stacks: native operators (float32) and Scan loops (float64), dynamic B and T -----

KINDS = [
    ("elman", "tanh"),
    ("elman", "relu"),
    ("elman", "sigmoid"),
    ("elman", "identity"),
    ("lstm", None),
    ("gru", None),
]
READOUTS = [None, "identity", "softmax", "sigmoid", "tanh"]


def plain_stack(kind, activation, layers, bidirectional, alignment, readout_activation):
    stack = []
    for i in range(layers):
        fields = {"activation": activation} if activation else {}
        if bidirectional:
            fields["bidirectional"] = True
        if i == layers - 1 and readout_activation:
            fields["output"] = readout(3, readout_activation)
        stack.append(layer(f"l{i}", kind, f"l{i - 1}" if i else "x", 4, **fields))
    return build(spec(stack, inputs=[input_("x", 2)], outputs=[output("o")], alignment=alignment))


PLAIN = [
    (kind, act, layers, bi, alignment, READOUTS[n % len(READOUTS)])
    for n, ((kind, act), layers, bi, alignment) in enumerate(
        itertools.product(KINDS, (1, 2, 3), (False, True), ("many-to-many", "many-to-one"))
    )
]


def _case_id(case) -> str:
    kind, act, layers, bi, alignment, head = case
    return f"{kind}{'-' + act if act else ''}-{layers}-{'bi' if bi else 'uni'}-{alignment}-{head}"


@pytest.mark.parametrize("case", PLAIN, ids=[_case_id(c) for c in PLAIN])
def test_plain_stack_as_onnx_operators_at_any_batch_and_length(case):
    graph = plain_stack(*case)
    params = normal_params(graph, seed=len(graph))
    model, how = build_model(graph, params, dtype="float32")
    assert "dynamic batch and T" in how
    assert {"RNN", "LSTM", "GRU"} & op_types(model) and "Scan" not in op_types(model)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["B", "T_x", 2]
    for batch, steps in [(1, 1), (1, 6), (3, 1), (3, 6)]:
        inputs = normal_inputs(graph, steps, batch, seed=batch * steps)
        assert_same(
            run_model(model, inputs), run(graph, params, inputs, steps, "float32"), "float32"
        )


PLAIN64 = [case for case in PLAIN if case[2] == 2]


@pytest.mark.parametrize("case", PLAIN64, ids=[_case_id(c) for c in PLAIN64])
def test_plain_stack_in_float64_as_scan_loops(case):
    graph = plain_stack(*case)
    params = normal_params(graph, seed=len(graph))
    model, _ = build_model(graph, params, dtype="float64")
    assert "Scan" in op_types(model) and not {"RNN", "LSTM", "GRU"} & op_types(model)
    for batch, steps in [(1, 1), (3, 5)]:
        inputs = normal_inputs(graph, steps, batch)
        assert_same(
            run_model(model, inputs), run(graph, params, inputs, steps, "float64"), "float64"
        )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dilated_stacks_keep_a_dynamic_t_as_scan_loops(dtype):
    """ONNX's operators read one step back only: a layer with `delay: k` is a Scan that
    carries its last k states; the undilated layer below it stays an operator."""
    graph = build(
        spec(
            [
                layer("a", "gru", "x", 4),
                layer("b", "lstm", "a", 3, delay=3, output=readout(2, "softmax")),
                layer("c", "elman", "b", 3, delay=2, direction="backward"),
            ],
            outputs=[output("o", "b"), output("p", "c", "-1:")],
        )
    )
    params = normal_params(graph)
    model, how = build_model(graph, params, dtype=dtype)
    assert "Scan loops, dynamic batch and T" in how
    assert ("GRU" in op_types(model)) == (dtype == "float32")
    for batch, steps in [(1, 1), (2, 2), (3, 8)]:
        inputs = normal_inputs(graph, steps, batch)
        assert_same(run_model(model, inputs), run(graph, params, inputs, steps, dtype), dtype)


def test_a_backward_layer_runs_as_a_reverse_operator():
    graph = build(
        spec([layer("r", "lstm", "x", 3, direction="backward", output=readout(2, "tanh"))])
    )
    params = normal_params(graph)
    model, _ = build_model(graph, params)
    (node,) = [n for n in model.graph.node if n.op_type == "LSTM"]
    assert {a.name: a.s for a in node.attribute}["direction"] == b"reverse"
    inputs = normal_inputs(graph, 5, 2)
    assert_same(run_model(model, inputs), run(graph, params, inputs, 5), "float32")


# -- the GRU case that other exporters get wrong --------------------------------------------


def test_gru_resets_after_the_recurrent_product_as_pytorch_does():
    """ONNX's GRU has two readings of the reset gate; PyTorch's (and ours) is
    linear_before_reset=1. Checked against torch.nn.GRU itself, and shown to matter: the
    same model with the attribute at 0 computes something else."""
    graph = build(spec([layer("g", "gru", "x", 5)], inputs=[input_("x", 3)], outputs=[output("y")]))
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(3, 5, batch_first=True).double()
    for parameter in module.parameters():
        torch.nn.init.uniform_(parameter, -1.0, 1.0)
    params = {
        "g.Wx": module.weight_ih_l0.detach().numpy().T,
        "g.Ws": module.weight_hh_l0.detach().numpy().T,
        "g.bx": module.bias_ih_l0.detach().numpy(),
        "g.bs": module.bias_hh_l0.detach().numpy(),
    }
    x = np.random.default_rng(2).normal(size=(4, 7, 3))
    expected = module(torch.from_numpy(x))[0].detach().numpy()
    model, _ = build_model(graph, params)
    (node,) = [n for n in model.graph.node if n.op_type == "GRU"]
    attribute = next(a for a in node.attribute if a.name == "linear_before_reset")
    assert attribute.i == 1
    np.testing.assert_allclose(run_model(model, {"x": x})["y"], expected, atol=1e-5, rtol=0)
    attribute.i = 0
    wrong = run_model(model, {"x": x})["y"]
    assert np.abs(wrong - expected).max() > 1e-2


# -- any network: random stacks, exported at a fixed T ---------------------------------------


# every drawn network exports (taps, feedback, merges, ...: unrolled at the fixed T)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(random_networks())
def test_random_networks_export_and_run_the_same(drawn):
    network, _ = drawn
    graph = build(network)
    steps = 1 if graph.graph["preset"] == "one-to-one" else 4
    params = normal_params(graph)
    inputs = normal_inputs(graph, steps, 2)
    for dtype in ("float32", "float64"):
        model, _ = build_model(graph, params, dtype=dtype, steps=steps)
        assert_same(run_model(model, inputs), run(graph, params, inputs, steps, dtype), dtype)


def test_unrolled_weights_are_stored_once_so_the_file_grows_by_nodes_only():
    graph = build(load_spec(next(p for p in SPECS if p.stem == "generate")))
    params = init_params(graph, 0)
    sizes = {}
    for steps in (10, 100):
        model, _ = build_model(graph, params, steps=steps)
        nodes = len(model.graph.node)
        del model.graph.node[:]
        sizes[steps] = (len(model.SerializeToString()), nodes)
    (small, few), (large, many) = sizes[10], sizes[100]
    assert many > 5 * few  # the steps are there, as nodes
    assert large - small <= 4096  # and nothing else grows with T
    assert small > sum(v.nbytes for v in params.values())  # the weights, in float32, once


def test_a_dynamic_t_network_whose_window_starts_late_is_grouped_by_its_plan():
    """The groups come from the executor's plan at a T past every window: an output from
    step 70 on still exports with a dynamic T, and agrees at T = 100."""
    graph = build(
        spec([layer("a", "gru", output=readout(2))], outputs=[output("o", "a", window="70:")])
    )
    params = normal_params(graph)
    model, how = build_model(graph, params, dtype="float64")
    assert "dynamic batch and T" in how
    inputs = normal_inputs(graph, 100, 2)
    assert_same(run_model(model, inputs), run(graph, params, inputs, 100, "float64"), "float64")
