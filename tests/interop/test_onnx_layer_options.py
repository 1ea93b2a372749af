"""Layer options in the ONNX export: ONNX's operators where they have the equations, else
the kind's one step as ONNX nodes; exact either way (never another network)."""

from __future__ import annotations

import pytest

from composer import build, run
from composer.interop.onnx import build_model, run_model
from tests.builders import layer, readout, spec
from tests.interop.test_onnx import assert_same, normal_inputs, normal_params, op_types

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_gru_that_resets_before_exports_as_linear_before_reset_0(dtype, bidirectional):
    """float32: ONNX's GRU operator; float64 (which it lacks): the step as ONNX nodes."""
    graph = build(
        spec(
            [
                layer("a", "gru", reset_after=False, bidirectional=bidirectional),
                layer("b", "gru", "a", 3, reset_after=False, output=readout(2), dropout=0.3),
            ]
        )
    )
    params = normal_params(graph, seed=2)
    model, _ = build_model(graph, params, dtype=dtype)
    if dtype == "float32":
        assert "GRU" in op_types(model)
        gru = [n for n in model.graph.node if n.op_type == "GRU"]
        assert all(a.i == 0 for n in gru for a in n.attribute if a.name == "linear_before_reset")
    for batch, steps in [(1, 3), (3, 6)]:
        inputs = normal_inputs(graph, steps, batch)
        assert_same(run_model(model, inputs), run(graph, params, inputs, steps, dtype), dtype)


OPTIONS = {
    "lstm layer_norm": [layer("a", "lstm", layer_norm=True, output=readout(2))],
    "gru layer_norm": [layer("a", "gru", layer_norm=True, bidirectional=True, output=readout(2))],
    "gru bias false": [layer("a", "gru", bias=False, output=readout(2))],
    "lstm bias false": [layer("a", "lstm", bias=False), layer("b", "elman", "a", 3, bias=False)],
    "dense bias false": [layer("a", "gru"), layer("d", "dense", "a", 3, bias=False)],
    "lstm proj_size": [layer("a", "lstm", proj_size=2, output=readout(2))],
    "lstm proj_size bidirectional": [layer("a", "lstm", size=5, proj_size=3, bidirectional=True)],
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("steps", [None, 5])
@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_layer_options_export_as_the_kinds_step(name, dtype, steps):
    """Options no ONNX operator computes run as their kind's one step (a Scan body, or
    unrolled at a fixed T), and agree with `run`."""
    graph = build(spec(OPTIONS[name]))
    params = normal_params(graph, seed=3)
    model, _ = build_model(graph, params, dtype=dtype, steps=steps)
    for batch, length in [(1, 5), (3, 5)] if steps else [(1, 3), (3, 6)]:
        inputs = normal_inputs(graph, length, batch)
        assert_same(run_model(model, inputs), run(graph, params, inputs, length, dtype), dtype)
