"""`train --checkpoint` and `--resume` as a user runs them: a process stopped by a real
SIGINT or SIGTERM at any moment and resumed writes the weights of the run that never
stopped, bit for bit; refusals are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import read_arrays, write_arrays
from composer.cli import app
from tests.conftest import ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"
runner = CliRunner()


def _command(tmp_path, *extra):
    return [sys.executable, "-m", "composer", "train", str(SPECS / "sine.yaml"), "--data",
            str(tmp_path / "d.npz"), "--epochs", "12", "--lr", "0.01", "--batch-size", "16",
            "--schedule", "cosine", *map(str, extra)]  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_run_resumes_to_the_same_weights(tmp_path, signum):
    write_arrays(tmp_path / "d.npz", {k: v[:96] for k, v in read_arrays(DATA / "sine.npz").items()})
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    whole = subprocess.run(_command(tmp_path, "-o", tmp_path / "whole.npz"), env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    folder = tmp_path / "ck"
    process = subprocess.Popen(
        _command(tmp_path, "--checkpoint", folder, "-o", tmp_path / "part.npz"), env=env,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (folder / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)  # in epoch 1 or so, of 12
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, 130, 128 + signum), err  # 0: it had just finished
    resumed = subprocess.run(
        _command(tmp_path, "--checkpoint", folder, "--resume", folder, "-o",
                 tmp_path / "part.npz", "--force"),
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "untrained" not in resumed.stderr
    one, two = np.load(tmp_path / "whole.npz"), np.load(tmp_path / "part.npz")
    assert sorted(one) == sorted(two)
    for key in one:
        np.testing.assert_array_equal(two[key], one[key], err_msg=key)


def test_checkpoint_options_are_checked_before_training(tmp_path):
    write_arrays(tmp_path / "d.npz", {k: v[:40] for k, v in read_arrays(DATA / "sine.npz").items()})
    base = ["train", SPECS / "sine.yaml", "--data", tmp_path / "d.npz", "--epochs", 1]
    first = runner.invoke(app, list(map(str, [*base, "--checkpoint", tmp_path / "ck", "-o",
                                              tmp_path / "a.npz"])))  # fmt: skip
    assert first.exit_code == 0, first.output
    for extra, code, message in [
        (["--checkpoint", tmp_path / "ck"], 2, "holds a checkpoint; pass --resume"),
        (["--resume", tmp_path / "ck", "--weights", tmp_path / "a.npz"], 2, "leave out --weights"),
        (["--resume", tmp_path / "ck", "--lr", 0.5], 4, "made with lr = 0.001, this run gives 0.5"),
    ]:
        result = runner.invoke(app, list(map(str, [*base, *extra, "-o", tmp_path / "b.npz"])))
        assert result.exit_code == code and message in result.output, result.output
        assert not (tmp_path / "b.npz").exists()
