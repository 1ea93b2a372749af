"""The features beyond plain stacks (no `torch.nn` module or ONNX operator computes them)
are each found, with the field; both converters carry them exactly, as the kinds' steps."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.plan import compile_plan
from composer.graph.features import extended_features
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params
from composer.spec.reader import load_spec
from tests.builders import random_input
from tests.conftest import SPECS
from tests.oracles import SCENARIOS

EXPECTED = {
    "narx": {("connections", 0), ("layers", 0, "input")},
    "tdnn": {("layers", 0, "input")},
    "backward-taps": {("layers", 0, "input")},
    "bidirectional-sum": {("layers", 0, "merge"), ("layers", 2, "merge")},
    "bidirectional-mean-mul": {("layers", 0, "merge"), ("layers", 2, "merge")},
    **{
        f"bidirectional-encoder-{merge}": {("layers", 0, "merge")}
        for merge in ("sum-gru-elman", "mean-lstm-lstm", "mul-lstm-gru")
    },
    "two-pass": {("layers", 1, "initial_state")},
    "inputless-decoder": {("layers", 1)},
}

MERGES = {"bidirectional-sum", "bidirectional-mean-mul"} | {
    name for name in EXPECTED if name.startswith("bidirectional-encoder")
}


def test_each_scenario_reports_exactly_its_extended_features():
    for name, (network, _, _) in SCENARIOS.items():
        paths = {path for path, _ in extended_features(build(network))}
        assert paths == EXPECTED.get(name, set()), name


def test_the_example_specs_beyond_plain_stacks_are_the_tapped_ones():
    extended = {p.stem for p in SPECS if extended_features(build(load_spec(p)))}
    assert extended == {"narx", "tdnn"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_pytorch_module_carries_every_extended_network(name):
    """Run step by step, each recurrent step the kind's one `step`: the module gives the
    hand-written loop's outputs (float64) and `grad`'s gradients."""
    torch = pytest.importorskip("torch")
    from composer.interop.torch_keys import grads_from_state
    from composer.interop.torch_module import to_torch
    from composer.training.backprop import grad

    network, steps, oracle = SCENARIOS[name]
    graph = build(network)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in init_params(graph).items()}
    plan = compile_plan(unroll(graph, steps))
    inputs = {n: random_input(graph, n, 2, len(plan.window(n)), rng) for n in plan.inputs}
    module = to_torch(graph, params, "float64")
    got = module({k: torch.from_numpy(v) for k, v in inputs.items()}, steps=steps)
    expected = oracle(params, inputs, steps)
    targets = {k: rng.normal(size=v.shape) for k, v in expected.items()}
    for key, value in expected.items():
        np.testing.assert_allclose(got[key].detach().numpy(), value, atol=1e-10, err_msg=key)
    sum(((got[k] - torch.from_numpy(y)) ** 2).mean() for k, y in targets.items()).backward()
    ours = grads_from_state(
        graph, {k: p.grad.numpy() for k, p in module.named_parameters() if p.grad is not None}
    )
    _, want = grad(plan, params, inputs, targets, dtype="float64")
    for key, value in want.items():
        np.testing.assert_allclose(ours[key], value, atol=1e-8, rtol=1e-8, err_msg=key)


#: the features ONNX writes with a dynamic T (the rest need one: they are unrolled)
DYNAMIC = {"narx", "tdnn", "backward-taps", "bidirectional-sum", "bidirectional-mean-mul"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_onnx_writes_every_extended_network_with_lengths_where_t_is_free(name):
    """Taps, future context and merges keep a dynamic T and take `--lengths` (each item as
    `run` gives it with lengths, padding loud); a layer without an input and a two-pass
    hand-over are unrolled at --steps T, and say so without one."""
    pytest.importorskip("onnxruntime")
    from composer.engine.batches import run
    from composer.interop.onnx import NeedsSteps, build_model, export_mode, run_model

    network, steps, _ = SCENARIOS[name]
    graph = build(network)
    if name not in DYNAMIC:
        assert export_mode(graph, "float32", 8, False) == "unrolled"
        with pytest.raises(NeedsSteps):
            export_mode(graph, "float32", None, False)
        return
    rng = np.random.default_rng(0)
    params = {k: rng.normal(0, 0.3, v.shape) for k, v in init_params(graph).items()}
    plan = compile_plan(unroll(graph, steps))
    inputs = {n: random_input(graph, n, 3, len(plan.window(n)), rng) for n in plan.inputs}
    lengths = {n: np.array([x.shape[1], max(1, x.shape[1] - 2), 1]) for n, x in inputs.items()}
    for n, x in inputs.items():  # loud padding: read past an item's end, it would show
        x[np.arange(x.shape[1])[np.newaxis] >= lengths[n][:, np.newaxis]] = 1e3
    for dtype, tolerance in (("float32", 1e-5), ("float64", 1e-10)):
        model, how = build_model(graph, params, dtype=dtype, lengths=True)
        assert "dynamic batch and T" in how
        got = run_model(model, inputs, lengths)
        want = run(graph, params, inputs, dtype=dtype, lengths=lengths)
        assert sorted(got) == sorted(want)
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, atol=tolerance, rtol=0, err_msg=key)
