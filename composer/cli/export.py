"""`export`: a network and its weights written for another engine, by
`composer.api.export` (each format one entry of its `EXPORTERS`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from composer.api.export import ExportRequest
from composer.api.export import export as export_to
from composer.cli.common import DType, SpecPath, Steps, read_checked, reports_errors
from composer.cli.files import Read, file_arguments
from composer.cli.outputs import check_outputs
from composer.cli.root import app
from composer.errors import SpecError
from composer.graph.weights import load_params

__all__ = ["export"]


class ExportFormat(str, Enum):
    torch = "torch"
    onnx = "onnx"


@app.command()
@reports_errors
@file_arguments(inputs={"spec": Read.spec, "weights": Read.arrays}, outputs=("output",))
def export(
    spec: SpecPath,
    weights: Annotated[
        Path,
        typer.Option(
            "--weights", "-w", exists=True, dir_okay=False, help="Weights .npz to export."
        ),
    ],
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="What to write.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The file to write: .safetensors or .pt for torch, .onnx for onnx.",
        ),
    ],
    steps: Steps = None,
    lengths: Annotated[
        bool,
        typer.Option("--lengths", help="Take each input's real lengths (onnx: `<input>.lengths`)."),
    ] = False,
    opset: Annotated[
        int | None, typer.Option(min=1, help="ONNX opset (default: the newest supported).")
    ] = None,
    dtype: Annotated[DType, typer.Option(help="Precision of the written weights.")] = DType.float32,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the network with its weights for another engine: PyTorch or ONNX."""
    sourced, folded = read_checked(spec)
    check_outputs({"--output": output}, force)
    params = load_params(weights, folded, dtype.value)
    request = ExportRequest(
        graph=folded,
        params=params,
        output=output,
        spec_path=spec,
        spec_text=spec.read_text(),
        weights_path=weights,
        dtype=dtype.value,
        steps=steps,
        lengths=lengths,
        opset=opset,
        force=force,
    )
    try:
        report = export_to(request, format.value)
    except SpecError as err:  # a spec feature the format cannot take, located in the file
        raise sourced.locate(err) from err
    typer.echo(report, err=True)
