"""Resource limits: the memory each stage would need, estimated before anything is allocated.

Every estimate lives here, so that a command checks the same figure the stage allocates:
unrolling (`unroll_bytes`), a materialised unrolled graph (`graph_bytes`, `deps_bytes`),
a forward pass of the executor (`execute_bytes`, with the chunking and track extents the
executor itself uses), the training tape of one gradient (`tape_bytes`), the weights
(`params_bytes`), the unfolded picture (`drawing_bytes`), the JSON of the
dependencies (`deps_json_bytes`), generation (`step_bytes`, `stepped_bytes`,
`beam_bytes`) and text turned into windows of ids (`text_data_bytes`).
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
from composer.readable import human_size

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
    "step_bytes",
    "stepped_bytes",
    "beam_bytes",
    "text_data_bytes",
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


def step_bytes(plan: Plan, batch: int, dtype: str = "float32") -> int:
    """What a `Stepper` holds and allocates for `batch` items over a step of its one-step
    plan: each vector's carried arrays this step and the steps read back (twice when beam
    search selects rows), its pre-activation, a state's scratch and a product's result."""
    numbers = 0
    for v in plan.vectors.values():
        carried = v.size
        if v.role == "state":
            carried += (len(KINDS[v.kind].carries) - 1) * v.units
        lag = v.recurrence.lag if v.recurrence is not None else 0
        depth = max(v.history, lag, 0)
        numbers += (2 + 2 * depth) * carried + (3 * v.columns if v.kind else 0)
    return numbers * batch * np.dtype(dtype).itemsize


# Python objects, measured on CPython 3.11 and rounded up: a list entry, an int object
# (ids above 256 are not shared); the (B, N) float64 arrays of a sampling step.
_ENTRY_BYTES, _INT_BYTES, _SAMPLING_ARRAYS = 8, 32, 10
_STRING_BYTES = 80  # a token's own string: 49 to 80 bytes and its characters
_GENERATION_BYTES = 64 << 10  # generation's own small objects, whatever the sizes


def stepped_bytes(
    plan: Plan,
    vocab: int,
    count: int,
    length: int,
    token_bytes: int,
    held: int,
    dtype: str = "float32",
) -> int:
    """`generate`: the stepper and a sampling step for `count` rows, the (count, length)
    ids, and the text of `held` rows at once (`token_bytes`: the most a token's text
    takes, in a Python string and encoded for the terminal)."""
    rows = step_bytes(plan, count, dtype) + _SAMPLING_ARRAYS * count * vocab * 8
    text = held * length * (token_bytes + _ENTRY_BYTES)
    return _GENERATION_BYTES + rows + count * length * 8 + text


def beam_bytes(
    plan: Plan, vocab: int, beam: int, length: int, token_bytes: int, dtype: str = "float32"
) -> int:
    """`generate --beam`: the stepper for the most rows the beams reach (the last step's
    parents), their candidates' log-probabilities and ranking, the kept sequences (as
    arrays, then as lists of ints) and one line of text."""
    rows = 1  # the rows grow from 1 by a factor of `vocab` until `beam`
    for _ in range(length - 1):
        if rows >= beam or vocab == 1:
            break
        rows = min(beam, rows * vocab)
    kept = min(beam, rows * vocab)
    candidates = rows * vocab * 8 * 6  # log p, the sums, their negation and the ranking
    sequences = kept * length * (2 * 8 + _ENTRY_BYTES + (_INT_BYTES if vocab > 257 else 0))
    line = length * token_bytes * 2
    return _GENERATION_BYTES + step_bytes(plan, rows, dtype) + candidates + sequences + line


def text_data_bytes(tokens: int, largest: int, windows: int, seq_len: int, shared: bool) -> int:
    """`data text` on `tokens` tokens (`largest` in one text) as `windows` windows of
    `seq_len`, the most of its three phases: a text's tokens while it is counted and
    encoded (a list, a string each, its ids as a list of ints, then an array; strings and
    ints are shared when `shared`: one Latin-1 character each, under 257 ids) beside the
    ids of the texts before it; every text's ids and their concatenation; the ids and the
    windows of inputs and targets with their lengths."""
    each = 2 * _ENTRY_BYTES + 8 + (0 if shared else _STRING_BYTES + _INT_BYTES)
    encoding = largest * each + tokens * 8
    return max(encoding, 2 * tokens * 8, tokens * 8 + windows * (2 * seq_len + 1) * 8)


def check_memory(estimate: int, limit: int, what: str, advice: str = "use fewer steps") -> None:
    """Refuse `what` when its estimate is over `limit`, saying both, and `advice`."""
    if estimate > limit:
        raise ResourceError(
            f"{what} would need about {human_size(estimate)}, over the limit of "
            f"{human_size(limit)}; {advice} or raise --max-memory"
        )
