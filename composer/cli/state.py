"""`run --state-in/--state-out`: a long sequence run in pieces, each layer's state carried."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import networkx as nx
import numpy as np
import typer

from composer.arrays import read_arrays, write_arrays
from composer.engine.stepper import run_stepped
from composer.output_files import shown

__all__ = ["StateIn", "StateOut", "run_with_state"]

StateIn = Annotated[
    Path | None,
    typer.Option(
        "--state-in",
        exists=True,
        dir_okay=False,
        help="Start from this state .npz (what --state-out wrote), not zeros.",
    ),
]
StateOut = Annotated[
    Path | None,
    typer.Option(
        "--state-out",
        help="Write each layer's final state (`<layer>.h`, LSTM `<layer>.c`) to this .npz.",
    ),
]


def run_with_state(
    graph: nx.MultiDiGraph,
    params,
    arrays: dict,
    state_in: Path | None,
    state_out: Path | None,
    dtype: str,
    force: bool,
    item_steps: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The outputs of a run step by step from a state file, the final state written: with
    `item_steps` (a padded batch), each item's state after its own last step."""
    state = read_arrays(state_in) if state_in is not None else None
    where = shown(state_in) if state_in is not None else "state"
    outputs, final = run_stepped(graph, params, arrays, state, dtype, where, item_steps)
    if state_out is not None:
        write_arrays(state_out, final, overwrite=force)
        typer.echo(
            f"wrote {shown(state_out)}: "
            + ", ".join(f"{key} {tuple(v.shape)}" for key, v in final.items()),
            err=True,
        )
    return outputs
