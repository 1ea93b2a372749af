"""The `rnn-composer train` command: fit a spec's weights to a data file, keep the best.

Registered by `composer.cli` as `app.command("train")(reports_errors(train_command))`;
it imports nothing from `cli.py`, so there is no import cycle.
"""

from __future__ import annotations

import math
import os
from enum import Enum
from pathlib import Path
from typing import Annotated
from xml.sax.saxutils import escape

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from composer.arrays import atomic_write, read_arrays
from composer.errors import SpecError
from composer.graph import build
from composer.load import read_spec
from composer.params import init_params, load_params, save_params
from composer.train import Epoch, TrainResult, train

__all__ = ["train_command", "loss_curve_svg"]


class OptimizerName(str, Enum):
    sgd = "sgd"
    adam = "adam"


class LossName(str, Enum):
    mse = "mse"
    cross_entropy = "cross-entropy"


class DtypeName(str, Enum):
    float32 = "float32"
    float64 = "float64"


def _refuse(path: Path, force: bool, option: str) -> None:
    """A usage error for an output path that would lose data or cannot be written."""

    def refuse(message: str):
        raise typer.BadParameter(message, param_hint=option)

    if path.is_dir():
        refuse(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        refuse(f"{path} exists; pass --force to overwrite it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        refuse(f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        refuse(f"folder {folder} is not writable")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("epoch {task.fields[epoch]}/{task.total:.0f}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val {task.fields[val]}"),
        TextColumn("{task.fields[rate]} steps/s"),
        TimeElapsedColumn(),
        console=console,
    )


class _Bar:
    """The progress bar, shown from epoch 0 on: data errors come before it, on their own."""

    def __init__(self, console: Console, epochs: int):
        self.console, self.epochs, self.progress, self.task = console, epochs, None, None

    def epoch(self, record: Epoch) -> None:
        if self.progress is None:
            self.progress = _progress(self.console)
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=self.epochs, epoch=0, loss="-", val="-", rate="-"
            )
        rate = record.updates / record.seconds if record.seconds else 0
        self.progress.update(
            self.task,
            completed=record.epoch,
            epoch=record.epoch,
            loss=_fmt(record.train_loss),
            val=_fmt(record.val_loss),
            rate=f"{rate:.0f}",
        )

    def step(self, update: int, value: float) -> None:
        self.progress.update(self.task, loss=_fmt(value))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def train_command(
    spec: Annotated[
        Path,
        typer.Argument(help="A spec file (.yaml, .yml or .json).", exists=True, dir_okay=False),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A .npz with each input (B, T_in, F) and each output's targets by name "
            "(B, T_out, size), or class ids (B, T_out); optional `<output>.mask` (B, T_out).",
            exists=True,
            dir_okay=False,
        ),
    ],
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Start from these weights (default: seeded init).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=0, help="Passes over the data.")] = 20,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Sequences per update.")
    ] = 32,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Learning rate.")] = 1e-3,
    optimizer: Annotated[
        OptimizerName, typer.Option("--optimizer", help="sgd (momentum 0.9) or adam.")
    ] = OptimizerName.adam,
    loss: Annotated[
        LossName, typer.Option("--loss", help="mse, or cross-entropy (softmax outputs).")
    ] = LossName.mse,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the init, split and shuffling.")] = 0,
    bptt: Annotated[
        int | None,
        typer.Option("--bptt", min=1, help="Truncate backpropagation to blocks of K steps."),
    ] = None,
    clip: Annotated[
        float | None, typer.Option("--clip", min=0.0, help="Clip gradients to this global norm.")
    ] = None,
    weight_decay: Annotated[
        float, typer.Option("--weight-decay", min=0.0, help="L2 weight decay.")
    ] = 0.0,
    validation: Annotated[
        float,
        typer.Option("--validation", min=0.0, max=0.9, help="Fraction held out for validation."),
    ] = 0.1,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the best weights (default: SPEC's name + .weights.npz, here).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    curve: Annotated[
        Path | None, typer.Option("--curve", help="Also write the loss curve as an SVG here.")
    ] = None,
    dtype: Annotated[
        DtypeName, typer.Option("--dtype", help="Compute in float32 or float64.")
    ] = DtypeName.float32,
) -> None:
    """Train a network's weights on a data file and write the best ones (by validation loss).

    Ctrl-C stops cleanly: the best weights so far are written, then the exit code is 130.
    """
    output = output or Path(f"{spec.stem}.weights.npz")
    _refuse(output, force, "--output")
    if curve is not None:
        _refuse(curve, force, "--curve")
    sourced = read_spec(spec)
    try:
        graph = build(sourced.spec)
    except SpecError as err:
        raise sourced.locate(err) from err
    arrays = read_arrays(data)
    start = (
        load_params(weights, graph, dtype.value)
        if weights
        else init_params(graph, seed, dtype.value)
    )
    options = dict(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer.value,
        loss=loss.value,
        seed=seed,
        bptt=bptt,
        clip=clip,
        weight_decay=weight_decay,
        validation=validation,
        dtype=dtype.value,
        where=str(data),
    )
    bar = _Bar(Console(stderr=True), epochs)
    try:
        result = train(graph, start, arrays, on_epoch=bar.epoch, on_step=bar.step, **options)
    except SpecError as err:
        raise sourced.locate(err) from err
    finally:
        bar.close()
    _finish(result, output, curve, sourced.spec.name or spec.stem)


def _finish(result: TrainResult, output: Path, curve: Path | None, title: str) -> None:
    """Write the best weights (and the curve), say what happened; exit 130 if interrupted."""
    save_params(output, result.params)
    if curve is not None:
        svg = loss_curve_svg(result.history, title)
        atomic_write(curve, lambda handle: handle.write(svg.encode()))
    first = result.history[0]
    which = "validation" if first.val_loss is not None else "training"
    untrained = first.val_loss if first.val_loss is not None else first.train_loss
    summary = (
        f"{which} loss {untrained:.4g} untrained, best {result.best_loss:.4g} at epoch "
        f"{result.best_epoch} ({result.steps_per_second:.0f} updates/s); wrote {output}"
    )
    if curve is not None:
        summary += f" and {curve}"
    if result.diverged:
        typer.echo("warning: the loss became NaN or infinite; training stopped early", err=True)
    if result.interrupted:
        typer.echo(f"interrupted: {summary}", err=True)
        raise typer.Exit(130)
    typer.echo(summary, err=True)


def _nice(span: float, count: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `count` ticks."""
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _value_ticks(low: float, high: float, log: bool) -> list[float]:
    """Tick values for the loss axis: round numbers within [low, high]."""
    if log:
        ticks = [
            m * 10.0**k
            for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in (1, 2, 5)
        ]
        return [t for t in ticks if low <= t <= high]
    step = _nice(high - low, 5)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


class _Chart:
    """The geometry of the loss chart: where an epoch and a loss value are drawn."""

    width, height, left, right, top, bottom = 640, 400, 70, 20, 40, 50

    def __init__(self, values: list[float], last_epoch: int):
        low, high = (min(values), max(values)) if values else (1e-3, 1.0)
        self.log = high / low > 20  # losses falling by decades read better on a log axis
        if self.log:
            low, high = low / 1.2, high * 1.2
        else:
            pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
            low, high = max(low - pad, 0.0), high + pad
        self.low, self.high, self.last = low, high, max(last_epoch, 1)
        self.scale = math.log10 if self.log else float
        self.y0, self.y1 = self.scale(low), self.scale(high)
        self.floor = self.height - self.bottom

    def x(self, epoch: float) -> float:
        return self.left + (self.width - self.left - self.right) * epoch / self.last

    def y(self, value: float) -> float:
        clamped = min(max(value, self.low), self.high)
        fraction = (self.scale(clamped) - self.y0) / (self.y1 - self.y0)
        return self.top + (self.floor - self.top) * (1 - fraction)


def _frame(chart: _Chart, title: str) -> list[str]:
    """The canvas, the title, both axes and their labels."""
    w, h, mid_y = chart.width, chart.height, (chart.top + chart.floor) / 2
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(title or 'training')}: loss per epoch</text>",
        f'<line x1="{chart.left}" y1="{chart.floor}" x2="{w - chart.right}" '
        f'y2="{chart.floor}" stroke="black"/>',
        f'<line x1="{chart.left}" y1="{chart.top}" x2="{chart.left}" y2="{chart.floor}" '
        'stroke="black"/>',
        f'<text x="{(chart.left + w - chart.right) / 2}" y="{h - 12}" text-anchor="middle">'
        "epoch</text>",
        f'<text x="16" y="{mid_y}" text-anchor="middle" transform="rotate(-90 16 {mid_y})">'
        f"loss{' (log scale)' if chart.log else ''}</text>",
    ]


def _ticks(chart: _Chart) -> list[str]:
    """Round epochs under the x axis, round losses beside the y axis."""
    parts = []
    for epoch in range(0, chart.last + 1, max(1, round(_nice(chart.last, 8)))):
        x = chart.x(epoch)
        parts.append(
            f'<line x1="{x:.1f}" y1="{chart.floor}" x2="{x:.1f}" y2="{chart.floor + 5}" '
            f'stroke="black"/><text x="{x:.1f}" y="{chart.floor + 18}" '
            f'text-anchor="middle">{epoch}</text>'
        )
    for value in _value_ticks(chart.low, chart.high, chart.log):
        y = chart.y(value)
        parts.append(
            f'<line x1="{chart.left - 5}" y1="{y:.1f}" x2="{chart.left}" y2="{y:.1f}" '
            f'stroke="black"/><text x="{chart.left - 8}" y="{y + 4:.1f}" '
            f'text-anchor="end">{value:.3g}</text>'
        )
    return parts


def loss_curve_svg(history: tuple[Epoch, ...] | list[Epoch], title: str = "") -> str:
    """An SVG line chart of the training and validation losses per epoch: a polyline for
    each, axes with round ticks, a legend. The loss axis is logarithmic when the losses
    span more than a factor of 20."""
    series = {"training": [(e.epoch, e.train_loss) for e in history]}
    if any(e.val_loss is not None for e in history):
        series["validation"] = [(e.epoch, e.val_loss) for e in history if e.val_loss is not None]
    values = [v for points in series.values() for _, v in points if math.isfinite(v) and v > 0]
    chart = _Chart(values, history[-1].epoch)
    parts = _frame(chart, title) + _ticks(chart)
    colours = {"training": "#1f77b4", "validation": "#ff7f0e"}
    legend_x = chart.width - chart.right - 120
    for row, (name, points) in enumerate(series.items()):
        drawn = " ".join(
            f"{chart.x(e):.1f},{chart.y(v):.1f}" for e, v in points if math.isfinite(v)
        )
        colour, ly = colours[name], chart.top + 10 + 18 * row
        parts.append(
            f'<polyline points="{drawn}" fill="none" stroke="{colour}" stroke-width="2"/>'
            f'<line x1="{legend_x}" y1="{ly}" x2="{legend_x + 25}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/><text x="{legend_x + 30}" y="{ly + 4}">'
            f"{name}</text>"
        )
    return "\n".join(parts + ["</svg>\n"])
