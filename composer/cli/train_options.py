"""The `train` command's options for held-out data and stopping, and what they become
as `composer.training.train` arguments."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from composer.arrays import declared_bytes, read_arrays
from composer.engine.memory import check_memory
from composer.errors import DataError
from composer.training.checkpoint import CHECKPOINT
from composer.training.history import check_suffix
from composer.training.schedules import GRAMMAR, parse_schedule

__all__ = [
    "SplitName",
    "ValidationData",
    "ValidationSplit",
    "Patience",
    "MinDelta",
    "Monitor",
    "held_out",
    "ScheduleText",
    "Momentum",
    "Nesterov",
    "optimiser",
    "MetricNames",
    "LossChoice",
    "LossKind",
    "check_history",
    "CheckpointDir",
    "CheckpointEvery",
    "ResumeDir",
    "checkpointing",
    "AllowUnnormalised",
    "one_line_warnings",
]


class SplitName(str, Enum):
    random = "random"
    time = "time"


MetricNames = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        help="A metric to report (repeatable): accuracy, top-K, set-accuracy, mae, rmse, "
        "perplexity, bits-per-char; OUTPUT:NAME for one output.",
    ),
]


class LossKind(str, Enum):
    mse = "mse"
    cross_entropy = "cross-entropy"
    binary_cross_entropy = "binary-cross-entropy"


LossChoice = Annotated[
    LossKind,
    typer.Option(
        "--loss", help="mse, cross-entropy (softmax outputs) or binary-cross-entropy (sigmoid)."
    ),
]
AllowUnnormalised = Annotated[
    bool,
    typer.Option(
        "--allow-unnormalised-targets",
        help="Train on cross-entropy targets that do not sum to 1 (warned, not refused).",
    ),
]
ValidationData = Annotated[
    Path | None,
    typer.Option(
        "--validation-data",
        help="Measure on this .npz (keys as --data's) instead of a fraction of --data.",
        exists=True,
        dir_okay=False,
    ),
]
ValidationSplit = Annotated[
    SplitName,
    typer.Option(
        "--validation-split",
        help="random (seeded) or time: hold out the last sequences, in file order.",
    ),
]
Patience = Annotated[
    int | None,
    typer.Option("--patience", min=1, help="Stop after N epochs without improvement."),
]
MinDelta = Annotated[
    float,
    typer.Option("--min-delta", min=0.0, help="What counts as an improvement (--patience)."),
]
Monitor = Annotated[
    str | None,
    typer.Option(
        "--monitor",
        help="What --patience and the best weights follow: loss (default), val_loss, "
        "train_loss or a metric (o.accuracy).",
    ),
]


def held_out(
    validation: float,
    validation_data: Path | None,
    split: SplitName,
    validation_given: bool,
    max_memory,
) -> dict:
    """`train`'s `validation` and `split` arguments: a file's arrays, or the fraction."""
    if validation_data is None:
        return {"validation": validation, "split": split.value}
    if validation_given:
        raise typer.BadParameter(
            "--validation is a fraction of --data; give it or --validation-data, not both",
            param_hint="--validation",
        )
    check_memory(declared_bytes(validation_data), max_memory, f"reading {validation_data}")
    arrays = read_arrays(validation_data)
    return {"validation": arrays, "validation_where": str(validation_data)}


ScheduleText = Annotated[
    str, typer.Option("--schedule", help=f"The learning rate per epoch: {GRAMMAR}.")
]
Momentum = Annotated[
    float | None,
    typer.Option("--momentum", min=0.0, max=0.999999, help="SGD's momentum (0.9)."),
]
Nesterov = Annotated[bool, typer.Option("--nesterov", help="Nesterov momentum (SGD).")]


def optimiser(optimizer: str, momentum: float | None, nesterov: bool, schedule: str) -> dict:
    """`train`'s `momentum`, `nesterov` and `schedule`, checked before anything is read."""
    if optimizer != "sgd" and (momentum is not None or nesterov):
        option = "--momentum" if momentum is not None else "--nesterov"
        raise typer.BadParameter(f"is for --optimizer sgd, not {optimizer}", param_hint=option)
    momentum = 0.9 if momentum is None else momentum
    if nesterov and momentum == 0:
        raise typer.BadParameter(
            "Nesterov momentum needs a --momentum > 0", param_hint="--nesterov"
        )
    try:
        parse_schedule(schedule)
    except DataError as err:
        raise typer.BadParameter(str(err), param_hint="--schedule") from None
    return {"momentum": momentum, "nesterov": nesterov, "schedule": schedule}


def check_history(path: Path) -> None:
    """Refuse a --history name whose format is not known, before anything is read."""
    try:
        check_suffix(path)
    except DataError as err:
        raise typer.BadParameter(str(err), param_hint="--history") from None


CheckpointDir = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="Save the run's whole state in this folder (resumable with --resume).",
        file_okay=False,
    ),
]
CheckpointEvery = Annotated[
    int, typer.Option("--checkpoint-every", min=1, help="Save a checkpoint every N epochs.")
]
ResumeDir = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        help="Go on from the checkpoint in this folder (the same options; more epochs).",
        exists=True,
        file_okay=False,
    ),
]


def checkpointing(
    checkpoint: Path | None, every: int, resume: Path | None, weights: Path | None, force: bool
) -> dict:
    """`train`'s `checkpoint`, `checkpoint_every` and `resume`, checked before training."""
    if resume is not None and weights is not None:
        raise typer.BadParameter(
            "--resume takes the weights from the checkpoint; leave out --weights",
            param_hint="--weights",
        )
    if checkpoint is not None and resume is None and not force:
        if (checkpoint / CHECKPOINT).exists():
            raise typer.BadParameter(
                f"{checkpoint} holds a checkpoint; pass --resume {checkpoint} to go on "
                "from it, or --force to start over",
                param_hint="--checkpoint",
            )
    return {"checkpoint": checkpoint, "checkpoint_every": every, "resume": resume}


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Inside the block, a warning is one line on stderr: `warning: ...`."""
    saved = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        typer.echo(f"warning: {message}", err=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved
