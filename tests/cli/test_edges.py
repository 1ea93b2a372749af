"""The command line's edges: option values, precision limits, divergence, streams, names.

Issue 18, items 11, 13, 14, 24 and 25, each through `CliRunner` unless it needs a real
process (closed or full stdout).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import read_arrays
from composer.cli import app
from composer.finite import check_representable

ROOT = Path(__file__).parent.parent.parent
SPEC = ROOT / "specs" / "lecture-elman.yaml"
X = ROOT / "specs" / "data" / "lecture-x.csv"
SINE = ROOT / "specs" / "sine.yaml"
SINE_DATA = ROOT / "specs" / "data" / "sine.npz"

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_line(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


# -- 11: values a precision cannot hold ------------------------------------------------


@pytest.mark.parametrize("value", [1e300, -1e39, 3.5e38])
def test_inputs_beyond_float32_are_refused_after_the_cast(tmp_path, value):
    x = np.zeros((4, 4))
    x[2, 1] = value
    np.save(tmp_path / "x.npy", x)
    out = _one_line(invoke("run", SPEC, "-i", tmp_path / "x.npy"), 4)
    assert "x.npy: key 'x':" in out and "float32's range" in out and "(0, 2, 1)" in out
    assert invoke("run", SPEC, "-i", tmp_path / "x.npy", "--dtype", "float64").exit_code == 0


def test_weights_beyond_float32_are_refused(tmp_path):
    params = {k: v.astype(np.float64) for k, v in _weights(tmp_path).items()}
    params["s.Wx"][0, 0] = 1e300
    np.savez(tmp_path / "w.npz", **params)
    out = _one_line(invoke("run", SPEC, "-i", X, "-w", tmp_path / "w.npz"), 4)
    assert "w.npz: key 's.Wx'" in out and "float32's range" in out


def _weights(tmp_path):
    assert invoke("run", SPEC, "-i", X, "--save-weights", tmp_path / "w0.npz").exit_code == 0
    return read_arrays(tmp_path / "w0.npz")


@pytest.mark.parametrize("key", ["x", "o", "o.mask"])
def test_training_data_beyond_float32_names_the_data_file(tmp_path, key):
    data = {k: v.astype(np.float64) for k, v in np.load(SINE_DATA).items()}
    if key == "o.mask":
        data[key] = np.ones(data["o"].shape[:2])
    data[key][0, 0] = 1e300
    np.savez(tmp_path / "d.npz", **data)
    args = ("train", SINE, "--data", tmp_path / "d.npz", "--epochs", 1)
    out = _one_line(invoke(*args, "-o", tmp_path / "w.npz"), 4)
    assert f"d.npz: key {key!r}" in out and "weights" not in out


def test_check_representable_passes_wide_types_through():
    check_representable({"a": np.array([1e300]), "b": np.array([7], np.int64)}, "float64", "f")
    check_representable({"a": np.array([np.inf, np.nan])}, "float32", "f")  # not its job


def test_an_all_zero_mask_is_refused(tmp_path):
    data = dict(np.load(SINE_DATA))
    data["o.mask"] = np.zeros(data["o"].shape[:2])
    np.savez(tmp_path / "d.npz", **data)
    args = ("train", SINE, "--data", tmp_path / "d.npz", "--epochs", 1)
    out = _one_line(invoke(*args, "-o", tmp_path / "w.npz"), 4)
    assert "every mask is 0" in out and not (tmp_path / "w.npz").exists()


# -- 13: diverging to Inf is a NaN loss: warn, stop, write the best weights ----------------


@pytest.mark.parametrize(
    "options",
    [
        ["--lr", "1e39"],
        ["--optimizer", "adam", "--lr", "1e38"],
        ["--optimizer", "sgd", "--lr", "1e39"],
        ["--weight-decay", "inf"],
        ["--weight-decay", "1e39", "--optimizer", "sgd"],
    ],
)
def test_weights_overflowing_stop_training_and_keep_the_best(tmp_path, options):
    out = tmp_path / "w.npz"
    args = ("train", SINE, "--data", SINE_DATA, "--epochs", 2, "-o", out, *options)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "became NaN or infinite" in result.output and "best" in result.output
    assert all(np.isfinite(v).all() for v in read_arrays(out).values())


# -- 14: more tracebacks -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("run", SPEC, "-i", X, "--seed", "-1"),
        ("train", SINE, "--data", SINE_DATA, "--seed", "-5"),
        ("render", SPEC, "-o", ""),
        ("render", SPEC, "-o", "."),
        ("render", SPEC, "-o", "/"),
        ("render", SPEC, "-o", ".."),
        ("render", SPEC, "--view", "folded", "-o", ".."),
        ("render", SPEC, "-o", ROOT / "specs"),
        ("summary", SPEC, "--max-memory", "9" * 400),
        ("summary", SPEC, "--max-memory", "1" + "0" * 30 + "G"),
        ("summary", SPEC, "--max-memory", "4bb"),
        ("summary", SPEC, "--max-memory", "4 GG"),
        ("summary", SPEC, "--max-memory", "-4G"),
        ("deps", SPEC, "--at", "y[1"),
        ("deps", SPEC, "--at", "y1]"),
        ("deps", SPEC, "--at", "y[x]"),
        ("deps", SPEC, "--at", "y[99]"),
        ("deps", SPEC, "--at", "z[1]"),
    ],
)
def test_bad_option_values_are_usage_errors(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["/proc/self/mem", "/proc/self/task"])
@pytest.mark.parametrize("command", ["run", "train"])
def test_unreadable_inputs_are_data_errors(command, source, tmp_path):
    if not Path(source).exists():
        pytest.skip(f"no {source}")
    option = "-i" if command == "run" else "--data"
    spec = SPEC if command == "run" else SINE
    result = invoke(
        command, spec, option, source, *(["-o", tmp_path / "w.npz"] * (command == "train"))
    )
    assert result.exit_code in (2, 4), result.output
    assert "Traceback" not in result.output


def test_deps_at_takes_a_step_from_the_end_like_highlight():
    last = invoke("deps", SPEC, "--at", "y[-1]")
    assert last.exit_code == 0, last.output
    assert last.output == invoke("deps", SPEC, "--at", "y[3]").output


def _shell(command: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["/bin/sh", "-c", command], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )


class _Full:
    """A stream on a full disk."""

    def write(self, text):
        raise OSError(28, "No space left on device")

    def flush(self):
        pass

    def fileno(self):
        raise ValueError("no file")


@pytest.mark.parametrize("stream", ["full", "closed"])
@pytest.mark.parametrize(
    "args",
    [
        ["validate", SPEC],
        ["deps", "--json", SPEC],
        ["summary", SPEC],
        ["schema"],
        ["new", "many-to-one"],
        ["run", SPEC, "-i", X],
    ],
)
def test_a_full_or_closed_stdout_is_an_error_not_silence(monkeypatch, capsys, args, stream):
    import composer.cli as app_module
    from composer.cli.streams import CheckedStdout

    monkeypatch.setattr(sys, "stdout", CheckedStdout(_Full() if stream == "full" else None))
    monkeypatch.setattr(sys, "argv", ["rnn-composer", *map(str, args)])
    monkeypatch.setattr(app_module, "install_signals", lambda: None)
    with pytest.raises(SystemExit) as caught:
        app_module.main()
    assert caught.value.code == 5
    message = capsys.readouterr().err
    assert message.startswith("cannot write to standard output: ") and message.count("\n") == 1


def test_a_really_closed_stdout_exits_5():
    done = subprocess.run(
        f"{sys.executable} -m composer validate {SPEC} >&-",
        shell=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 5
    assert done.stderr == "cannot write to standard output: it is closed\n"


# -- 25: names in messages, PDF bytes, YAML numbers ----------------------------------------


@pytest.mark.parametrize("name", ["bad\nother.yaml: ok", "cr\rname.yaml", "esc\x1b[2Jname.yaml"])
def test_file_names_cannot_forge_lines(tmp_path, name):
    spec = tmp_path / name
    spec.write_text("inputs: [")
    result = invoke("validate", spec)
    assert result.exit_code == 3
    assert len(result.stderr.splitlines()) == 1 and "\x1b" not in result.stderr
    assert "\\n" in result.stderr or "\\r" in result.stderr or "\\x1b" in result.stderr
    good = tmp_path / (name + ".yaml")
    good.write_text(SPEC.read_text())
    ok = invoke("validate", good)
    assert ok.exit_code == 0 and len(ok.stdout.splitlines()) == 1


@pytest.mark.skipif(
    subprocess.run(["which", "dot"], capture_output=True).returncode != 0, reason="no dot"
)
def test_pdf_output_is_byte_identical(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    for name in ("a.pdf", "b.pdf"):
        args = ("render", SPEC, "--view", "folded", "-f", "pdf", "-o", tmp_path / name)
        assert invoke(*args).exit_code == 0
    first = (tmp_path / "a.pdf").read_bytes()
    assert first == (tmp_path / "b.pdf").read_bytes()
    assert b"/CreationDate (D:19700101000000" in first  # not the time of the run


def test_pdf_dates_follow_source_date_epoch():
    from composer.draw.graphviz import _fixed_dates

    pdf = b"<< /CreationDate (D:20261130201857Z) /ModDate (D:20261130201857Z) >>"
    import os

    os.environ["SOURCE_DATE_EPOCH"] = "86400"
    try:
        fixed = _fixed_dates(pdf)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    assert fixed == pdf.replace(b"20261130201857", b"19700102000000") and len(fixed) == len(pdf)
