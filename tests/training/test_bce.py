"""Binary cross-entropy for sigmoid outputs, cross-entropy targets that do not sum to 1,
and the identity init: values and gradients against torch.nn.functional, the network's
gradient against finite differences, and the refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from composer import Network
from composer.errors import DataError, SpecError
from composer.training.backprop import evaluate, grad
from composer.training.loop import UnnormalisedTargets, plan_for
from composer.training.losses import binary_cross_entropy

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _tagger(activation="sigmoid", size=3, kind="elman", init=None):
    layer = {"name": "rnn", "kind": kind, "input": "x", "state_size": 5,
             "output": {"size": size, "activation": activation}}  # fmt: skip
    if init:
        layer["init"] = init
    return Network.from_spec({
        "inputs": [{"name": "x", "size": 2}], "layers": [layer],
        "outputs": [{"name": "y", "from": "rnn"}], "alignment": "many-to-many",
    })  # fmt: skip


def test_bce_and_its_gradient_match_torch_with_a_mask_and_huge_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (3, 4, 5))
    logits[0, 0, :2] = [1e4, -1e4]  # saturated: still finite
    targets = (rng.random((3, 4, 5)) > 0.5).astype(float)
    targets[1, 1] = 0.3  # soft targets too
    mask = np.array([[1, 1, 0, 1], [1, 1, 1, 1], [0, 0, 1, 2]], float)
    value, d = binary_cross_entropy(logits, targets, mask)
    a = torch.tensor(logits, requires_grad=True)
    per = F.binary_cross_entropy_with_logits(a, torch.tensor(targets), reduction="none")
    w = torch.tensor(mask)[..., None]
    expected = (w * per).sum() / (w.sum() * 5)
    expected.backward()
    assert np.isfinite(value) and value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(d, a.grad.numpy(), rtol=1e-10, atol=1e-15)
    plain = F.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(targets))
    assert binary_cross_entropy(logits, targets)[0] == pytest.approx(plain.item(), rel=1e-12)


def test_the_network_gradient_with_bce_matches_finite_differences_and_torch():
    net = _tagger()
    rng = np.random.default_rng(1)
    params = net.init_params(seed=0, dtype="float64")
    x = rng.normal(size=(4, 6, 2))
    y = (rng.random((4, 6, 3)) > 0.6).astype(float)
    plan = plan_for(net.graph, {"x": x})
    value, grads = grad(plan, params, {"x": x}, {"y": y}, loss="binary-cross-entropy",
                        dtype="float64")  # fmt: skip
    module = net.to_torch(params, dtype="float64")
    out = module({"x": torch.tensor(x)})["y"]
    probs = out.clamp(1e-300, 1 - 1e-16)
    oracle = F.binary_cross_entropy(probs, torch.tensor(y))  # the plain formula
    assert value == pytest.approx(oracle.item(), rel=1e-9)
    for key, g in grads.items():  # central differences along a random direction
        direction = rng.normal(size=g.shape)
        step = 1e-6
        up = {**params, key: params[key] + step * direction}
        down = {**params, key: params[key] - step * direction}
        lose = lambda p: evaluate(plan, p, {"x": x}, {"y": y}, loss="binary-cross-entropy",  # noqa: E731
                                  dtype="float64")  # fmt: skip
        numeric = (lose(up) - lose(down)) / (2 * step)
        assert float(np.vdot(g, direction)) == pytest.approx(numeric, rel=1e-6, abs=1e-9), key


def test_bce_trains_on_both_engines_alike_and_is_refused_without_a_sigmoid():
    from composer.interop.torch_engine import TorchEngine

    net = _tagger()
    rng = np.random.default_rng(2)
    data = {"x": rng.normal(size=(24, 6, 2)), "y": (rng.random((24, 6, 3)) > 0.5) * 1.0}
    start = net.init_params(seed=0, dtype="float64")
    options = dict(epochs=2, batch_size=8, loss="binary-cross-entropy", dtype="float64",
                   metrics=["set-accuracy", "mae"])  # fmt: skip
    ours = net.train(start, data, **options)
    theirs = net.train(start, data, engine=TorchEngine(net.graph, "float64"), **options)
    for key, value in ours.params.items():
        np.testing.assert_allclose(theirs.params[key], value, rtol=1e-9, atol=1e-12)
    assert 0 <= ours.history[-1].metrics["y.set-accuracy"] <= 1
    with pytest.raises(SpecError, match="binary-cross-entropy on output `y` needs a sigmoid"):
        _tagger("softmax").train(start, data, **options)
    data["y"] = data["y"] * 2
    with pytest.raises(DataError, match=r"binary cross-entropy targets must lie in \[0, 1\]"):
        net.train(start, data, **options)


def test_cross_entropy_targets_that_do_not_sum_to_one_are_refused_or_warned():
    net = _tagger("softmax")
    rng = np.random.default_rng(3)
    y = np.zeros((6, 6, 3))
    y[..., 0] = 1.0
    y[2, 4] = [1.0, 1.0, 0.0]  # multi-hot on a softmax
    y[3, 5] = 0.0  # a zero row (padding) counts for nothing and is not refused
    data = {"x": rng.normal(size=(6, 6, 2)), "y": y}
    start = net.init_params(seed=0)
    with pytest.raises(DataError, match=r"d\.npz: key 'y': cross-entropy targets must sum to 1"
                       r".* 1 step does not, first item 2, step 4: 2;"):  # fmt: skip
        net.train(start, data, loss="cross-entropy", epochs=1, where="d.npz")
    masked = dict(data, **{"y.mask": np.ones((6, 6))})
    masked["y.mask"][2, 4] = 0  # a step that does not count is not checked
    net.train(start, masked, loss="cross-entropy", epochs=1)
    with pytest.warns(UnnormalisedTargets, match="must sum to 1"):
        net.train(start, data, loss="cross-entropy", epochs=1, allow_unnormalised=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # good targets: no warning
        net.train(start, {**data, "y": np.eye(3)[np.zeros((6, 6), int)]}, loss="cross-entropy",
                  epochs=1)  # fmt: skip


def test_identity_init_with_a_scale_and_refused_where_not_square():
    net = _tagger(init={"Ws": {"identity": 0.5}})
    params = net.init_params(seed=0)
    np.testing.assert_array_equal(params["rnn.Ws"], 0.5 * np.eye(5, dtype=np.float32))
    assert not np.array_equal(params["rnn.Wx"], 0)  # the others as before
    plain = _tagger(init={"Ws": "identity"}).init_params(seed=0)
    np.testing.assert_array_equal(plain["rnn.Ws"], np.eye(5, dtype=np.float32))
    square = r"`Wx: identity` needs a square weight, but `rnn.Wx` is 2 x 5"
    with pytest.raises(SpecError, match=square):
        _tagger(init={"Wx": "identity"}).init_params()
    gated = _tagger(kind="gru", init={"Ws": "identity"}).init_params()["rnn.Ws"]
    np.testing.assert_array_equal(gated, np.concatenate([np.eye(5)] * 3, 1))  # one per gate
