"""`rnn-composer data series`: a numeric series as forecasting windows (.npz), its
normalisation statistics beside them (.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from composer.arrays import atomic_write, write_arrays
from composer.cli.common import reports_errors
from composer.cli.data import data_app
from composer.cli.files import Read, file_arguments
from composer.cli.outputs import check_outputs
from composer.output_files import shown
from composer.signals import shielded
from composer.training.series import parse_split, read_series, series_data

__all__ = ["series"]


@data_app.command()
@reports_errors
@file_arguments(inputs={"file": Read.arrays}, outputs=("output",))
def series(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .npy series.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The data .npz to write.")],
    window: Annotated[int, typer.Option("--window", min=1, help="Input steps W.")],
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Values to forecast H.")] = 1,
    column: Annotated[
        str | None, typer.Option("--column", help="A CSV column's name, or an index.")
    ] = None,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Steps between windows.")] = 1,
    split: Annotated[
        str | None,
        typer.Option("--split", help="time:F: the held-out windows in OUTPUT.val.npz."),
    ] = None,
    names: Annotated[
        str, typer.Option(metavar="INPUT,TARGET", help="The keys of the inputs and targets.")
    ] = "x,y",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a series as windows: W standardised values (B, W, 1) and the H that follow
    (B, 1, H), for a many-to-one spec with a readout of size H; the mean and standard
    deviation (of the training stretch) go to OUTPUT.norm.json."""
    fraction = parse_split(split)
    keys = names.split(",")
    if len(keys) != 2 or not all(k.isidentifier() for k in keys) or keys[0] == keys[1]:
        raise typer.BadParameter(
            f"expected two different names such as x,y, got {names!r}", param_hint="--names"
        )
    stem = output.with_suffix("")
    norm, held_path = Path(f"{stem}.norm.json"), Path(f"{stem}.val.npz")
    outputs = [("--output", output), ("statistics", norm)]
    if fraction is not None:
        outputs.append(("held-out data", held_path))
    check_outputs(outputs, force)
    values = read_series(file, column)
    fit, held, stats = series_data(values, window, horizon, stride, fraction, tuple(keys))
    stats = {"source": str(file), "column": column, "window": window, "horizon": horizon,
             "stride": stride, **stats}  # fmt: skip
    text = json.dumps(stats, indent=2).encode()
    with shielded():  # all the files, or (on an error) none
        write_arrays(output, fit, overwrite=force)
        if held is not None:
            write_arrays(held_path, held, overwrite=force)
        atomic_write(norm, lambda handle: handle.write(text), overwrite=force)
    wrote = [output, *([held_path] if held is not None else []), norm]
    typer.echo(f"wrote {', '.join(shown(p) for p in wrote)}", err=True)
    for label, arrays in (("training", fit), ("held-out", held)):
        if arrays is None:
            continue
        x, y = arrays[keys[0]], arrays[keys[1]]
        naive = float(np.mean((y - x[:, -1:, :]) ** 2))  # the last value, repeated
        typer.echo(
            f"{label}: {len(x)} windows, {keys[0]} {x.shape}, {keys[1]} {y.shape}; "
            f"last-value baseline MSE {naive:.4g} (standardised)",
            err=True,
        )
