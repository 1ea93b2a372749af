"""`run --trace`, `render --view trace` and `render --gradients` from the command line."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import read_arrays, write_arrays
from composer.cli import app
from composer.network import Network
from composer.training.example_data import echo
from tests.conftest import ROOT

runner = CliRunner()
LSTM = ROOT / "specs/lstm.yaml"
ECHO = ROOT / "docs/examples/echo-elman.yaml"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """An LSTM stack run on a (T, F) input with --trace and --output."""
    folder = tmp_path_factory.mktemp("trace")
    np.save(folder / "x.npy", np.random.default_rng(0).normal(size=(6, 8)))
    args = ("run", LSTM, "--input", folder / "x.npy", "--trace", folder / "t.npz")
    result = invoke(*args, "--output", folder / "o.npz", "--save-weights", folder / "w.npz")
    assert result.exit_code == 0, result.output
    return folder


def test_run_trace_writes_every_vector_with_gates_and_cells(traced):
    trace = read_arrays(traced / "t.npz")
    for layer in ("lstm1", "lstm2"):
        for key in ("s", "c", "gates.i", "gates.f", "gates.g", "gates.o"):
            assert trace[f"{layer}.{key}"].shape == (6, 32)
    assert set(trace) == {"x", "lstm1.s", "lstm2.s", "lstm2.y", "y"} | {
        f"{layer}.{key}" for layer in ("lstm1", "lstm2")
        for key in ("c", "gates.i", "gates.f", "gates.g", "gates.o")
    }  # fmt: skip
    # float32: the trace's pass and the executor's round in different orders
    np.testing.assert_allclose(trace["y"], read_arrays(traced / "o.npz")["y"], atol=1e-6)
    gates = trace["lstm1.gates.f"]
    assert (gates > 0).all() and (gates < 1).all()


def test_run_trace_refuses_to_overwrite(traced):
    args = ("run", LSTM, "--input", traced / "x.npy", "--trace", traced / "t.npz")
    result = invoke(*args)
    assert result.exit_code == 2 and "--force" in result.output


@needs_dot
def test_render_trace_draws_a_panel_per_vector_and_gate(traced):
    out = traced / "trace.dot"
    result = invoke("render", LSTM, "--view", "trace", "--trace", traced / "t.npz", "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for title in ("lstm1.gates.f", "lstm2.c", "sigmoid, 0 to 1"):
        assert title in text
    # steps × units of every panel (22 pt cells at T = 6); y is lstm2.y's panel
    assert text.count('WIDTH="22" HEIGHT="22"') == 6 * (8 + 32 * 12 + 4)
    assert "= lstm2.y" in text
    svg = traced / "trace.svg"
    assert invoke("render", LSTM, "--view", "trace", "--trace", traced / "t.npz", "-o", svg)
    assert svg.read_text().lstrip().startswith("<?xml")


def test_a_trace_of_another_network_is_a_data_error(tmp_path):
    write_arrays(tmp_path / "t.npz", {"other.gates.i": np.zeros((3, 2))})
    args = ("render", LSTM, "--view", "trace", "--trace", tmp_path / "t.npz")
    result = invoke(*args, "-o", tmp_path / "t.svg")
    assert result.exit_code == 4 and "'other.gates.i' is not a vector" in result.output
    assert not (tmp_path / "t.svg").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--view", "trace"), "give --trace"),
        (("--gradients",), "--gradients needs --weights"),
        (("--data", "specs/lstm.yaml"), "read by --gradients"),
        (("--view", "trace", "-o", "p.html"), "drawn as svg"),
    ],
)
def test_picture_options_that_do_not_go_together_are_usage_errors(tmp_path, args, message):
    result = invoke("render", LSTM, "-o", tmp_path / "p.svg", *args)
    assert result.exit_code == 2 and message in result.output


@needs_dot
def test_render_gradients_shades_states_by_the_norms(tmp_path):
    write_arrays(tmp_path / "d.npz", echo(count=16, steps=20, seed=1))
    net = Network.from_file(ECHO)
    params = net.init_params(3)
    write_arrays(tmp_path / "w.npz", params)
    out = tmp_path / "g.dot"
    args = ("render", ECHO, "--gradients", "--weights", tmp_path / "w.npz")
    result = invoke(*args, "--data", tmp_path / "d.npz", "--at", "y[-1]", "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "of the loss at y[19], over 16 sequences of d.npz" in text
    data = read_arrays(tmp_path / "d.npz")
    wide = {k: v.astype(np.float64) for k, v in params.items()}
    norms = net.gradient_norms(wide, {"x": data["x"].astype(np.float64)},
                               {"y": data["y"].astype(np.float64)})["rnn.s"]  # fmt: skip
    shades = [text.split(f'id="rnn.s@{t}"')[1].split("fillcolor=")[1][1:8] for t in (0, 19)]
    # the largest norm is the darkest: purple's red channel is smallest there
    darker = 0 if norms[0] > norms[19] else 1
    assert int(shades[darker][1:3], 16) < int(shades[1 - darker][1:3], 16)
    png = tmp_path / "g.png"
    again = invoke(*args, "--data", tmp_path / "d.npz", "-o", png)
    assert again.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_run_trace_refuses_a_padded_batch(tmp_path):
    args = ("run", "specs/sentiment.yaml", "--input", "specs/data/sentences.npz")
    result = invoke(*args, "--trace", tmp_path / "t.npz")
    assert result.exit_code == 2 and "a padded batch has no one trace" in result.output
    assert list(tmp_path.iterdir()) == []


@needs_dot
def test_render_gradients_charts_an_lstms_cell_state_too(tmp_path):
    lstm = ROOT / "docs/examples/echo-lstm.yaml"
    write_arrays(tmp_path / "d.npz", echo(count=8, steps=20, seed=1))
    write_arrays(tmp_path / "w.npz", Network.from_file(lstm).init_params(3))
    out = tmp_path / "g.dot"
    args = ("render", lstm, "--gradients", "--weights", tmp_path / "w.npz")
    result = invoke(*args, "--data", tmp_path / "d.npz", "--at", "y[-1]", "-o", out)
    assert result.exit_code == 0, result.output
    rows = re.findall(r'<TD ALIGN="RIGHT">([^<]+)</TD><TD BORDER="1" SIDES="LB">', out.read_text())
    assert rows == ["rnn", "rnn.c"]  # h by the layer's name, then its cell state
