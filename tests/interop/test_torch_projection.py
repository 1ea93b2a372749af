"""LSTM `proj_size` against PyTorch's own `nn.LSTM(proj_size=P)` (float64): the forward
pass, the gradients (autograd against `Network.grad`), the module `to_torch` makes (native
and through its cell loop), `export --format torch` then `import-weights` (exact), a
user's module imported with `--map`; ONNX, whose LSTM has no projection, as the kind's
step."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.graph.weights import save_params
from composer.network import Network
from tests.builders import connection, input_, layer, output, readout, spec, write_spec

torch = pytest.importorskip("torch")

from tests.interop import test_torch_weights as torch_weights  # noqa: E402  (needs torch)

pytestmark = pytest.mark.torch
runner = CliRunner()
B, T, F, H, P, C = 3, 6, 4, 5, 3, 2


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def Tagger(bidirectional):  # noqa: N802  (a module, as the user's class)
    """A user's module: a two-layer projected LSTM and a linear head."""
    return torch_weights.Tagger("lstm", 2, bidirectional, F, H, C, proj_size=P)


def _spec(bidirectional):
    fields = {"proj_size": P, "bidirectional": bidirectional}
    return spec(
        [
            layer("l0", "lstm", "x", H, **fields),
            layer("l1", "lstm", "l0", H, output=readout(C), **fields),
        ],
        inputs=[input_("x", F)],
        outputs=[output("o", "l1")],
        steps=T,
    )


def _ours(model, bidirectional):
    """The user's weights under our keys, by hand: W = weight.T, b = bias_ih + bias_hh."""
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    params = {}
    for k in range(2):
        for tail, sfx in [("", "")] + ([("_reverse", "_rev")] if bidirectional else []):
            own = f"encoder.{{}}_l{k}{tail}"
            params[f"l{k}.Wx{sfx}"] = state[own.format("weight_ih")].T.copy()
            params[f"l{k}.Ws{sfx}"] = state[own.format("weight_hh")].T.copy()
            params[f"l{k}.Wp{sfx}"] = state[own.format("weight_hr")].T.copy()
            params[f"l{k}.b{sfx}"] = state[own.format("bias_ih")] + state[own.format("bias_hh")]
    params["l1.Wy"] = state["head.weight"].T.copy()
    params["l1.by"] = state["head.bias"].copy()
    return params


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_forward_and_gradients_match_pytorch(bidirectional):
    torch.manual_seed(3)
    model = Tagger(bidirectional)
    x = torch.randn(B, T, F, dtype=torch.float64)
    y = torch.randn(B, T, C, dtype=torch.float64)
    out = model(x)
    loss = torch.nn.functional.mse_loss(out, y)
    loss.backward()
    net = Network.from_spec(_spec(bidirectional))
    params = _ours(model, bidirectional)
    assert sorted(params) == sorted(net.init_params())
    ours = net.run(params, {"x": x.numpy()}, dtype="float64")["o"]
    np.testing.assert_allclose(ours, out.detach().numpy(), atol=1e-10, rtol=0)
    value, grads = net.grad(params, {"x": x.numpy()}, {"o": y.numpy()})
    assert value == pytest.approx(loss.item(), rel=1e-12)
    theirs = {k: v.grad.numpy() for k, v in model.named_parameters()}
    for k in range(2):
        for tail, sfx in [("", "")] + ([("_reverse", "_rev")] if bidirectional else []):
            for ours_key, name in [("Wx", "weight_ih"), ("Ws", "weight_hh"), ("Wp", "weight_hr")]:
                expected = theirs[f"encoder.{name}_l{k}{tail}"].T
                np.testing.assert_allclose(
                    grads[f"l{k}.{ours_key}{sfx}"], expected, atol=1e-8, rtol=0
                )
            bias = theirs[f"encoder.bias_ih_l{k}{tail}"]  # = bias_hh's: b is their sum
            np.testing.assert_allclose(grads[f"l{k}.b{sfx}"], bias, atol=1e-8, rtol=0)
    np.testing.assert_allclose(grads["l1.Wy"], theirs["head.weight"].T, atol=1e-8, rtol=0)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_to_torch_holds_an_nn_lstm_with_proj_size(bidirectional):
    net = Network.from_spec(_spec(bidirectional))
    params = net.init_params(1, "float64")
    module = net.to_torch(params, "float64")
    rnn = module.l0.rnn
    assert isinstance(rnn, torch.nn.LSTM) and (rnn.hidden_size, rnn.proj_size) == (H, P)
    assert tuple(rnn.weight_hr_l0.shape) == (P, H)  # exact below: the weights copied
    np.testing.assert_array_equal(rnn.weight_hr_l0.detach().numpy(), params["l0.Wp"].T)
    if bidirectional:
        np.testing.assert_array_equal(
            rnn.weight_hr_l0_reverse.detach().numpy(), params["l0.Wp_rev"].T
        )
    x = np.random.default_rng(0).normal(size=(B, T, F))
    with torch.no_grad():
        got = module(torch.from_numpy(x))["o"].numpy()
        padded = module(torch.from_numpy(x), lengths={"x": [6, 2, 4]})
    np.testing.assert_allclose(got, net.run(params, {"x": x}, dtype="float64")["o"], atol=1e-12)
    ours = net.run(params, {"x": x}, dtype="float64", lengths={"x": [6, 2, 4]})["o"]
    np.testing.assert_allclose(padded["o"].numpy(), ours, atol=1e-12)


CELL_LOOP = {
    "jordan": spec(
        [layer("a", "lstm", size=H, proj_size=P, output=readout(C))],
        inputs=[input_("x", F)],
        connections=[connection("a", "a")],
        steps=T,
    ),
    "dilated-learned": spec(
        [layer("a", "lstm", size=H, proj_size=P, delay=2, initial_state="learn")],
        inputs=[input_("x", F)],
        steps=T,
    ),
    "learned-native": spec(  # runs in nn.LSTM: h0 is s0 (P), c0 zeros (H)
        [layer("a", "lstm", size=H, proj_size=P, initial_state="learn", output=readout(C))],
        inputs=[input_("x", F)],
        steps=T,
    ),
    "handover": spec(
        [
            layer("e", "lstm", size=H, proj_size=P, active="0:3"),
            layer("d", "lstm", "e", size=H, proj_size=P, active="3:6", initial_state="e"),
        ],
        inputs=[input_("x", F)],
        outputs=[output("o", "d", window="3:6")],
        steps=T,
    ),
}


@pytest.mark.parametrize("name", list(CELL_LOOP))
def test_the_cell_loop_computes_what_the_executor_does(name):
    """Layers the module cannot hand to nn.LSTM whole run step by step (the kind's `step`);
    a trained initial state is nn.LSTM's (h0, c0)."""
    net = Network.from_spec(CELL_LOOP[name])
    rng = np.random.default_rng(4)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}
    x = rng.normal(size=(B, T, F))
    module = net.to_torch(params, "float64")
    with torch.no_grad():
        got = module(torch.from_numpy(x))
    for key, value in net.run(params, {"x": x}, dtype="float64").items():
        np.testing.assert_allclose(got[key].numpy(), value, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_export_then_import_is_exact(tmp_path, suffix):
    path = write_spec(tmp_path, _spec(True))
    net = Network.from_file(path)
    rng = np.random.default_rng(5)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}
    save_params(tmp_path / "w.npz", params)
    state = tmp_path / f"s{suffix}"
    result = invoke("export", path, "-w", tmp_path / "w.npz", "--format", "torch", "-o", state,
                    "--dtype", "float64")  # fmt: skip
    assert result.exit_code == 0, result.output
    back = tmp_path / "back.npz"
    result = invoke("import-weights", path, state, "-o", back)
    assert result.exit_code == 0, result.output
    got = dict(np.load(back))
    assert sorted(got) == sorted(params)
    for key, value in params.items():  # exact: float64 copies
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_import_from_a_user_module_with_map(tmp_path):
    torch.manual_seed(1)
    model = Tagger(True)
    state_path = tmp_path / "tagger.pt"
    torch.save(model.state_dict(), state_path)
    path = write_spec(tmp_path, _spec(True))
    weights = tmp_path / "w.npz"
    result = invoke("import-weights", path, state_path, "-o", weights, "--map", "l0=encoder:0",
                    "--map", "l1=encoder:1", "--map", "l1.readout=head")  # fmt: skip
    assert result.exit_code == 0, result.output
    params = dict(np.load(weights))
    x = np.random.default_rng(0).normal(size=(2, T, F))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = Network.from_file(path).run(params, {"x": x}, dtype="float64")["o"]
    np.testing.assert_allclose(got, expected, atol=1e-10, rtol=0)


def test_onnx_writes_the_projection_as_the_kinds_step(tmp_path):
    """ONNX's LSTM has no projection: the export is a Scan of the kind's one step."""
    ort = pytest.importorskip("onnxruntime")
    path = write_spec(tmp_path, _spec(True))
    net = Network.from_file(path)
    params = net.init_params(seed=2)
    save_params(tmp_path / "w.npz", params)
    out = tmp_path / "m.onnx"
    result = invoke("export", path, "-w", tmp_path / "w.npz", "--format", "onnx", "-o", out,
                    "--dtype", "float64")  # fmt: skip
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(6).normal(size=(2, T, F))
    (got,) = ort.InferenceSession(str(out)).run(None, {"x": x})
    expected = net.run(params, {"x": x}, dtype="float64")["o"]
    np.testing.assert_allclose(got, expected, atol=1e-10, rtol=0)
