"""Layer options in the ONNX export: exact where ONNX has the equations, else refused in
one line (never exported as another network)."""

from __future__ import annotations

import pytest

from composer import build, run
from composer.errors import SpecError
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


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "lstm", "layer_norm": True}, "kind `lstm` with `layer_norm: true` has no ONNX"),
        ({"kind": "gru", "layer_norm": True}, "kind `gru` with `layer_norm: true` has no ONNX"),
        ({"kind": "gru", "bias": False}, "`bias: false` has no ONNX export yet"),
        ({"kind": "lstm", "proj_size": 2}, "kind `lstm` with `proj_size` has no ONNX"),
    ],
)
def test_options_onnx_lacks_are_refused_in_one_line(fields, message):
    kind = fields.pop("kind")
    graph = build(spec([layer("a", kind, output=readout(2), **fields)]))
    with pytest.raises(SpecError) as caught:
        build_model(graph, normal_params(graph))
    assert message in str(caught.value) and "\n" not in str(caught.value)
