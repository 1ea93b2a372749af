"""The spec reader: every bad spec is reported at its file, line, column and field path."""

from __future__ import annotations

import codecs
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import SpecError, SpecErrors
from composer.spec.model import NetworkSpec
from composer.spec.reader import MAX_BYTES, SourcedSpec, load_spec, read_spec, read_spec_text
from tests.builders import write_spec
from tests.conftest import operations

# Line numbers below are counted in this text; the comments give the column of each value.
VALID_YAML = """\
version: 1
name: net
inputs:
  - name: x
    size: 3
layers:
  - name: rnn
    kind: elman
    input: x
    state_size: 4
    output: {size: 2, activation: softmax}
outputs:
  - name: y
    from: rnn
"""
# line 1 `1` at col 10; line 2 `net` col 7; line 7 the layer mapping col 5, `rnn` col 11;
# line 8 `elman` col 11; line 9 `x` col 12; line 10 `4` col 17; line 11 `{` col 13,
# `2` col 20, `softmax` col 35; line 13 the output mapping col 5; line 14 `rnn` col 11.

VALID_JSON = """\
{
  "inputs": [{"name": "x", "size": 3}],
  "layers": [
    {"name": "rnn", "kind": "elman", "input": "x", "state_size": 4}
  ],
  "outputs": [{"name": "y", "from": "rnn"}]
}
"""
# line 2 `"x"` col 23; line 4 the layer `{` col 5, `"kind"` value col 29, `"state_size"` key
# col 52 and value col 66; line 6 `}` of the output col 42.

END = "from: rnn"  # the last line of VALID_YAML: appending after it adds line 15

YAML_CASES = [
    # (replace, with, "line:col: path:", part of the message)
    ("state_size: 4", "state_size: -3", "10:17: layers[0].state_size:", "must be > 0, got -3"),
    ("state_size: 4", "state_size: 0", "10:17: layers[0].state_size:", "must be > 0, got 0"),
    ("state_size: 4", "state_size: 2000000", "10:17: layers[0].state_size:", "must be <= 1000000"),
    ("state_size: 4", "state_size: '64'", "10:17: layers[0].state_size:", "got the string '64'"),
    ("state_size: 4", "state_size: true", "10:17: layers[0].state_size:", "integer, got true"),
    # Lax coercion would read these as integers; each is refused where it stands.
    ("version: 1", "version: true", "1:10: version:", "must be 1, got true"),
    ("version: 1", "version: 1.0", "1:10: version:", "must be 1, got 1.0"),
    ("version: 1", "version: '1'", "1:10: version:", "must be 1, got the string '1'"),
    ("name: net", "name: net\nsteps: 3.0", "3:8: steps:", "expected an integer, got 3.0"),
    ("name: net", "name: net\nsteps: true", "3:8: steps:", "expected an integer, got true"),
    ("input: x", "input: x\n    delay: '2'", "10:12: layers[0].delay:", "got the string '2'"),
    ("size: 3", "size: 3.0", "5:11: inputs[0].size:", "expected an integer, got 3.0"),
    ("state_size: 4", "state_size: 2.5", "10:17: layers[0].state_size:", "integer, got 2.5"),
    ("state_size: 4", "state_size: .nan", "10:17: layers[0].state_size:", "integer, got .nan"),
    ("state_size: 4", "state_size: 1.0e+400", "10:17: layers[0].state_size:", "got infinity"),
    # YAML 1.2's core schema: `1e400` is a float (infinity); `1_000` and `0b101` are text.
    ("state_size: 4", "state_size: 1e400", "10:17: layers[0].state_size:", "got infinity"),
    ("state_size: 4", "state_size: 1e3", "10:17: layers[0].state_size:", "integer, got 1000.0"),
    ("state_size: 4", "state_size: 1_000", "10:17: layers[0].state_size:", "string '1_000'"),
    ("state_size: 4", "state_size: 0b101", "10:17: layers[0].state_size:", "string '0b101'"),
    ("state_size: 4", "state_size: 0x_1_0", "10:17: layers[0].state_size:", "string '0x_1_0'"),
    (
        "state_size: 4",
        "state_sze: 4",
        "10:5: layers[0].state_sze:",
        "unknown field `state_sze` (did you mean `state_size`?)",
    ),
    ("    state_size: 4\n", "", "7:5: layers[0]:", "missing required field `state_size`"),
    (
        "kind: elman",
        "kind: elmn",
        "8:11: layers[0].kind:",
        "unknown kind `elmn`; expected one of elman, lstm, gru, dense (did you mean `elman`?)",
    ),
    ("kind: elman", "kind: os.system", "8:11: layers[0].kind:", "unknown kind `os.system`;"),
    ("kind: elman", "kind: torch.nn.LSTM", "8:11: layers[0].kind:", "(did you mean `lstm`?)"),
    ("    kind: elman\n", "", "7:5: layers[0]:", "missing required field `kind`"),
    ("input: x", "input: 3x", "9:12: layers[0].input:", "`3x` is not a name: use letters"),
    ("input: x", "input: []", "9:12: layers[0].input:", "needs at least one entry"),
    ("input: x", "input: [x, 3x]", "9:16: layers[0].input[1]:", "`3x` is not a name"),
    ("input: x", "input: 5", "9:12: layers[0].input:", "expected a name, `{from: name, delay"),
    ("name: rnn", "name: 3x", "7:11: layers[0].name:", "`3x` is not a name"),
    ("name: net", "name: 3x", "2:7: name:", "`3x` is not a name"),
    (
        "softmax",
        "softmx",
        "11:35: layers[0].output.activation:",
        "`softmx` is not one of identity, softmax, sigmoid, tanh (did you mean `softmax`?)",
    ),
    ("{size: 2,", "{size: 0,", "11:20: layers[0].output.size:", "must be > 0, got 0"),
    ("layers:", "layer:", "6:1: layer:", "unknown field `layer` (did you mean `layers`?)"),
    ("layers:", "layer:", "1:1:", "missing required field `layers`"),
    ("layers:", "layers: []\nold:", "6:9: layers:", "needs at least one entry"),
    ("name: net", "name: net\nzzz: 1", "3:1: zzz:", "unknown field `zzz`; allowed: version, name"),
    ("name: net", "name: net\ndescription: 5", "3:14: description:", "expected a string, got 5"),
    ("version: 1", "version: 2", "1:10: version:", "must be 1, got 2"),
    ("version: 1", "steps: 0", "1:8: steps:", "must be >= 1, got 0"),
    ("from: rnn", "frm: rnn", "14:5: outputs[0].frm:", "unknown field `frm` (did you mean `from`?"),
    ("from: rnn", "frm: rnn", "13:5: outputs[0]:", "missing required field `from`"),
    (
        END,
        END + "\nconnections:\n  - {from: rnn, too: rnn}",
        "16:17: connections[0].too:",
        "unknown field `too` (did you mean `to`?)",
    ),
    ("size: 3", "size: 3\n    window: 1..3", "6:13: inputs[0].window:", "`1..3` is not a window"),
    (END, END + "\nalignment: many-to-on", "15:12: alignment:", "(did you mean `many-to-one`?)"),
    (END, END + "\nalignment: {delay: 3}", "15:12: alignment:", "give a `preset` or explicit"),
    (
        END,
        END + "\nalignment: {preset: many-to-one, delay: 2}",
        "15:12: alignment:",
        "`delay` belongs to the `many-to-many` preset",
    ),
    (END, END + "\nalignment: [1]", "15:12: alignment:", "expected a preset name or a mapping"),
    (
        "input: x",
        "input: x\n    bidirectional: true\n    direction: backward",
        "7:5: layers[0]:",
        "`bidirectional: true` already runs both directions; drop `direction`",
    ),
    # YAML 1.2 booleans: `yes` is text, and the strict spec refuses it.
    (
        "input: x",
        "input: x\n    bidirectional: yes",
        "10:20: layers[0].bidirectional:",
        "expected true or false, got the string 'yes'",
    ),
    # Refused by the reader, before validation.
    (
        "name: net",
        "name: !!python/object/apply:os.system ['true']",
        "2:7: name:",
        "YAML tag `!!python/object/apply:os.system` is not allowed; specs hold plain data",
    ),
    ("name: net", "name: !foo net", "2:7: name:", "YAML tag `!foo` is not allowed"),
    ("name: net", "name: !!binary bmV0", "2:7: name:", "YAML tag `!!binary` is not allowed"),
    ("name: net", "name: net\nname: b", "3:1: name:", "duplicate key `name` (first at line 2)"),
    ("name: net", "name: net\n1: x", "3:1:", "keys must be strings, got 1"),
    ("name: net", "name: &n net\ndescription: *n", "2:7:", "anchors and aliases are not allowed"),
    ("state_size: 4", "state_size: 4: 5", "10:18:", "invalid YAML: mapping values are not allowed"),
    (END, END + "\n---\nname: b", "15:1:", "a spec is one YAML document; found a second one"),
]

JSON_CASES = [
    ('"state_size": 4', '"state_size": 1e400', "4:66: layers[0].state_size:", "got infinity"),
    ('"state_size": 4', '"state_size": "64"', "4:66: layers[0].state_size:", "string '64'"),
    ('"state_size": 4', '"state_size": true', "4:66: layers[0].state_size:", "got true"),
    ('"inputs"', '"version": true, "inputs"', "2:14: version:", "must be 1, got true"),
    ('"state_size": 4', '"state_sze": 4', "4:52: layers[0].state_sze:", "unknown field"),
    ('"kind": "elman"', '"kind": "elmn"', "4:29: layers[0].kind:", "unknown kind `elmn`"),
    (
        '"state_size": 4',
        '"state_size": 4, "name": "b"',
        "4:69: layers[0].name:",
        "duplicate key `name` (first at line 4)",
    ),
    ('"state_size": 4', '"state_size": 4,', "4:68: layers[0]:", "JSON allows no trailing comma"),
    ('"rnn"}]', '"rnn"},]', "6:44: outputs:", "JSON allows no trailing comma"),
    ('"state_size": 4', '"state_size": NaN', "4:66: layers[0].state_size:", "NaN and Infinity"),
    ('"state_size": 4', '"state_size" 4', "4:65: layers[0].state_size:", "expected `:`"),
    ('"name": "x"', "\"name\": 'x'", "2:23: inputs[0].name:", "expected a JSON value, got `'`"),
    ('"x", "size"', '"x\\q", "size"', "2:25:", "invalid \\escape"),
    ('"x", "size"', '"\\ud800", "size"', "2:23: inputs[0].name:", "unpaired surrogate"),
    ('"x", "size"', '"x", "a\\nb": 1, "a\\nb": 2, "size"', "2:39: inputs[0].a\\nb:", "duplicate"),
    ("]\n}\n", "]\n}\n}\n", "8:1:", "unexpected text after the JSON value"),
]


def errors_of(path) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        read_spec(path)
    return [str(err) for err in info.value.errors]


def assert_reported(errors: list[str], prefix: str, message: str) -> None:
    assert all("\n" not in err for err in errors), errors
    assert any(err.startswith(prefix + " ") and message in err for err in errors), (
        f"no error starting {prefix!r} with {message!r} in {errors}"
    )


@pytest.mark.parametrize(("old", "new", "where", "message"), YAML_CASES)
def test_bad_yaml_is_reported_at_its_line_column_and_path(tmp_path, old, new, where, message):
    assert old in VALID_YAML
    path = write_spec(tmp_path, VALID_YAML.replace(old, new, 1))
    assert_reported(errors_of(path), f"{path}:{where}", message)


@pytest.mark.parametrize(("old", "new", "where", "message"), JSON_CASES)
def test_bad_json_is_reported_at_its_line_column_and_path(tmp_path, old, new, where, message):
    assert old in VALID_JSON
    path = write_spec(tmp_path, VALID_JSON.replace(old, new, 1), "spec.json")
    assert_reported(errors_of(path), f"{path}:{where}", message)


@pytest.mark.parametrize(
    ("text", "name", "where", "message"),
    [
        ("", "spec.yaml", "1:1:", "the spec is empty"),
        ("# only a comment\n\n", "spec.yaml", "1:1:", "the spec is empty"),
        ("---\n", "spec.yaml", "1:1:", "the spec is empty"),
        (" \n", "spec.json", "1:1:", "the spec is empty"),
        ("- x\n- y\n", "spec.yaml", "1:1:", "expected a mapping at the top level, got a list"),
        ("\n[1, 2]", "spec.json", "2:1:", "expected a mapping at the top level, got a list"),
        ("just text", "spec.yaml", "1:1:", "top level, got the string 'just text'"),
        ("a: [1", "spec.yaml", "1:6:", "invalid YAML: expected ',' or ']'"),
        ("a: \x00", "spec.yaml", "1:4:", "character U+0000 is not allowed in YAML"),
    ],
)
def test_a_document_that_is_not_a_spec_is_refused(tmp_path, text, name, where, message):
    path = write_spec(tmp_path, text, name)
    assert_reported(errors_of(path), f"{path}:{where}", message)


def test_a_valid_spec_loads_and_round_trips(tmp_path):
    sourced = read_spec(write_spec(tmp_path, VALID_YAML))
    assert isinstance(sourced, SourcedSpec)
    assert sourced.spec.layers[0].state_size == 4
    assert sourced.locations[("layers", 0, "state_size")] == (10, 17)
    assert sourced.key_locations[("layers", 0, "state_size")] == (10, 5)
    dumped = sourced.spec.model_dump(mode="json", by_alias=True)
    as_json = write_spec(tmp_path, json.dumps(dumped, indent=2), "again.json")
    as_yaml = write_spec(tmp_path, yaml.safe_dump(dumped), "again.yml")
    assert load_spec(as_json) == load_spec(as_yaml) == sourced.spec
    assert read_spec_text(VALID_JSON, "s.json", "json").spec.outputs[0].source == "rnn"


def test_locate_places_later_errors_at_the_nearest_value(tmp_path):
    path = write_spec(tmp_path, VALID_YAML)
    sourced = read_spec(path)
    unknown = SpecError("unknown layer `rnn2`", ("outputs", 0, "from"))
    assert str(sourced.locate(unknown)) == f"{path}:14:11: outputs[0].from: unknown layer `rnn2`"
    deeper = sourced.locate(SpecError("bad", ("layers", 0, "no", "such")))
    assert (deeper.file, deeper.line, deeper.column) == (str(path), 7, 5)
    assert sourced.locate(SpecError("bad", ("layers", 0, "name")), at_key=True).column == 5
    whole = sourced.locate(SpecError("whole spec"))
    assert (whole.line, whole.column) == (1, 1)


def test_all_errors_are_reported_in_file_order(tmp_path):
    text = VALID_YAML.replace("version: 1", "version: 2").replace("state_size: 4", "state_size: 0")
    path = write_spec(tmp_path, text.replace("from: rnn", "frm: rnn"))
    errors = errors_of(path)
    assert [err.split(": ")[0] for err in errors] == [
        f"{path}:1:10",
        f"{path}:10:17",
        f"{path}:13:5",
        f"{path}:14:5",
    ]


@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        # YAML 1.2 reading of plain scalars, where PyYAML's YAML 1.1 would surprise.
        ("size: 3", "size: 3\n    window: 5:8", "window", "5:8"),
        ("name: x", "name: no", "name", "no"),
        ("size: 3", "size: 0x10", "size", 16),
        ("size: 3", "size: 010", "size", 10),
        ("size: 3", "size: 0o10", "size", 8),
        ("size: 3", "size: +7", "size", 7),
        ("size: 3", "size: 3\n    description: 1_000", "description", "1_000"),
        ("size: 3", "size: 3\n    description: 0b101", "description", "0b101"),
        ("size: 3", "size: 3\n    description: 2020-01-01", "description", "2020-01-01"),
    ],
)
def test_plain_scalars_follow_yaml_1_2(old, new, field, value):
    sourced = read_spec_text(VALID_YAML.replace(old, new, 1), "spec.yaml")
    assert getattr(sourced.spec.inputs[0], field) == value


def test_a_python_tag_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = VALID_YAML.replace("name: net", 'name: !!python/object/apply:os.system ["touch MARKER"]')
    path = write_spec(tmp_path, text)
    assert_reported(errors_of(path), f"{path}:2:7: name:", "YAML tag `!!python/object/apply")
    assert not (tmp_path / "MARKER").exists()


def test_a_billion_laughs_is_refused_at_once(tmp_path):
    lines = ["a: &a [" + ", ".join(["lol"] * 9) + "]"]
    for name, previous in zip("bcdefghij", "abcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    path = write_spec(tmp_path, "\n".join(lines) + "\n")
    errors = errors_of(path)
    assert operations(errors_of, path) < 200_000  # refused before 9^9 references expand
    assert_reported(errors, f"{path}:1:4:", "aliases are not allowed")


@pytest.mark.parametrize("depth", [60, 100_000])
@pytest.mark.parametrize(
    ("name", "opening", "closing"),
    [("spec.yaml", "inputs: " + "[", "]"), ("spec.json", '{"inputs": ' + "[", "]")],
)
def test_deep_nesting_is_an_error_not_a_recursion_error(tmp_path, depth, name, opening, closing):
    prefix, bracket = opening[:-1], opening[-1]
    path = write_spec(tmp_path, prefix + bracket * depth + closing * depth, name)
    # The top-level mapping is level 1, so the 50th bracket opens level 51.
    column = len(prefix) + 50
    assert_reported(errors_of(path), f"{path}:1:{column}:", "nested deeper than 50 levels")


@pytest.mark.parametrize(
    ("name", "text", "kind_at"),
    [("spec.yaml", VALID_YAML, (8, 11)), ("spec.json", VALID_JSON, (4, 29))],
)
def test_a_byte_order_mark_is_accepted(tmp_path, name, text, kind_at):
    path = write_spec(tmp_path, codecs.BOM_UTF8 + text.encode("utf-8"), name)
    assert read_spec(path).locations[("layers", 0, "kind")] == kind_at


def test_text_that_is_not_utf8_is_refused_with_its_offset(tmp_path):
    path = write_spec(tmp_path, b"version: 1\nname: caf\xe9\n")
    assert_reported(errors_of(path), f"{path}:2:10:", "not UTF-8: byte 0xe9 at byte offset 20")


def test_a_file_over_the_size_cap_is_refused(tmp_path):
    path = write_spec(tmp_path, VALID_YAML + "#" * MAX_BYTES)
    assert_reported(errors_of(path), f"{path}:", "larger than the 256 KiB limit")


def test_a_missing_file_is_a_spec_error(tmp_path):
    path = tmp_path / "absent.yaml"
    assert_reported(errors_of(path), f"{path}:", "cannot read the spec")


def test_other_extensions_are_read_as_yaml(tmp_path):
    assert isinstance(load_spec(write_spec(tmp_path, VALID_YAML, "spec.txt")), NetworkSpec)
    assert isinstance(load_spec(write_spec(tmp_path, VALID_JSON, "spec")), NetworkSpec)


# Pieces of YAML and JSON syntax, so that random text often gets past the first character.
SYNTAX = st.sampled_from(
    list("{}[]:,-&*!?|>'\"# \n\t\\abx019.e+~")
    + ["name", "layers", "kind", "---", "!!int", "!!str", "1e400", "NaN", "\ufeff", "\x00"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(SYNTAX, max_size=40).map("".join), st.sampled_from(["yaml", "json"]))
def test_any_text_loads_or_gives_located_one_line_errors(text, fmt):
    try:
        read_spec_text(text, "spec", fmt)
    except SpecErrors as err:
        for error in err.errors:
            assert error.file == "spec" and error.line and error.column
            assert "\n" not in str(error) and "\r" not in str(error)
