"""Token inputs and trained initial states in ONNX: ids (int64, (B, T)) embedded by a
`Gather` on `<input>.E` or one-hot, and `<layer>.s0` as the recurrent operators'
`initial_h`, a Scan's first ring or an unrolled graph's first state; what ONNX Runtime
computes equals `run` (1e-5 in float32, 1e-10 in float64), with lengths and `padding_id`,
and `run --engine onnx` on the char-lm example equals the NumPy engine."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer import build, run
from composer.arrays import write_arrays
from composer.cli import app
from composer.engine.tokens import padding_lengths
from composer.graph.weights import save_params
from composer.interop.onnx import NeedsSteps, build_model, run_model
from composer.network import Network
from tests.builders import connection, layer, output, readout, spec
from tests.conftest import ROOT
from tests.interop.test_onnx import TOLERANCE, assert_same, normal_params

pytest.importorskip("onnxruntime")
runner = CliRunner()


def _graph(kind, embed, learn, loop=False, padding_id=None, **fields):
    token = {"name": "x", "vocab": 6, **({"embed": 3} if embed else {})}
    if padding_id is not None:
        token["padding_id"] = padding_id
    first = {"initial_state": "learn"} if learn else {}
    layers = [
        layer("a", kind, "x", 4, **first),
        layer("b", "gru", "a", 3, output=readout(5, "softmax")),
    ]
    extra = {"connections": [connection("b", "a")]} if loop else {}
    return build(spec(layers, inputs=[token], **extra, **fields))


CASES = [
    ("gru", True, True, False),
    ("lstm", True, True, True),
    ("elman", False, True, False),
    ("lstm", False, False, False),
    ("gru", True, False, True),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("kind", "embed", "learn", "loop"), CASES)
def test_onnx_runtime_gives_run(kind, embed, learn, loop, dtype):
    graph = _graph(kind, embed, learn, loop)
    params = normal_params(graph)
    model, how = build_model(graph, params, dtype=dtype)
    assert "dynamic batch and T" in how
    assert model.graph.input[0].type.tensor_type.elem_type == 7  # int64 ids
    if embed:
        assert "x.E" in {i.name for i in model.graph.initializer}
        assert any(n.op_type == "Gather" and n.input[0] == "x.E" for n in model.graph.node)
    for batch, steps in ((1, 4), (3, 9)):  # one model, any B and T
        x = np.random.default_rng(steps).integers(0, 6, (batch, steps))
        assert_same(run_model(model, {"x": x}), run(graph, params, {"x": x}, dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("kind", "embed", "learn", "loop"), CASES)
def test_padding_id_lengths_give_run(kind, embed, learn, loop, dtype):
    graph = _graph(kind, embed, learn, loop, padding_id=0)
    params = normal_params(graph)
    x = np.random.default_rng(5).integers(1, 6, (4, 7))
    x[0, 3:], x[2, 1:] = 0, 0
    expected = run(graph, params, {"x": x}, dtype=dtype)  # lengths from padding_id
    model, _ = build_model(graph, params, dtype=dtype, lengths=True)
    lengths = padding_lengths(graph, {"x": x})
    np.testing.assert_array_equal(lengths["x"], [3, 7, 1, 7])
    got = run_model(model, {"x": x}, lengths)
    np.testing.assert_array_equal(got.pop("y.lengths"), expected.pop("y.lengths"))
    assert_same(got, expected, dtype)


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unrolled_at_a_fixed_t_gives_run(learn, dtype):
    graph = _graph("lstm", True, learn, outputs=[output("y", "b", window="2:5")])
    params = normal_params(graph)
    model, how = build_model(graph, params, dtype=dtype, steps=6)
    assert "unrolled" in how
    x = np.random.default_rng(2).integers(0, 6, (3, 6))
    assert_same(run_model(model, {"x": x}), run(graph, params, {"x": x}, 6, dtype), dtype)


def test_run_on_the_onnx_engine_gives_numpys_on_char_lm(tmp_path):
    path = ROOT / "specs" / "char-lm.yaml"
    net = Network.from_file(path)
    save_params(tmp_path / "w.npz", normal_params(net.graph, scale=0.3))
    x = np.random.default_rng(4).integers(1, 80, (3, 20))
    write_arrays(tmp_path / "in.npz", {"chars": x, "chars.lengths": np.array([20, 9, 13])})
    outs = []
    for engine in ("numpy", "onnx"):
        out = tmp_path / f"{engine}.npz"
        result = runner.invoke(app, [str(a) for a in (
            "run", path, "-w", tmp_path / "w.npz", "-i", tmp_path / "in.npz", "-o", out,
            "--engine", engine, "--dtype", "float64")])  # fmt: skip
        assert result.exit_code == 0, result.output
        outs.append(dict(np.load(out)))
    assert sorted(outs[0]) == sorted(outs[1])
    for key, value in outs[0].items():
        np.testing.assert_allclose(outs[1][key], value, atol=TOLERANCE["float64"], rtol=0)


def test_export_writes_a_token_model(tmp_path):
    path = ROOT / "specs" / "char-lm.yaml"
    net = Network.from_file(path)
    save_params(tmp_path / "w.npz", net.init_params())
    args = ("export", path, "-w", tmp_path / "w.npz", "--format", "onnx", "-o", tmp_path / "m.onnx")
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(0).integers(0, 80, (2, 11))
    got = run_model(tmp_path / "m.onnx", {"chars": x})
    assert_same(got, net.run(net.init_params(), {"chars": x}), "float32")


def test_a_trained_state_read_back_by_its_loop_is_unrolled_exactly():
    layers = [layer("a", "gru", "x", 4, initial_state="learn"), layer("b", "elman", "a", 3)]
    network = spec(
        layers, inputs=[{"name": "x", "vocab": 5}],
        connections=[connection("b", "a"), connection("a", "b", 2)],
    )  # fmt: skip
    graph = build(network)
    with pytest.raises(NeedsSteps, match="`a`'s start state read across steps inside its loop"):
        build_model(graph, normal_params(graph))
    params = normal_params(graph)
    model, how = build_model(graph, params, dtype="float64", steps=5)
    assert how == "unrolled at T = 5"
    x = np.random.default_rng(1).integers(0, 5, (2, 5))
    assert_same(run_model(model, {"x": x}), run(graph, params, {"x": x}, 5, "float64"), "float64")
