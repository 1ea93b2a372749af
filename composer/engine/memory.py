"""Resource limits: the memory each stage would need, estimated before anything is allocated.

Every estimate lives here, so that a command checks the same figure the stage allocates:
unrolling (`unroll_bytes`), a materialised unrolled graph (`graph_bytes`, `deps_bytes`),
a forward pass of the executor (`execute_bytes`, with the chunking and track extents the
executor itself uses), the training tape of one gradient (`tape_bytes`), the weights
(`params_bytes`), the unfolded picture (`drawing_bytes`) and the JSON of the
dependencies (`deps_json_bytes`).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import networkx as nx
import numpy as np

from composer.engine.plan import Plan, Vector
from composer.errors import ResourceError
from composer.graph.unrolled import Unrolled
from composer.graph.weights import param_table
from composer.kinds import KINDS
from composer.text import human_size

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "parse_size",
    "human_size",
    "unroll_bytes",
    "graph_bytes",
    "deps_bytes",
    "chunk_steps",
    "track_extent",
    "execute_bytes",
    "tape_bytes",
    "params_bytes",
    "drawing_bytes",
    "deps_json_bytes",
    "check_memory",
]

DEFAULT_MAX_MEMORY = 4 << 30
# What networkx spends per node and per edge of an unrolled graph, measured on CPython 3.11
# (dicts of attributes included), rounded up.
_NODE_BYTES, _EDGE_BYTES = 700, 500
_INITIAL_BYTES = 48  # an int in a tuple, and the list it was made from
_MAX_SIZE = 1 << 60  # 1 EiB: more than any machine, and safe in every integer type
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from a size such as `512M`, `4G`, `2.5GiB` or `1000000`."""
    match = re.fullmatch(
        r"\s*(\d{1,30}(?:\.\d{1,30})?)\s*(?:([kmgt])(?:i?b)?|(b))?\s*", text.lower()
    )
    if match is None:
        raise ValueError(f"not a size: {text[:40]!r}; expected a number with K, M or G, like 4G")
    size = int(Fraction(match.group(1)) * _UNITS[match.group(2) or ""])
    if size > _MAX_SIZE:
        raise ValueError(f"size {text!r} is over the largest limit, {human_size(_MAX_SIZE)}")
    return size


def _edge_count(unrolled: Unrolled) -> int:
    counts = {node: int(mask.sum()) for node, mask in unrolled.present.items()}
    return sum(counts[target] for _, target in unrolled.folded.edges())


def unroll_bytes(folded: nx.MultiDiGraph, steps: int) -> int:
    """The memory `unroll` needs: a few boolean masks over the steps for every vector, and
    the initial-state steps a delay-k recurrence reads (up to k Python ints in a tuple)."""
    lags = (abs(lag or 0) for _, lag in folded.nodes(data="lag"))
    initial = sum(min(lag, steps) for lag in lags)
    # and, one vector at a time, the int64 step indexes its initial reads are found from
    return 4 * (len(folded) + 1) * steps + _INITIAL_BYTES * initial + 32 * steps


def graph_bytes(unrolled: Unrolled) -> int:
    """The memory a materialised unrolled networkx graph would take."""
    return unrolled.node_count() * _NODE_BYTES + _edge_count(unrolled) * _EDGE_BYTES


def deps_bytes(unrolled: Unrolled) -> int:
    """The memory of the dependency answer: one list entry per (output step, input step)."""
    outputs = inputs = 0
    for node, role in unrolled.folded.nodes(data="role"):
        if role == "output":
            outputs += int(unrolled.present[node].sum())
        elif role == "input":
            inputs += int(unrolled.present[node].sum())
    # a Python int in a list costs about 36 bytes; bit sets cost steps/8 per frontier node
    return graph_bytes(unrolled) + outputs * inputs * 36 + int(np.ceil(inputs / 8)) * outputs


#: a chunk's projection buffer should stay in a core's L2 cache ...
_CHUNK_BYTES = 1 << 20
#: ... but a chunk holds enough steps for the projection to be a large product.
_MIN_CHUNK, _MAX_CHUNK = 16, 256


def chunk_steps(plan: Plan, batch: int, dtype) -> int:
    """The executor's steps per chunk: a projection buffer of about 1 MiB, within 16..256."""
    width = max((v.columns for v in plan.vectors.values()), default=1)
    steps = _CHUNK_BYTES // max(1, batch * width * np.dtype(dtype).itemsize)
    return int(min(max(steps, _MIN_CHUNK), _MAX_CHUNK, plan.steps))


def track_extent(vector: Vector, streaming: bool, chunk: int, carried: int = 0) -> tuple:
    """(first step held, steps held) of the executor's track of a vector's `carried`-th
    array: streaming, the chunk and the steps read back (by readers of h, by its own
    recurrence for the others); else every step it is computed at and its initial steps."""
    if streaming:
        back = vector.history if carried == 0 else abs(vector.recurrence.lag)
        return -back, back + chunk
    lo = min((vector.span[0], *vector.initial))
    hi = max((vector.span[1], *(t + 1 for t in vector.initial)))
    return lo, hi - lo


def execute_bytes(plan: Plan, batch: int, dtype: str = "float32") -> int:
    """The bytes `execute` allocates for its arrays (inputs and weights excluded)."""
    itemsize, chunk = np.dtype(dtype).itemsize, chunk_steps(plan, batch, dtype)
    general = {name for g in plan.groups if g.kind == "general" for name in g.vectors}
    numbers = 2 * chunk * max((v.columns for v in plan.vectors.values()), default=1)
    for v in plan.vectors.values():
        if v.role == "output":
            numbers += len(plan.window(v.name)) * v.size
            continue
        numbers += track_extent(v, plan.streaming, chunk)[1] * v.size
        numbers += chunk * v.columns if v.name in general else 0
        if v.role == "state":  # a step's scratch, and the other arrays it carries
            numbers += v.columns + v.units  # (a projected state's m = o * tanh(c): H)
            for k in range(1, len(KINDS[v.kind].carries)):  # per unit, as an LSTM's c
                numbers += track_extent(v, plan.streaming, chunk, k)[1] * v.units
    return numbers * batch * itemsize


def tape_bytes(plan: Plan, batch: int, dtype: str = "float32") -> int:
    """About the bytes one gradient keeps for a batch: every value, pre-activation and
    gradient of every step, with each kind's own (`Kind.tape_numbers`)."""
    numbers = 0
    for v in plan.vectors.values():
        steps = v.span[1] - v.span[0] + len(v.initial)
        extra = KINDS[v.kind].tape_numbers if v.role == "state" else 0
        units = v.units if v.role == "state" else v.size
        per_step = 3 * v.size + 2 * v.columns + extra * units
        numbers += steps * batch * per_step
    return numbers * np.dtype(dtype).itemsize


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


def check_memory(estimate: int, limit: int, what: str) -> None:
    """Refuse `what` when its estimate is over `limit`, saying both."""
    if estimate > limit:
        raise ResourceError(
            f"{what} would need about {human_size(estimate)}, over the limit of "
            f"{human_size(limit)}; use fewer steps or raise --max-memory"
        )
