"""The output checks of a command: every output path at once, as usage errors (exit 2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import typer

from composer.cli.files import declared_inputs
from composer.errors import WriteError
from composer.output_files import output_problem, unwritable

__all__ = ["check_outputs"]


def check_outputs(
    outputs: Mapping[str, Path | None] | Iterable[tuple[str, Path | None]],
    force: bool,
    inputs: Iterable[Path | None] = (),
) -> None:
    """Refuse outputs that would lose data (usage errors, exit 2): each checked as
    `check_output` does, and no two naming one file (through links); an output whose folder
    is not writable is a WriteError (exit 5). `outputs` pairs an option (`--output`) with its path.
    The inputs are `inputs` and those the running command declares (`declared_inputs`).
    """
    pairs = list(outputs.items() if isinstance(outputs, Mapping) else outputs)
    inputs = (*inputs, *declared_inputs())
    earlier: list[Path] = []
    for option, path in pairs:
        if path is None:
            continue
        problem = output_problem(path, force, inputs, earlier, writable=False)
        if problem is not None:
            raise typer.BadParameter(problem, param_hint=option)
        problem = unwritable(path)
        if problem is not None:  # permissions: exit 5, as when the write itself fails
            raise WriteError(problem)
        earlier.append(path)
