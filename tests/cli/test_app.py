"""The command line, through Typer's CliRunner: exit codes, messages and outputs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.spec.model import PRESETS
from tests.builders import lecture, write_spec

runner = CliRunner()

# The lecture's network as file text, for the error locations below; the other tests write
# `LECTURE` with `write_spec`.
GOOD = """\
inputs: [{name: x, size: 3}]
layers:
  - name: rnn
    kind: elman
    input: x
    state_size: 4
    output: {size: 2, activation: softmax}
outputs: [{name: y, from: rnn}]
alignment: many-to-one
"""
LECTURE = lecture(alignment="many-to-one")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_validate_ok(tmp_path):
    result = invoke("validate", write_spec(tmp_path, LECTURE))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(": ok\n")


# (spec text, expected `line:col: path: ` prefix, a key part of the message)
INVALID = [
    (GOOD.replace("state_size: 4", "state_size: -3"), "6:17: layers[0].state_size: ", "> 0"),
    (GOOD.replace("state_size: 4", "state_size: 0"), "6:17: layers[0].state_size: ", "> 0"),
    (GOOD.replace("state_size: 4", "state_size: 2.5"), "6:17: layers[0].state_size: ", "2.5"),
    (GOOD.replace("state_size: 4", 'state_size: "64"'), "6:17: layers[0].state_size: ", "64"),
    (GOOD.replace("state_size: 4", "state_size: true"), "6:17: layers[0].state_size: ", "true"),
    (GOOD.replace("state_size: 4", "state_sze: 4"), "6:5: layers[0]", "state_size"),
    (GOOD.replace("kind: elman", "kind: elmn"), "4:11: layers[0].kind: ", "elman"),
    (GOOD.replace("kind: elman", "kind: torch.nn.LSTM"), "4:11: layers[0].kind: ", "lstm"),
    (GOOD.replace("input: x", "input: z"), "5:12: layers[0].input: ", "unknown name `z`"),
    (GOOD.replace("input: x", "input: y"), "5:12: layers[0].input: ", "is an output"),
    (GOOD.replace("from: rnn", "from: rn"), "8:27: outputs[0].from: ", "did you mean `rnn`"),
    (GOOD.replace("name: rnn", "name: x"), "3:11: layers[0].name: ", "duplicate name `x`"),
    (GOOD.replace("softmax", "softmx"), "7:35: layers[0].output.activation: ", "softmax"),
    (GOOD.replace("many-to-one", "one-to-one"), "9:12: alignment: ", "exactly 1 step"),
    (GOOD.replace("many-to-one", "many-to-two"), "9:12: alignment: ", "many-to-one"),
    (
        GOOD.replace("size: 3}", "size: 3, window: '9:12'}"),
        "1:37: inputs[0].window: ",
        "selects no step",
    ),
    (GOOD.replace("size: 3}", "size: 3, window: '1..3'}"), "1:37: inputs[0].window: ", "window"),
    (
        GOOD + "connections: [{from: rnn, to: rnn, delay: 0}]\n",
        "10:15: connections[0]: ",
        "algebraic loop",
    ),
    (
        GOOD + "connections: [{from: rnn, to: x}]\n",
        "10:31: connections[0].to: ",
        "goes into a layer",
    ),
    (
        GOOD.replace("    input: x\n", "    input: x\n    direction: backward\n")
        + "connections: [{from: rnn, to: rnn, delay: 2}]\n",
        "11:15: connections[0]: ",
        "backward",
    ),
    (
        GOOD.replace("    input: x\n", "    input: x\n    active: '0:2'\n"),
        "10:12: alignment: ",
        "not active",
    ),
    (GOOD + "steps: 0\n", "10:8: steps: ", ">= 1"),
    (GOOD + "layer: []\n", "10:1: layer: ", "did you mean `layers`"),
    ("- just\n- a list\n", "1:1: ", "mapping"),
    (GOOD + "!!python/object/apply:os.system ['true']: 1\n", "10:1: ", "tag"),
]


@pytest.mark.parametrize(("text", "where", "message"), INVALID)
def test_invalid_specs_exit_3_with_their_location(tmp_path, text, where, message):
    path = write_spec(tmp_path, text)
    result = invoke("validate", path)
    assert result.exit_code == 3, result.output
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"{path}:{where}") and message in line for line in lines), lines
    assert "Traceback" not in result.output


def test_validate_reports_every_file(tmp_path):
    bad = write_spec(tmp_path, GOOD.replace("input: x", "input: z"), "bad.yaml")
    good = write_spec(tmp_path, LECTURE, "good.yaml")
    result = invoke("validate", good, bad)
    assert result.exit_code == 3
    assert f"{good}: ok" in result.stdout and f"{bad}:5:12:" in result.stderr


@pytest.mark.parametrize("command", ["validate", "summary", "deps"])
def test_missing_file_or_folder_is_a_usage_error(tmp_path, command):
    result = invoke(command, tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml" in result.output and "Traceback" not in result.output
    result = invoke(command, tmp_path)
    assert result.exit_code == 2 and "directory" in result.output


def test_output_paths_that_would_lose_data_are_refused(tmp_path):
    spec = write_spec(tmp_path, LECTURE)
    text = spec.read_text()
    cases = [
        (tmp_path, "is a folder"),
        (spec, "exists; pass --force"),
        (tmp_path / "missing" / "out.yaml", "does not exist"),
    ]
    for out, message in cases:
        result = invoke("new", "many-to-one", "--output", out)
        assert result.exit_code == 2 and message in result.output, result.output
    assert spec.read_text() == text


def test_summary_total_is_the_same_for_any_steps(tmp_path):
    path = write_spec(tmp_path, LECTURE)
    totals = set()
    for steps in (3, 3000):
        result = invoke("summary", path, "--steps", steps, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        totals.add(data["total_params"])
        assert data["params"]["rnn.Wx"] == [3, 4]
    assert totals == {3 * 4 + 4 * 4 + 4 + 4 * 2 + 2}


def test_summary_table(tmp_path):
    result = invoke("summary", write_spec(tmp_path, LECTURE))
    assert result.exit_code == 0, result.output
    assert "rnn.Ws" in result.stdout and "H*H" in result.stdout
    assert "total parameters: 42" in result.stdout
    assert "for every T" in result.stdout


def test_deps_text_and_json(tmp_path):
    path = write_spec(tmp_path, LECTURE)
    result = invoke("deps", path, "--steps", 5)
    assert result.exit_code == 0 and result.stdout == "y[4] <- x[0..4]\n"
    data = json.loads(invoke("deps", path, "--steps", 5, "--json").stdout)
    assert data == {"y": {"4": {"x": [0, 1, 2, 3, 4]}}}
    assert invoke("deps", path, "--steps", 5, "--at", "y[4]").stdout == "y[4] <- x[0..4]\n"
    result = invoke("deps", path, "--steps", 5, "--at", "y[2]")
    assert result.exit_code == 2 and "not emitted at step 2" in result.output


def test_sentiment_example_at_five_steps():
    result = invoke("deps", "specs/sentiment.yaml", "--steps", 5)
    assert result.exit_code == 0
    assert result.stdout.strip() == "o[4] <- x[0..4]"


def test_schema_describes_every_field():
    schema = json.loads(invoke("schema").stdout)
    assert schema["title"] == "rnn-composer spec"
    missing = []
    for name, definition in schema["$defs"].items():
        for field, prop in definition.get("properties", {}).items():
            if field != "kind" and "description" not in prop:
                missing.append(f"{name}.{field}")
    assert not missing


@pytest.mark.parametrize("preset", PRESETS)
def test_new_writes_a_valid_commented_starter(tmp_path, preset):
    result = invoke("new", preset)
    assert result.exit_code == 0 and result.stdout.startswith("# A starter spec")
    out = tmp_path / "start.yaml"
    assert invoke("new", preset, "--output", out).exit_code == 0
    assert invoke("validate", out).exit_code == 0
    again = invoke("new", preset, "--output", out)
    assert again.exit_code == 2 and "--force" in again.output
    assert invoke("new", preset, "--output", out, "--force").exit_code == 0


def test_new_unknown_preset_is_a_usage_error():
    result = invoke("new", "many-to-few")
    assert result.exit_code == 2 and "many-to-one" in result.output


def test_render_writes_both_views_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "net.dot"
    result = invoke("render", "specs/lecture-elman.yaml", "--format", "dot", "--output", out)
    assert result.exit_code == 0, result.output
    folded, unfolded = tmp_path / "net.folded.dot", tmp_path / "net.unfolded.dot"
    assert "Ws" in folded.read_text() and "digraph" in unfolded.read_text()
    again = invoke("render", "specs/lecture-elman.yaml", "--format", "dot", "--output", out)
    assert again.exit_code == 2 and "--force" in again.output


def test_render_bad_highlight_writes_nothing(tmp_path):
    result = invoke(
        "render", "specs/sentiment.yaml", "--highlight", "o[3]", "--output", tmp_path / "s.svg"
    )
    assert result.exit_code == 2 and "computed at steps 11" in result.output
    assert list(tmp_path.iterdir()) == []


def test_render_without_dot_keeps_the_dot_source(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = invoke(
        "render",
        "specs/lstm.yaml",
        "--view",
        "folded",
        "--format",
        "png",
        "--output",
        tmp_path / "l.png",
    )
    assert result.exit_code == 6
    assert "apt-get install graphviz" in result.stderr
    assert (tmp_path / "l.dot").read_text().startswith("digraph")
    assert not (tmp_path / "l.png").exists()


def test_run_reports_and_writes_outputs(tmp_path):
    import numpy as np

    x = np.random.default_rng(0).normal(size=(4, 4))
    np.save(tmp_path / "x.npy", x)
    result = invoke("run", "specs/lecture-elman.yaml", "--input", tmp_path / "x.npy")
    assert result.exit_code == 0, result.output
    assert "y: 4x3 (steps, size), steps 0..3" in result.stdout and "y[3] = [" in result.stdout
    out, weights = tmp_path / "y.npz", tmp_path / "w.npz"
    result = invoke(
        "run",
        "specs/lecture-elman.yaml",
        "-i",
        tmp_path / "x.npy",
        "-o",
        out,
        "--save-weights",
        weights,
        "--dtype",
        "float64",
        "--seed",
        3,
    )
    assert result.exit_code == 0, result.output
    first = np.load(out)["y"]
    assert first.shape == (4, 3) and first.dtype == np.float64
    np.testing.assert_allclose(first.sum(axis=1), 1.0)  # a softmax readout
    again = tmp_path / "again.npz"
    result = invoke(
        "run",
        "specs/lecture-elman.yaml",
        "-i",
        tmp_path / "x.npy",
        "-o",
        again,
        "-w",
        weights,
        "--dtype",
        "float64",
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(again)["y"], first)  # exact: the same run, repeated


def test_run_refuses_bad_inputs_with_exit_4(tmp_path):
    import numpy as np

    np.save(tmp_path / "f.npy", np.zeros((5, 3)))
    np.save(tmp_path / "nan.npy", np.full((5, 4), np.nan))
    result = invoke("run", "specs/lecture-elman.yaml", "-i", tmp_path / "f.npy")
    assert result.exit_code == 4 and "expected 4 features" in result.stderr
    result = invoke("run", "specs/lecture-elman.yaml", "-i", tmp_path / "nan.npy")
    assert result.exit_code == 4 and "NaN or Inf" in result.stderr
    allowed = invoke(
        "run", "specs/lecture-elman.yaml", "-i", tmp_path / "nan.npy", "--allow-nonfinite"
    )
    assert allowed.exit_code == 0 and "nan" in allowed.stdout
    result = invoke("run", "specs/encoder-decoder.yaml", "-i", tmp_path / "f.npy")
    assert result.exit_code == 4 and "keyed by input name" in result.stderr


def test_run_refuses_work_over_the_memory_limit(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((64, 500, 50), dtype=np.float32))
    result = invoke("run", "specs/sentiment.yaml", "-i", tmp_path / "x.npy", "--max-memory", "1M")
    assert result.exit_code == 5 and "over the limit of 1.0 MiB" in result.stderr


@pytest.mark.parametrize("command", ["validate", "summary", "deps", "render"])
def test_huge_steps_are_refused_before_allocating(command):
    result = invoke(command, "specs/lecture-elman.yaml", "--steps", 10**12)
    assert result.exit_code == 5
    assert "unrolling to T = 1,000,000,000,000 would need about" in result.stderr


def test_an_inputs_file_holding_one_member_twice_exits_4(tmp_path):
    import warnings
    import zipfile

    import numpy as np

    inputs = tmp_path / "x.npz"
    with warnings.catch_warnings(), zipfile.ZipFile(inputs, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it writes
        for value in (0.0, 1.0):
            with archive.open("x.npy", "w") as member:
                np.lib.format.write_array(member, np.full((1, 4, 3), value, np.float32))
    result = invoke("run", write_spec(tmp_path, LECTURE), "--input", inputs)
    assert result.exit_code == 4, result.output
    assert result.stderr == f"{inputs}: holds the member 'x.npy' twice; " + (
        "which one is meant is unclear, so write each array once\n"
    )
