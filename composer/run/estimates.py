"""More memory estimates, each made before the work it prices (issue 18's findings).

`composer.run.memory` holds the unrolling's and the dependencies' estimates; these add
what they left out: the weights, a CSV file's parse, the picture `render` draws and the
cone it shades, the JSON text of `deps --json`, and training's validation pass.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from composer.graph.unrolled import Unrolled
from composer.graph.weights import param_table

__all__ = [
    "params_bytes",
    "drawing_bytes",
    "deps_json_bytes",
]

# Measured on CPython 3.11 (peak RSS over the interpreter's baseline), rounded up: a drawn
# node or edge (its view object, grid entry and DOT line); a cell of a shaded cone (a
# (vector, step) tuple in a set); a JSON list entry and its copy.
_DRAWN_BYTES, _CONE_BYTES, _JSON_ENTRY_BYTES = 1500, 160, 16


def params_bytes(folded: nx.MultiDiGraph, dtype: str = "float32") -> int:
    """The weights in `dtype`, plus the float64 draws that seed the largest one (a summed
    bias: two draws and their sum): what `init_params`, or reading and casting a weights
    file, holds at its peak."""
    table = param_table(folded)
    kept = sum(math.prod(info.shape) for info in table) * np.dtype(dtype).itemsize
    draws = (math.prod(info.shape) * 8 * (3 if info.summed else 1) for info in table)
    return kept + max(draws, default=0)


def drawing_bytes(unrolled: Unrolled, max_columns: int, highlight: bool) -> int:
    """The unfolded picture: every drawn node and edge, and the shaded cone's cells."""
    folded = unrolled.folded
    columns = min(unrolled.steps, max_columns) + 2  # an ellipsis, initial states
    drawn = (len(folded) + 1) * columns + 2 * folded.number_of_edges() * columns
    cone = unrolled.node_count() * _CONE_BYTES if highlight else 0
    return drawn * _DRAWN_BYTES + cone


def deps_json_bytes(unrolled: Unrolled) -> int:
    """The text of `deps --json`: an entry per (output step, input step), at most 16 bytes
    (`1234567, `), and the copy the encoder makes on the way to stdout."""
    outputs = inputs = 0
    for node, role in unrolled.folded.nodes(data="role"):
        if role == "output":
            outputs += int(unrolled.present[node].sum())
        elif role == "input":
            inputs += int(unrolled.present[node].sum())
    return outputs * inputs * _JSON_ENTRY_BYTES
