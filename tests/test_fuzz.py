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
#: issue 18's generators run whole commands or large graphs: a few examples in `make test`,
#: FUZZ_EXAMPLES of them in `make fuzz`.
HEAVY = int(os.environ.get("FUZZ_EXAMPLES", "5"))
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

    from composer.cli import app

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


# -- issue 18's classes ---------------------------------------------------------------------
# Output names that collide with Python or NumPy; connection sets hiding zero-delay loops;
# long chains; huge delays; compressed members; special files as outputs.


def heavy(fraction: int):
    """Settings for a generator that runs whole commands or large graphs: a few examples in
    `make test`, FUZZ_EXAMPLES // fraction in `make fuzz`."""
    return settings(
        max_examples=max(3, HEAVY // fraction),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


def _parameter_names() -> list[str]:
    import inspect
    import keyword
    import zipfile

    names = set(keyword.kwlist) | {"self", "args", "kwargs", "kwds", "__class__", "__dict__"}
    for function in (np.savez, np.savez_compressed, np.save, np.load, zipfile.ZipFile.open):
        names |= set(inspect.signature(function).parameters)
    return sorted(names)


PARAMETER_NAMES = _parameter_names()
ARRAY_KEYS = st.sampled_from(PARAMETER_NAMES) | st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=12,
)


@heavy(1)
@given(st.dictionaries(ARRAY_KEYS, st.integers(0, 4), min_size=1, max_size=6))
def test_random_array_names_round_trip(tmp_path_factory, shapes):
    from composer.arrays import write_arrays

    path = tmp_path_factory.mktemp("names") / "o.npz"
    arrays = {key: np.arange(float(n)) for key, n in shapes.items()}
    try:
        write_arrays(path, arrays)
    except Exception as err:  # only a name the zip format cannot hold may fail
        raise AssertionError(f"{sorted(arrays)}: {err!r}") from err
    back = read_arrays(path)
    assert sorted(back) == sorted(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)


IDENTIFIER_NAMES = [n for n in PARAMETER_NAMES if n.isidentifier() and not n.startswith("_")]


@heavy(10)
@given(st.lists(st.sampled_from(IDENTIFIER_NAMES), min_size=1, max_size=3, unique=True))
def test_random_output_names_are_written_as_given(tmp_path, names):
    from typer.testing import CliRunner

    from composer.cli import app

    spec = {
        "inputs": [{"name": "x", "size": 2}],
        "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 3}],
        "outputs": [{"name": n, "from": "rnn"} for n in names],
        "alignment": "many-to-many",
    }
    import json

    (tmp_path / "net.json").write_text(json.dumps(spec))
    np.save(tmp_path / "x.npy", np.ones((3, 2)))
    out = tmp_path / "o.npz"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(tmp_path / "net.json"),
            "-i",
            str(tmp_path / "x.npy"),
            "-o",
            str(out),
            "--force",
        ],
    )
    if result.exit_code == 3:  # a name the schema refuses (a reserved word, say)
        assert "Traceback" not in result.output
        return
    assert result.exit_code == 0, result.output
    assert sorted(read_arrays(out)) == sorted(names)


@st.composite
def connection_sets(draw):
    """Dense layers and random connections, delays mostly >= 1 with a few zeros."""
    count = draw(st.integers(2, 8))
    names = [f"d{i}" for i in range(count)]
    pairs = [(a, b) for a in names for b in names]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=40, unique=True))
    delays = draw(
        st.lists(st.sampled_from([0, 1, 1, 1, 2, 3]), min_size=len(chosen), max_size=len(chosen))
    )
    order = draw(st.permutations(range(len(chosen))))
    return names, [chosen[i] + (delays[i],) for i in order]


@heavy(1)
@given(connection_sets())
def test_random_connection_sets_fail_cleanly(case):
    import networkx as nx

    names, connections = case
    data = {
        "inputs": [{"name": "x", "size": 2}],
        "layers": [{"name": n, "kind": "dense", "input": "x", "size": 2} for n in names],
        "connections": [{"from": a, "to": b, "delay": d} for a, b, d in connections],
        "outputs": [{"name": "y", "from": names[-1]}],
        "alignment": "many-to-many",
    }
    instant = nx.DiGraph((f"{a}.y", f"{b}.y") for a, b, d in connections if d == 0)
    looped = not nx.is_directed_acyclic_graph(instant)
    from tests.builders import lecture

    messages = set()
    for order in (connections, connections[::-1]):
        data["connections"] = [{"from": a, "to": b, "delay": d} for a, b, d in order]
        try:
            graph = build(lecture(**data))
        except SpecError as err:
            messages.add(err.message)
            assert not looped or "algebraic loop" in err.message, err.message
            continue
        assert not looped
        unrolled = unroll(graph, 4)
        assert unrolled.node_count() > 0
    assert len(messages) <= 1  # the named loop does not depend on the order of connections


@heavy(100)
@given(st.integers(1, 400), st.sampled_from(["elman", "gru", "dense"]), st.integers(1, 6))
def test_random_long_chains_fail_cleanly(length, kind, steps):
    from composer.cli.report import summary_data
    from composer.draw.folded_picture import folded_dot
    from composer.draw.unfolded_picture import unfolded_dot
    from tests.builders import lecture

    layers, previous = [], "x"
    for i in range(length):
        size = {"size": 2} if kind == "dense" else {"state_size": 2}
        layers.append({"name": f"l{i}", "kind": kind, "input": previous, **size})
        previous = f"l{i}"
    spec = lecture(
        inputs=[{"name": "x", "size": 2}],
        layers=layers,
        outputs=[{"name": "y", "from": previous}],
        alignment="many-to-many",
    )
    unrolled = unroll(build(spec), steps)
    assert summary_data(spec, unrolled)["layers"][-1]["name"] == previous
    assert unfolded_dot(unrolled).startswith("digraph") and folded_dot(unrolled.folded)


@heavy(20)
@given(st.integers(1, 4), st.integers(1, 200_000), st.integers(1, 400_000))
def test_random_huge_delays_stay_within_their_estimate(layers, delay, steps):
    import tracemalloc

    from composer.engine.memory import unroll_bytes
    from tests.builders import lecture

    chain, previous = [], "x"
    for i in range(layers):
        chain.append(
            {"name": f"l{i}", "kind": "elman", "input": previous, "state_size": 2, "delay": delay}
        )
        previous = f"l{i}"
    spec = lecture(
        inputs=[{"name": "x", "size": 2}],
        layers=chain,
        outputs=[{"name": "y", "from": previous}],
        alignment="many-to-many",
    )
    graph = build(spec)
    tracemalloc.start()
    try:
        unrolled = unroll(graph, steps)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= unroll_bytes(graph, steps) + (1 << 20), (peak, unroll_bytes(graph, steps))
    assert len(unrolled.initial[f"l{layers - 1}.s"]) <= delay


@st.composite
def compressed_archives(draw):
    """An `.npz` of deflated members, some whose headers declare more than they hold."""
    import zipfile

    buffer = io.BytesIO()
    declared = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(draw(st.integers(1, 5))):
            rows = draw(st.integers(0, 5000))
            lie = draw(st.sampled_from([0, 0, 0, 1, 10**6]))
            shape = (rows + lie, 3)
            declared += (rows + lie) * 3 * 8
            with archive.open(f"k{i}.npy", "w") as member:
                np.lib.format.write_array_header_1_0(
                    member, {"descr": "<f8", "fortran_order": False, "shape": shape}
                )
                member.write(bytes(rows * 3 * 8))
    return buffer.getvalue(), declared


@heavy(2)
@given(compressed_archives())
def test_compressed_members_fail_cleanly(tmp_path_factory, archive):
    import tracemalloc

    from composer.arrays import declared_bytes

    data, declared = archive
    path: Path = tmp_path_factory.mktemp("zip") / "c.npz"
    path.write_bytes(data)
    assert declared_bytes(path) == declared
    tracemalloc.start()
    try:
        arrays = read_arrays(path)
    except DataError as err:
        assert "\n" not in str(err)
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert sum(a.nbytes for a in arrays.values()) == declared
    assert peak <= 2 * declared + (1 << 20)


SPECIAL = [
    "fifo",
    "device",
    "dangling",
    "loop",
    "folder",
    "link-to-folder",
    "input",
    "hardlink-to-input",
    "existing",
    "link-to-existing",
]


@heavy(10)
@given(
    st.sampled_from(SPECIAL),
    st.booleans(),
    st.sampled_from(["run", "run-save-weights", "render", "new"]),
)
def test_special_files_as_outputs_fail_cleanly(tmp_path_factory, kind, force, command):
    import os

    from typer.testing import CliRunner

    from composer.cli import app

    folder = tmp_path_factory.mktemp("special")
    spec, inputs = folder / "net.yaml", folder / "x.csv"
    spec.write_text((SPECS[0].parent / "lecture-elman.yaml").read_text())
    inputs.write_text((SPECS[0].parent / "data" / "lecture-x.csv").read_text())
    target = folder / "out"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":  # our own: a broken check must not replace /dev/null
        from tests.test_outputs import private_device

        target = private_device(folder)
    elif kind == "dangling":
        target.symlink_to("nowhere")
    elif kind == "loop":
        target.symlink_to("out")
    elif kind == "folder":
        target.mkdir()
    elif kind == "link-to-folder":
        (folder / "dir").mkdir()
        target.symlink_to("dir")
    elif kind == "input":
        target = spec
    elif kind == "hardlink-to-input":
        os.link(spec, target)
    elif kind == "existing":
        target.write_text("old")
    else:
        (folder / "real").write_text("old")
        target.symlink_to("real")
    before = os.lstat(target)
    args = {
        "run": ["run", spec, "-i", inputs, "-o", target],
        "run-save-weights": ["run", spec, "-i", inputs, "--save-weights", target],
        "render": ["render", spec, "--view", "folded", "-f", "dot", "-o", target],
        "new": ["new", "many-to-one", "-o", target],
    }[command]
    result = CliRunner().invoke(app, [str(a) for a in args] + (["--force"] if force else []))
    assert "Traceback" not in result.output
    replaceable = ("existing", "link-to-existing") + (
        ("input", "hardlink-to-input") if command == "new" else ()  # `new` reads no spec
    )
    allowed = kind in replaceable and force
    if not allowed:
        assert result.exit_code == 2, (kind, force, command, result.output)
        after = os.lstat(target)
        assert (after.st_ino, after.st_mode, after.st_size) == (
            before.st_ino,
            before.st_mode,
            before.st_size,
        )
    else:
        assert result.exit_code == 0, result.output
        assert os.path.islink(target) == (kind == "link-to-existing")
        assert os.lstat(target).st_mode == before.st_mode
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
