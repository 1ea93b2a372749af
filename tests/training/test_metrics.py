"""Metrics against hand computations: each formula on small arrays with masks, and on
trained examples against the loss they must agree with (perplexity = exp(cross-entropy),
RMSE^2 = MSE), padded sequences included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from composer import Network
from composer.arrays import read_arrays
from composer.errors import DataError
from composer.training.metrics import finish, step_sums
from tests.conftest import ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"

PROBS = np.array(
    [
        [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]],
        [[0.3, 0.3, 0.4], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1]],
    ]
)
IDS = np.array([[0, 2, 2], [1, 0, 0]])
MASK = np.array([[1, 1, 0], [1, 1, 1]], float)  # one step left out


def _value(metric, outputs, targets, weights, softmax=True):
    return finish(metric, *step_sums(metric, outputs, targets, weights, softmax))


def test_class_metrics_by_hand():
    # kept steps: (0,0) hit; (0,1) miss, target 2nd; (1,0) miss, target tied 1st..2nd;
    # (1,1) hit; (1,2) miss, target 2nd
    assert _value("accuracy", PROBS, IDS, MASK) == pytest.approx(2 / 5)
    assert _value("top-2", PROBS, IDS, MASK) == pytest.approx(5 / 5)
    assert _value("top-1", PROBS, IDS, MASK) == pytest.approx(2 / 5)
    nll = -np.log([0.6, 0.3, 0.3, 0.5, 0.2])
    assert _value("perplexity", PROBS, IDS, MASK) == pytest.approx(math.exp(nll.mean()))
    assert _value("bits-per-char", PROBS, IDS, MASK) == pytest.approx(nll.mean() / math.log(2))
    one_hot = np.eye(3)[IDS]  # one-hot targets give the same as ids
    assert _value("accuracy", PROBS, one_hot, MASK) == pytest.approx(2 / 5)
    weighted = MASK * np.array([[2.0], [1.0]])  # a step's mask value is its weight
    assert _value("accuracy", PROBS, IDS, weighted) == pytest.approx((2 + 1) / (4 + 3))


def test_value_metrics_by_hand():
    out = np.array([[[1.0, 2.0], [0.0, 0.0]], [[3.0, -1.0], [2.0, 2.0]]])
    target = np.array([[[0.0, 2.0], [9.0, 9.0]], [[1.0, 1.0], [2.0, 1.0]]])
    mask = np.array([[1, 0], [1, 1]], float)
    errors = np.array([1.0, 0.0, 2.0, -2.0, 0.0, 1.0])  # the kept steps' features
    assert _value("mae", out, target, mask) == pytest.approx(np.abs(errors).mean())
    assert _value("rmse", out, target, mask) == pytest.approx(np.sqrt((errors**2).mean()))


def test_set_accuracy_by_hand():
    sig = np.array([[[0.9, 0.6, 0.1], [0.9, 0.4, 0.1], [0.2, 0.2, 0.2]]])
    multi = np.array([[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    ones = np.ones((1, 3))
    assert _value("set-accuracy", sig, multi, ones, softmax=False) == pytest.approx(2 / 3)
    soft = np.array([[[0.45, 0.4, 0.15], [0.2, 0.5, 0.3]]])  # the top 2 / the top 1
    want = np.array([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    assert _value("set-accuracy", soft, want, np.ones((1, 2))) == pytest.approx(1 / 2)


def test_metrics_agree_with_the_loss_on_padded_and_plain_data():
    """Reber is padded (lengths): perplexity must be exp of the validation loss, which
    covers the real steps only; the sine's RMSE squared is its MSE."""
    net = Network.from_file(SPECS / "reber.yaml")
    data = {k: v[:120] for k, v in read_arrays(DATA / "reber.npz").items()}
    result = net.train(net.init_params(seed=0), data, epochs=1, lr=0.01, loss="cross-entropy",
                       metrics=["perplexity", "bits-per-char", "accuracy"])  # fmt: skip
    for record in result.history:
        assert record.metrics["next.perplexity"] == pytest.approx(
            math.exp(record.val_loss), rel=1e-5
        )
        assert record.metrics["next.bits-per-char"] == pytest.approx(
            record.val_loss / math.log(2), rel=1e-5
        )
    sine = Network.from_file(SPECS / "sine.yaml")
    data = {k: v[:64] for k, v in read_arrays(DATA / "sine.npz").items()}
    figures = sine.evaluate(sine.init_params(seed=0), data, metrics=["rmse", "mae"])
    assert figures["o.rmse"] ** 2 == pytest.approx(figures["loss"], rel=1e-5)
    out = sine.run(sine.init_params(seed=0), {"x": data["x"]})["o"]
    assert figures["o.mae"] == pytest.approx(np.abs(out - data["o"]).mean(), rel=1e-5)


def test_accuracy_of_a_trained_model_by_hand():
    net = Network.from_file(SPECS / "running-sum.yaml")
    data = {k: v[:200] for k, v in read_arrays(DATA / "running-sum.npz").items()}
    params = net.init_params(seed=1)
    figures = net.evaluate(params, data, loss="cross-entropy", metrics=["accuracy"])
    out = net.run(params, {"x": data["x"]})["o"]
    assert figures["o.accuracy"] == pytest.approx((out.argmax(-1) == data["o"]).mean())


@pytest.mark.parametrize(
    ("metrics", "loss", "message"),
    [
        (["f1"], "cross-entropy", "unknown metric 'f1'; expected one of accuracy, top-K"),
        (["accuracy"], "mse", "metric 'accuracy' does not fit output `o` (mse loss"),
        (["mae"], "cross-entropy", "metric 'mae' does not fit output `o` (cross-entropy"),
        (["top-2"], "cross-entropy", "K must be below the output's 2 classes"),
        (["y:accuracy"], "cross-entropy", "metric 'y:accuracy': no output 'y'"),
    ],
)
def test_metrics_that_do_not_fit_are_refused_in_one_line(metrics, loss, message):
    net = Network.from_file(SPECS / "running-sum.yaml")
    data = {k: v[:8] for k, v in read_arrays(DATA / "running-sum.npz").items()}
    if loss == "mse":
        data["o"] = np.eye(2, dtype=np.float32)[data["o"]]
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("`", "`")):
        net.evaluate(net.init_params(), data, loss=loss, metrics=metrics)


def test_class_and_value_metrics_against_torch_on_random_arrays():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(6), size=(5, 7))
    ids = rng.integers(0, 6, (5, 7))
    mask = (rng.random((5, 7)) > 0.3).astype(float)
    p, t, w = torch.tensor(probs), torch.tensor(ids), torch.tensor(mask)
    for k in (1, 3):
        hit = (p.topk(k, dim=-1).indices == t[..., None]).any(-1).double()
        assert _value(f"top-{k}", probs, ids, mask) == pytest.approx(
            float((hit * w).sum() / w.sum()), rel=1e-12
        )
    nll = torch.nn.functional.nll_loss(p.log().reshape(-1, 6), t.reshape(-1), reduction="none")
    mean = float((nll * w.reshape(-1)).sum() / w.sum())
    assert _value("perplexity", probs, ids, mask) == pytest.approx(math.exp(mean), rel=1e-12)
    out, target = rng.normal(size=(5, 7, 2)), rng.normal(size=(5, 7, 2))
    weight = w[..., None].expand(5, 7, 2)
    diff = torch.tensor(out) - torch.tensor(target)
    mae = float((diff.abs() * weight).sum() / weight.sum())
    mse = float((diff**2 * weight).sum() / weight.sum())
    assert _value("mae", out, target, mask) == pytest.approx(mae, rel=1e-12)
    assert _value("rmse", out, target, mask) == pytest.approx(math.sqrt(mse), rel=1e-12)
