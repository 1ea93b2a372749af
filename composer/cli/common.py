"""What the commands share: option types, error reporting, reading a spec, output checks."""

from __future__ import annotations

import functools
import inspect
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated

import networkx as nx
import typer

from composer.cli.outputs import check_outputs
from composer.engine.memory import DEFAULT_MAX_MEMORY, parse_size
from composer.engine.pipeline import unroll_within
from composer.errors import ComposerError, SpecError, SpecErrors
from composer.graph.folded import build
from composer.graph.unrolled import Unrolled
from composer.graph.unused import unused_parts
from composer.output_files import shown
from composer.spec.reader import SourcedSpec, read_spec

__all__ = [
    "SpecPath",
    "Steps",
    "AsJson",
    "MaxMemory",
    "DType",
    "Threads",
    "reports_errors",
    "read_checked",
    "unrolled_from",
    "check_output",
    "unused_warnings",
]

SpecPath = Annotated[
    Path,
    typer.Argument(
        help="A spec file (.yaml, .yml or .json).", exists=True, dir_okay=False, metavar="SPEC"
    ),
]
Steps = Annotated[
    int | None, typer.Option("--steps", "-T", min=1, help="Unroll depth T (default: the spec's).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _size_option(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


MaxMemory = Annotated[
    int,
    typer.Option(
        "--max-memory",
        parser=_size_option,
        metavar="SIZE",
        help="Refuse work estimated to need more memory than this (e.g. 512M, 8G).",
    ),
]


Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        metavar="N",
        help="Threads for the matrix products and PyTorch (default: chosen from the work's "
        "size and how busy the machine is; OMP_NUM_THREADS and the like are respected).",
    ),
]


class DType(str, Enum):
    float32 = "float32"
    float64 = "float64"


def reports_errors(command):
    """Turn the tool's own errors into one line per problem on stderr and the exit code;
    with the app's `--debug` (kept in Typer's context), show the traceback too."""
    signature = inspect.signature(command, eval_str=True)

    @functools.wraps(command)
    def wrapper(_ctx: typer.Context, *args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ComposerError as err:
            if (_ctx.find_root().obj or {}).get("debug"):
                traceback.print_exc()
            problems = err.errors if isinstance(err, SpecErrors) else [err]
            for problem in problems:  # one line each: a file name cannot forge another
                typer.echo(shown(str(problem)), err=True)
            raise typer.Exit(err.exit_code) from None

    # Typer passes the context to a parameter annotated with it
    context = inspect.Parameter(
        "_ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    wrapper.__signature__ = signature.replace(parameters=[context, *signature.parameters.values()])
    return wrapper


def read_checked(path: Path) -> tuple[SourcedSpec, nx.MultiDiGraph]:
    """Read a spec and build its folded graph, every error located in the file."""
    sourced = read_spec(path)
    try:
        return sourced, build(sourced.spec)
    except SpecError as err:
        raise sourced.locate(err) from err


def unrolled_from(
    path: Path, steps: int | None, max_memory: int = DEFAULT_MAX_MEMORY
) -> tuple[SourcedSpec, Unrolled]:
    """Read, build and unroll a spec (T from the spec unless given), errors located."""
    sourced, folded = read_checked(path)
    try:
        return sourced, unroll_within(folded, steps, max_memory=max_memory)
    except SpecError as err:
        raise sourced.locate(err) from err


def check_output(
    path: Path, force: bool, inputs: tuple[Path | None, ...] = (), option: str = "--output"
) -> None:
    """Refuse an output path that would lose data (a usage error) or cannot be written
    (a WriteError): `check_outputs` for one path."""
    check_outputs([(option, path)], force, inputs)


def unused_warnings(sourced: SourcedSpec, folded: nx.MultiDiGraph, prefix: str) -> list[SpecError]:
    """The unused inputs, layers and weights of a spec, located in its file, each message
    opening with `prefix` (`warning: `, or nothing when they are errors)."""
    return [
        sourced.locate(SpecError(prefix + unused.message, unused.path))
        for unused in unused_parts(folded)
    ]
