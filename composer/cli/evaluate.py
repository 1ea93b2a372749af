"""The `rnn-composer evaluate` command: score a weights file on a data file, the loss
and the metrics, as a table or JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from composer.arrays import declared_bytes, read_arrays
from composer.cli.common import (
    AsJson,
    DType,
    MaxMemory,
    SpecPath,
    Threads,
    read_checked,
    reports_errors,
)
from composer.cli.engines import DeviceOption, EngineName, EngineOption, check_device
from composer.cli.files import Read, file_arguments
from composer.cli.root import app
from composer.cli.train_options import (
    AllowUnnormalised,
    LossChoice,
    LossKind,
    MetricNames,
    one_line_warnings,
)
from composer.engine.memory import check_memory
from composer.errors import SpecError
from composer.graph.weights import load_params
from composer.threads import apply as apply_threads
from composer.threads import work_of
from composer.training.scoring import score

__all__ = ["evaluate_command", "figures_table"]


def figures_table(figures: dict[str, float]) -> str:
    """`name  value` lines, aligned."""
    width = max(len(name) for name in figures)
    return "\n".join(f"{name.ljust(width)}  {value:.6g}" for name, value in figures.items())


@app.command("evaluate")
@reports_errors
@file_arguments(inputs={"spec": Read.spec, "weights": Read.arrays, "data": Read.arrays})
def evaluate_command(
    spec: SpecPath,
    weights: Annotated[
        Path,
        typer.Option("--weights", help="The weights to score (.npz).", exists=True, dir_okay=False),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Inputs and targets, as `train` reads them.", exists=True, dir_okay=False
        ),
    ],
    loss: LossChoice = LossKind.mse,
    metric: MetricNames = None,
    allow_unnormalised: AllowUnnormalised = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Sequences per pass.")
    ] = 256,
    as_json: AsJson = False,
    dtype: Annotated[DType, typer.Option(help="Computation precision.")] = DType.float32,
    max_memory: MaxMemory = "4G",
    engine: EngineOption = EngineName.numpy,
    device: DeviceOption = None,
    threads: Threads = None,
) -> None:
    """Score weights on a data file: the loss (as `train` measures it) and each --metric.

    Nothing is written; the figures go to stdout (a table, or JSON with --json).
    """
    check_device(engine, device)
    sourced, graph = read_checked(spec)
    check_memory(declared_bytes(data), max_memory, f"reading {data}")
    params = load_params(weights, graph, dtype.value)
    arrays = read_arrays(data)
    sequences = next(iter(arrays.values())).shape[0] if arrays else batch_size
    apply_threads(
        threads, work_of(graph, min(batch_size, sequences)), torch=engine is EngineName.torch
    )
    options = dict(loss=loss.value, metrics=metric, batch_size=batch_size, dtype=dtype.value)
    if engine is EngineName.torch:
        from composer.interop.torch_engine import TorchEngine

        options["engine"] = TorchEngine(graph, dtype.value, device)
    options["allow_unnormalised"] = allow_unnormalised
    try:
        with one_line_warnings():
            figures = score(graph, params, arrays, where=str(data), **options)
    except SpecError as err:
        raise sourced.locate(err) from err
    if as_json:
        clean = {k: (v if math.isfinite(v) else None) for k, v in figures.items()}
        typer.echo(json.dumps(clean, indent=2))
    else:
        typer.echo(figures_table(figures))
