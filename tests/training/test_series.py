"""`data series`: windows and horizons by hand, the time split without leakage, the
normalisation from the training stretch, CSV and .npy columns, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import read_arrays
from composer.cli import app
from composer.errors import DataError
from composer.training.series import parse_split, read_series, series_data, windows

runner = CliRunner()


def test_windows_and_strides_by_hand():
    x, y = windows(np.arange(10.0), window=3, horizon=2, stride=3)
    assert x[:, :, 0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert y[:, 0].tolist() == [[3, 4], [6, 7]]
    assert windows(np.arange(5.0), 3, 2)[0].shape == (1, 3, 1)
    with pytest.raises(DataError, match="has 4 values, fewer than a window of 3 and a horizon"):
        windows(np.arange(4.0), 3, 2)


def test_the_time_split_keeps_the_held_out_targets_after_the_cut():
    values = np.arange(100.0) ** 0.5
    fit, held, stats = series_data(values, window=5, horizon=2, split=0.8)
    assert stats["split_at"] == 80
    assert stats["mean"] == pytest.approx(values[:80].mean())  # the training stretch only
    assert stats["std"] == pytest.approx(values[:80].std())
    back = lambda z: z * stats["std"] + stats["mean"]  # noqa: E731
    assert back(fit["y"]).max() == pytest.approx(values[79])  # training targets before the cut
    assert back(held["y"]).min() == pytest.approx(values[80])  # held-out targets after it
    assert back(held["x"][0, :, 0]).tolist() == pytest.approx(values[75:80].tolist())
    assert len(fit["x"]) == 80 - 7 + 1 and len(held["x"]) == 20 - 2 + 1


def test_csv_and_npy_columns(tmp_path):
    (tmp_path / "s.csv").write_text("day,level\n0,1.5\n1,2.5\n2,-1\n")
    assert read_series(tmp_path / "s.csv", "level").tolist() == [1.5, 2.5, -1.0]
    assert read_series(tmp_path / "s.csv", "0").tolist() == [0.0, 1.0, 2.0]
    (tmp_path / "n.csv").write_text("1,2\n3,4\n")  # no header: the first row is data
    assert read_series(tmp_path / "n.csv", "1").tolist() == [2.0, 4.0]
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(3, 2))
    assert read_series(tmp_path / "a.npy", "1").tolist() == [1.0, 3.0, 5.0]
    with pytest.raises(DataError, match=r"no column 'sun'; the columns are day, level"):
        read_series(tmp_path / "s.csv", "sun")
    (tmp_path / "gap.csv").write_text("v\n1\n\n2\nn/a\n")
    with pytest.raises(DataError, match=r"gap\.csv: line 5, column 0: 'n/a' is not a finite"):
        read_series(tmp_path / "gap.csv", "v")
    with pytest.raises(DataError, match="2 columns; say which with --column"):
        read_series(tmp_path / "a.npy", None)
    with pytest.raises(DataError, match="--split: expected time:F"):
        parse_split("random:0.8")


def test_the_command_writes_the_data_the_statistics_and_nothing_on_error(tmp_path):
    rows = "".join(f"{i},{np.sin(i / 5):.6f}\n" for i in range(60))
    (tmp_path / "s.csv").write_text("t,v\n" + rows)
    out = tmp_path / "s.npz"
    args = ["data", "series", str(tmp_path / "s.csv"), "--column", "v", "--window", "8",
            "--horizon", "2", "--split", "time:0.75", "-o", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    fit, held = read_arrays(out), read_arrays(tmp_path / "s.val.npz")
    assert fit["x"].shape == (45 - 10 + 1, 8, 1) and held["y"].shape == (15 - 2 + 1, 1, 2)
    stats = json.loads((tmp_path / "s.norm.json").read_text())
    assert stats["split_at"] == 45 and stats["window"] == 8
    assert "last-value baseline MSE" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    bad = runner.invoke(app, [*args[:-1], str(tmp_path / "t.npz"), "--window", "100"])
    assert bad.exit_code == 4 and "fewer than a window of 100" in bad.output
    assert not any(p.name.startswith("t.") for p in tmp_path.iterdir())
