"""The `train` command's modelling workflow through the real app: held-out files, the
time split, stopping, and their one-line refusals."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from composer.arrays import read_arrays, write_arrays
from composer.cli import app
from tests.conftest import ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["train", *map(str, args)])


def _files(tmp_path, count: int = 96):
    data = read_arrays(DATA / "sine.npz")
    fit, held = tmp_path / "fit.npz", tmp_path / "held.npz"
    write_arrays(fit, {k: v[:64] for k, v in data.items()})
    write_arrays(held, {k: v[64:count] for k, v in data.items()})
    return fit, held


def test_validation_data_and_patience(tmp_path):
    fit, held = _files(tmp_path)
    out = tmp_path / "w.npz"
    args = (SPECS / "sine.yaml", "--data", fit, "--validation-data", held, "--lr", 0.05)
    result = invoke(*args, "--epochs", 60, "--batch-size", 16, "--patience", 2, "-o", out)
    assert result.exit_code == 0, result.output
    assert "stopped early at epoch" in result.output and out.exists()


def test_validation_data_is_refused_beside_a_fraction_and_checked(tmp_path):
    fit, held = _files(tmp_path)
    out = tmp_path / "w.npz"
    both = invoke(SPECS / "sine.yaml", "--data", fit, "--validation-data", held,
                  "--validation", 0.2, "-o", out)  # fmt: skip
    assert both.exit_code == 2 and "give it or --validation-data, not both" in both.output
    write_arrays(held, {"x": np.zeros((4, 29, 1), np.float32)})
    bad = invoke(SPECS / "sine.yaml", "--data", fit, "--validation-data", held, "-o", out)
    assert bad.exit_code == 4 and f"{held}: missing 'o'" in bad.output
    assert not out.exists()


def test_time_split_and_a_diverging_run_warn_in_one_line(tmp_path):
    fit, _ = _files(tmp_path)
    out = tmp_path / "w.npz"
    result = invoke(SPECS / "sine.yaml", "--data", fit, "--validation-split", "time",
                    "--optimizer", "sgd", "--lr", 1e39, "--epochs", 3, "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "diverged" in line]
    assert len(lines) == 1 and "keeping the best weights (epoch 0)" in lines[0]


def test_schedule_and_momentum_options_are_checked_before_reading(tmp_path):
    fit, _ = _files(tmp_path)
    out = tmp_path / "w.npz"
    sgd = ("--optimizer", "sgd", "--momentum", 0.5, "--nesterov")
    ok = invoke(SPECS / "sine.yaml", "--data", fit, "--epochs", 2, *sgd,
                "--schedule", "warmup:1,step:1:0.5", "-o", out)  # fmt: skip
    assert ok.exit_code == 0, ok.output
    for args, message in [
        (("--schedule", "cosine:x"), "MIN must be a number"),
        (("--momentum", 0.5), "is for --optimizer sgd, not adam"),
        (("--optimizer", "sgd", "--nesterov", "--momentum", 0), "needs a --momentum > 0"),
    ]:
        result = invoke(SPECS / "sine.yaml", "--data", fit, *args, "-o", tmp_path / "no.npz")
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "no.npz").exists()


def test_history_files_and_the_json_summary(tmp_path):
    import csv
    import json

    fit, _ = _files(tmp_path)
    out = tmp_path / "w.npz"
    args = (SPECS / "sine.yaml", "--data", fit, "--epochs", 3, "--lr", 0.01, "--metric", "rmse")
    result = invoke(*args, "--history", tmp_path / "h.csv", "--json", "-o", out)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds the JSON alone
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "o.rmse", "lr", "seconds",
                             "updates"]  # fmt: skip
    assert float(rows[-1]["val_loss"]) == summary["last"]["val_loss"]
    assert summary["start"] == "untrained" and summary["epochs_run"] == 3
    best = rows[summary["best_epoch"]]
    assert (
        float(best["val_loss"]) == summary["best_loss"] == min(float(r["val_loss"]) for r in rows)
    )
    # the same as JSON lines, from the same weights: "untrained" is not said of them
    again = invoke(*args, "--history", tmp_path / "h.jsonl", "--weights", out, "-o",
                   tmp_path / "w2.npz")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "at the start (--weights)" in again.output and "untrained" not in again.output
    lines = [json.loads(line) for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and set(lines[0]) == set(rows[0])


def test_a_history_file_is_checked_before_training(tmp_path):
    fit, _ = _files(tmp_path)
    bad = invoke(SPECS / "sine.yaml", "--data", fit, "--history", tmp_path / "h.txt",
                 "-o", tmp_path / "w.npz")  # fmt: skip
    assert bad.exit_code == 2 and "written as .csv or .jsonl" in bad.output
    (tmp_path / "h.csv").write_text("mine")
    kept = invoke(SPECS / "sine.yaml", "--data", fit, "--history", tmp_path / "h.csv",
                  "-o", tmp_path / "w.npz")  # fmt: skip
    assert kept.exit_code == 2 and "exists; pass --force" in kept.output
    assert (tmp_path / "h.csv").read_text() == "mine" and not (tmp_path / "w.npz").exists()


def test_the_bar_advances_with_every_minibatch():
    import io

    from rich.console import Console

    from composer.cli.train_progress import TrainBar
    from composer.training.loop import Epoch

    bar = TrainBar(Console(file=io.StringIO()), epochs=3)
    bar.epoch(Epoch(0, 1.0, None, 0.0, 0, batches=4))
    task = bar.progress.tasks[0]
    assert task.total == 12 and task.completed == 0
    bar.step(1, 0.9)
    bar.step(2, 0.8)
    assert task.completed == 2 and task.fields["epoch"] == 1
    bar.close()


def test_unnormalised_targets_are_refused_or_warned_in_one_line(tmp_path):
    import numpy as np

    data = dict(read_arrays(DATA / "running-sum.npz"))
    ids = data.pop("o")[:64]
    multi = np.eye(2, dtype=np.float32)[ids]
    multi[0, 0] = [1.0, 1.0]
    write_arrays(tmp_path / "d.npz", {"x": data["x"][:64], "o": multi})
    base = (SPECS / "running-sum.yaml", "--data", tmp_path / "d.npz", "--loss", "cross-entropy",
            "--epochs", 1, "-o", tmp_path / "w.npz")  # fmt: skip
    refused = invoke(*base)
    assert refused.exit_code == 4 and "cross-entropy targets must sum to 1" in refused.output
    assert not (tmp_path / "w.npz").exists()
    warned = invoke(*base, "--allow-unnormalised-targets")
    assert warned.exit_code == 0, warned.output
    lines = [line for line in warned.output.splitlines() if "must sum to 1" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ")
