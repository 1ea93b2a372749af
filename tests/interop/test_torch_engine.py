"""The PyTorch engine: training gives the NumPy engine's figures on the three examples,
`run` its outputs, `torchrun` with 2 CPU processes the 1-process weights, and `--device`
is checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import read_arrays, write_arrays
from composer.cli import app
from composer.network import Network
from tests.conftest import ROOT

torch = pytest.importorskip("torch")

from composer.interop.torch_engine import TorchEngine, run_torch  # noqa: E402

pytestmark = pytest.mark.torch
runner = CliRunner()
SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"

#: the training examples of docs/training.md, cut short: (spec, data, options)
EXAMPLES = [
    ("sine", dict(lr=0.01), 48),
    ("running-sum", dict(loss="cross-entropy", lr=0.003, bptt=7, clip=1.0), 96),
    ("reber", dict(loss="cross-entropy", lr=0.01, optimizer="sgd", weight_decay=1e-4), 48),
]


def _data(name: str, items: int) -> dict:
    data = read_arrays(DATA / f"{name}.npz")
    return {key: value[:items] for key, value in data.items()}


@pytest.mark.parametrize(("name", "options", "items"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_training_gives_the_numpy_engines_figures(name, options, items):
    net = Network.from_file(SPECS / f"{name}.yaml")
    data = _data(name, items)
    start = net.init_params(seed=0, dtype="float64")
    common = dict(epochs=2, batch_size=16, dtype="float64", validation=0.25, seed=3, **options)
    ours = net.train(start, data, **common)
    theirs = net.train(start, data, engine=TorchEngine(net.graph, "float64"), **common)
    assert [e.updates for e in theirs.history] == [e.updates for e in ours.history]
    for a, b in zip(ours.history, theirs.history):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-9)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-9)
    assert theirs.best_epoch == ours.best_epoch
    for key, value in ours.params.items():
        np.testing.assert_allclose(theirs.params[key], value, rtol=1e-7, atol=1e-9, err_msg=key)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_run_on_the_torch_engine_gives_the_same_outputs(tmp_path):
    spec = SPECS / "bidirectional-tagger.yaml"
    net = Network.from_file(spec)
    x = np.random.default_rng(0).normal(size=(3, 6, net.graph.nodes["words"]["size"]))
    write_arrays(tmp_path / "in.npz", {"words": x, "words.lengths": np.array([6, 2, 4])})
    outs = []
    for engine in ("numpy", "torch"):
        out = tmp_path / f"{engine}.npz"
        result = invoke("run", spec, "-i", tmp_path / "in.npz", "-o", out, "--engine", engine,
                        "--dtype", "float64")  # fmt: skip
        assert result.exit_code == 0, result.output
        outs.append(dict(np.load(out)))
    assert sorted(outs[0]) == sorted(outs[1])
    for key, value in outs[0].items():
        np.testing.assert_allclose(outs[1][key], value, atol=1e-10, rtol=0, err_msg=key)


def test_run_torch_takes_one_sequence_as_run_does():
    net = Network.from_file(SPECS / "sine.yaml")
    params = net.init_params(seed=1, dtype="float64")
    x = np.random.default_rng(0).normal(size=(net.graph.graph["steps"], 1))
    got = run_torch(net.graph, params, x, dtype="float64")
    for key, value in net.run(params, x, dtype="float64").items():
        assert got[key].shape == value.shape
        np.testing.assert_allclose(got[key], value, atol=1e-10)


def test_device_is_checked(tmp_path):
    spec = SPECS / "gru.yaml"
    np.save(tmp_path / "x.npy", np.zeros((2, 5, Network.from_file(spec).graph.nodes["x"]["size"])))
    result = invoke("run", spec, "-i", tmp_path / "x.npy", "--device", "cpu")
    assert result.exit_code == 2 and "--engine torch" in result.output
    result = invoke("run", spec, "-i", tmp_path / "x.npy", "--engine", "torch", "--device", "tpu")
    assert result.exit_code == 2 and "cpu, cuda or cuda:N" in result.output
    if not torch.cuda.is_available():
        result = invoke("run", spec, "-i", tmp_path / "x.npy", "--engine", "torch",
                        "--device", "cuda")  # fmt: skip
        assert result.exit_code == 4 and "no CUDA GPU" in result.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_training_on_a_gpu_gives_the_cpu_figures():
    net = Network.from_file(SPECS / "sine.yaml")
    data = _data("sine", 32)
    start = net.init_params(seed=0, dtype="float64")
    common = dict(epochs=1, batch_size=16, dtype="float64")
    cpu = net.train(start, data, engine=TorchEngine(net.graph, "float64"), **common)
    gpu = net.train(start, data, engine=TorchEngine(net.graph, "float64", "cuda"), **common)
    for key, value in cpu.params.items():
        np.testing.assert_allclose(gpu.params[key], value, rtol=1e-7, atol=1e-9)


def _torchrun() -> Path:
    return Path(sys.executable).parent / "torchrun"


@pytest.mark.skipif(not _torchrun().exists(), reason="torchrun is not next to this Python")
def test_torchrun_with_two_processes_gives_the_one_process_weights(tmp_path):
    """Data-parallel on 2 CPU processes (gloo): every rank takes half of each minibatch;
    the result is the single-process run's, and only rank 0 reports and writes."""
    data = _data("running-sum", 80)
    write_arrays(tmp_path / "d.npz", data)
    args = ["-m", "composer", "train", SPECS / "running-sum.yaml", "--data", "d.npz",
            "--loss", "cross-entropy", "--epochs", "2", "--batch-size", "16", "--lr", "0.01",
            "--engine", "torch", "--dtype", "float64", "-o", "two.npz", "--metric", "accuracy",
            "--history", "h.csv", "--checkpoint", "ck"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    two = subprocess.run(
        [str(_torchrun()), "--standalone", "--nproc-per-node", "2", *map(str, args)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert two.stderr.count("wrote two.npz") == 1  # rank 0 alone
    # the same command in one process: its defaults (seed 0, adam, validation 0.1)
    net = Network.from_file(SPECS / "running-sum.yaml")
    start = net.init_params(seed=0, dtype="float64")
    options = dict(epochs=2, batch_size=16, lr=0.01, loss="cross-entropy", dtype="float64")
    single = net.train(start, data, engine=TorchEngine(net.graph, "float64"), metrics=["accuracy"],
                       **options)  # fmt: skip
    one = single.params
    # the history, written once by rank 0, holds the figures of the whole minibatches
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch,train_loss,val_loss,o.accuracy,lr")
    for row, record in zip(rows[1:], single.history):
        _, train_loss, val_loss, accuracy, *_ = map(float, row.split(","))
        assert train_loss == pytest.approx(record.train_loss, abs=1e-9)
        assert val_loss == pytest.approx(record.val_loss, abs=1e-9)
        assert accuracy == record.metrics["o.accuracy"]
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["checkpoint.npz"]
    got = np.load(tmp_path / "two.npz")
    assert sorted(got) == sorted(one)
    for key, value in one.items():
        np.testing.assert_allclose(got[key], value, atol=1e-6, rtol=0, err_msg=key)
    assert np.abs(one["rnn.Wx"] - start["rnn.Wx"]).max() > 1e-3  # it did train
