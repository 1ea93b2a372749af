"""Pydantic's validation errors turned into short, located, human messages."""

from __future__ import annotations

import difflib
import functools
import math
import re
import types
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from composer.errors import SpecError
from composer.spec.model import DenseInit, GRUInit, Layer, LSTMInit, NetworkSpec, RecurrentInit
from composer.spec.windows import WINDOW_PATTERN

__all__ = ["translate", "describe", "quote"]

Path = tuple[str | int, ...]


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
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
# What a field that takes one of several shapes accepts, for a value of none of them.
_UNION_WANTS = {
    "input": "a name, `{from: name, delays: [...]}` or a list of them",
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


def translate(errors: list[Any], data: Any) -> list[tuple[SpecError, bool]]:
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
        # a union inside another (a list item of `input`) explains the outer one too
        inner = any(done and other[: len(path)] == path for other, done in unions.items())
        if not explained and not inner:
            wants = _UNION_WANTS.get(str(path[-1]), "a value of another type")
            got = describe(functools.reduce(_child, path, data))
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
        message = f"unknown {where.discriminator} `{quote(tag)}`; expected one of "
        return SpecError(message + ", ".join(tags) + hint, (*path, where.discriminator)), False
    return SpecError(_value_message(kind, value, ctx, where, error["msg"]), path), False


def _value_message(kind: str, value: Any, ctx: dict[str, Any], where: _Where, msg: str) -> str:
    if kind in _BOUNDS:
        operator, bound = _BOUNDS[kind]
        return f"must be {operator} {ctx[bound]}, got {describe(value)}"
    if kind in _WANTS:
        return f"expected {_WANTS[kind]}, got {describe(value)}"
    if kind == "literal_error":
        return _literal_message(value, where.ann, ctx)
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == WINDOW_PATTERN:
        return f"`{quote(value)}` is not a window: expected `start:stop` such as `0:5` or `-1:`"
    if kind == "string_pattern_mismatch":
        rule = "use letters, digits and `_`, not starting with a digit"
        return f"`{quote(value)}` is not a name: {rule}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long, got {len(value)}"
    if kind == "too_short":
        least = ctx["min_length"]
        return "needs at least one entry" if least == 1 else f"needs at least {least} entries"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "string_unicode":
        return "holds an unpaired surrogate (a `\\ud800`-style escape): not valid Unicode"
    return msg


def _literal_message(value: Any, ann: Any, ctx: dict[str, Any]) -> str:
    choices = [str(c) for c in get_args(ann)] or re.findall(r"'([^']*)'", ctx["expected"])
    if len(choices) == 1:
        return f"must be {choices[0]}, got {describe(value)}"
    listed = ", ".join(choices)
    if not isinstance(value, str):
        return f"expected one of {listed}, got {describe(value)}"
    return f"`{quote(value)}` is not one of {listed}{_did_you_mean(value, choices)}"


#: each layer kind's model, and its `init` model, by kind: a field one kind lacks may
#: belong to another, and the message then names the kinds that take it
_KIND_MODELS = {
    get_args(m.model_fields["kind"].annotation)[0]: m for m in get_args(get_args(Layer)[0])
}
_INIT_MODELS = {"elman": RecurrentInit, "lstm": LSTMInit, "gru": GRUInit, "dense": DenseInit}


def _kinds_taking(key: str, model: Any) -> str:
    """`; only lstm layers take it` when `model` is a layer (or layer init) model without
    the field `key` that other kinds have; else ''."""
    for family, what in ((_KIND_MODELS, "layers take it"), (_INIT_MODELS, "layers' `init` has it")):
        if model in family.values():
            takers = [kind for kind, m in family.items() if key in m.model_fields]
            if takers:
                listed = ", ".join(takers[:-1]) + " and " if len(takers) > 1 else ""
                return f": only {listed}{takers[-1]} {what}"
    return ""


# fields some kinds take and others have fixed, with what the others do instead
_FIXED = {
    "activation": (
        "their activations are fixed (sigmoid gates and tanh candidates, as in PyTorch); "
        "`activation` belongs to `elman` and `dense` layers"
    ),
}


def _unknown_field(key: str, model: Any) -> str:
    fields = model.model_fields if model else {}
    allowed = [info.alias or name for name, info in fields.items()]
    if key in _FIXED and "kind" in fields:
        kind = get_args(fields["kind"].annotation)[0]
        return f"`{kind}` layers take no `{key}`: {_FIXED[key]}; they take: {', '.join(allowed)}"
    takers = _kinds_taking(key, model)
    if takers:
        return f"unknown field `{quote(key)}`{takers}"
    hint = _did_you_mean(key, allowed + list(fields))
    return f"unknown field `{quote(key)}`" + (hint or f"; allowed: {', '.join(allowed)}")


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


def describe(value: Any) -> str:
    """A received value as a reader would name it: `the string '64'`, `true`, `a list`."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else "infinity" if value > 0 else "-infinity"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"  # too long to print, or to read
    if isinstance(value, (int, float)):
        return quote(repr(value))
    if isinstance(value, str):
        return f"the string {quote(repr(value))}"
    return "a mapping" if isinstance(value, dict) else "a list"


def quote(text: Any, limit: int = 40) -> str:
    """User text made safe for a one-line message: escapes control characters, cut to `limit`."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."
