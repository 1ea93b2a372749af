"""`rnn-composer evaluate` and `train --metric` through the real app: figures on stdout
(table or JSON), the same as `Network.evaluate`, refusals in one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from composer import Network
from composer.arrays import read_arrays, write_arrays
from composer.cli import app
from tests.conftest import NEEDS_TORCH, ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"
runner = CliRunner()


@pytest.fixture
def trained(tmp_path):
    net = Network.from_file(SPECS / "running-sum.yaml")
    data = {k: v[:96] for k, v in read_arrays(DATA / "running-sum.npz").items()}
    params = net.init_params(seed=2)
    write_arrays(tmp_path / "w.npz", params)
    write_arrays(tmp_path / "d.npz", data)
    return net, params, data, tmp_path


@pytest.mark.parametrize("engine", ["numpy", pytest.param("torch", marks=NEEDS_TORCH)])
def test_evaluate_prints_the_loss_and_metrics_as_json(trained, engine):
    net, params, data, tmp = trained
    args = ["evaluate", SPECS / "running-sum.yaml", "--weights", tmp / "w.npz", "--data",
            tmp / "d.npz", "--loss", "cross-entropy", "--metric", "accuracy", "--metric",
            "perplexity", "--json", "--engine", engine]  # fmt: skip
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    expected = net.evaluate(params, data, loss="cross-entropy", metrics=["accuracy", "perplexity"])
    assert figures.keys() == expected.keys()
    for key, value in expected.items():
        assert figures[key] == pytest.approx(value, rel=1e-6)


def test_evaluate_table_and_refusals(trained):
    _, _, _, tmp = trained
    base = ["evaluate", SPECS / "running-sum.yaml", "--weights", tmp / "w.npz", "--data",
            tmp / "d.npz", "--loss", "cross-entropy"]  # fmt: skip
    table = runner.invoke(app, list(map(str, [*base, "--metric", "top-1"])))
    assert table.exit_code == 0 and table.stdout.splitlines()[1].startswith("o.top-1  ")
    for extra, message in [
        (["--metric", "f1"], "unknown metric 'f1'"),
        (["--metric", "rmse"], "metric 'rmse' does not fit output `o`"),
    ]:
        result = runner.invoke(app, list(map(str, [*base, *extra])))
        assert result.exit_code == 4 and message in result.output, result.output


def test_train_shows_metrics_per_epoch_and_monitors_one(tmp_path):
    args = ["train", SPECS / "running-sum.yaml", "--data", DATA / "running-sum.npz", "--loss",
            "cross-entropy", "--epochs", 2, "--metric", "accuracy", "--monitor", "o.accuracy",
            "-o", tmp_path / "w.npz"]  # fmt: skip
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("epoch ")]
    assert [row.split()[1] for row in rows if "o.accuracy" in row] == ["0", "1", "2"]
