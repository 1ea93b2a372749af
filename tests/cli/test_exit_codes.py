"""Messages and exit codes as docs/errors.md gives them: a bad `--device` is a usage error
(2), an output folder without write permission a write error (5), an empty array file is
said to be empty."""

from __future__ import annotations

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import read_arrays
from composer.cli import app
from composer.errors import DataError
from tests.builders import doc_tagger

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def tagger(tmp_path, monkeypatch):
    (tmp_path / "tagger.yaml").write_text(doc_tagger())
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 12, 4)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("device", ["garbage", "cuda:x", "cpu:0", "", "cuda:-1"])
@pytest.mark.parametrize("command", ["run", "train"])
def test_a_device_not_of_the_form_cpu_cuda_or_cuda_n_is_a_usage_error(tagger, device, command):
    data = ("-i", "x.npy") if command == "run" else ("--data", "x.npy")
    code, out = invoke(command, "tagger.yaml", *data, "--engine", "torch", "--device", device)
    assert code == 2, out
    assert f"Invalid value for --device: expected cpu, cuda or cuda:N, got {device!r}" in out


def test_a_folder_without_write_permission_is_exit_5(tagger, monkeypatch):
    """As a full disk or a refused write is: the check before the run agrees with the write
    (root may write anywhere, so the permission is taken from `os.access`)."""
    locked = tagger / "locked"
    locked.mkdir()
    access = os.access

    def refuse(path, mode, *args, **kwargs):
        if mode == os.W_OK and os.path.realpath(path) == str(locked):
            return False
        return access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", refuse)
    for args in (
        ("run", "tagger.yaml", "-i", "x.npy", "--output", locked / "o.npz"),
        ("new", "char-lm", "--output", locked / "n.yaml"),
        ("train", "tagger.yaml", "--data", "x.npy", "--output", locked / "w.npz"),
    ):
        code, out = invoke(*args)
        assert code == 5, out
        assert out == f"cannot write {args[-1]}: folder {locked} is not writable\n"


def test_an_empty_npz_is_said_to_be_empty(tagger):
    np.savez(tagger / "none.npz")
    (tagger / "zero.npz").write_bytes(b"")
    code, out = invoke("run", "tagger.yaml", "-i", "none.npz")
    assert (code, out) == (4, "none.npz: an empty .npz archive; it holds no arrays\n")
    code, out = invoke("run", "tagger.yaml", "-i", "x.npy", "-w", "zero.npz")
    assert (code, out) == (4, "zero.npz: an empty file (0 bytes); expected .npy or .npz\n")
    with pytest.raises(DataError, match="holds no arrays"):
        read_arrays(tagger / "none.npz")
