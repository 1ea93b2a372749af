"""The commands that read a spec and report on it: validate, summary, deps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from composer.cli.common import (
    AsJson,
    MaxMemory,
    SpecPath,
    Steps,
    reports_errors,
    unrolled_from,
    unused_warnings,
)
from composer.cli.files import Read, file_arguments
from composer.cli.report import (
    format_dependencies,
    summary_data,
    summary_text,
)
from composer.cli.root import app
from composer.draw.highlight import parse_highlight
from composer.engine.memory import (
    check_memory,
    deps_bytes,
    deps_json_bytes,
)
from composer.errors import ComposerError, SpecError, SpecErrors
from composer.graph.deps import dependencies
from composer.output_files import shown

__all__ = ["validate", "summary", "deps"]


@app.command()
@reports_errors
@file_arguments(inputs={"specs": Read.spec})
def validate(
    specs: Annotated[
        list[Path],
        typer.Argument(
            help="One or more spec files.", exists=True, dir_okay=False, metavar="SPEC..."
        ),
    ],
    steps: Steps = None,
    max_memory: MaxMemory = "4G",
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse unused inputs, layers and weights (exit 3).")
    ] = False,
) -> None:
    """Check specs and report every problem with its location.

    Each problem is one line `file:line:col: path: message` on stderr (exit code 3). An
    input, layer or weight that no output depends on at any T is a warning (`warning:`
    after the path), or with `--strict` an error.
    """
    failed: list[SpecError] = []
    for path in specs:
        try:
            sourced, unrolled = unrolled_from(path, steps, max_memory)
        except SpecErrors as err:
            failed += err.errors
        except SpecError as err:
            failed.append(err)
        else:
            found = unused_warnings(sourced, unrolled.folded, "" if strict else "warning: ")
            for warning in [] if strict else found:
                typer.echo(shown(str(warning)), err=True)
            failed += found if strict else []
            if not strict or not found:
                typer.echo(f"{shown(path)}: ok" + (f" ({len(found)} warning(s))" if found else ""))
    if failed:
        raise SpecErrors(failed)


@app.command()
@reports_errors
@file_arguments(inputs={"spec": Read.spec})
def summary(
    spec: SpecPath, steps: Steps = None, as_json: AsJson = False, max_memory: MaxMemory = "4G"
) -> None:
    """Layers, weights and parameter counts (the same for every T)."""
    sourced, unrolled = unrolled_from(spec, steps, max_memory)
    data = summary_data(sourced.spec, unrolled)
    if data["name"] is None:
        data["name"] = spec.stem
    typer.echo(json.dumps(data, indent=2) if as_json else summary_text(data))


@app.command()
@reports_errors
@file_arguments(inputs={"spec": Read.spec})
def deps(
    spec: SpecPath,
    steps: Steps = None,
    as_json: AsJson = False,
    at: Annotated[
        str | None, typer.Option("--at", help="Only this output step, such as `o[7]`.")
    ] = None,
    max_memory: MaxMemory = "4G",
) -> None:
    """Which input steps each output step depends on, as `o[7] <- x[0..7]`."""
    _, unrolled = unrolled_from(spec, steps, max_memory)
    need = deps_bytes(unrolled) + (deps_json_bytes(unrolled) if as_json else 0)
    check_memory(need, max_memory, f"the dependencies at T = {unrolled.steps}")
    found = dependencies(unrolled)
    if at is not None:
        found = _select(found, at, unrolled.steps)
    if as_json:
        typer.echo(json.dumps({o: {str(t): d for t, d in s.items()} for o, s in found.items()}))
        return
    for line in format_dependencies(found):
        typer.echo(line)


def _select(found: dict, at: str, steps: int) -> dict:
    try:
        name, t = parse_highlight(at)  # the same syntax as --highlight: y[-1] is the last step
    except ComposerError:
        raise typer.BadParameter(
            f"expected NAME[t] such as o[7] or o[-1], got {at!r}", param_hint="--at"
        ) from None
    t = t + steps if t < 0 else t
    if name not in found:
        raise typer.BadParameter(
            f"no output {name!r}; outputs: {', '.join(found)}", param_hint="--at"
        )
    if t not in found[name]:
        emitted = ", ".join(map(str, found[name])) or "none"
        raise typer.BadParameter(
            f"{name} is not emitted at step {t}; emitted at {emitted}", param_hint="--at"
        )
    return {name: {t: found[name][t]}}
