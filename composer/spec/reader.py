"""Read a spec file (YAML or JSON) into a NetworkSpec, with the line and column of every value."""

from __future__ import annotations

import bisect
import math
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.decoder import JSONDecodeError, scanstring
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from composer.errors import SpecError, SpecErrors
from composer.spec.messages import describe, quote, translate
from composer.spec.model import NetworkSpec

__all__ = ["MAX_BYTES", "MAX_DEPTH", "SourcedSpec", "load_spec", "read_spec", "read_spec_text"]

# A spec is a small hand-written file: anything larger is a mistake or an attack.
MAX_BYTES = 256 << 10
MAX_DEPTH = 50  # nested mappings and lists; a real spec needs about five

Path = tuple[str | int, ...]
Position = tuple[int, int]
Locations = Mapping[Path, Position]


@dataclass(frozen=True)
class SourcedSpec:
    """A valid spec with the file it came from and the (line, column) of each value by path.

    `key_locations` holds where each mapping key is written, for errors about the key itself.
    """

    spec: NetworkSpec
    file: str
    locations: Locations
    key_locations: Locations = field(default_factory=dict)

    def locate(self, err: SpecError, *, at_key: bool = False) -> SpecError:
        """`err` placed at its path's value (or key), else at the nearest enclosing value."""
        return _locate(err, self.file, self.locations, self.key_locations, at_key)


def load_spec(path: str | os.PathLike[str]) -> NetworkSpec:
    """The spec in a YAML or JSON file; raises `SpecErrors` listing every problem."""
    return read_spec(path).spec


def read_spec(path: str | os.PathLike[str]) -> SourcedSpec:
    """Read and validate a spec file; `.json` is JSON, anything else is read as YAML."""
    file = os.fspath(path)
    fmt: Literal["yaml", "json"] = "json" if file.lower().endswith(".json") else "yaml"
    try:
        with open(file, "rb") as stream:
            # Read one byte past the limit: enough to know it is too big, never the whole file.
            data = stream.read(MAX_BYTES + 1)
    except OSError as err:
        raise SpecErrors([SpecError(f"cannot read the spec: {err.strerror}", file=file)]) from err
    if len(data) > MAX_BYTES:
        raise SpecErrors([SpecError("the spec is larger than the 256 KiB limit", file=file)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start].decode("utf-8")  # valid up to there: count characters
        message = f"not UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start}"
        error = _placed(SpecError(message), file, _position(before, len(before)))
        raise SpecErrors([error]) from None
    return read_spec_text(text, file, fmt)


def read_spec_text(text: str, file: str, fmt: Literal["yaml", "json"] = "yaml") -> SourcedSpec:
    """Parse and validate spec text; `file` is only used to name the source in errors."""
    # A UTF-8 byte-order mark is legal at the start of a file and carries no meaning: drop it.
    text = text.removeprefix("\ufeff")
    tree = _Tree()
    try:
        if len(text) > MAX_BYTES:
            raise SpecError("the spec is larger than the 256 KiB limit")
        data = _parse_json(text, tree) if fmt == "json" else _parse_yaml(text, tree)
        if not isinstance(data, dict):
            message = f"expected a mapping at the top level, got {describe(data)}"
            raise _error_at(message, tree.values.get((), (1, 1)))
    except SpecError as err:
        raise SpecErrors([_placed(err, file, (err.line or 1, err.column or 1))]) from None
    try:
        spec = NetworkSpec.model_validate(data)
    except ValidationError as err:
        errors = translate(err.errors(), data)
        located = [_locate(e, file, tree.values, tree.keys, at_key) for e, at_key in errors]
        located.sort(key=lambda e: (e.line or 0, e.column or 0))
        raise SpecErrors(located) from None
    values, keys = types.MappingProxyType(tree.values), types.MappingProxyType(tree.keys)
    return SourcedSpec(spec, file, values, keys)


class _Tree:
    """Where each value and each key sits, filled in by a parser as it goes."""

    def __init__(self) -> None:
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}


def _locate(
    err: SpecError, file: str, values: Locations, keys: Locations, at_key: bool
) -> SpecError:
    if at_key and err.path in keys:
        return _placed(err, file, keys[err.path])
    prefixes = (err.path[:end] for end in range(len(err.path), -1, -1))
    found = next((prefix for prefix in prefixes if prefix in values), None)
    return _placed(err, file, values[found] if found is not None else (1, 1))


def _placed(err: SpecError, file: str, position: Position) -> SpecError:
    # Keys are user text: escaped so that the printed path stays on one line.
    path = tuple(quote(part, 60) if isinstance(part, str) else part for part in err.path)
    return SpecError(err.message, path, file=file, line=position[0], column=position[1])


def _error_at(message: str, position: Position, path: Path = ()) -> SpecError:
    return SpecError(message, path, line=position[0], column=position[1])


def _position(text: str, offset: int) -> Position:
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


# ---------------------------------------------------------------- YAML

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + name for name in ("str", "int", "float", "bool", "null"))
_SCALAR_TAGS = (_STR, _INT, _FLOAT, _BOOL, _NULL)


class _SpecLoader(yaml.SafeLoader):
    """Composes nodes only, and refuses anchors, aliases and deep nesting as they are met."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        # Refused before the composer looks an alias up, so an alias bomb costs nothing.
        if isinstance(event, yaml.AliasEvent):
            raise _marked(event.start_mark, "YAML aliases are not allowed in specs")
        if event.anchor is not None:
            raise _marked(event.start_mark, "YAML anchors and aliases are not allowed in specs")
        nested = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if self._depth + nested > MAX_DEPTH:
            raise _marked(event.start_mark, f"the spec is nested deeper than {MAX_DEPTH} levels")
        self._depth += nested
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= nested

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and implicit[0]:
            return _core_schema_tag(value)
        return tag


# Plain scalars follow YAML 1.2's core schema, not PyYAML's 1.1 rules (which read `no` as
# false, `5:8` as 308, `1_000` and `0b101` as integers, `1e3` and `0o10` as strings).
_CORE_SCHEMA = (
    (_NULL, re.compile(r"(?:~|null|Null|NULL|)")),
    (_BOOL, re.compile(r"(?:true|True|TRUE|false|False|FALSE)")),
    (_INT, re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")),
    (
        _FLOAT,
        re.compile(
            r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
        ),
    ),
)


def _core_schema_tag(value: str) -> str:
    """The tag YAML 1.2's core schema gives a plain scalar."""
    for tag, pattern in _CORE_SCHEMA:
        if pattern.fullmatch(value):
            return tag
    return _STR


def _marked(mark: Any, message: str, path: Path = ()) -> SpecError:
    return _error_at(message, (mark.line + 1, mark.column + 1) if mark else (1, 1), path)


# `window: 6:` (a slice starting with a number) reads as a mapping in YAML
_SLICE_VALUE = re.compile(r"([A-Za-z_]\w*):\s*(-?\d+\s*:\s*-?\d*)(?=\s*(?:[,}\]#]|$))")


def _unquoted_window(text: str, mark: Any) -> str:
    """A hint when the line of a YAML error holds an unquoted window such as `6:`."""
    lines = text.splitlines()
    line = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    found = _SLICE_VALUE.search(line)
    if found is None:
        return ""
    key, value = found.group(1), found.group(2).strip()
    return f' (a window such as `{value}` must be quoted: `{key}: "{value}"`)'


def _parse_yaml(text: str, tree: _Tree) -> Any:
    try:
        node = yaml.compose(text, Loader=_SpecLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if err.context == "expected a single document in the stream":
            raise _marked(mark, "a spec is one YAML document; found a second one") from None
        message = f"invalid YAML: {quote(err.problem or err.context, 200)}"
        raise _marked(mark, message + _unquoted_window(text, mark)) from None
    except yaml.reader.ReaderError as err:
        message = f"character U+{err.character:04X} is not allowed in YAML"
        raise _error_at(message, _position(text, err.position)) from None
    if node is None or (node.tag == _NULL and node.value == ""):
        raise SpecError("the spec is empty")
    return _yaml_value(node, (), tree)


def _yaml_value(node: yaml.Node, path: Path, tree: _Tree) -> Any:
    tree.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
        return _yaml_mapping(node, path, tree)
    if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
        return [_yaml_value(item, (*path, i), tree) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
        return _yaml_scalar(node, path)
    tag = node.tag.replace(_TAG, "!!")
    raise _marked(node.start_mark, f"YAML tag `{tag}` is not allowed; specs hold plain data", path)


def _yaml_mapping(node: yaml.MappingNode, path: Path, tree: _Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _yaml_value(key_node, path, _Tree())  # a key is not a value: record nothing
        if not isinstance(key, str):
            message = f"keys must be strings, got {describe(key)}; quote it"
            raise _marked(key_node.start_mark, message, path)
        if key in out:
            first = tree.keys[(*path, key)][0]
            message = f"duplicate key `{quote(key)}` (first at line {first})"
            raise _marked(key_node.start_mark, message, (*path, key))
        tree.keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        out[key] = _yaml_value(value_node, (*path, key), tree)
    return out


def _yaml_scalar(node: yaml.ScalarNode, path: Path) -> Any:
    text = node.value
    try:
        if node.tag == _INT:
            digits = text.replace("_", "").lower()
            sign = -1 if digits[:1] == "-" else 1
            digits = digits[1:] if digits[:1] in ("-", "+") else digits
            base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2])
            # YAML 1.2 again: a leading zero does not make `010` octal.
            return sign * (int(digits[2:], base) if base else int(digits, 10))
        if node.tag == _FLOAT:
            word = text.replace("_", "").lower().lstrip("+")
            special = {".nan": math.nan, ".inf": math.inf, "-.inf": -math.inf}
            return special[word] if word in special else float(word)
        if node.tag == _BOOL:
            return {"true": True, "false": False}[text.lower()]
        if node.tag == _NULL:
            return {"": None, "~": None, "null": None}[text.lower()]
    except (KeyError, ValueError):
        tag = node.tag.replace(_TAG, "!!")
        raise _marked(node.start_mark, f"`{quote(text)}` is not a valid `{tag}`", path) from None
    return text


# ---------------------------------------------------------------- JSON

_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_JSON_WORDS = {"true": True, "false": False, "null": None}


def _parse_json(text: str, tree: _Tree) -> Any:
    return _JsonParser(text, tree).document()


class _JsonParser:
    """Recursive descent over JSON text, by `json`'s rules, recording where values and keys are."""

    def __init__(self, text: str, tree: _Tree) -> None:
        self.text = text
        self.tree = tree
        self.depth = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def mark(self, pos: int) -> Position:
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1] + 1

    def fail(self, pos: int, message: str, path: Path = ()) -> SpecError:
        return _error_at(message, self.mark(pos), path)

    def skip(self, pos: int) -> int:
        return _JSON_SPACE.match(self.text, pos).end()

    def document(self) -> Any:
        pos = self.skip(0)
        if pos == len(self.text):
            raise SpecError("the spec is empty")
        value, pos = self.value(pos, ())
        pos = self.skip(pos)
        if pos != len(self.text):
            raise self.fail(pos, "unexpected text after the JSON value")
        return value

    def value(self, pos: int, path: Path) -> tuple[Any, int]:
        self.tree.values[path] = self.mark(pos)
        char = self.text[pos : pos + 1]
        if char in ("{", "["):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(pos, f"the spec is nested deeper than {MAX_DEPTH} levels")
            result = self.object(pos, path) if char == "{" else self.array(pos, path)
            self.depth -= 1
            return result
        if char == '"':
            return self.string(pos)
        number = _JSON_NUMBER.match(self.text, pos)
        if number:
            try:
                # 1e400 overflows to inf, which the spec's strict types then refuse.
                is_float = number.group(1) or number.group(2)
                return (float if is_float else int)(number.group()), number.end()
            except ValueError:
                raise self.fail(pos, "this number has too many digits", path) from None
        for word, result in _JSON_WORDS.items():
            if self.text.startswith(word, pos):
                return result, pos + len(word)
        if self.text.startswith(("NaN", "Infinity", "-Infinity"), pos):
            raise self.fail(pos, "NaN and Infinity are not JSON", path)
        got = re.match(r"\w+|.|$", self.text[pos : pos + 20], re.DOTALL).group()
        message = f"expected a JSON value, got `{quote(got)}`" if got else "unexpected end of JSON"
        raise self.fail(pos, message, path)

    def string(self, pos: int) -> tuple[str, int]:
        try:
            return scanstring(self.text, pos + 1, True)
        except JSONDecodeError as err:
            # json's messages end in " at" or " starting at", followed by a position we show apart.
            message = err.msg.removesuffix(" at").removesuffix(" starting")
            raise self.fail(err.pos, message[0].lower() + message[1:]) from None

    def object(self, pos: int, path: Path) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        pos = self.skip(pos + 1)
        if self.text.startswith("}", pos):
            return out, pos + 1
        while True:
            if not self.text.startswith('"', pos):
                trailing = " (JSON allows no trailing comma)" if out else ""
                raise self.fail(pos, f"expected a key in double quotes{trailing}", path)
            key, end = self.string(pos)
            if key in out:
                first = self.tree.keys[(*path, key)][0]
                message = f"duplicate key `{quote(key)}` (first at line {first})"
                raise self.fail(pos, message, (*path, key))
            self.tree.keys[(*path, key)] = self.mark(pos)
            pos = self.skip(end)
            if not self.text.startswith(":", pos):
                raise self.fail(pos, "expected `:` after the key", (*path, key))
            out[key], pos = self.value(self.skip(pos + 1), (*path, key))
            pos, more = self.separator(pos, "}", path)
            if not more:
                return out, pos

    def array(self, pos: int, path: Path) -> tuple[list[Any], int]:
        out: list[Any] = []
        pos = self.skip(pos + 1)
        if self.text.startswith("]", pos):
            return out, pos + 1
        while True:
            item, pos = self.value(pos, (*path, len(out)))
            out.append(item)
            pos, more = self.separator(pos, "]", path)
            if not more:
                return out, pos
            if self.text.startswith("]", pos):
                raise self.fail(pos, "JSON allows no trailing comma", path)

    def separator(self, pos: int, close: str, path: Path) -> tuple[int, bool]:
        """After an entry: the next position, and whether another entry follows."""
        pos = self.skip(pos)
        if self.text.startswith(",", pos):
            return self.skip(pos + 1), True
        if self.text.startswith(close, pos):
            return pos + 1, False
        raise self.fail(pos, f"expected `,` or `{close}`", path)


# ---------------------------------------------------------------- Pydantic errors
