"""Fuzzing: mutated specs and array files raise only the project's own errors, located.

`make test` runs a few hundred examples; `make fuzz` sets FUZZ_EXAMPLES for thousands.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.arrays import read_arrays
from composer.errors import DataError, SpecError, SpecErrors
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.spec.reader import read_spec_text
from tests.conftest import SPECS

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TEXTS = [p.read_text() for p in SPECS]
TOKENS = [
    "-1",
    "0",
    "2.5",
    "'64'",
    "true",
    "null",
    ".nan",
    "1e400",
    "[]",
    "{}",
    "elman",
    "lstm",
    "softmax",
    "x",
    "o",
    "':'",
    "'0:1'",
    "'-1:'",
    "many-to-one",
    "!!python/none",
    "&a",
    "*a",
    "\t",
    "\n  ",
    ":",
    "- ",
    "#",
    '"',
    "\\",
    "\x00",
    "é",
]


@st.composite
def mutated(draw, texts):
    """A spec text with a few edits: tokens swapped in, lines dropped or duplicated."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        choice = draw(st.integers(0, 3))
        if choice == 0:
            end = min(len(text), pos + draw(st.integers(0, 12)))
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[end:]
        elif choice == 1:
            lines = text.splitlines(keepends=True)
            del lines[pos % max(1, len(lines))]
            text = "".join(lines)
        elif choice == 2:
            lines = text.splitlines(keepends=True)
            line = lines[pos % max(1, len(lines))] if lines else ""
            text = text[:pos] + line + text[pos:]
        else:
            text = text[:pos] + draw(st.text(max_size=8)) + text[pos:]
    return text


def check_spec(text: str, fmt: str) -> None:
    """Load, build and unroll; only located SpecErrors may escape."""
    try:
        sourced = read_spec_text(text, "fuzz." + fmt, fmt)
        try:
            unroll(build(sourced.spec), min(sourced.spec.steps, 50))
        except SpecError as err:
            raise SpecErrors([sourced.locate(err)]) from err
    except SpecErrors as err:
        for one in err.errors:
            assert one.file == "fuzz." + fmt and one.line is not None, str(one)
            assert "\n" not in str(one)


@FUZZ
@given(mutated(TEXTS))
def test_mutated_yaml_specs_fail_cleanly(text):
    check_spec(text, "yaml")


def _as_json(text: str) -> str:
    import json

    import yaml

    return json.dumps(yaml.safe_load(text), indent=1)


@FUZZ
@given(mutated([_as_json(t) for t in TEXTS]))
def test_mutated_json_specs_fail_cleanly(text):
    check_spec(text, "json")


def _npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{"rnn.Wx": np.ones((3, 4)), "rnn.b": np.arange(4.0)})
    return buffer.getvalue()


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 5, 3), dtype=np.float32))
    return buffer.getvalue()


@st.composite
def corrupted(draw):
    data = bytearray(draw(st.sampled_from([_npz_bytes(), _npy_bytes()])))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.integers(0, 2))
        pos = draw(st.integers(0, len(data)))
        if action == 0 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif action == 1:
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(max_size=16))
    return bytes(data)


@FUZZ
@given(corrupted())
def test_corrupted_array_files_fail_cleanly(tmp_path_factory, data):
    path: Path = tmp_path_factory.mktemp("fuzz") / "w.npz"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            arrays = read_arrays(path)
        except DataError as err:
            assert str(path) in str(err) and "\n" not in str(err)
            return
    assert all(isinstance(a, np.ndarray) and not a.dtype.hasobject for a in arrays.values())


# -- values from the JSON Schema's types put at random field paths ---------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.sampled_from(["elman", "x", ":", "0:1", "-1:", "softmax"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, prefix + (i,))


@st.composite
def schema_mutated(draw):
    """A spec from specs/ with one field (or a new one) given a value of another type."""
    import copy

    import yaml

    data = copy.deepcopy(yaml.safe_load(draw(st.sampled_from(TEXTS))))
    paths = [p for p in _paths(data) if p]
    path = draw(st.sampled_from(paths))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    key = (
        path[-1]
        if draw(st.integers(0, 4))
        else draw(
            st.sampled_from(
                [
                    "kind",
                    "state_size",
                    "delay",
                    "window",
                    "active",
                    "initial_state",
                    "bidirectional",
                    "direction",
                    "from",
                    "to",
                    "output",
                    "steps",
                    "extra",
                ]
            )
        )
    )
    value = draw(JSON_VALUES)
    if isinstance(parent, list) and isinstance(key, int):
        parent[key] = value
    elif isinstance(parent, dict):
        parent[key] = value
    return data


@FUZZ
@given(schema_mutated(), st.sampled_from(["yaml", "json"]))
def test_schema_typed_mutations_fail_cleanly(data, fmt):
    import json

    import yaml

    text = json.dumps(data) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
    check_spec(text, fmt)


@settings(
    max_examples=max(20, EXAMPLES // 5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mutated(TEXTS))
def test_cli_on_mutated_specs_exits_with_a_documented_code(tmp_path, text):
    from typer.testing import CliRunner

    from composer.cli.app import app

    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for command in (
        ["validate", str(path)],
        ["summary", str(path), "--json"],
        ["deps", str(path), "--steps", "6"],
    ):
        result = CliRunner().invoke(app, command)
        assert result.exit_code in (0, 3), (command, result.output)
        assert "Traceback" not in result.output
        if result.exit_code == 3:
            assert all(line.startswith(str(path) + ":") for line in result.stderr.splitlines())
