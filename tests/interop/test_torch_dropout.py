"""The PyTorch module honours the layers' dropout in training mode (none in `eval()`): with
the masks of the same seeded `Dropout`, its loss and gradients are `Network.grad(train=)`'s
exactly (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from composer.network import Network
from composer.training.dropout import Dropout
from tests.builders import input_, layer, output, readout, spec

torch = pytest.importorskip("torch")

from composer.interop.torch_keys import grads_from_state  # noqa: E402
from composer.interop.torch_pass import TorchPass  # noqa: E402

pytestmark = pytest.mark.torch


def _net(kind, **fields):
    """Input, recurrent and output dropout on a layer of `kind`, a dense layer with input
    dropout reading it, and a plain layer (run natively) under it."""
    layers = [
        layer("plain", "gru", "x", 3, dropout=0.3),
        layer("drop", kind, "plain", 4, recurrent_dropout=0.4, output_dropout=0.25,
              output=readout(3, "tanh"), **fields),
        layer("head", "dense", "drop", 2, dropout=0.2),
    ]  # fmt: skip
    return Network.from_spec(spec(layers, inputs=[input_("x", 3)], outputs=[output("o", "head")]))


CASES = {
    "elman": _net("elman"),
    "lstm": _net("lstm"),
    "gru": _net("gru"),
    "bidirectional-lstm": _net("lstm", bidirectional=True, merge="mul"),
}


def _setup(net, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}
    x = rng.normal(size=(3, 6, 3))
    y = rng.normal(size=(3, 6, 2))
    return params, x, y


@pytest.mark.parametrize("name", sorted(CASES))
def test_with_the_same_masks_the_loss_and_gradients_are_grads(name):
    net = CASES[name]
    params, x, y = _setup(net)
    module = net.to_torch(params, dtype="float64")
    assert module.training  # as every PyTorch module starts
    out = module(torch.from_numpy(x), dropout=Dropout(7))
    value = ((out["o"] - torch.from_numpy(y)) ** 2).mean()
    value.backward()
    got = grads_from_state(net.graph, {k: p.grad.numpy() for k, p in module.named_parameters()})
    expected_value, expected = net.grad(params, {"x": x}, {"o": y}, train=Dropout(7))
    assert float(value.detach()) == pytest.approx(expected_value, abs=1e-12, rel=1e-12)
    no_dropout, _ = net.grad(params, {"x": x}, {"o": y})
    assert abs(expected_value - no_dropout) > 1e-3  # the masks did drop something
    for key, grad in expected.items():
        np.testing.assert_allclose(got[key], grad, atol=1e-8, rtol=1e-8, err_msg=key)


def test_eval_mode_drops_nothing_and_training_mode_draws_new_masks_each_call():
    net = CASES["lstm"]
    params, x, _ = _setup(net)
    module = net.to_torch(params, dtype="float64")
    expected = net.run(params, {"x": x}, dtype="float64")["o"]
    with torch.no_grad():
        first, second = (module(torch.from_numpy(x))["o"].numpy() for _ in range(2))
        module.eval()
        quiet = module(torch.from_numpy(x))["o"].numpy()
    np.testing.assert_allclose(quiet, expected, atol=1e-10, rtol=0)
    assert not np.allclose(first, expected) and not np.allclose(first, second)


def test_recurrent_dropout_runs_the_cell_loop_and_input_dropout_stays_native():
    net = CASES["gru"]
    params, x, _ = _setup(net)
    module = net.to_torch(params, dtype="float64")
    plan = module._plan(6)
    masked = TorchPass(module, plan, {"x": torch.from_numpy(x)}, None, False, dropout=Dropout(1))
    assert masked._native_layer(plan.vectors["plain.s"]) == ("plain.s",)
    assert masked._native_layer(plan.vectors["drop.s"]) is None
    quiet = TorchPass(module, plan, {"x": torch.from_numpy(x)}, None, False)
    assert quiet._native_layer(plan.vectors["drop.s"]) == ("drop.s",)


def test_training_with_dropout_gives_the_numpy_engines_figures():
    """The torch engine applies the update's masks, drawn from the NumPy loop's generator:
    the same seed gives the same losses and weights."""
    from composer.interop.torch_engine import TorchEngine

    net = CASES["gru"]
    rng = np.random.default_rng(2)
    data = {"x": rng.normal(size=(24, 6, 3)), "o": rng.normal(size=(24, 6, 2))}
    start = net.init_params(seed=0, dtype="float64")
    common = dict(epochs=2, batch_size=8, dtype="float64", validation=0.25, seed=5, lr=0.01)
    ours = net.train(start, data, **common)
    theirs = net.train(start, data, engine=TorchEngine(net.graph, "float64"), **common)
    plain = Network.from_spec(net.spec.model_copy(update={"layers": [
        layer.model_copy(update=dict.fromkeys(("dropout", "recurrent_dropout", "output_dropout"),
                                              0.0) if layer.kind != "dense" else {"dropout": 0.0})
        for layer in net.spec.layers
    ]}))  # fmt: skip
    quiet = plain.train(start, data, **common)  # the same without dropout: other weights
    assert not np.allclose(quiet.params["drop.Ws"], ours.params["drop.Ws"], atol=1e-6)
    for a, b in zip(ours.history, theirs.history, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-9)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-9)
    for key, value in ours.params.items():
        np.testing.assert_allclose(theirs.params[key], value, rtol=1e-7, atol=1e-9, err_msg=key)


def test_a_padded_data_set_with_dropout_is_refused_by_the_torch_engine_saying_why():
    from composer.errors import SpecError
    from composer.interop.torch_engine import TorchEngine

    net = CASES["elman"]
    rng = np.random.default_rng(2)
    data = {"x": rng.normal(size=(8, 6, 3)), "o": rng.normal(size=(8, 6, 2)),
            "x.lengths": np.array([6, 5, 4, 6, 3, 6, 2, 6])}  # fmt: skip
    start = net.init_params(seed=0, dtype="float64")
    seen = []  # refused before training starts: no epoch is measured or reported
    with pytest.raises(SpecError, match="masks would differ from the numpy engine's"):
        net.train(start, data, epochs=1, batch_size=8, engine=TorchEngine(net.graph, "float64"),
                  on_epoch=seen.append)  # fmt: skip
    assert seen == []


def test_run_on_the_torch_engine_drops_nothing():
    from composer.interop.torch_engine import run_torch

    net = CASES["bidirectional-lstm"]
    params, x, _ = _setup(net)
    got = run_torch(net.graph, params, {"x": x}, dtype="float64")["o"]
    np.testing.assert_allclose(got, net.run(params, {"x": x}, dtype="float64")["o"], atol=1e-10)
