"""The `rnn-composer train` command: fit a spec's weights to a data file, keep the best."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from composer.arrays import atomic_write, declared_bytes, read_arrays, write_arrays
from composer.cli.common import (
    DType,
    MaxMemory,
    SpecPath,
    Threads,
    check_output,
    read_checked,
    reports_errors,
)
from composer.cli.engines import (
    DeviceOption,
    EngineName,
    EngineOption,
    check_device,
    is_main_process,
)
from composer.cli.files import Read, file_arguments
from composer.cli.outputs import check_outputs
from composer.cli.root import app
from composer.draw.curve import loss_curve_svg
from composer.engine.memory import check_memory, params_bytes, tape_bytes
from composer.errors import SpecError
from composer.graph.weights import init_params, load_params
from composer.outputs import shown
from composer.signals import interrupt_once, shielded
from composer.threads import apply as apply_threads
from composer.threads import work_of
from composer.training.loop import Epoch, TrainResult, plan_for, train

__all__ = ["train_command"]


class OptimizerName(str, Enum):
    sgd = "sgd"
    adam = "adam"


class LossName(str, Enum):
    mse = "mse"
    cross_entropy = "cross-entropy"


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


@app.command("train")
@reports_errors
@file_arguments(
    inputs={"spec": Read.spec, "data": Read.arrays, "weights": Read.arrays},
    outputs=("output", "curve"),
    replaces={"output": "weights"},  # --weights W --output W --force resumes in place
)
def train_command(
    spec: SpecPath,
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
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seeds the init, split and shuffling.")
    ] = 0,
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
        Path | None, typer.Option("--curve", help="Also write the loss curve here (an .svg file).")
    ] = None,
    dtype: Annotated[DType, typer.Option(help="Computation precision.")] = DType.float32,
    max_memory: MaxMemory = "4G",
    engine: EngineOption = EngineName.numpy,
    device: DeviceOption = None,
    threads: Threads = None,
) -> None:
    """Train a network's weights on a data file and write the best ones (by validation loss).

    Ctrl-C stops cleanly: the best weights so far are written, then the exit code is 130.
    With --engine torch under torchrun, every process takes its share of each minibatch
    and the first one alone reports and writes.
    """
    check_device(engine, device)
    output = output or Path(f"{spec.stem}.weights.npz")
    # --weights W --output W --force resumes in place: W is read whole before it is replaced
    check_output(output, force)
    if curve is not None:
        check_outputs([("--output", output), ("--curve", curve)], force)
        if curve.suffix.lower() != ".svg":
            raise typer.BadParameter(
                f"the loss curve is drawn as SVG; give a file ending in .svg, got {shown(curve)}",
                param_hint="--curve",
            )
    sourced, graph = read_checked(spec)
    check_memory(declared_bytes(data), max_memory, f"reading {shown(data)}")
    arrays = read_arrays(data)
    try:
        plan = plan_for(graph, arrays, str(data), max_memory=max_memory)
    except SpecError as err:
        raise sourced.locate(err) from err
    sequences = next(iter(arrays.values())).shape[0] if arrays else batch_size
    batch = min(batch_size, sequences)
    check_memory(
        training_bytes(plan, graph, batch, sequences, dtype.value) + declared_bytes(data),
        max_memory,
        f"training {spec} at T = {plan.steps}, batch {batch}",
    )
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
    apply_threads(threads, work_of(graph, batch), torch=engine is EngineName.torch)
    if engine is EngineName.torch:
        from composer.interop.torch_engine import TorchEngine

        options["engine"] = TorchEngine(graph, dtype.value, device)
    main = is_main_process()
    bar = _Bar(Console(stderr=True), epochs)
    shown_progress = dict(on_epoch=bar.epoch, on_step=bar.step) if main else {}
    with interrupt_once():
        try:
            result = train(graph, start, arrays, **shown_progress, **options)
        except SpecError as err:
            raise sourced.locate(err) from err
        finally:
            bar.close()
        if main:
            _finish(result, output, curve, sourced.spec.name or spec.stem, force)


def training_bytes(plan, graph, batch: int, sequences: int, dtype: str) -> int:
    """The tapes of a minibatch and of a validation chunk (`train` measures the held-out
    loss in chunks of at least 256 sequences; the workspace may keep both), and the
    weights six times over: as trained, the best so far, the gradients, two optimizer
    moments, and the start."""
    chunk = min(max(batch, 256), sequences)
    tapes = tape_bytes(plan, batch, dtype) + tape_bytes(plan, chunk, dtype)
    return tapes + 6 * params_bytes(graph, dtype)


def _finish(result: TrainResult, output: Path, curve: Path | None, title: str, force: bool) -> None:
    """Write the best weights (and the curve), say what happened; exit 130 if interrupted."""
    with shielded():  # a second Ctrl-C must not cost the weights the first one kept
        write_arrays(output, result.params, overwrite=force)
        if curve is not None:
            svg = loss_curve_svg(result.history, title)
            atomic_write(curve, lambda handle: handle.write(svg.encode()), overwrite=force)
    first = result.history[0]
    which = "validation" if first.val_loss is not None else "training"
    untrained = first.val_loss if first.val_loss is not None else first.train_loss
    summary = (
        f"{which} loss {untrained:.4g} untrained, best {result.best_loss:.4g} at epoch "
        f"{result.best_epoch} ({result.steps_per_second:.0f} updates/s); wrote {shown(output)}"
    )
    if curve is not None:
        summary += f" and {shown(curve)}"
    if result.diverged:
        typer.echo(
            "warning: the loss or the weights became NaN or infinite; training stopped early",
            err=True,
        )
    if result.interrupted:
        typer.echo(f"interrupted: {summary}", err=True)
        raise typer.Exit(130)
    typer.echo(summary, err=True)
