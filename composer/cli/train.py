"""The `rnn-composer train` command: fit a spec's weights to a data file, keep the best."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from composer.api.train_options import TrainOptions
from composer.arrays import declared_bytes, read_arrays
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
from composer.cli.train_options import (
    AllowUnnormalised,
    CheckpointDir,
    CheckpointEvery,
    MetricNames,
    MinDelta,
    Momentum,
    Monitor,
    Nesterov,
    Patience,
    ResumeDir,
    ScheduleText,
    SplitName,
    ValidationData,
    ValidationSplit,
    check_history,
    checkpointing,
    held_out,
    one_line_warnings,
    optimiser,
)
from composer.cli.train_progress import TrainBar
from composer.cli.train_report import HistoryPath, Report, TrainJson
from composer.draw.curve_png import require_matplotlib
from composer.engine.memory import check_memory, params_bytes, tape_bytes
from composer.errors import ComposerError, DataError, SpecError
from composer.graph.weights import init_params, load_params
from composer.output_files import shown
from composer.signals import interrupt_once
from composer.threads import apply as apply_threads
from composer.threads import work_of
from composer.training.loop import plan_for, train

__all__ = ["train_command"]


class OptimizerName(str, Enum):
    sgd = "sgd"
    adam = "adam"


class LossName(str, Enum):
    mse = "mse"
    cross_entropy = "cross-entropy"
    binary_cross_entropy = "binary-cross-entropy"


@app.command("train")
@reports_errors
@file_arguments(
    inputs={
        "spec": Read.spec,
        "data": Read.arrays,
        "weights": Read.arrays,
        "validation_data": Read.arrays,
        "resume": Read.folder,
    },
    outputs=("output", "curve", "history", "checkpoint"),
    # --weights W --output W --force resumes in place; --resume D --checkpoint D goes on in D
    replaces={"output": "weights", "checkpoint": "resume"},
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
    momentum: Momentum = None,
    nesterov: Nesterov = False,
    schedule: ScheduleText = "constant",
    loss: Annotated[
        LossName,
        typer.Option(
            "--loss",
            help="mse, cross-entropy (softmax outputs) or binary-cross-entropy (sigmoid).",
        ),
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
        float | None,
        typer.Option(
            "--validation", min=0.0, max=0.9, help="Fraction held out for validation (0.1)."
        ),
    ] = None,
    validation_data: ValidationData = None,
    validation_split: ValidationSplit = SplitName.random,
    patience: Patience = None,
    min_delta: MinDelta = 0.0,
    monitor: Monitor = None,
    metric: MetricNames = None,
    allow_unnormalised: AllowUnnormalised = False,
    history: HistoryPath = None,
    as_json: TrainJson = False,
    checkpoint: CheckpointDir = None,
    checkpoint_every: CheckpointEvery = 1,
    resume: ResumeDir = None,
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
        Path | None,
        typer.Option(
            "--curve",
            help="Also write the loss curve here: .svg, or .png (needs the `plot` extra).",
        ),
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
    main = is_main_process()  # the environment's group, checked before any work
    optimiser_options = optimiser(optimizer.value, momentum, nesterov, schedule)
    saving = checkpointing(checkpoint, checkpoint_every, resume, weights, force)
    output = output or Path(f"{spec.stem}.weights.npz")
    # --weights W --output W --force resumes in place: W is read whole before it is replaced
    check_output(output, force)
    if history is not None:
        check_history(history)
    if curve is not None or history is not None:
        written = [("--output", output), ("--curve", curve), ("--history", history)]
        check_outputs([(option, path) for option, path in written if path is not None], force)
    if curve is not None:
        if curve.suffix.lower() not in (".svg", ".png"):
            raise typer.BadParameter(
                f"the loss curve is drawn as SVG or PNG; give a file ending in .svg or .png, "
                f"got {shown(curve)}",
                param_hint="--curve",
            )
        if curve.suffix.lower() == ".png":
            try:
                require_matplotlib()  # before training, not after
            except ComposerError as err:
                raise typer.BadParameter(str(err), param_hint="--curve") from None
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
    options = TrainOptions(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer.value,
        loss=loss.value,
        seed=seed,
        bptt=bptt,
        clip=clip,
        weight_decay=weight_decay,
        dtype=dtype.value,
        where=str(data),
        patience=patience,
        min_delta=min_delta,
        monitor=monitor,
        metrics=metric,
        allow_unnormalised=allow_unnormalised,
        **optimiser_options,
        **saving,
    )
    fraction = 0.1 if validation is None else validation
    given = validation is not None
    options = options.but(
        **held_out(fraction, validation_data, validation_split, given, max_memory)
    )
    apply_threads(threads, work_of(graph, batch), torch=engine is EngineName.torch)
    if engine is EngineName.torch:
        from composer.interop.torch_engine import TorchEngine

        try:
            options = options.but(engine=TorchEngine(graph, dtype.value, device))
        except (DataError, SpecError) as err:  # the same in every process, before any group:
            if not main:  # said once, by rank 0
                raise typer.Exit(err.exit_code) from None
            raise
    bar = TrainBar(Console(stderr=True), epochs)
    begun = "resumed" if resume else "given" if weights else "untrained"
    report = Report(history, as_json, force, begun, resume)
    if not main:  # rank 0 alone writes the checkpoint
        options = options.but(checkpoint=None)
    shown_progress = dict(on_epoch=bar.epoch, on_step=bar.step, callbacks=[report.epoch])
    shown_progress = shown_progress if main else {}
    with interrupt_once(), one_line_warnings():
        try:
            result = train(graph, start, arrays, **options.but(**shown_progress).keywords())
        except SpecError as err:
            raise sourced.locate(err) from err
        finally:
            bar.close()
        if main:
            report.finish(result, output, curve, sourced.spec.name or spec.stem)


def training_bytes(plan, graph, batch: int, sequences: int, dtype: str) -> int:
    """The tapes of a minibatch and of a validation chunk (`train` measures the held-out
    loss in chunks of at least 256 sequences; the workspace may keep both), and the
    weights six times over: as trained, the best so far, the gradients, two optimizer
    moments, and the start."""
    chunk = min(max(batch, 256), sequences)
    tapes = tape_bytes(plan, batch, dtype) + tape_bytes(plan, chunk, dtype)
    return tapes + 6 * params_bytes(graph, dtype)
