"""A start state given with the data (`initial_state: h0`) on the command line, as
docs/time.md shows it: `run` reads it from the inputs file, `--state-in` and the inputs'
start state are one or the other, runs in pieces equal the whole, `summary` and `deps`
show it, train uses it, and bad specs and arrays exit 3 and 4 in one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.cli.report import format_dependencies
from composer.network import Network
from composer.spec.reader import read_spec_text
from tests.builders import write_spec
from tests.conftest import ROOT
from tests.tolerances import assert_close, run_depth

runner = CliRunner()
DOC = (ROOT / "docs" / "time.md").read_text(encoding="utf-8")
SECTION = DOC.split("## A start state given with the data")[1].split("\n## ")[0]
SNIPPET = re.search(r"```yaml\n(.*?)```", SECTION, re.S).group(1)
RNG = np.random.default_rng(0)
X, H0 = RNG.normal(size=(2, 6, 3)), RNG.normal(size=(2, 64))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def files(tmp_path):
    path = write_spec(tmp_path, SNIPPET)
    np.savez(tmp_path / "in.npz", x=X, h0=H0)
    np.savez(tmp_path / "first.npz", x=X[:, :2], h0=H0)
    np.savez(tmp_path / "rest.npz", x=X[:, 2:])
    net = Network.from_spec(read_spec_text(SNIPPET, "time.md", "yaml").spec)
    np.savez(tmp_path / "w.npz", **net.init_params(0, "float64"))
    return tmp_path, path


def test_the_documented_spec_runs_and_the_quoted_deps_line_is_printed(files):
    folder, path = files
    net = Network.from_spec(read_spec_text(SNIPPET, "time.md", "yaml").spec)
    assert "y[2] <- x[0..2], h0" in SECTION
    assert "y[2] <- x[0..2], h0" in format_dependencies(net.dependencies(3))
    result = invoke("deps", path, "--steps", "3")
    assert result.exit_code == 0, result.output
    assert "y[2] <- x[0..2], h0" in result.stdout.splitlines()
    summary = invoke("summary", path)
    assert "h0 (start of rnn)" in summary.stdout.splitlines()[0]
    data = json.loads(invoke("summary", path, "--json").stdout)
    assert data["start_states"] == {"h0": ["rnn"]} and "h0" not in data["windows"]["inputs"]


def _run(folder, path, inputs, *extra):
    out = folder / f"{inputs}.out.npz"
    result = invoke(
        "run", path, "-w", folder / "w.npz", "-i", folder / f"{inputs}.npz", "--dtype",
        "float64", "-o", out, "--force", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with np.load(out) as found:
        return found["y"]


def test_run_reads_it_and_runs_in_pieces_equal_the_whole(files):
    folder, path = files
    whole = _run(folder, path, "in")
    params = dict(np.load(folder / "w.npz"))
    net = Network.from_spec(read_spec_text(SNIPPET, "time.md", "yaml").spec)
    expected = net.run(params, {"x": X, "h0": H0}, dtype="float64")["y"]
    np.testing.assert_array_equal(whole, expected)  # exact: the same run, from the CLI
    first = _run(folder, path, "first", "--state-out", folder / "s.npz")
    rest = _run(folder, path, "rest", "--state-in", folder / "s.npz")
    pieces = np.concatenate([first, rest], axis=1)
    stepped = _run(folder, path, "in", "--state-out", folder / "whole.npz")  # step by step
    np.testing.assert_array_equal(pieces, stepped)  # exact: both step by step, same shapes
    # BLAS: a product of one step's rows or of the whole run's may round differently
    assert_close(pieces, whole, np.float64, run_depth(pieces.shape[1]))


def test_state_in_and_a_start_state_in_the_inputs_are_one_or_the_other(files):
    folder, path = files
    _run(folder, path, "first", "--state-out", folder / "s.npz")
    result = invoke("run", path, "-w", folder / "w.npz", "-i", folder / "in.npz",
                    "--state-in", folder / "s.npz")  # fmt: skip
    assert result.exit_code == 4
    assert result.stderr.strip().endswith(
        "key 'h0' is a start state, but --state-in gives every layer's start state; leave "
        "'h0' out of the inputs (or the option out)"
    )
    missing = invoke("run", path, "-w", folder / "w.npz", "-i", folder / "rest.npz")
    assert missing.exit_code == 4 and "missing 'h0'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"x": X, "h0": H0[:, None]},
            "key 'h0': a start state, expected shape (B, 64) or (64,) "
            "(no time axis), got (2, 1, 64)",
        ),
        (
            {"x": X, "h0": H0[:, :5]},
            "key 'h0': a start state, expected shape (B, 64) (no time axis), got (2, 5)",
        ),
        ({"x": X, "h0": H0[:1]}, "inputs disagree on the batch size B"),
        (
            {"x": X, "h0": H0, "h0.lengths": np.array([1, 1])},
            "`h0` gives a start state, which has no steps and so no lengths",
        ),
    ],
)
def test_bad_arrays_exit_4_in_one_line_naming_the_array(files, arrays, message):
    folder, path = files
    np.savez(folder / "bad.npz", **arrays)
    result = invoke("run", path, "-w", folder / "w.npz", "-i", folder / "bad.npz")
    assert result.exit_code == 4, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("{name: h0, size: 64}", "{name: h0, size: 32}"),
        ("{name: h0, size: 64}", "{name: h0, size: 64, window: '0:1'}"),
        ("input: x,", "input: [x, h0],"),
    ],
)
def test_bad_specs_exit_3_naming_the_field(tmp_path, change, message):
    path = write_spec(tmp_path, SNIPPET.replace(change, message))
    result = invoke("validate", path)
    assert result.exit_code == 3, result.output
    assert "layers[0].initial_state: " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_train_learns_with_it(files):
    folder, path = files
    y = np.random.default_rng(1).normal(size=(2, 6, 2))
    np.savez(folder / "data.npz", x=X, h0=H0, y=y)
    result = invoke(
        "train", path, "--data", folder / "data.npz", "--epochs", "3", "--dtype", "float64",
        "--weights", folder / "w.npz", "-o", folder / "trained.npz", "--lr", "0.01",
        "--validation", "0", "--batch-size", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    params = dict(np.load(folder / "trained.npz"))
    net = Network.from_spec(read_spec_text(SNIPPET, "time.md", "yaml").spec)
    before = net.grad(dict(np.load(folder / "w.npz")), {"x": X, "h0": H0}, {"y": y})[0]
    after = net.grad(params, {"x": X, "h0": H0}, {"y": y})[0]
    assert np.isfinite(after)
    assert after < before  # the start state reached training: the loss went down
