"""What `train` says and writes at the end: the best weights (and the curve), the
summary line on stderr, with `--json` the summary as JSON on stdout; with `--history`
the per-epoch file, rewritten after every epoch."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from composer.arrays import atomic_write, write_arrays
from composer.draw.curve import loss_curve_svg
from composer.draw.curve_png import loss_curve_png
from composer.output_files import shown
from composer.signals import shielded
from composer.training.checkpoint import saved_history
from composer.training.history import HistoryFile
from composer.training.loop import Epoch, TrainResult
from composer.training.stopping import stopped_warning
from composer.training.summary import history_row

__all__ = ["HistoryPath", "TrainJson", "Report"]

HistoryPath = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="Write every epoch's losses, metrics, rate and time here (.csv or .jsonl).",
        dir_okay=False,
    ),
]
TrainJson = Annotated[
    bool, typer.Option("--json", help="Print a summary of the run as JSON on stdout.")
]


def _clean(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


class Report:
    """A run's files and words. `start` says what epoch 0's weights were: `untrained`
    (the seeded init), `given` (--weights) or `resumed` (a checkpoint's)."""

    def __init__(self, history: Path | None, as_json: bool, force: bool, start: str, resume=None):
        rows = []
        if resume is not None and history is not None:  # the file goes on where it was
            rows = [history_row(Epoch(**fields)) for fields in saved_history(resume)]
        self.file = HistoryFile(history, force, rows) if history is not None else None
        self.as_json, self.force, self.start = as_json, force, start

    def epoch(self, record) -> None:
        if self.file is not None:
            self.file.add(record)

    def finish(self, result: TrainResult, output: Path, curve: Path | None, title: str) -> None:
        """Write the best weights (and the curve), say what happened; exit 130 if
        interrupted."""
        with shielded():  # a second Ctrl-C must not cost the weights the first one kept
            write_arrays(output, result.params, overwrite=self.force)
            if curve is not None:
                if curve.suffix.lower() == ".png":
                    picture = loss_curve_png(result.history, title)
                else:
                    picture = loss_curve_svg(result.history, title).encode()
                atomic_write(curve, lambda h: h.write(picture), overwrite=self.force)
        first = result.history[0]
        which = "validation" if first.val_loss is not None else "training"
        value = first.val_loss if first.val_loss is not None else first.train_loss
        said = {"untrained": "untrained", "given": "at the start (--weights)"}.get(
            self.start, "at epoch 0"
        )
        summary = (
            f"{which} loss {value:.4g} {said}, best {result.best_loss:.4g} at epoch "
            f"{result.best_epoch} ({result.steps_per_second:.0f} updates/s); wrote {shown(output)}"
        )
        if curve is not None:
            summary += f" and {shown(curve)}"
        warning = stopped_warning(result)
        if warning:
            typer.echo(warning, err=True)
        if self.as_json:
            typer.echo(json.dumps(self.data(result, output, curve), indent=2))
        if result.interrupted:
            typer.echo(f"interrupted: {summary}", err=True)
            raise typer.Exit(130)
        typer.echo(summary, err=True)

    def data(self, result: TrainResult, output: Path, curve: Path | None) -> dict:
        """The run as plain data (what --json prints)."""
        first, last = result.history[0], result.history[-1]
        start = first.val_loss if first.val_loss is not None else first.train_loss
        return {
            "weights": str(output),
            "curve": None if curve is None else str(curve),
            "history": None if self.file is None else str(self.file.path),
            "start": self.start,
            "start_loss": _clean(start),
            "best_epoch": result.best_epoch,
            "best_loss": _clean(result.best_loss),
            "best": history_row(result.history[result.best_epoch]),
            "last": history_row(last),
            "epochs_run": last.epoch,
            "stopped": result.stopped,
            "interrupted": result.interrupted,
            "updates_per_second": _clean(result.steps_per_second),
        }
