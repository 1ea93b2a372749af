"""The `train` command's progress on stderr: a bar that advances with every minibatch,
with the rate and the time left, and a row per epoch above it when metrics are shown."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from composer.training.loop import Epoch
from composer.training.summary import epoch_row

__all__ = ["TrainBar"]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val {task.fields[val]}"),
        TextColumn("{task.fields[rate]} steps/s"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
    )


class TrainBar:
    """The progress bar, shown from epoch 0 on (data errors come before it, on their
    own); its total is every minibatch of the run, so it moves within an epoch."""

    def __init__(self, console: Console, epochs: int):
        self.console, self.epochs, self.progress, self.task = console, epochs, None, None
        self.first_update, self.started, self.epoch_now = 0, 0.0, 0

    def epoch(self, record: Epoch) -> None:
        if self.progress is None:  # the first record: epoch 0, or where a run resumed
            self.progress = _progress(self.console)
            self.progress.start()
            self.first_update, self.started = record.updates, time.perf_counter()
            remaining = max(self.epochs - record.epoch, 0) * max(record.batches, 1)
            self.task = self.progress.add_task(
                "train", total=remaining, epoch=record.epoch, epochs=self.epochs,
                loss="-", val="-", rate="-",
            )  # fmt: skip
        if record.metrics:  # a row per epoch, above the bar
            self.progress.console.print(epoch_row(record), highlight=False, soft_wrap=True)
        self.epoch_now = record.epoch
        self.progress.update(
            self.task,
            completed=record.updates - self.first_update,
            epoch=record.epoch,
            loss=_fmt(record.train_loss),
            val=_fmt(record.val_loss),
        )

    def step(self, update: int, value: float) -> None:
        seconds = time.perf_counter() - self.started
        done = update - self.first_update
        rate = f"{done / seconds:.0f}" if seconds > 0 else "-"
        self.progress.update(
            self.task, completed=done, epoch=self.epoch_now + 1, loss=_fmt(value), rate=rate
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
