"""Every file argument of every command is declared once (`composer.cli.files`): the
declaration is complete (a new file option cannot be forgotten), no output may replace an
input, and every input goes through the reader front before anything is read."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from composer.cli import app
from composer.cli.files import Read
from composer.reading import MAX_TEXT_BYTES, MAX_VOCAB_BYTES
from tests.builders import doc_tagger
from tests.conftest import ROOT

runner = CliRunner()

TAGGER = doc_tagger()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _commands(group: typer.Typer, prefix: str = ""):
    """(name, callback) of every command of the app, sub-apps included."""
    for info in group.registered_commands:
        yield prefix + (info.name or info.callback.__name__), info.callback
    for sub in group.registered_groups:
        yield from _commands(sub.typer_instance, f"{prefix}{sub.name} ")


def _takes_path(annotation) -> bool:
    """Whether a parameter's type names a path: `Path`, `Path | None`, `list[Path]`..."""
    if annotation is Path:
        return True
    return any(_takes_path(arg) for arg in typing.get_args(annotation))


def _file_parameters(callback) -> list[str]:
    """The parameters that take a path: typed as one, or with a metavar naming a FILE."""
    found = []
    for name, param in inspect.signature(callback, eval_str=True).parameters.items():
        infos = getattr(param.annotation, "__metadata__", ())
        metavars = [getattr(info, "metavar", None) or "" for info in infos]
        if _takes_path(param.annotation) or any("FILE" in m for m in metavars):
            found.append(name)
    return found


COMMANDS = dict(_commands(app))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_file_parameter_is_declared_an_input_or_an_output(name):
    callback = COMMANDS[name]
    declared = getattr(callback, "file_arguments", None)
    files = _file_parameters(callback)
    if declared is None:  # only a command without any file parameter may go undeclared
        assert files == [], f"{name}: declare its file parameters with @file_arguments"
        return
    known = {*declared.inputs, *declared.outputs}
    assert sorted(set(files) - known) == [], f"{name}: file parameters not declared"
    assert not set(declared.inputs) & set(declared.outputs)


def test_the_introspection_sees_the_file_parameters_that_were_missing():
    """`--model`, `--state-in` and `--lengths FILE.npy` are found, and declared inputs."""
    files = _file_parameters(COMMANDS["run"])
    assert {"model", "state_in", "lengths", "input", "weights"} <= set(files)
    declared = COMMANDS["run"].file_arguments
    assert declared.inputs["model"] is Read.model
    assert declared.inputs["state_in"] is Read.arrays
    assert declared.inputs["lengths"] is Read.lengths


@pytest.fixture
def tagger(tmp_path, monkeypatch):
    (tmp_path / "tagger.yaml").write_text(TAGGER)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 12, 4)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _unchanged_after(path, *args):
    before = path.read_bytes()
    code, out = invoke(*args)
    assert path.read_bytes() == before
    return code, out


def test_an_output_cannot_replace_the_state_in_even_with_force(tagger):
    run = ("run", "tagger.yaml", "-i", "x.npy")
    assert invoke(*run, "--state-out", "s.npz")[0] == 0
    code, out = _unchanged_after(tagger / "s.npz", *run, "--state-in", "s.npz", "--output",
                                 "s.npz", "--force")  # fmt: skip
    assert code == 2 and "s.npz is also an input (--state-in)" in out
    code, out = _unchanged_after(tagger / "s.npz", *run, "--state-in", "s.npz", "--state-out",
                                 "s.npz", "--force")  # fmt: skip
    assert code == 2 and "is also an input (--state-in)" in out


def test_an_output_cannot_replace_the_lengths_file(tagger):
    np.save(tagger / "l.npy", np.array([12, 5]))
    os.link(tagger / "l.npy", tagger / "hard.npy")  # the same file under another name
    for output in ("l.npy", "hard.npy"):
        args = ("run", "tagger.yaml", "-i", "x.npy", "--lengths", "l.npy", "--output", output)
        code, out = _unchanged_after(tagger / "l.npy", *args, "--force")
        assert code == 2 and "is also an input (--lengths)" in out, out


def test_an_output_cannot_replace_the_model(tagger):
    pytest.importorskip("onnxruntime")
    assert invoke("run", "tagger.yaml", "-i", "x.npy", "--save-weights", "w.npz")[0] == 0
    assert invoke("export", "tagger.yaml", "-w", "w.npz", "-f", "onnx", "-o", "m.onnx")[0] == 0
    code, out = _unchanged_after(tagger / "m.onnx", "run", "tagger.yaml", "-i", "x.npy",
                                 "--engine", "onnx", "--model", "m.onnx", "--output", "m.onnx",
                                 "--force")  # fmt: skip
    assert code == 2 and "m.onnx is also an input (--model)" in out


def test_train_still_resumes_in_place_but_the_curve_cannot_replace_the_weights(tagger):
    rng = np.random.default_rng(1)
    np.savez(tagger / "d.npz", x=rng.normal(size=(4, 12, 4)), tags=rng.normal(size=(4, 12, 3)))
    train = ("train", "tagger.yaml", "--data", "d.npz", "--epochs", 1)
    assert invoke(*train, "--output", "w.npz")[0] == 0
    assert invoke(*train, "--weights", "w.npz", "--output", "w.npz", "--force")[0] == 0
    code, out = _unchanged_after(tagger / "w.npz", *train, "--weights", "w.npz", "--curve",
                                 "w.npz", "--force")  # fmt: skip
    assert code == 2 and "is also an input (--weights)" in out


def test_a_derived_output_is_checked_against_the_declared_inputs(tagger):
    """`data text`'s default vocabulary path sits beside --output: not over an input."""
    (tagger / "a.txt").write_text("abcabc")
    (tagger / "d.vocab.json").write_text("abc")
    code, out = _unchanged_after(tagger / "d.vocab.json", "data", "text", "a.txt",
                                 "d.vocab.json", "-o", "d.npz", "--force")  # fmt: skip
    assert code == 2 and "d.vocab.json is also an input" in out


def _cli(*args, cwd):
    """The command in its own process: its real exit code, stderr and peak memory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "composer", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ("run", "tagger.yaml", "-i", "x.npy", "--engine", "onnx", "--model", "/dev/zero"),
        ("generate", "tagger.yaml", "-w", "w.npz", "--vocab", "/dev/zero"),
        ("data", "text", "/dev/zero", "-o", "d.npz"),
        ("run", "tagger.yaml", "-i", "x.npy", "--state-in", "/dev/zero"),
        ("run", "tagger.yaml", "-i", "x.npy", "-w", "/dev/zero"),
        ("train", "tagger.yaml", "--data", "/dev/zero"),
        ("import-weights", "tagger.yaml", "/dev/zero", "-o", "w2.npz"),
        ("validate", "/dev/zero"),
    ],
    ids=lambda args: " ".join(args[:1] + args[-2:]),
)
def test_a_device_is_refused_in_one_line_before_it_is_read(tagger, args):
    np.savez(tagger / "w.npz", a=np.zeros(1))
    done = _cli(*args, cwd=tagger)
    assert done.returncode == 4, done.stderr
    assert done.stderr == "/dev/zero: not a regular file (a device, FIFO or socket); give a file\n"


def test_a_model_larger_than_max_memory_is_refused_before_it_is_read(tagger):
    with open(tagger / "big.onnx", "wb") as handle:  # sparse: 1.5 GB that take no disk
        handle.truncate(1_500_000_000)
    done = _cli("run", "tagger.yaml", "-i", "x.npy", "--engine", "onnx", "--model", "big.onnx",
                "--max-memory", "100M", cwd=tagger)  # fmt: skip
    assert done.returncode == 5
    assert done.stderr == (
        "reading big.onnx would need about 2.8 GiB, over the limit of 100.0 MiB; "
        "raise --max-memory\n"
    )


@pytest.mark.parametrize(
    ("args", "name", "cap"),
    [
        (("generate", "tagger.yaml", "-w", "w.npz", "--vocab", "v.json"), "v.json",
         MAX_VOCAB_BYTES),
        (("data", "text", "t.txt", "-o", "d.npz"), "t.txt", MAX_TEXT_BYTES),
    ],
    ids=["vocab", "text"],
)  # fmt: skip
def test_text_files_past_their_documented_cap_are_refused(tagger, args, name, cap):
    np.savez(tagger / "w.npz", a=np.zeros(1))
    with open(tagger / name, "wb") as handle:
        handle.truncate(cap + 1)
    code, out = invoke(*args)
    assert code == 5 and f"{name}: 64.0 MiB, over the 64.0 MiB limit" in out, out
    assert "Traceback" not in out
