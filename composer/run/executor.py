"""The executor: runs a compiled `Plan` on batched NumPy arrays, fast and in bounded memory.

Values are kept time-major, one `(B, size)` row block per step, so a range of steps of a
vector is one contiguous `(steps * B, size)` matrix. That gives the executor its speed:

- a layer's inputs over many steps are projected in one matrix product per source
  (`x Wx + b` for a whole chunk of steps), and only `s_prev Ws` stays in the time loop;
- groups run one after another over a chunk of steps: layer 1 over the chunk, then
  layer 2 over the same chunk, never step by step across layers;
- every array is allocated once, up front; steps write in place (`out=`).

Memory: when the plan is `streaming`, time is walked in chunks of `chunk` steps and each
vector keeps only the chunk plus the few steps its readers look back (a ring of
`history` steps), so the memory of a forward pass grows with T only through the inputs
and the emitted outputs. Otherwise (a backward layer, or a state handed over after its
reader starts) every vector keeps all the steps it is computed at.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping

import networkx as nx
import numpy as np

from composer.kinds.base import ACTIVATIONS, CELLS, elman_step, gru_step, lstm_step
from composer.errors import DataError
from composer.graph.folded import build
from composer.run.inputs import batched, check_inputs, infer_steps
from composer.run.plan import (
    BoundParams,
    Feed,
    Plan,
    Vector,
    bind_params,
    check_dtype,
    compile_plan,
    step_runs,
)
from composer.spec.model import NetworkSpec
from composer.graph.unrolled import unroll

__all__ = [
    "execute",
    "run",
    "bind_params",
    "BoundParams",
    "infer_steps",
    "estimate_bytes",
    "chunk_steps",
]

#: a chunk's projection buffer should stay in a core's L2 cache ...
_CHUNK_BYTES = 1 << 20
#: ... but a chunk holds enough steps for the projection to be a large product.
_MIN_CHUNK, _MAX_CHUNK = 16, 256


def execute(
    plan: Plan,
    params: Mapping[str, np.ndarray] | BoundParams,
    inputs: Mapping[str, np.ndarray],
    dtype: str = "float32",
    *,
    chunk: int | None = None,
) -> dict[str, np.ndarray]:
    """Run a plan: `{output name: (B, T_out, size) array}` from `{input name: (B, T_in, F)}`.

    T_in and T_out are the number of steps of each input's and output's window. Params
    (a mapping, or `bind_params`'s result to skip checking and arranging them again) and
    inputs are cast to `dtype` (`float32` or `float64`) once; every array computed is of
    that dtype. `chunk` (steps per chunk) only tunes speed and memory, never results.
    """
    dt = _dtype(dtype)
    if not isinstance(params, BoundParams):
        params = bind_params(plan.folded, params, dtype)
    elif params.folded is not plan.folded or params.dtype != dt:
        raise DataError(
            f"params were bound for another graph or dtype ({params.dtype}); bind them "
            f"with bind_params(plan.folded, params, {dtype!r})"
        )
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise DataError(f"chunk must be a number of steps >= 1, got {chunk!r}")
    batch = check_inputs(plan, inputs)
    arrays = {name: np.asarray(array) for name, array in inputs.items()}
    weights = {name: params.weights(vector) for name, vector in plan.vectors.items()}
    steps = chunk or chunk_steps(plan, batch, dt)
    return _Executor(plan, weights, arrays, batch, dt, steps).run()


def run(
    graph_or_spec: NetworkSpec | nx.MultiDiGraph,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray] | np.ndarray,
    steps: int | None = None,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """Build, unroll, plan and execute in one call.

    `inputs` maps input names to (B, T_in, F) arrays, or to (T_in, F) arrays (then the
    outputs are 2-D too); a network with one input also takes the bare array. `steps`
    defaults to what the inputs' lengths imply through their windows (`infer_steps`).

    Examples
    --------
    >>> from composer.graph.weights import init_params
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4}],
    ...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"})
    >>> graph = build(spec)
    >>> run(graph, init_params(graph), np.ones((5, 3)))["o"].shape
    (1, 4)
    """
    graph = build(graph_or_spec) if isinstance(graph_or_spec, NetworkSpec) else graph_or_spec
    arrays, flat = batched(graph, inputs)
    steps = infer_steps(graph, arrays) if steps is None else operator.index(steps)
    plan = compile_plan(unroll(graph, steps))
    outputs = execute(plan, params, arrays, dtype)
    return {name: out[0] for name, out in outputs.items()} if flat else outputs


def _dtype(dtype) -> np.dtype:
    return np.dtype(check_dtype(dtype))


def chunk_steps(plan: Plan, batch: int, dtype) -> int:
    """Steps per chunk: a projection buffer of about 1 MiB, within 16..256 steps."""
    width = max((_width(v) for v in plan.vectors.values()), default=1)
    steps = _CHUNK_BYTES // max(1, batch * width * np.dtype(dtype).itemsize)
    return int(min(max(steps, _MIN_CHUNK), _MAX_CHUNK, plan.steps))


def _gates(vector: Vector) -> int:
    return CELLS[vector.kind].gates if vector.role == "state" else 1


def _width(vector: Vector) -> int:
    """Numbers per batch row of a vector's pre-activation (all gates of a recurrent layer)."""
    return vector.size * _gates(vector)


def _shape(vector: Vector, rows: int) -> tuple[int, ...]:
    """A pre-activation's shape: (rows, size), or gate-major (G, rows, H) for a gated cell."""
    gates = _gates(vector)
    return (gates, rows, vector.size) if gates > 1 else (rows, vector.size)


def _by_step(values: np.ndarray, steps: int) -> np.ndarray:
    """A pre-activation of `steps` steps as one (B, size) or (G, B, H) block per step."""
    if values.ndim == 2:
        return values.reshape(steps, -1, values.shape[-1])
    gates, _, size = values.shape
    return values.reshape(gates, steps, -1, size).transpose(1, 0, 2, 3)


def _extent(vector: Vector, streaming: bool, chunk: int, lag: int | None = None) -> tuple:
    """(first step held, steps held) of a vector's track; `lag` gives its LSTM cell track."""
    if streaming:
        back = vector.history if lag is None else abs(lag)
        return -back, back + chunk
    lo = min((vector.span[0], *vector.initial))
    hi = max((vector.span[1], *(t + 1 for t in vector.initial)))
    return lo, hi - lo


def estimate_bytes(plan: Plan, batch: int, dtype: str = "float32") -> int:
    """The bytes `execute` allocates for its arrays (inputs and weights excluded), known
    before allocating any: what a resource check compares with a limit."""
    dt, chunk = _dtype(dtype), chunk_steps(plan, batch, dtype)
    general = {name for g in plan.groups if g.kind == "general" for name in g.vectors}
    numbers = 2 * chunk * max((_width(v) for v in plan.vectors.values()), default=1)
    for v in plan.vectors.values():
        if v.role == "output":
            numbers += len(plan.window(v.name)) * v.size
            continue
        numbers += _extent(v, plan.streaming, chunk)[1] * v.size
        numbers += chunk * _width(v) if v.name in general else 0
        if v.role == "state":  # a step's scratch, and an LSTM's cell track
            numbers += _width(v)
        if v.kind == "lstm":
            numbers += _extent(v, plan.streaming, chunk, v.recurrence.lag)[1] * v.size
    return numbers * batch * dt.itemsize


class _Track:
    """The values of one vector over a range of steps that slides forward in time.

    `data[t - base]` is the (B, size) value at step t; `rows(t0, t1)` steps t0..t1-1 as one
    (steps * B, size) matrix.
    """

    def __init__(self, extent: tuple[int, int], batch: int, size: int, dtype: np.dtype):
        self.base, steps = extent
        self.back = -self.base  # streaming: steps held before the chunk being computed
        self.data = np.zeros((steps, batch, size), dtype=dtype)
        self.flat = self.data.reshape(steps * batch, size)
        self.batch = batch

    def at(self, step: int) -> np.ndarray:
        return self.data[step - self.base]

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self.flat[(start - self.base) * self.batch : (stop - self.base) * self.batch]

    def slide(self, base: int) -> None:
        """Hold steps from `base` on, keeping the values of the steps still held."""
        shift = base - self.base
        if 0 < shift < len(self.data):
            self.data[: len(self.data) - shift] = self.data[shift:]
        self.base = base


class _Executor:
    """The buffers of one forward pass and the loops that fill them, group by group."""

    def __init__(self, plan: Plan, weights, inputs, batch: int, dtype: np.dtype, chunk: int):
        self.plan, self.weights, self.inputs = plan, weights, inputs
        self.batch, self.dtype, self.chunk, self.steps = batch, dtype, chunk, plan.steps
        self.tracks, self.cell_tracks, self.work, self.snapshots = {}, {}, {}, {}
        self.outputs, self.handed = {}, {}
        for name, v in plan.vectors.items():
            if v.role == "output":
                self.outputs[name] = np.zeros((batch, len(plan.window(name)), v.size), dtype)
                continue
            self.tracks[name] = _Track(_extent(v, plan.streaming, chunk), batch, v.size, dtype)
            if v.role == "state":
                self.work[name] = CELLS[v.kind].workspace(batch, v.size, dtype)
            if v.kind == "lstm":
                extent = _extent(v, plan.streaming, chunk, v.recurrence.lag)
                self.cell_tracks[name] = _Track(extent, batch, v.size, dtype)
            if v.handover is not None:
                origin, step = v.handover
                self.handed[origin] = step
        width = max((_width(v) for v in plan.vectors.values()), default=1)
        # two chunk-sized buffers: projections of a scan, and partial products to add up
        self.scratch = np.empty((2, chunk * batch * width), dtype)
        self.general = {}  # per-vector projection buffers of `general` groups, made lazily
        self.groups = []  # each group with its vectors and the steps any of them is at
        for group in plan.groups:
            vectors = [plan.vectors[name] for name in group.vectors]
            span = min(v.span[0] for v in vectors), max(v.span[1] for v in vectors)
            self.groups.append((group, vectors, span))

    def run(self) -> dict[str, np.ndarray]:
        """Compute every group over all steps; the emitted outputs."""
        if not self.plan.streaming:
            for group in self.groups:
                self._group(*group, 0, self.steps)
            return self.outputs
        tracks = [*self.tracks.values(), *self.cell_tracks.values()]
        for start in range(0, self.steps, self.chunk):
            for track in tracks:
                track.slide(start - track.back)
            stop = min(start + self.chunk, self.steps)
            for group in self.groups:
                self._group(*group, start, stop)
        return self.outputs

    def _group(self, group, vectors: list[Vector], span: tuple, start: int, stop: int) -> None:
        """A group over steps start..stop-1 (in its direction), in pieces of `chunk` steps."""
        start, stop = max(start, span[0]), min(stop, span[1])
        pieces = [(a, min(a + self.chunk, stop)) for a in range(start, stop, self.chunk)]
        for a, b in pieces if group.direction > 0 else pieces[::-1]:
            if group.kind == "input":
                self._read_input(vectors[0], a, b)
            elif group.kind == "output":
                self._emit(vectors[0], a, b)
            elif group.kind == "feedforward":
                self._feedforward(vectors[0], a, b)
            elif group.kind == "scan":
                self._scan(vectors[0], a, b, group.direction)
            else:
                self._general(vectors, a, b)
            for v in vectors:
                step = self.handed.get(v.name)
                if step is not None and a <= step < b:
                    self._snapshot(v, step)

    def _read_input(self, v: Vector, start: int, stop: int) -> None:
        offset = v.window[0]  # the caller's array holds the window's steps only
        source = self.inputs[v.name][:, start - offset : stop - offset]
        track = self.tracks[v.name]
        np.copyto(track.data[start - track.base : stop - track.base], source.transpose(1, 0, 2))

    def _emit(self, v: Vector, start: int, stop: int) -> None:
        out, offset = self.outputs[v.name], v.window[0]
        for feed in v.feeds:
            track = self.tracks[feed.source]
            values = track.data[start - track.base : stop - track.base].transpose(1, 0, 2)
            np.copyto(out[:, start - offset : stop - offset, feed.rows[0] : feed.rows[1]], values)

    def _buffer(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        return self.scratch[index, : math.prod(shape)].reshape(shape)

    def _project(self, v: Vector, start: int, stop: int, out: np.ndarray, feeds) -> list:
        """Fill `out` (rows of steps start..stop-1) with bias + sum of src[t - lag] W over
        `feeds`, at the steps `v` is computed at; return those steps as runs."""
        runs, bias, batch = step_runs(v.present, start, stop), self.weights[v.name].bias, self.batch
        for a, b in runs:
            part = out[..., (a - start) * batch : (b - start) * batch, :]
            filled = False
            for feed, weight in feeds:
                for u, w in self._source_runs(feed, a, b):
                    source = self.tracks[feed.source].rows(u - feed.lag, w - feed.lag)
                    target = part[..., (u - a) * batch : (w - a) * batch, :]
                    if not filled and (u, w) == (a, b):
                        np.matmul(source, weight, out=target)
                    else:
                        if not filled:
                            part.fill(0)
                        product = self._buffer(1, target.shape)
                        np.matmul(source, weight, out=product)
                        np.add(target, product, out=target)
                    filled = True
            if not filled:
                part.fill(0)
            if bias is not None:
                np.add(part, bias, out=part)
        return runs

    def _source_runs(self, feed: Feed, start: int, stop: int) -> list:
        """Runs of steps t in start..stop-1 where the feed's source exists at t - lag."""
        lo, hi = max(start - feed.lag, 0), min(stop - feed.lag, self.steps)
        if lo >= hi:
            return []
        present = self.plan.vectors[feed.source].present
        return [(a + feed.lag, b + feed.lag) for a, b in step_runs(present, lo, hi)]

    def _feedforward(self, v: Vector, start: int, stop: int) -> None:
        out = self.tracks[v.name].rows(start, stop)
        activation = ACTIVATIONS[v.activation]
        for a, b in self._project(v, start, stop, out, self.weights[v.name].feeds):
            part = out[(a - start) * self.batch : (b - start) * self.batch]
            activation(part, out=part)

    def _start_state(self, v: Vector, start: int, stop: int, direction: int) -> None:
        """Write a state's initial values (zeros or a handed-over state) before it starts."""
        first = v.span[0] if direction > 0 else v.span[1] - 1
        if not v.initial or not start <= first < stop:
            return
        h0, c0 = self.snapshots[v.handover[0]] if v.handover else (0, None)
        for step in v.initial:
            self.tracks[v.name].at(step)[...] = h0
            if v.kind == "lstm":
                self.cell_tracks[v.name].at(step)[...] = 0 if c0 is None else c0

    def _snapshot(self, v: Vector, step: int) -> None:
        cells = self.cell_tracks.get(v.name)
        c = None if cells is None else cells.at(step).copy()
        self.snapshots[v.name] = (self.tracks[v.name].at(step).copy(), c)

    def _scan(self, v: Vector, start: int, stop: int, direction: int) -> None:
        """A recurrent layer over steps start..stop-1: one projection, then the time loop."""
        projected = self._buffer(0, _shape(v, (stop - start) * self.batch))
        runs = self._project(v, start, stop, projected, self.weights[v.name].feeds)
        self._start_state(v, start, stop, direction)
        projected = _by_step(projected, stop - start)
        for a, b in runs if direction > 0 else runs[::-1]:
            self._loop(v, projected[a - start : b - start], a, b, direction)

    def _loop(self, v: Vector, xw: np.ndarray, start: int, stop: int, direction: int) -> None:
        """The recurrence over the steps start..stop-1, all computed: only s_prev Ws here."""
        lag, bound, work = v.recurrence.lag, self.weights[v.name], self.work[v.name]
        track = self.tracks[v.name].data
        base = self.tracks[v.name].base
        h = track[start - base : stop - base]
        h_prev = track[start - lag - base : stop - lag - base]
        if direction < 0:
            xw, h, h_prev = xw[::-1], h[::-1], h_prev[::-1]
        Ws = bound.recurrent
        if v.kind == "elman":
            activation = np.tanh if v.activation == "tanh" else ACTIVATIONS[v.activation]
            for x_t, s_prev, s in zip(xw, h_prev, h):
                elman_step(x_t, s_prev, Ws, s, activation)
        elif v.kind == "gru":
            bs_n = bound.bias_n
            for x_t, s_prev, s in zip(xw, h_prev, h):
                gru_step(x_t, s_prev, Ws, bs_n, s, work)
        else:
            cells = self.cell_tracks[v.name]
            c = cells.data[start - cells.base : stop - cells.base]
            c_prev = cells.data[start - lag - cells.base : stop - lag - cells.base]
            if direction < 0:
                c, c_prev = c[::-1], c_prev[::-1]
            for x_t, s_prev, cp, s, ct in zip(xw, h_prev, c_prev, h, c):
                lstm_step(x_t, s_prev, cp, Ws, s, ct, work)

    def _general(self, vectors: list[Vector], start: int, stop: int) -> None:
        """Vectors that feed each other across time: step by step, in within-step order."""
        members = {v.name for v in vectors}
        inside, projected = {}, {}
        for v in vectors:
            bound = self.weights[v.name]
            outside = [(f, w) for f, w in bound.feeds if f.source not in members]
            inside[v.name] = [(f, w) for f, w in bound.feeds if f.source in members]
            buffer = self.general.get(v.name)
            if buffer is None:
                buffer = np.empty(_shape(v, self.chunk * self.batch), self.dtype)
                self.general[v.name] = buffer
            self._project(v, start, stop, buffer, outside)
            projected[v.name] = _by_step(buffer, self.chunk)
            if v.role == "state":
                self._start_state(v, start, stop, 1)
        for step in range(start, stop):
            for v in vectors:
                if v.present[step]:
                    x_t = projected[v.name][step - start]
                    self._add_inside(x_t, inside[v.name], step)
                    self._step(v, x_t, step)

    def _add_inside(self, x_t: np.ndarray, feeds, step: int) -> None:
        for feed, weight in feeds:
            source = step - feed.lag
            if 0 <= source < self.steps and self.plan.vectors[feed.source].present[source]:
                product = self._buffer(1, x_t.shape)
                np.matmul(self.tracks[feed.source].at(source), weight, out=product)
                np.add(x_t, product, out=x_t)

    def _step(self, v: Vector, x_t: np.ndarray, step: int) -> None:
        out = self.tracks[v.name].at(step)
        if v.role != "state":
            ACTIVATIONS[v.activation](x_t, out=out)
            return
        self._loop(v, x_t[np.newaxis], step, step + 1, 1)
