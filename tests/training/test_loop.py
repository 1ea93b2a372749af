"""Training: the examples learn, data is checked, and runs are seeded and interruptible."""

from __future__ import annotations

import numpy as np
import pytest

import composer.training.loop as train_module
from composer.arrays import read_arrays
from composer.engine.generation import find_feedback, generate
from composer.engine.stepper import Stepper
from composer.errors import DataError
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.spec.reader import load_spec
from composer.training.example_data import SYMBOLS, accepts, reber_complete
from composer.training.loop import train
from tests.conftest import ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"


def _fit(name: str, loss: str, epochs: int, lr: float = 0.01, **options):
    spec = load_spec(SPECS / f"{name}.yaml")
    graph = build(spec)
    data = read_arrays(DATA / f"{name}.npz")
    result = train(
        spec,
        init_params(graph, 0),
        data,
        epochs=epochs,
        batch_size=32,
        lr=lr,
        optimizer="adam",
        loss=loss,
        seed=0,
        **options,
    )
    return graph, result


@pytest.mark.parametrize(
    ("name", "loss", "epochs", "ratio"),
    [("sine", "mse", 8, 0.2), ("running-sum", "cross-entropy", 10, 0.5)],
)
def test_examples_learn(name, loss, epochs, ratio):
    _, result = _fit(name, loss, epochs)
    untrained = result.history[0].val_loss
    assert result.best_loss < ratio * untrained
    assert result.best_epoch > 0 and not result.interrupted
    assert len(result.history) == epochs + 1 and result.steps_per_second > 0


def test_reber_learns_and_writes_grammatical_strings():
    graph, result = _fit("reber", "cross-entropy", 10)
    assert result.best_loss < 0.3 * result.history[0].val_loss
    stepper, feedback = Stepper(graph, result.params), find_feedback(graph)
    strings = []
    for tokens in generate(stepper, feedback, [0], 39, count=200, seed=0):  # 0 is B
        string = "B"
        for token in tokens:
            string += "" if reber_complete(string) else SYMBOLS[token]
        strings.append(string)
    assert np.mean([accepts(s) for s in strings]) > 0.7


def test_training_is_seeded():
    first, second = (_fit("running-sum", "cross-entropy", 2)[1] for _ in range(2))
    # exact: the same seeded run twice, the same operations on the same shapes
    assert [e.val_loss for e in first.history] == [e.val_loss for e in second.history]
    assert all(np.array_equal(first.params[k], second.params[k]) for k in first.params)


def test_clipping_bptt_sgd_and_no_validation_run():
    spec = load_spec(SPECS / "sine.yaml")
    data = read_arrays(DATA / "sine.npz")
    result = train(
        spec,
        init_params(build(spec), 0),
        data,
        epochs=3,
        batch_size=64,
        lr=0.05,
        optimizer="sgd",
        loss="mse",
        seed=0,
        bptt=5,
        clip=1.0,
        weight_decay=1e-4,
        validation=0.0,
    )
    assert result.history[0].val_loss is None
    assert result.best_loss < result.history[0].train_loss


def test_ctrl_c_keeps_the_best_weights_so_far(monkeypatch):
    calls = {"n": 0}
    real = train_module.grad

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:  # in the third epoch: sine has 15 minibatches per epoch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "grad", interrupted)
    _, result = _fit("sine", "mse", 10)
    assert result.interrupted and len(result.history) == 3
    assert result.best_epoch == 2


def test_ctrl_c_before_the_first_update_returns_the_start(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "evaluate", interrupted)
    spec = load_spec(SPECS / "sine.yaml")
    start = init_params(build(spec), 3)
    result = train(spec, start, read_arrays(DATA / "sine.npz"), epochs=2)
    assert result.interrupted and result.best_epoch == 0
    assert all(np.array_equal(result.params[k], start[k]) for k in start)  # exact: untouched


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("o"), r"d\.npz: missing 'o'"),
        (lambda d: d.update(extra=d["x"]), "unexpected 'extra'"),
        (lambda d: d.update(x=d["x"][:, :, :0]), r"d\.npz: input 'x': expected shape"),
        (lambda d: d.update(o=d["o"][:10]), r"d\.npz: key 'o': expected \(B, T_out, size\)"),
        (lambda d: d.update({"o.mask": np.ones((512, 3))}), r"key 'o\.mask': expected a \(B"),
    ],
)
def test_data_errors_name_the_file_key_and_shapes(change, message):
    spec = load_spec(SPECS / "sine.yaml")
    data = dict(read_arrays(DATA / "sine.npz"))
    change(data)
    with pytest.raises(DataError, match=message):
        train(spec, init_params(build(spec)), data, epochs=1, where="d.npz")
