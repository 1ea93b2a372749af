"""Read a spec file (YAML or JSON) into a NetworkSpec, with the line and column of every value."""

from __future__ import annotations

import bisect
import difflib
import math
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.decoder import JSONDecodeError, scanstring
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from composer.errors import SpecError, SpecErrors
from composer.spec import WINDOW_PATTERN, NetworkSpec

__all__ = ["MAX_BYTES", "MAX_DEPTH", "SourcedSpec", "load_spec", "read_spec", "read_spec_text"]

MAX_BYTES = (
    1 << 20
)  # a spec is a small hand-written file; anything larger is a mistake or an attack
MAX_DEPTH = 50  # nested mappings and lists; a real spec needs about five

Path = tuple[str | int, ...]
Position = tuple[int, int]


@dataclass(frozen=True)
class SourcedSpec:
    """A valid spec with the file it came from and the (line, column) of each value by path.

    `key_locations` holds where each mapping key is written, for errors about the key itself.
    """

    spec: NetworkSpec
    file: str
    locations: Mapping[Path, Position]
    key_locations: Mapping[Path, Position] = field(default_factory=dict)

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
        raise SpecErrors([SpecError("the spec is larger than the 1 MiB limit", file=file)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, column = _position(data, err.start)
        message = f"not UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start}"
        raise SpecErrors([SpecError(message, file=file, line=line, column=column)]) from None
    return read_spec_text(text, file, fmt)


def read_spec_text(text: str, file: str, fmt: Literal["yaml", "json"] = "yaml") -> SourcedSpec:
    """Parse and validate spec text; `file` is only used to name the source in errors."""
    # A UTF-8 byte-order mark is legal at the start of a file and carries no meaning: drop it.
    text = text.removeprefix("\ufeff")
    tree = _Tree()
    try:
        if len(text) > MAX_BYTES:
            raise SpecError("the spec is larger than the 1 MiB limit")
        data = _parse_json(text, tree) if fmt == "json" else _parse_yaml(text, tree)
        if not isinstance(data, dict):
            where = tree.values.get((), (1, 1))
            got = _describe(data)
            raise SpecError(
                f"expected a mapping at the top level, got {got}",
                (),
                line=where[0],
                column=where[1],
            )
    except SpecError as err:
        raise SpecErrors([err.located(file, err.line or 1, err.column or 1)]) from None
    try:
        spec = NetworkSpec.model_validate(data)
    except ValidationError as err:
        located = [
            _locate(spec_err, file, tree.values, tree.keys, at_key)
            for spec_err, at_key in _translate(err.errors(), data)
        ]
        located.sort(key=lambda e: (e.line or 0, e.column or 0))
        raise SpecErrors(located) from None
    return SourcedSpec(spec, file, tree.values, tree.keys)


def _locate(
    err: SpecError,
    file: str,
    values: Mapping[Path, Position],
    keys: Mapping[Path, Position],
    at_key: bool,
) -> SpecError:
    if at_key and err.path in keys:
        return err.located(file, *keys[err.path])
    for end in range(len(err.path), -1, -1):
        if err.path[:end] in values:
            return err.located(file, *values[err.path[:end]])
    return err.located(file, 1, 1)


class _Tree:
    """Where each value and each key sits, filled in by a parser as it goes."""

    def __init__(self) -> None:
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}


def _position(text: bytes | str, offset: int) -> Position:
    newline = b"\n" if isinstance(text, bytes) else "\n"
    line_start = text.rfind(newline, 0, offset) + 1
    return text.count(newline, 0, offset) + 1, offset - line_start + 1


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
            # Plain scalars follow YAML 1.2: PyYAML's 1.1 rules would read `no` as false,
            # `5:8` as the integer 308 and a date as a timestamp; here they stay text.
            yaml11_bool = tag == _BOOL and value.lower() not in ("true", "false")
            if yaml11_bool or (tag in (_INT, _FLOAT) and ":" in value) or tag not in _SCALAR_TAGS:
                return _STR
        return tag


def _marked(mark: Any, message: str, path: Path = ()) -> SpecError:
    if mark is None:
        return SpecError(message, path)
    return SpecError(message, path, line=mark.line + 1, column=mark.column + 1)


def _parse_yaml(text: str, tree: _Tree) -> Any:
    try:
        node = yaml.compose(text, Loader=_SpecLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if err.context == "expected a single document in the stream":
            raise _marked(mark, "a spec is one YAML document; found a second one") from None
        raise _marked(mark, f"invalid YAML: {err.problem or err.context}") from None
    except yaml.reader.ReaderError as err:
        line, column = _position(text, err.position)
        message = f"character U+{err.character:04X} is not allowed in YAML"
        raise SpecError(message, line=line, column=column) from None
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
            message = f"keys must be strings, got {_describe(key)}; quote it"
            raise _marked(key_node.start_mark, message, path)
        if key in out:
            first = tree.keys[(*path, key)][0]
            message = f"duplicate key `{_quote(key)}` (first at line {first})"
            raise _marked(key_node.start_mark, message, (*path, key))
        tree.keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        out[key] = _yaml_value(value_node, (*path, key), tree)
    return out


def _yaml_scalar(node: yaml.ScalarNode, path: Path) -> Any:
    text = node.value
    try:
        if node.tag == _INT:
            digits = text.replace("_", "").lower()
            sign = -1 if digits.startswith("-") else 1
            digits = digits.lstrip("+-")
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
        raise _marked(node.start_mark, f"`{_quote(text)}` is not a valid `{tag}`", path) from None
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
        line, column = self.mark(pos)
        return SpecError(message, path, line=line, column=column)

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
        raise self.fail(
            pos,
            f"expected a JSON value, got `{_quote(got)}`" if got else "unexpected end of JSON",
            path,
        )

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
                message = f"duplicate key `{_quote(key)}` (first at line {first})"
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

_WANTS = {
    "int_type": "an integer",
    "bool_type": "true or false",
    "string_type": "a string",
    "float_type": "a number",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
# What a field that takes one of several shapes accepts, for a value of none of them.
_UNION_WANTS = {
    "input": "a name or a list of names",
    "alignment": "a preset name or a mapping with `preset` or `inputs`/`outputs`",
}


class _Where(NamedTuple):
    """Where a pydantic error points, in spec terms."""

    path: Path  # pydantic's loc without union tags and member labels
    model: Any  # the model holding the last path element, if known
    ann: Any  # the annotation at the path, if known
    discriminator: str | None  # set when `ann` is a tagged union
    union: Path | None  # the path of an untagged union the loc went through
    off_member: bool  # the error is about a union member the value's shape rules out


def _translate(errors: list[Any], data: Any) -> list[tuple[SpecError, bool]]:
    """Pydantic's errors as SpecErrors, each with whether it points at a key."""
    out: list[tuple[SpecError, bool]] = []
    unions: dict[Path, bool] = {}  # union path -> some error explains it
    for error in errors:
        where = _walk(error["loc"], data)
        if where.union is not None:
            unions.setdefault(where.union, False)
            if where.off_member or (where.path == where.union and error["type"] in _WANTS):
                continue
            unions[where.union] = True
        out.append(_spec_error(error, where))
    for path, explained in unions.items():
        if not explained:
            wants = _UNION_WANTS.get(str(path[-1]), "a value of another type")
            got = _describe(_get(data, path))
            out.append((SpecError(f"expected {wants}, got {got}", path), False))
    unique = {(err.path, err.message): (err, at_key) for err, at_key in out}
    return list(unique.values())


def _walk(loc: tuple[Any, ...], data: Any) -> _Where:
    """Follow pydantic's loc through the spec's types, keeping only what names the data."""
    ann, discriminator = _unwrap(NetworkSpec)
    path: list[str | int] = []
    model, union, off_member, value = None, None, False, data
    for item in loc:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model, info = ann, _field(ann, item)
            ann, discriminator = _unwrap(info.annotation) if info else (None, None)
        elif get_origin(ann) is list and isinstance(item, int):
            ann, discriminator = _unwrap(get_args(ann)[0])
        elif _is_union(ann) and discriminator:
            member = next((m for m in get_args(ann) if item in _tags(m, discriminator)), None)
            ann, discriminator = _unwrap(member)
            continue
        elif _is_union(ann):
            # An untagged union: pydantic reports each member; keep those matching the value.
            members = [_unwrap(m)[0] for m in get_args(ann)]
            union = tuple(path)
            off_member = off_member or _label_shape(str(item), members) != _shape(value)
            ann = next((m for m in members if _ann_shape(m) == _shape(value)), None)
            discriminator = None
            continue
        path.append(item)
        value = _child(value, item)
    return _Where(tuple(path), model, ann, discriminator, union, off_member)


def _spec_error(error: Any, where: _Where) -> tuple[SpecError, bool]:
    kind, value, ctx, path = error["type"], error.get("input"), error.get("ctx", {}), where.path
    if kind == "extra_forbidden":
        return SpecError(_unknown_field(str(path[-1]), where.model), path), True
    if kind == "missing":
        return SpecError(f"missing required field `{path[-1]}`", path[:-1]), False
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [t for m in get_args(where.ann) for t in _tags(m, where.discriminator)]
        if kind == "union_tag_not_found":
            message = f"missing required field `{where.discriminator}`; expected one of "
            return SpecError(message + ", ".join(tags), path), False
        tag = str(ctx.get("tag"))
        # A Python path such as `torch.nn.LSTM` is never imported, but its last part may help.
        last = tag.rsplit(".", 1)[-1].lower()
        hint = _did_you_mean(tag, tags) or (f" (did you mean `{last}`?)" if last in tags else "")
        message = f"unknown {where.discriminator} `{_quote(tag)}`; expected one of "
        return SpecError(message + ", ".join(tags) + hint, (*path, where.discriminator)), False
    return SpecError(_value_message(kind, value, ctx, where, error["msg"]), path), False


def _value_message(kind: str, value: Any, ctx: dict[str, Any], where: _Where, msg: str) -> str:
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}
    bounds |= {"less_than_equal": "<="}
    limit = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt"}
    limit |= {"less_than_equal": "le"}
    if kind in bounds:
        return f"must be {bounds[kind]} {ctx[limit[kind]]}, got {_describe(value)}"
    if kind in _WANTS:
        return f"expected {_WANTS[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        return _literal_message(value, where.ann, ctx)
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == WINDOW_PATTERN:
        return f"`{_quote(value)}` is not a window: expected `start:stop` such as `0:5` or `-1:`"
    if kind == "string_pattern_mismatch":
        rule = "use letters, digits and `_`, not starting with a digit"
        return f"`{_quote(value)}` is not a name: {rule}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long, got {len(value)}"
    if kind == "too_short":
        least = ctx["min_length"]
        return "needs at least one entry" if least == 1 else f"needs at least {least} entries"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return msg


def _literal_message(value: Any, ann: Any, ctx: dict[str, Any]) -> str:
    choices = [str(c) for c in get_args(ann)] or re.findall(r"'([^']*)'", ctx["expected"])
    if len(choices) == 1:
        return f"must be {choices[0]}, got {_describe(value)}"
    listed = ", ".join(choices)
    if not isinstance(value, str):
        return f"expected one of {listed}, got {_describe(value)}"
    return f"`{_quote(value)}` is not one of {listed}{_did_you_mean(value, choices)}"


def _unknown_field(key: str, model: Any) -> str:
    fields = model.model_fields if model else {}
    allowed = [info.alias or name for name, info in fields.items()]
    hint = _did_you_mean(key, allowed + list(fields))
    return f"unknown field `{_quote(key)}`" + (hint or f"; allowed: {', '.join(allowed)}")


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


# ---------------------------------------------------------------- types and values


def _unwrap(ann: Any) -> tuple[Any, str | None]:
    """`ann` without Annotated and Optional, and the union discriminator found on the way."""
    discriminator = None
    while True:
        if get_origin(ann) is Annotated:
            ann, *meta = get_args(ann)
            found = [m.discriminator for m in meta if isinstance(m, FieldInfo) and m.discriminator]
            discriminator = found[0] if found else discriminator
        elif _is_union(ann) and type(None) in get_args(ann):
            rest = tuple(a for a in get_args(ann) if a is not type(None))
            ann = rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007 (a runtime tuple)
        else:
            return ann, discriminator


def _is_union(ann: Any) -> bool:
    return get_origin(ann) in (Union, types.UnionType)


def _field(model: type[BaseModel], key: Any) -> FieldInfo | None:
    return next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)


def _tags(member: Any, discriminator: str | None) -> tuple[Any, ...]:
    fields = getattr(member, "model_fields", {})
    return get_args(fields[discriminator].annotation) if discriminator in fields else ()


def _shape(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"


def _ann_shape(ann: Any) -> str:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "mapping"
    return "list" if get_origin(ann) is list else "scalar"


def _label_shape(label: str, members: list[Any]) -> str:
    """The shape of the union member pydantic names with `label`, such as `list[...]`."""
    models = [m.__name__ for m in members if _ann_shape(m) == "mapping"]
    if label.startswith("list["):
        return "list"
    return "mapping" if any(name in label for name in models) else "scalar"


def _child(value: Any, item: Any) -> Any:
    if isinstance(value, dict):
        return value.get(item)
    if isinstance(value, list) and isinstance(item, int) and 0 <= item < len(value):
        return value[item]
    return None


def _get(data: Any, path: Path) -> Any:
    for item in path:
        data = _child(data, item)
    return data


def _describe(value: Any) -> str:
    """A received value as a reader would name it: `the string '64'`, `true`, `a list`."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else "infinity" if value > 0 else "-infinity"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"  # too long to print, or to read
    if isinstance(value, (int, float)):
        return _quote(repr(value))
    if isinstance(value, str):
        return f"the string {_quote(repr(value))}"
    return "a mapping" if isinstance(value, dict) else "a list"


def _quote(text: Any, limit: int = 40) -> str:
    """User text made safe for a one-line message: escapes control characters, cut to `limit`."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."
