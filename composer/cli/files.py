"""The file arguments of each command, declared once: which parameters name files it reads
(and how each is read), which name files it writes.

`@file_arguments(...)` on a command is that declaration. Before the command runs, every
input goes through the reader front (`composer.reading.check_readable`: a regular file,
within `--max-memory` or its kind's cap), and no output may name an input (through
symbolic and hard links), with or without `--force`. While it runs, `declared_inputs()`
gives the inputs to the output checks of paths the command derives itself (`check_outputs`),
so no output check can forget one. `tests/cli/test_file_arguments.py` fails when a
command has a file parameter this declaration does not name.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import typer
import typer.models

from composer.engine.memory import DEFAULT_MAX_MEMORY, parse_size
from composer.output_files import same_file, shown
from composer.reading import MAX_TEXT_BYTES, MAX_VOCAB_BYTES, check_readable, check_total

__all__ = ["Read", "FileArguments", "file_arguments", "declared_inputs", "lengths_file"]


class Read(str, Enum):
    """How a command reads an input file, which decides the limit checked before."""

    spec = "spec"  # a spec: the spec reader's own 256 KiB limit
    arrays = "arrays"  # .npy/.npz/.csv: the file within --max-memory, then the declared shapes
    model = "model"  # an .onnx read whole and handed to ONNX Runtime: twice its size
    state = "state"  # a PyTorch state_dict: estimated from its declared shapes when read
    vocab = "vocab"  # a vocabulary .json: MAX_VOCAB_BYTES
    text = "text"  # `data text`'s files: MAX_TEXT_BYTES in all
    lengths = "lengths"  # `--lengths`: a .npy file read as arrays, else numbers
    folder = "folder"  # a folder (`train --resume`): its files are checked where they are read


@dataclass(frozen=True)
class FileArguments:
    """`inputs`: parameter name -> how it is read; `outputs`: the parameters written;
    `replaces`: output parameter -> the input it may replace in place (read whole first)."""

    inputs: Mapping[str, Read]
    outputs: tuple[str, ...] = ()
    replaces: Mapping[str, str] = field(default_factory=dict)


_CURRENT: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar(
    "declared_inputs", default=()
)


def declared_inputs() -> tuple[Path, ...]:
    """The input files of the command running now, as declared (none outside a command);
    an input an output may replace in place is left out."""
    return _CURRENT.get()


def lengths_file(text: str | None) -> Path | None:
    """The file `--lengths` names (`FILE.npy`), or None for numbers such as `12,5`."""
    return Path(text) if text is not None and text.endswith(".npy") else None


def file_arguments(
    *,
    inputs: Mapping[str, Read],
    outputs: Sequence[str] = (),
    replaces: Mapping[str, str] | None = None,
):
    """Declare a command's file parameters (see the module); checks them before it runs."""
    declared = FileArguments(dict(inputs), tuple(outputs), dict(replaces or {}))

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        missing = [
            name
            for name in [*declared.inputs, *declared.outputs]
            if name not in signature.parameters
        ]
        if missing:  # a typo here would silently leave a file unchecked
            raise TypeError(f"{command.__name__} has no parameter {', '.join(missing)}")
        options = {name: _option(param) for name, param in signature.parameters.items()}

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = bound.arguments
            read = {name: _paths(kind, values[name]) for name, kind in declared.inputs.items()}
            _check_aliases(declared, read, values, options)
            limit = values.get("max_memory", DEFAULT_MAX_MEMORY)
            _check_reads(declared, read, parse_size(limit) if isinstance(limit, str) else limit)
            replaceable = set(declared.replaces.values())
            kept = tuple(p for name, ps in read.items() if name not in replaceable for p in ps)
            token = _CURRENT.set(kept)
            try:
                return command(*args, **kwargs)
            finally:
                _CURRENT.reset(token)

        wrapper.file_arguments = declared
        return wrapper

    return decorate


def _option(param: inspect.Parameter) -> str:
    """The option a parameter is given with, for messages: its first long name."""
    for info in getattr(param.annotation, "__metadata__", ()):
        names = [n for n in getattr(info, "param_decls", None) or () if n.startswith("--")]
        if names:
            return names[0]
        if isinstance(info, typer.models.ArgumentInfo):
            return (info.metavar or param.name).upper()
    return "--" + param.name.replace("_", "-")


def _paths(kind: Read, value) -> list[Path]:
    if value is None:
        return []
    if kind is Read.lengths:
        found = lengths_file(value)
        return [found] if found is not None else []
    return [Path(v) for v in value] if isinstance(value, (list, tuple)) else [Path(value)]


def _check_aliases(declared: FileArguments, read: dict, values: dict, options: dict) -> None:
    """No output names an input, except the one it is declared to replace in place."""
    for output in declared.outputs:
        if values.get(output) is None:
            continue
        path = Path(values[output])
        for name, paths in read.items():
            if declared.replaces.get(output) == name:
                continue
            for given in paths:
                if same_file(path, given):
                    raise typer.BadParameter(
                        f"{shown(path)} is also an input ({options[name]}); choose another "
                        "output file",
                        param_hint=options[output],
                    )


def _check_reads(declared: FileArguments, read: dict, max_memory: int) -> None:
    """Every input through the reader front, with the limit of its kind."""
    for name, kind in declared.inputs.items():
        if kind is Read.text:
            if read[name]:
                check_total(read[name], MAX_TEXT_BYTES, "the text `data text` reads")
            continue
        for path in read[name]:
            if kind is Read.folder:
                continue
            if kind is Read.vocab:
                check_readable(path, cap=MAX_VOCAB_BYTES, what="a vocabulary file")
            elif kind is Read.model:  # the bytes read, and ONNX Runtime's copy of them
                check_readable(path, max_memory=max_memory, factor=2)
            elif kind in (Read.arrays, Read.lengths):
                check_readable(path, max_memory=max_memory)
            else:
                check_readable(path)
