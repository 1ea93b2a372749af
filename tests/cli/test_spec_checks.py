"""The spec checks on the command line: unused parts as warnings, `--strict`, and `run`
without the inputs nothing reads."""

from __future__ import annotations

import json
import re
import shlex

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.spec.starters import DESIGNS
from tests.builders import write_spec
from tests.conftest import ROOT

runner = CliRunner()

UNUSED = """\
inputs:
  - {name: x, size: 2}
  - {name: z, size: 3}
layers:
  - {name: rnn, kind: elman, input: x, state_size: 4}
outputs: [{name: o, from: rnn}]
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_validate_warns_of_an_unused_input_and_strict_refuses_it(tmp_path):
    path = write_spec(tmp_path, UNUSED)
    result = invoke("validate", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(": ok (1 warning(s))\n")
    message = "input `z` is read by no layer or connection\n"
    assert result.stderr == f"{path}:3:5: inputs[1]: warning: {message}"
    strict = invoke("validate", "--strict", path)
    assert strict.exit_code == 3
    assert strict.stdout == ""
    assert strict.stderr == f"{path}:3:5: inputs[1]: {message}"


def test_run_no_longer_demands_an_input_nothing_reads(tmp_path):
    """Reproduced first: `run` failed with `missing 'z'` though nothing reads z."""
    path = write_spec(tmp_path, UNUSED)
    np.save(tmp_path / "x.npy", np.ones((5, 2)))
    result = invoke("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "o.npz")
    assert result.exit_code == 0, result.output
    np.savez(tmp_path / "xz.npz", x=np.ones((5, 2)), z=np.ones((5, 3)))
    again = invoke("run", path, "--input", tmp_path / "xz.npz", "--output", tmp_path / "p.npz")
    assert again.exit_code == 0, again.output
    with np.load(tmp_path / "o.npz") as first, np.load(tmp_path / "p.npz") as second:
        np.testing.assert_array_equal(first["o"], second["o"])  # exact: z is not read


def test_summary_header_shows_each_input_and_output_window(tmp_path):
    """It used to say `inputs ":", outputs ":"` for windows of their own (B5)."""
    text = """\
inputs: [{name: x, size: 2, window: "0:6"}]
layers: [{name: rnn, kind: elman, input: x, state_size: 4}]
outputs: [{name: o, from: rnn, window: "6:10"}]
steps: 10
"""
    result = invoke("summary", write_spec(tmp_path, text))
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert header.endswith("alignment many-to-many, inputs x `0:6`, outputs o `6:10`")


def test_summary_shows_the_delays_of_tapped_inputs_and_layers_without_one():
    result = invoke("summary", ROOT / "specs/narx.yaml", "--json")
    layers = {row["name"]: row for row in json.loads(result.stdout)["layers"]}
    assert layers["h"]["input_delays"] == [1, 2, 3] and layers["y"]["input_delays"] == [0]
    table = invoke("summary", ROOT / "specs/narx.yaml").stdout
    assert "h      dense  1, delays 1..3" in table


@pytest.mark.parametrize("design", DESIGNS)
def test_new_writes_design_starters_that_use_everything_they_declare(tmp_path, design):
    out = tmp_path / f"{design}.yaml"
    result = invoke("new", design, "--output", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith(f"# A starter spec for a{'n' * (design[0] in 'ae')} ")
    strict = invoke("validate", "--strict", out)
    assert strict.exit_code == 0 and strict.stderr == "", strict.output


def test_the_design_starters_do_what_their_comments_say(tmp_path):
    invoke("new", "narx", "--output", tmp_path / "narx.yaml")
    deps = invoke("deps", tmp_path / "narx.yaml", "--steps", 6, "--at", "out[-1]")
    assert deps.stdout == "out[5] <- u[0..4]\n"  # u at t-1 and earlier only
    invoke("new", "encoder-decoder", "--output", tmp_path / "ed.yaml")
    summary = json.loads(invoke("summary", tmp_path / "ed.yaml", "--json").stdout)
    assert "dec.Wx" not in summary["params"] and "dec.W_dec" in summary["params"]
    deps = invoke("deps", tmp_path / "ed.yaml", "--at", "y[-1]")
    assert deps.stdout == "y[15] <- src[0..9]\n"


# the commands and a quoted message of docs/time.md
DOC = (ROOT / "docs" / "time.md").read_text()
DOC_COMMANDS = [
    (chunk.split("\n")[0], [line for line in chunk.split("\n")[1:] if line])
    for block in re.findall(r"```console\n(.*?)```", DOC, re.S)
    for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]
]


@pytest.mark.parametrize(("command", "shown"), DOC_COMMANDS, ids=[c for c, _ in DOC_COMMANDS])
def test_the_commands_of_the_delays_page_run_and_print_what_it_shows(command, shown):
    words = shlex.split(command)
    assert words[0] == "rnn-composer"
    args = [str(ROOT / w) if w.startswith("specs/") else w for w in words[1:]]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[: len(shown)] == shown


def test_the_messages_the_delays_page_quotes_are_the_tools(tmp_path):
    quoted = " ".join(re.findall(r"```text\n(.*?)```", DOC, re.S)[0].split())
    network = """\
inputs: [{name: x, size: 2}]
layers: [{name: r, kind: elman, input: {from: x, delays: [-1, 0]}, state_size: 3}]
outputs: [{name: o, from: r}]
"""
    result = invoke("validate", write_spec(tmp_path, network))
    assert result.exit_code == 3
    assert result.stderr.split(": ", 2)[2].strip() in quoted


def test_a_summed_bidirectional_layer_gives_h_not_2h(tmp_path):
    text = """\
inputs: [{name: x, size: 2}]
layers:
  - {name: bi, kind: gru, input: x, state_size: 4, bidirectional: true, merge: sum}
  - {name: d, kind: dense, input: bi, size: 3}
outputs: [{name: o, from: d}, {name: states, from: bi}]
"""
    data = json.loads(invoke("summary", write_spec(tmp_path, text), "--json").stdout)
    assert data["params"]["d.W"] == [4, 3]  # one H-row block read by both directions
    assert {row["name"]: row["output_size"] for row in data["layers"]} == {"bi": 4, "d": 3}


@pytest.mark.parametrize("merge", ["mean", "mul"])
def test_an_averaged_or_multiplied_bidirectional_layer_gives_h_and_draws_its_merge(tmp_path, merge):
    text = f"""\
inputs: [{{name: x, size: 2}}]
layers:
  - {{name: bi, kind: gru, input: x, state_size: 4, bidirectional: true, merge: {merge}}}
  - {{name: d, kind: dense, input: bi, size: 3}}
outputs: [{{name: o, from: d}}, {{name: states, from: bi}}]
"""
    path = write_spec(tmp_path, text)
    data = json.loads(invoke("summary", path, "--json").stdout)
    assert data["params"]["d.W"] == [4, 3]  # the merge vector, H wide
    assert {row["name"]: row["output_size"] for row in data["layers"]} == {"bi": 4, "d": 3}
    dot = invoke("render", path, "--format", "dot", "--output", str(tmp_path / "n.dot"))
    assert dot.exit_code == 0, dot.stderr
    folded = (tmp_path / "n.folded.dot").read_text()
    assert {"mean": "mean of fwd, bwd (4)", "mul": "fwd × bwd (4)"}[merge] in folded
