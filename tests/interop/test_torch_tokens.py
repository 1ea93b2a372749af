"""Token inputs and trained initial states in PyTorch: `to_torch` with `nn.Embedding` (or
one-hot ids) and `<layer>.s0` gives `Network.run`'s outputs and `Network.grad`'s gradients
in float64, natively and through the cell loop, padded by `padding_id`; `run --engine
torch`, `train` on the torch engine and the state_dict round trip on a token spec."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import write_arrays
from composer.cli import app
from composer.engine.pipeline import plan_for_steps
from composer.graph.weights import save_params
from composer.network import Network
from tests.builders import connection, layer, readout, spec, write_spec
from tests.conftest import ROOT

torch = pytest.importorskip("torch")

from composer.interop.torch_engine import TorchEngine  # noqa: E402
from composer.interop.torch_keys import grads_from_state  # noqa: E402
from composer.interop.torch_pass import TorchPass  # noqa: E402

pytestmark = pytest.mark.torch
runner = CliRunner()


def _network(kind, embed, learn, loop, padding_id=None):
    token = {"name": "x", "vocab": 6, **({"embed": 3} if embed else {})}
    if padding_id is not None:
        token["padding_id"] = padding_id
    fields = {"initial_state": "learn"} if learn else {}
    layers = [
        layer("a", kind, "x", 4, **fields),
        layer("b", "gru", "a", 3, output=readout(5, "softmax")),
    ]
    extra = {"connections": [connection("b", "a")]} if loop else {}
    return Network.from_spec(spec(layers, inputs=[token], **extra))


def _random(net, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params(dtype="float64").items()}


CASES = [
    ("gru", True, True, False),
    ("lstm", True, True, True),
    ("elman", False, True, False),
    ("lstm", False, False, False),
    ("gru", True, False, True),
]


@pytest.mark.parametrize(("kind", "embed", "learn", "loop"), CASES)
def test_forward_and_gradients_match_the_numpy_engine(kind, embed, learn, loop):
    net = _network(kind, embed, learn, loop)
    params = _random(net)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, (3, 7))
    targets = {"y": rng.normal(size=(3, 7, 5))}
    module = net.to_torch(params, "float64")
    assert TorchPass.all_native(module, plan_for_steps(net.graph, 7)) == (not loop)
    got = module({"x": torch.from_numpy(x)})
    expected = net.run(params, {"x": x}, dtype="float64")
    np.testing.assert_allclose(got["y"].detach().numpy(), expected["y"], atol=1e-10, rtol=0)
    ((got["y"] - torch.from_numpy(targets["y"])) ** 2).mean().backward()
    grads = {k: p.grad.numpy() for k, p in module.named_parameters() if p.grad is not None}
    ours = grads_from_state(net.graph, grads)
    _, expected_grads = net.grad(params, {"x": x}, targets)
    assert sorted(ours) == sorted(expected_grads)
    assert ("x.E" in ours) == embed and ("a.s0" in ours) == learn
    for key, value in expected_grads.items():
        np.testing.assert_allclose(ours[key], value, atol=1e-8, rtol=1e-8, err_msg=key)


def test_names_read_naturally_and_come_back_exactly():
    net = _network("gru", True, True, False)
    params = _random(net)
    module = net.to_torch(params, "float64")
    state = module.state_dict()  # exact below: float64 copies
    np.testing.assert_array_equal(state["x.embedding.weight"].numpy(), params["x.E"])
    np.testing.assert_array_equal(state["a.s0"].numpy(), params["a.s0"])
    assert isinstance(module.x.embedding, torch.nn.Embedding)
    back = module.params()
    for key, value in params.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


@pytest.mark.parametrize("loop", [False, True], ids=["packed", "grouped"])
def test_padding_id_ends_each_item_as_run_does(loop):
    net = _network("lstm", True, True, loop, padding_id=0)
    params = _random(net)
    x = np.random.default_rng(2).integers(1, 6, (4, 6))
    x[0, 3:], x[2, 1:] = 0, 0
    expected = net.run(params, {"x": x}, dtype="float64")
    with torch.no_grad():
        got = net.to_torch(params, "float64")({"x": torch.from_numpy(x)})
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(got[key]), value, atol=1e-10, rtol=0, err_msg=key)


def test_one_sequence_of_ids_gives_unbatched_outputs():
    net = _network("gru", True, False, False)
    params = _random(net)
    x = np.random.default_rng(3).integers(0, 6, 5)
    with torch.no_grad():
        got = net.to_torch(params, "float64")(torch.from_numpy(x))
    np.testing.assert_allclose(got["y"].numpy(), net.run(params, x, dtype="float64")["y"],
                               atol=1e-10, rtol=0)  # fmt: skip


@pytest.mark.parametrize("bad", [np.array([[0.0, 1.0]]), np.array([[0, 6]])])
def test_bad_ids_are_refused_in_one_line(bad):
    net = _network("gru", True, False, False)
    module = net.to_torch(_random(net), "float64")
    with pytest.raises(Exception, match="input 'x'") as err:
        module({"x": torch.from_numpy(bad)})
    assert "\n" not in str(err.value)


def test_run_on_the_torch_engine_gives_numpys_on_char_lm(tmp_path):
    path = ROOT / "specs" / "char-lm.yaml"
    net = Network.from_file(path)
    save_params(tmp_path / "w.npz", _random(net))
    x = np.random.default_rng(4).integers(1, 80, (3, 64))
    write_arrays(tmp_path / "in.npz", {"chars": x, "chars.lengths": np.array([64, 9, 30])})
    outs = []
    for engine in ("numpy", "torch"):
        out = tmp_path / f"{engine}.npz"
        result = runner.invoke(app, [str(a) for a in (
            "run", path, "-w", tmp_path / "w.npz", "-i", tmp_path / "in.npz", "-o", out,
            "--engine", engine, "--dtype", "float64")])  # fmt: skip
        assert result.exit_code == 0, result.output
        outs.append(dict(np.load(out)))
    assert sorted(outs[0]) == sorted(outs[1])
    for key, value in outs[0].items():
        np.testing.assert_allclose(outs[1][key], value, atol=1e-10, rtol=0, err_msg=key)


@pytest.mark.parametrize(("padding_id", "bptt"), [(None, None), (0, None), (None, 3)])
def test_training_a_token_spec_gives_the_numpy_engines_figures(padding_id, bptt):
    net = _network("gru", True, True, False, padding_id=padding_id)
    rng = np.random.default_rng(5)
    x = rng.integers(1, 6, (24, 7))
    x[::3, 4:] = 0
    y = np.eye(5)[rng.integers(0, 5, (24, 7))]
    data = {"x": x, "y": y}
    start = net.init_params(seed=0, dtype="float64")
    common = dict(epochs=2, batch_size=8, dtype="float64", validation=0.25, seed=3,
                  loss="cross-entropy", lr=0.01, bptt=bptt)  # fmt: skip
    ours = net.train(start, data, **common)
    theirs = net.train(start, data, engine=TorchEngine(net.graph, "float64"), **common)
    for a, b in zip(ours.history, theirs.history):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-9)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-9)
    for key, value in ours.params.items():
        np.testing.assert_allclose(theirs.params[key], value, rtol=1e-7, atol=1e-9, err_msg=key)


def test_padding_id_ends_items_on_every_engine_of_run(tmp_path):
    net = _network("lstm", True, True, False, padding_id=0)
    path = write_spec(tmp_path, net.spec)
    save_params(tmp_path / "w.npz", _random(net))
    x = np.random.default_rng(6).integers(1, 6, (3, 8))
    x[1, 2:] = 0
    write_arrays(tmp_path / "in.npz", {"x": x})
    outs = {}
    for engine in ("numpy", "torch", "onnx"):
        out = tmp_path / f"{engine}.npz"
        result = runner.invoke(app, [str(a) for a in (
            "run", path, "-w", tmp_path / "w.npz", "-i", tmp_path / "in.npz", "-o", out,
            "--engine", engine, "--dtype", "float64")])  # fmt: skip
        assert result.exit_code == 0, result.output
        outs[engine] = dict(np.load(out))
    np.testing.assert_array_equal(outs["numpy"]["y.lengths"], [8, 2, 8])
    for engine in ("torch", "onnx"):
        assert sorted(outs[engine]) == sorted(outs["numpy"])
        for key, value in outs["numpy"].items():
            np.testing.assert_allclose(outs[engine][key], value, atol=1e-10, rtol=0, err_msg=key)


def test_export_then_import_keeps_the_embedding_and_s0_exactly(tmp_path):
    net = _network("gru", True, True, True)
    path = write_spec(tmp_path, net.spec)
    params = _random(net)
    save_params(tmp_path / "w.npz", params)
    state = tmp_path / "s.safetensors"
    for args in (
        ("export", path, "-w", tmp_path / "w.npz", "--format", "torch", "-o", state,
         "--dtype", "float64"),
        ("import-weights", path, state, "-o", tmp_path / "back.npz"),
    ):  # fmt: skip
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    back = dict(np.load(tmp_path / "back.npz"))
    assert sorted(back) == sorted(params) and {"x.E", "a.s0"} <= set(back)
    for key, value in params.items():  # exact: float64 copies
        np.testing.assert_array_equal(back[key], value, err_msg=key)
