"""Held-out data and stopping: a validation file, the time-ordered split, patience,
divergence and callbacks that stop a run."""

from __future__ import annotations

import math

import numpy as np
import pytest

import composer.training.loop as train_module
from composer.arrays import read_arrays
from composer.errors import DataError
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.spec.reader import load_spec
from composer.training.backprop import evaluate
from composer.training.loop import Epoch, plan_for, split_data, train
from composer.training.stopping import DIVERGED, Monitor, stopped_warning
from tests.conftest import ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"


def _sine(count: int = 96):
    spec = load_spec(SPECS / "sine.yaml")
    data = {k: v[:count] for k, v in read_arrays(DATA / "sine.npz").items()}
    return spec, init_params(build(spec), 0), data


def _part(data, index):
    return {k: v[index] for k, v in data.items()}


def test_the_time_split_holds_out_the_last_sequences_in_file_order():
    fit, held = split_data(10, 0.3, seed=5, split="time")
    assert fit.tolist() == list(range(7)) and held.tolist() == [7, 8, 9]
    fit, held = split_data(10, 0.3, seed=5)  # random: seeded, not the tail
    assert sorted([*fit, *held]) == list(range(10)) and held.tolist() != [7, 8, 9]
    with pytest.raises(DataError, match="validation split 'future'"):
        split_data(10, 0.3, seed=5, split="future")


def test_a_validation_file_is_measured_and_the_whole_data_file_trains():
    spec, start, data = _sine()
    fit, held = _part(data, slice(0, 64)), _part(data, slice(64, 96))
    options = dict(epochs=2, batch_size=16, lr=0.01, seed=0)
    given = train(spec, start, fit, validation=held, **options)
    # the untrained validation loss is the loss of the start weights on the held file
    plan = plan_for(spec, held)
    expected = evaluate(plan, start, {"x": held["x"]}, {"o": held["o"]}, dtype="float32")
    assert given.history[0].val_loss == pytest.approx(expected, rel=1e-6)
    # the time split of the two files joined gives the same run, loss for loss
    split = train(spec, start, data, validation=1 / 3, split="time", **options)
    assert [e.val_loss for e in split.history] == [e.val_loss for e in given.history]
    assert [e.train_loss for e in split.history] == [e.train_loss for e in given.history]
    for key, value in given.params.items():
        np.testing.assert_array_equal(split.params[key], value)


def test_a_validation_file_is_checked_and_named():
    spec, start, data = _sine()
    held = {"x": data["x"][:8]}  # no targets
    with pytest.raises(DataError, match=r"^held\.npz: missing 'o'"):
        train(spec, start, data, validation=held, validation_where="held.npz", epochs=1)


def test_patience_stops_the_run_and_keeps_the_best_weights():
    spec, start, data = _sine()
    result = train(spec, start, data, epochs=60, lr=0.05, batch_size=16, patience=2)
    assert result.stopped == "early"
    losses = [e.val_loss for e in result.history]
    assert len(losses) < 61 and result.best_epoch == int(np.argmin(losses))
    assert len(losses) - 1 == result.best_epoch + 2  # two epochs without improvement
    assert "stopped early at epoch" in stopped_warning(result)


def test_min_delta_is_what_an_improvement_must_beat():
    records = [Epoch(e, 0.0, v, 0.0, e) for e, v in enumerate([1.0, 0.97, 0.95, 0.5])]
    loose, strict = Monitor(None, 2, 0.0), Monitor(None, 2, 0.06)
    assert [loose.improved(r) for r in records] == [True, True, True, True]
    assert [strict.improved(r) for r in records[:3]] == [True, False, False]
    assert strict.exhausted() and strict.best == 1.0
    accuracy = Monitor("o.accuracy", 1)  # higher is better
    rows = [Epoch(e, 0.0, None, 0.0, e, metrics={"o.accuracy": a}) for e, a in [(0, 0.5), (1, 0.7)]]
    assert [accuracy.improved(r) for r in rows] == [True, True]
    with pytest.raises(DataError, match="monitor 'o.mae': expected one of loss, val_loss, "):
        Monitor("o.mae").improved(rows[0])


def test_a_loss_far_above_the_untrained_one_stops_the_run(monkeypatch):
    real = train_module.grad
    calls = {"n": 0}

    def exploding(*args, **kwargs):  # from the third update on, the loss is huge
        calls["n"] += 1
        value, grads = real(*args, **kwargs)
        return (value * DIVERGED * 10 if calls["n"] > 8 else value), grads

    monkeypatch.setattr(train_module, "grad", exploding)
    spec, start, data = _sine()
    result = train(spec, start, data, epochs=5, batch_size=16, lr=0.01)
    assert result.stopped == "diverged" and result.diverged
    assert len(result.history) == 3 and result.best_epoch == 1  # epoch 2 is left out
    line = stopped_warning(result)
    assert "training loss rose to" in line and "keeping the best weights (epoch 1)" in line


def test_a_nan_loss_stops_the_run_with_the_best_weights():
    spec, start, data = _sine()
    result = train(spec, start, data, epochs=3, optimizer="sgd", lr=1e39)
    assert result.stopped == "diverged" and result.best_epoch == 0
    assert "NaN or infinite" in stopped_warning(result)
    assert all(np.array_equal(result.params[k], start[k]) for k in start)


def test_a_callback_stops_the_run_by_returning_a_value():
    spec, start, data = _sine()
    seen = []

    def enough(record):
        seen.append(record.epoch)
        return record.epoch == 2 or None

    result = train(spec, start, data, epochs=10, callbacks=[enough, lambda r: False])
    assert result.stopped == "callback" and seen == [0, 1, 2]
    assert len(result.history) == 3 and math.isfinite(result.best_loss)


def test_a_monitor_the_run_will_not_have_is_refused_before_training():
    spec, start, data = _sine(32)
    calls = []
    with pytest.raises(DataError, match=r"monitor 'o.accuracy': expected one of loss, train_loss, "
                       r"val_loss, o.rmse$"):  # fmt: skip
        train(spec, start, data, monitor="o.accuracy", metrics=["rmse"], on_epoch=calls.append)
    with pytest.raises(DataError, match="monitor val_loss: there is no validation set"):
        train(spec, start, data, monitor="val_loss", validation=0.0, on_epoch=calls.append)
    assert calls == []  # not even the untrained epoch was measured
    result = train(spec, start, data, monitor="o.rmse", metrics=["rmse"], epochs=2)
    rmse = [e.metrics["o.rmse"] for e in result.history]
    assert result.best_epoch == int(np.argmin(rmse))
