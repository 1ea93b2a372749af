"""The commands that help write a spec: `schema` (for editors) and `new` (a starter)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from composer.arrays import atomic_write
from composer.cli.common import (
    check_output,
    reports_errors,
)
from composer.cli.files import file_arguments
from composer.cli.root import app
from composer.output_files import shown
from composer.spec.reader import read_spec_text
from composer.spec.schema import spec_schema
from composer.spec.starters import STARTERS, starter

__all__ = ["schema", "new"]


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema, for editors and their YAML language server."""
    typer.echo(json.dumps(spec_schema(), indent=2))


@app.command()
@reports_errors
@file_arguments(inputs={}, outputs=("output",))
def new(
    preset: Annotated[
        str, typer.Argument(help=f"One of: {', '.join(STARTERS)}.", metavar="PRESET")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter spec for an alignment preset or a design."""
    if preset not in STARTERS:
        raise typer.BadParameter(
            f"{preset!r} is not a preset; choose one of {', '.join(STARTERS)}",
            param_hint="PRESET",
        )
    text = starter(preset)
    read_spec_text(text, f"<new {preset}>", "yaml")  # a starter that does not load is our bug
    if output is None:
        sys.stdout.write(text)
        return
    check_output(output, force)
    atomic_write(output, lambda handle: handle.write(text.encode()), overwrite=force)
    typer.echo(f"wrote {shown(output)}", err=True)
