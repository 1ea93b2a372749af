"""`import-weights`: a PyTorch state_dict (`.safetensors`, or `.pt` read safely) as our
weights `.npz`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from composer.arrays import write_arrays
from composer.cli.common import MaxMemory, SpecPath, read_checked, reports_errors
from composer.cli.files import Read, file_arguments
from composer.cli.outputs import check_outputs
from composer.cli.root import app
from composer.output_files import shown

__all__ = ["import_weights"]


@app.command("import-weights")
@reports_errors
@file_arguments(inputs={"spec": Read.spec, "state": Read.state}, outputs=("output",))
def import_weights(
    spec: SpecPath,
    state: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="A state_dict: .safetensors, or .pt/.pth (read with weights_only=True).",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The weights .npz to write.")],
    map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="LAYER=MODULE[:K]",
            help="Give spec layer LAYER the K-th layer (default 0) of the nn.RNN, LSTM or GRU "
            "whose keys start with `MODULE.`; LAYER.readout=MODULE takes an nn.Linear. "
            "Repeatable; unmapped layers are expected under this tool's own names.",
        ),
    ] = None,
    allow_unused: Annotated[
        bool,
        typer.Option("--allow-unused", help="Leave out state_dict keys the spec does not use."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    max_memory: MaxMemory = "4G",
) -> None:
    """Read a network's weights trained in PyTorch into this tool's .npz.

    The state_dict's keys are matched to the spec's layers; a missing or mis-shaped key
    names the torch key, the spec weight and both shapes. Nothing in a .pt file runs.
    Only the tensors the spec uses are read; NaN, Inf and values beyond the weights'
    precision are refused.
    """
    from composer.interop.torch import import_state

    _, folded = read_checked(spec)
    check_outputs({"--output": output}, force)
    params = import_state(folded, state, map or (), allow_unused, max_memory=max_memory)
    write_arrays(output, params, overwrite=force)
    dtype = next(iter(params.values())).dtype if params else "float32"
    typer.echo(
        f"wrote {shown(output)}: {len(params)} weights ({dtype}) from {shown(state)}", err=True
    )
