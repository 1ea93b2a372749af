"""The loss curve: an SVG drawn from a training run's history."""

from __future__ import annotations

from composer.arrays import read_arrays
from composer.draw.curve import loss_curve_svg
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.spec.reader import load_spec
from composer.training.loop import train
from tests.conftest import ROOT


def _sine_history(epochs: int):
    """The history of training the sine example, seeded."""
    spec = load_spec(ROOT / "specs" / "sine.yaml")
    data = read_arrays(ROOT / "specs" / "data" / "sine.npz")
    params = init_params(build(spec), 0)
    options = {"batch_size": 32, "lr": 0.01, "optimizer": "adam", "loss": "mse", "seed": 0}
    return train(spec, params, data, epochs=epochs, **options).history


def test_loss_curve_is_an_svg_polyline():
    history = _sine_history(2)
    svg = loss_curve_svg(history, "a <b> & c")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert "a &lt;b&gt; &amp; c" in svg and "epoch</text>" in svg


def test_the_best_point_is_the_kept_weights_epoch():
    from types import SimpleNamespace as Epoch

    from composer.draw.curve_png import best_point

    losses = [(0, 3.0, 2.0), (1, 1.0, 1.5), (2, 0.5, 1.5), (3, 0.2, 1.8)]
    history = [Epoch(epoch=e, train_loss=t, val_loss=v) for e, t, v in losses]
    assert best_point(history) == (1, 1.5)
    no_val = [Epoch(epoch=e.epoch, train_loss=e.train_loss, val_loss=None) for e in history]
    assert best_point(no_val) == (3, 0.2)
