"""The `train` command of the real app, through Typer's CliRunner: it writes the best weights
(and a loss curve) the way the docs say, and turns errors into one line and an exit code."""

from __future__ import annotations

import re
import shlex
import struct
import sys

import pytest
from typer.testing import CliRunner

import composer.training.loop as train_module
from composer.cli import app
from composer.graph.folded import build
from composer.graph.weights import load_params
from composer.spec.reader import load_spec
from tests.conftest import ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["train", *map(str, args)])


def test_command_writes_best_weights_and_curve(tmp_path):
    out, curve = tmp_path / "w.npz", tmp_path / "c.svg"
    args = (SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--epochs", 2, "--lr", 0.01)
    result = invoke(*args, "--output", out, "--curve", curve)
    assert result.exit_code == 0, result.output
    assert "untrained, best" in result.output and f"wrote {out}" in result.output
    load_params(out, build(load_spec(SPECS / "sine.yaml")))
    assert curve.read_text().startswith("<svg")
    again = invoke(*args, "--output", out)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    assert invoke(*args, "--output", out, "--force", "--weights", out).exit_code == 0


@pytest.mark.parametrize("name", ["rs.pdf", "rs"])
def test_a_curve_that_is_not_svg_or_png_is_refused_before_training(tmp_path, name):
    args = (SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--epochs", 1)
    result = invoke(*args, "--output", tmp_path / "w.npz", "--curve", tmp_path / name)
    assert result.exit_code == 2 and "give a file ending in .svg or .png" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_png_curve_without_matplotlib_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    args = (SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--epochs", 1)
    result = invoke(*args, "--output", tmp_path / "w.npz", "--curve", tmp_path / "c.png")
    assert result.exit_code == 2, result.output
    assert "drawn by Matplotlib, which is not installed" in result.output
    assert "rnn-composer[plot]" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_png_curve_marks_the_best_epoch(tmp_path):
    pytest.importorskip("matplotlib", reason="the `plot` extra draws PNG curves")
    out, curve = tmp_path / "w.npz", tmp_path / "c.png"
    args = (SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--epochs", 3, "--lr", 0.01)
    result = invoke(*args, "--output", out, "--curve", curve)
    assert result.exit_code == 0, result.output
    data = curve.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (960, 600)  # 6.4 x 4 inches at 150 dpi


def test_command_exits_130_after_writing_on_ctrl_c(tmp_path, monkeypatch):
    real = train_module.grad
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "grad", interrupted)
    out = tmp_path / "w.npz"
    result = invoke(SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--output", out)
    assert result.exit_code == 130 and "interrupted" in result.output and out.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("sine.yaml", "reber.npz"), 4, "missing 'x', 'o'"),
        (("sine.yaml", "sine.npz", "--loss", "cross-entropy"), 3, "needs a softmax readout"),
        (("reber.yaml", "reber.npz", "--loss", "mse"), 4, "expected (B, T_out, size)"),
    ],
)
def test_command_errors_are_one_line_with_exit_codes(args, code, message, tmp_path):
    spec, data, *rest = args
    result = invoke(SPECS / spec, "--data", DATA / data, "--output", tmp_path / "w.npz", *rest)
    assert result.exit_code == code, result.output
    assert message in result.output


def _documented_commands() -> list[str]:
    text = (ROOT / "docs" / "training.md").read_text()
    return re.findall(r"^\$ (rnn-composer train .+)$", text, re.M)


def test_docs_have_commands():
    assert len(_documented_commands()) >= 3


@pytest.mark.parametrize("command", _documented_commands())
def test_documented_commands_run(command, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)[2:]  # after `rnn-composer train`
    for i, arg in enumerate(args[:-1]):  # files the command writes go to tmp_path
        if arg in ("--history", "--checkpoint", "--resume"):
            args[i + 1] = str(tmp_path / args[i + 1])
    if "--resume" in args:  # the checkpoint it goes on from: the same run, not resumed
        at = args.index("--resume")
        first = [*args[:at], *args[at + 2 :], "--epochs", "1", "--output", tmp_path / "s.npz"]
        assert invoke(*first).exit_code == 0
    out = ["--epochs", "1", "--output", tmp_path / "w.npz", "--curve", tmp_path / "c.svg"]
    result = invoke(*args, *out, "--force")
    assert result.exit_code == 0, result.output


def test_training_over_the_memory_limit_is_refused_before_it_starts(tmp_path):
    result = invoke(
        SPECS / "reber.yaml",
        "--data",
        DATA / "reber.npz",
        "--max-memory",
        "1M",
        "--loss",
        "cross-entropy",
        "--batch-size",
        "1000",
        "--output",
        tmp_path / "w.npz",
    )
    assert (
        result.exit_code == 5 and "training" in result.stderr and "over the limit" in result.stderr
    )
    assert not (tmp_path / "w.npz").exists()
