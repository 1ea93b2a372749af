"""Checkpoints: a run interrupted (Ctrl-C or SIGTERM) and resumed gives the weights of
the run that never stopped, bit for bit, on the NumPy engine and the torch engine;
checkpoints of another network or other options are refused."""

from __future__ import annotations

import numpy as np
import pytest

import composer.training.loop as train_module
from composer import Network
from composer.errors import DataError
from composer.signals import Terminated
from composer.training.checkpoint import CHECKPOINT, load

SPEC = {
    "inputs": [{"name": "x", "size": 2}],
    "layers": [
        {"name": "rnn", "kind": "elman", "input": "x", "state_size": 6, "dropout": 0.2,
         "recurrent_dropout": 0.1, "output": {"size": 1}},
    ],
    "outputs": [{"name": "o", "from": "rnn"}],
    "alignment": "many-to-one",
}  # fmt: skip
OPTIONS = dict(epochs=4, batch_size=8, lr=0.01, schedule="plateau:0:0.5", patience=10,
               metrics=["rmse"], dtype="float64", validation=0.25)  # fmt: skip


def _setup(engine_name: str):
    net = Network.from_spec(SPEC)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (40, 5, 2))
    data = {"x": x, "o": x.sum(axis=(1, 2))[:, None, None] / 4}
    engine = None
    if engine_name == "torch":
        from composer.interop.torch_engine import TorchEngine

        engine = TorchEngine(net.graph, "float64")
    return net, net.init_params(seed=0, dtype="float64"), data, engine


def _stop_at(monkeypatch, engine, update: int, error):
    """Make the `update`-th gradient call raise `error`, as a signal would."""
    calls = {"n": 0}

    def wrap(real):
        def stopped(*args, **kwargs):
            if kwargs.get("backward", args[7] if len(args) > 7 else True):
                calls["n"] += 1
                if calls["n"] == update:
                    raise error
            return real(*args, **kwargs)

        return stopped

    if engine is None:
        monkeypatch.setattr(train_module, "grad", wrap(train_module.grad))
    else:
        real = type(engine).__call__
        monkeypatch.setattr(
            type(engine),
            "__call__",
            lambda self, *a, **k: wrap(lambda *a2, **k2: real(self, *a2, **k2))(*a, **k),
        )


@pytest.mark.parametrize("engine_name", ["numpy", "torch"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, Terminated(15)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_and_resumed_gives_the_uninterrupted_weights(
    engine_name, error, tmp_path, monkeypatch
):
    if engine_name == "torch":
        pytest.importorskip("torch")
    net, start, data, engine = _setup(engine_name)
    whole = net.train(start, data, engine=engine, **OPTIONS)
    folder = tmp_path / "ck"
    with monkeypatch.context() as patch:
        _stop_at(patch, engine, 10, error)  # in epoch 3: 4 updates per epoch
        if isinstance(error, Terminated):
            with pytest.raises(Terminated):
                net.train(start, data, engine=engine, checkpoint=folder, **OPTIONS)
        else:
            stopped = net.train(start, data, engine=engine, checkpoint=folder, **OPTIONS)
            assert stopped.interrupted and len(stopped.history) == 3
    assert load(folder)[0]["epoch"] == 2
    resumed = net.train(start, data, engine=engine, checkpoint=folder, resume=folder, **OPTIONS)
    assert resumed.best_epoch == whole.best_epoch
    for key, value in whole.params.items():
        np.testing.assert_array_equal(resumed.params[key], value, err_msg=key)
    assert [e.val_loss for e in resumed.history] == [e.val_loss for e in whole.history]
    assert [e.lr for e in resumed.history] == [e.lr for e in whole.history]
    assert [e.metrics for e in resumed.history] == [e.metrics for e in whole.history]
    _, arrays = load(folder)  # the last weights too, not only the best
    final = net.train(start, data, engine=engine, checkpoint=tmp_path / "w", **OPTIONS)
    _, expected = load(tmp_path / "w")
    for key, value in expected["weights"].items():
        np.testing.assert_array_equal(arrays["weights"][key], value, err_msg=key)
    assert final.history[-1].train_loss == resumed.history[-1].train_loss


def test_checkpoints_every_n_epochs_and_refusals(tmp_path):
    net, start, data, _ = _setup("numpy")
    folder = tmp_path / "ck"
    net.train(start, data, checkpoint=folder, checkpoint_every=3, **dict(OPTIONS, epochs=4))
    assert load(folder)[0]["epoch"] == 4 and (folder / CHECKPOINT).is_file()
    assert [p.name for p in folder.iterdir()] == [CHECKPOINT]  # no temporary file left
    with pytest.raises(DataError, match="made with batch_size = 8, this run gives 4"):
        net.train(start, data, resume=folder, **dict(OPTIONS, batch_size=4))
    other = Network.from_spec({**SPEC, "layers": [{**SPEC["layers"][0], "state_size": 5}]})
    with pytest.raises(DataError, match="belongs to another network"):
        other.train(other.init_params(dtype="float64"), data, resume=folder, **OPTIONS)
    with pytest.raises(DataError, match="holds no checkpoint"):
        net.train(start, data, resume=tmp_path / "none", **OPTIONS)
    more = net.train(start, data, resume=folder, **dict(OPTIONS, epochs=6))  # more epochs
    assert [e.epoch for e in more.history] == list(range(7))
