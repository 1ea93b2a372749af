"""A start state given with the data (`initial_state: h0`) in ONNX: a (B, H) graph input,
the recurrent operators' `initial_h`, a Scan's first ring (every one of a dilated layer's
first k steps), or an unrolled graph's first state; what ONNX Runtime computes equals
`run` (1e-5 in float32, 1e-10 in float64), with lengths too, and `run --engine onnx`
reads it from the inputs file."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer import build, run
from composer.arrays import write_arrays
from composer.cli import app
from composer.graph.weights import save_params
from composer.interop.onnx import NeedsSteps, build_model, run_model
from tests.builders import connection, layer, readout, spec, write_spec
from tests.conftest import ROOT
from tests.interop.test_onnx import TOLERANCE, normal_params

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
runner = CliRunner()
RNG = np.random.default_rng(0)
X, H0 = RNG.normal(size=(3, 6, 3)), RNG.normal(size=(3, 4))
INPUTS = [{"name": "x", "size": 3}, {"name": "h0", "size": 4}]


def _spec(kind, loop=False, **first):
    layers = [
        layer("a", kind, "x", 4, initial_state="h0", **first),
        layer("b", "gru", "a", 3, output=readout(2)),
    ]
    extra = {"connections": [connection("b", "a")]} if loop else {}
    return spec(layers, inputs=INPUTS, **extra)


CASES = [
    ("elman", {}),
    ("lstm", {}),
    ("gru", {}),
    ("lstm", {"delay": 2}),  # a Scan: both first steps read h0
    ("gru", {"loop": True}),  # a feedback loop: a Scan whose first ring is h0
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("kind", "options"), CASES)
def test_onnx_runtime_computes_what_run_does(kind, options, dtype):
    graph = build(_spec(kind, **options))
    params = normal_params(graph)
    model, _ = build_model(graph, params, dtype=dtype)
    (signature,) = [i for i in model.graph.input if i.name == "h0"]
    dims = [d.dim_param or d.dim_value for d in signature.type.tensor_type.shape.dim]
    assert dims == ["B", 4]  # no time axis
    if dtype == "float32" and not options:
        # the operator's inputs by position: X, W, R, B, sequence_lens (none), initial_h
        operator = next(n for n in model.graph.node if n.op_type in ("RNN", "LSTM", "GRU"))
        assert len(operator.input) == 6 and operator.input[4] == ""
        assert any(n.op_type == "Unsqueeze" and n.input[0] == "h0" and n.output[0] ==
                   operator.input[5] for n in model.graph.node)  # fmt: skip
    got = run_model(model, {"x": X, "h0": H0})["y"]
    expected = run(graph, params, {"x": X, "h0": H0}, dtype=dtype)["y"]
    np.testing.assert_allclose(got, expected, atol=TOLERANCE[dtype], rtol=0)
    zero = run(graph, params, {"x": X, "h0": 0 * H0}, dtype=dtype)["y"]
    assert np.abs(zero - expected).max() > 1e-3


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_padded_batch_with_lengths(dtype, direction):
    graph = build(_spec("lstm", direction=direction))  # backward: h0 at each item's end
    params = normal_params(graph)
    model, _ = build_model(graph, params, dtype=dtype, lengths=True)
    assert "h0.lengths" not in [i.name for i in model.graph.input]
    lengths = {"x": np.array([6, 2, 4])}
    got = run_model(model, {"x": X, "h0": H0}, lengths)
    expected = run(graph, params, {"x": X, "h0": H0}, dtype=dtype, lengths=lengths)
    np.testing.assert_allclose(got["y"], expected["y"], atol=TOLERANCE[dtype], rtol=0)


def test_unrolled_at_a_fixed_t_a_late_layer_starts_from_it():
    graph = build(_spec("gru", active="2:"))
    params = normal_params(graph)
    model, how = build_model(graph, params, dtype="float64", steps=6)
    assert how == "unrolled at T = 6"
    got = run_model(model, {"x": X, "h0": H0})["y"]
    expected = run(graph, params, {"x": X, "h0": H0}, dtype="float64")["y"]
    np.testing.assert_allclose(got, expected, atol=TOLERANCE["float64"], rtol=0)


def test_read_across_steps_inside_a_loop_is_unrolled_exactly():
    layers = [
        layer("a", "gru", "x", 4, initial_state="h0"),
        layer("b", "gru", "a", 4, output=readout(2)),
    ]
    graph = build(spec(layers, inputs=INPUTS, connections=[connection("a", "b", delay=1),
                                                          connection("b", "a")]))  # fmt: skip
    with pytest.raises(NeedsSteps, match="`a`'s start state read across steps") as err:
        build_model(graph, normal_params(graph), dtype="float64")
    assert "--steps" in str(err.value)
    params = normal_params(graph)
    model, how = build_model(graph, params, dtype="float64", steps=6)
    assert how == "unrolled at T = 6"
    got = run_model(model, {"x": X, "h0": H0})
    expected = run(graph, params, {"x": X, "h0": H0}, 6, dtype="float64")
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=TOLERANCE["float64"], rtol=0)


def test_run_engine_onnx_reads_it_from_the_inputs_file(tmp_path):
    path = write_spec(tmp_path, _spec("lstm"))
    graph = build(_spec("lstm"))
    params = normal_params(graph)
    save_params(tmp_path / "w.npz", params)
    write_arrays(tmp_path / "in.npz", {"x": X, "h0": H0})
    result = runner.invoke(app, [
        "run", str(path), "-w", str(tmp_path / "w.npz"), "--input", str(tmp_path / "in.npz"),
        "--engine", "onnx", "--dtype", "float64", "-o", str(tmp_path / "out.npz"),
    ], env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = run(graph, params, {"x": X, "h0": H0}, dtype="float64")["y"]
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["y"], expected, atol=1e-10, rtol=0)
