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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from composer.dtypes import check_dtype
from composer.engine.inputs import check_inputs
from composer.engine.memory import chunk_steps, track_extent
from composer.engine.merge import merge_values
from composer.engine.plan import (
    BoundParams,
    Feed,
    Plan,
    Vector,
    bind_params,
    carry_sizes,
    preactivation_shape,
    step_runs,
)
from composer.engine.tokens import encode_tokens
from composer.engine.walk import Walk, start_values
from composer.errors import DataError
from composer.kinds import ACTIVATIONS, KINDS, fused

__all__ = ["execute", "Packing"]

#: up to this many items, a packed batch's inputs are copied item by item (2x faster
#: than a gather then a transposing copy); more, and one gather per chunk
_ROW_COPIES = 64


@dataclass(frozen=True)
class Packing:
    """A padded batch run as PyTorch runs packed sequences: items sorted by length, the
    longest first, and each step computed for a shrinking leading slice of the batch.

    `order[row]` is the caller's item computed at that row (the inputs and outputs stay in
    the caller's order; only the executor's own arrays are sorted). `active[name][t]` is
    how many leading rows vector `name` is computed for at step t (an input's later rows
    read as zero there: padding); `gather[output]` is (bounds, steps, rows, places): the
    values an output takes, sorted by step (step t's are `bounds[t]:bounds[t + 1]`), each
    the value at `steps[k]` of sorted row `rows[k]`, put at row `places[k]` of the output
    seen as (B * its steps, size); `out_steps[output]` is the longest item's output length.
    """

    order: np.ndarray
    active: Mapping[str, np.ndarray]
    gather: Mapping[str, list]
    out_steps: Mapping[str, int]


def execute(
    plan: Plan,
    params: Mapping[str, np.ndarray] | BoundParams,
    inputs: Mapping[str, np.ndarray],
    dtype: str = "float32",
    *,
    chunk: int | None = None,
    packing: Packing | None = None,
) -> dict[str, np.ndarray]:
    """Run a plan: `{output name: (B, T_out, size) array}` from `{input name: (B, T_in, F)}`.

    T_in and T_out are the number of steps of each input's and output's window. Params
    (a mapping, or `bind_params`'s result to skip checking and arranging them again) and
    inputs are cast to `dtype` (`float32` or `float64`) once; every array computed is of
    that dtype. `chunk` (steps per chunk) tunes speed and memory; results change only by
    rounding (a chunk's input projection is a product over its steps' rows, which BLAS may
    round differently for another number of rows, depending on the CPU).
    `packing` runs a sorted padded batch (`composer.engine.batches`).
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
    arrays = encode_tokens(plan.folded, inputs, params.arrays, dt)
    arrays = {name: np.asarray(array) for name, array in arrays.items()}
    weights = {name: params.weights(vector) for name, vector in plan.vectors.items()}
    steps = chunk or chunk_steps(plan, batch, dt)
    kinds = {KINDS[v.kind] for v in plan.vectors.values() if v.role == "state"}
    fused.prepare(batch * plan.steps, kinds=kinds)  # compiled steps, if installed and worth it
    return _Executor(plan, weights, arrays, batch, dt, steps, packing).run()


def _dtype(dtype) -> np.dtype:
    return np.dtype(check_dtype(dtype))


def _by_step(values: np.ndarray, steps: int) -> np.ndarray:
    """A pre-activation of `steps` steps as one (B, size) or (G, B, H) block per step."""
    if values.ndim == 2:
        return values.reshape(steps, -1, values.shape[-1])
    gates, _, size = values.shape
    return values.reshape(gates, steps, -1, size).transpose(1, 0, 2, 3)


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


class _Executor(Walk):
    """The buffers of one forward pass and the loops that fill them, group by group.

    `tracks[name][k]` holds a vector's k-th carried array (its values first; an LSTM's
    cell state second) over the steps it keeps.
    """

    def __init__(self, plan: Plan, weights, inputs, batch, dtype, chunk, packing=None):
        super().__init__(plan, {name: w.feeds for name, w in weights.items()})
        self.weights, self.inputs, self.packing = weights, inputs, packing
        self.batch, self.dtype, self.chunk = batch, dtype, chunk
        self.active = packing.active if packing else {}
        self.tracks, self.work, self.snapshots, self.outputs, self.handed = {}, {}, {}, {}, {}
        for name, v in plan.vectors.items():
            if v.role == "output":
                steps = packing.out_steps[name] if packing else len(plan.window(name))
                self.outputs[name] = np.zeros((batch, steps, v.size), dtype)
                continue
            carries = KINDS[v.kind].carries if v.role == "state" else ("h",)
            self.tracks[name] = [
                _Track(track_extent(v, plan.streaming, chunk, k), batch, size, dtype)
                for k, size in enumerate(carry_sizes(v, carries))
            ]
            if v.role == "state":
                self.work[name] = KINDS[v.kind].workspace(batch, v.units, dtype)
            for handover in (v.handover, v.handover_rev):
                if handover is not None:
                    origin, step = handover
                    self.handed[origin] = step
        width = max((v.columns for v in plan.vectors.values()), default=1)
        # two chunk-sized buffers: projections of a scan, and partial products to add up
        self.scratch = np.empty((2, chunk * batch * width), dtype)
        self.general = {}  # per-vector projection buffers of feedback loops, made lazily
        self.projected = {}  # ... and their steps, one block each

    def run(self) -> dict[str, np.ndarray]:
        """Compute every group over all steps; the emitted outputs."""
        if not self.plan.streaming:
            self.forward(0, self.steps)
            return self.outputs
        tracks = [track for carried in self.tracks.values() for track in carried]
        for start in range(0, self.steps, self.chunk):
            for track in tracks:
                track.slide(start - track.back)
            self.forward(start, min(start + self.chunk, self.steps))
        return self.outputs

    def visit(self, group, vectors: list[Vector], start: int, stop: int) -> None:
        """A group over steps start..stop-1 (in its direction), in pieces of `chunk` steps,
        keeping the last state of a layer that hands it over."""
        pieces = [(a, min(a + self.chunk, stop)) for a in range(start, stop, self.chunk)]
        for a, b in pieces if group.direction > 0 else pieces[::-1]:
            super().visit(group, vectors, a, b)
            for v in vectors:
                step = self.handed.get(v.name)
                if step is not None and a <= step < b:
                    self.snapshots[v.name] = [t.at(step).copy() for t in self.tracks[v.name]]

    def read_input(self, v: Vector, start: int, stop: int) -> None:
        offset = v.window[0]  # the caller's array holds the window's steps only
        source = self.inputs[v.name][:, start - offset : stop - offset]
        track = self.tracks[v.name][0]
        if self.packing is None:
            np.copyto(track.data[start - track.base : stop - track.base], source.transpose(1, 0, 2))
            return
        values = track.data[start - track.base : stop - track.base]
        order, running = self.packing.order, self.active[v.name][start:stop]
        if self.batch > _ROW_COPIES:  # many items: one gather, through the products buffer
            taken = self._buffer(1, (self.batch, stop - start, source.shape[-1]))
            np.take(source, order, axis=0, out=taken, mode="clip")  # clip: unbuffered
            np.copyto(values, taken.transpose(1, 0, 2))
            values[np.arange(self.batch) >= running[:, np.newaxis]] = 0  # padding: absent
            return
        counts = np.count_nonzero(running[:, np.newaxis] > np.arange(self.batch), axis=0)
        for row, (item, n) in enumerate(zip(order.tolist(), counts.tolist())):
            values[:n, row] = source[item, :n]  # each item's steps in its sorted row
            values[n:, row] = 0  # padding reads as an absent input

    def emit(self, v: Vector, start: int, stop: int) -> None:
        out, offset = self.outputs[v.name], v.window[0]
        if self.packing is not None:  # each item's own steps of its own window
            bounds, steps, rows, places = self.packing.gather[v.name]
            lo, hi = bounds[start], bounds[stop]
            flat, places, seen = out.reshape(-1, v.size), places[lo:hi], set()
            for feed in v.feeds:
                track, (a, b) = self.tracks[feed.source][0], feed.rows
                values = self._buffer(1, (hi - lo, b - a))  # no copy of the chunk's own
                where = (steps[lo:hi] - track.base) * self.batch + rows[lo:hi]
                np.take(track.flat, where, axis=0, out=values, mode="clip")
                if feed.rows in seen:  # `merge: sum`: the two directions add up
                    flat[places, a:b] += values
                else:
                    flat[places, a:b] = values
                seen.add(feed.rows)
            return
        seen = set()
        for feed in v.feeds:
            track = self.tracks[feed.source][0]
            values = track.data[start - track.base : stop - track.base].transpose(1, 0, 2)
            target = out[:, start - offset : stop - offset, feed.rows[0] : feed.rows[1]]
            if feed.rows in seen:  # `merge: sum`: the two directions add up
                np.add(target, values, out=target)
            else:
                np.copyto(target, values)
            seen.add(feed.rows)

    def _buffer(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        return self.scratch[index, : math.prod(shape)].reshape(shape)

    def _project(self, v: Vector, start: int, stop: int, out: np.ndarray, feeds) -> list:
        """Fill `out` (rows of steps start..stop-1) with bias + sum of src[t - lag] W over
        `feeds`, at the steps `v` is computed at; return those steps as runs."""
        runs, bias, batch = step_runs(v.present, start, stop), self.weights[v.name].bias, self.batch
        for a, b in runs:
            part = out[..., (a - start) * batch : (b - start) * batch, :]
            self._sum_into(part, self._products(part, a, b, feeds))
            if bias is not None:
                np.add(part, bias, out=part)
        return runs

    def _products(self, part, a: int, b: int, feeds):
        """(source rows, weight, target rows, whole run?) of every feed over steps a..b-1."""
        batch = self.batch
        for feed, weight in feeds:
            for u, w in self._source_runs(feed, a, b):
                source = self.tracks[feed.source][0].rows(u - feed.lag, w - feed.lag)
                target = part[..., (u - a) * batch : (w - a) * batch, :]
                yield source, weight, target, (u, w) == (a, b)

    def _sum_into(self, part: np.ndarray, products) -> None:
        """`part` = the sum of source @ weight, each product into its target rows (written
        by a first product that covers them all, added after); zero where no source
        exists."""
        filled = False
        for source, weight, target, whole in products:
            if not filled and not whole:
                part.fill(0)
            self._multiply(source, weight, target, write=not filled and whole)
            filled = True
        if not filled:
            part.fill(0)

    def _multiply(self, source, weight, target, write: bool) -> None:
        if write:
            np.matmul(source, weight, out=target)  # the common case writes in place
            return
        product = self._buffer(1, target.shape)
        np.matmul(source, weight, out=product)
        np.add(target, product, out=target)

    def _source_runs(self, feed: Feed, start: int, stop: int) -> list:
        """Runs of steps t in start..stop-1 where the feed's source exists at t - lag."""
        lo, hi = max(start - feed.lag, 0), min(stop - feed.lag, self.steps)
        if lo >= hi:
            return []
        present = self.plan.vectors[feed.source].present
        return [(a + feed.lag, b + feed.lag) for a, b in step_runs(present, lo, hi)]

    def feedforward(self, v: Vector, start: int, stop: int) -> None:
        if v.role == "merge":
            self._merge(v, start, stop)
            return
        track, activation = self.tracks[v.name][0], ACTIVATIONS[v.activation]
        if v.name in self.active:  # only the items still running, each step into its rows
            feeds, space = self.feeds[v.name], self.scratch[0]
            runs, projected = self._project_packed(v, start, stop, feeds, space)
            for a, b in runs:
                for t in range(a, b):
                    x_t = projected[t - start]
                    activation(x_t, out=track.at(t)[: len(x_t)])
            return
        out = track.rows(start, stop)
        for a, b in self._project(v, start, stop, out, self.feeds[v.name]):
            part = out[(a - start) * self.batch : (b - start) * self.batch]
            activation(part, out=part)

    def _merge(self, v: Vector, start: int, stop: int) -> None:
        """A bidirectional layer's merge vector (`merge: mean | mul`) from its two states."""
        how, out = self.plan.folded.nodes[v.name]["merge"], self.tracks[v.name][0]
        forward, backward = (self.tracks[feed.source][0] for feed in v.feeds)
        for a, b in step_runs(v.present, start, stop):
            out.rows(a, b)[...] = merge_values(how, forward.rows(a, b), backward.rows(a, b))

    def start_state(self, v: Vector, start: int, stop: int, direction: int) -> None:
        first = v.span[0] if direction > 0 else v.span[1] - 1
        if not v.initial or not start <= first < stop:
            return
        carries = KINDS[v.kind].carries

        def given():  # each item's own start state h, in the executor's row order
            values = self.inputs[v.given]
            return values[self.packing.order] if self.packing else values

        learned = lambda: self.weights[v.name].initial  # noqa: E731
        given = start_values(v, carries, self._snapshot, learned, given)
        for name, track in zip(carries, self.tracks[v.name]):
            for step in v.initial:
                track.at(step)[...] = given.get(name, 0)

    def _snapshot(self, origin: str, step: int) -> dict:
        """The carried values a state kept at the step it hands over."""
        names = KINDS[self.plan.vectors[origin].kind].carries
        return dict(zip(names, self.snapshots[origin]))

    def scan(self, v: Vector, start: int, stop: int, direction: int) -> None:
        """A recurrent layer over steps start..stop-1: one projection, then the time loop."""
        if v.name in self.active:
            feeds, space = self.feeds[v.name], self.scratch[0]
            runs, projected = self._project_packed(v, start, stop, feeds, space)
        else:
            projected = self._buffer(0, preactivation_shape(v, (stop - start) * self.batch))
            runs = self._project(v, start, stop, projected, self.feeds[v.name])
            projected = _by_step(projected, stop - start)
        self.start_state(v, start, stop, direction)
        for a, b in runs if direction > 0 else runs[::-1]:
            self._steps(v, projected[a - start : b - start], a, b, direction)

    def _project_packed(self, v: Vector, start: int, stop: int, feeds, space) -> tuple:
        """`_project` for a packed batch, into the flat buffer `space`, stored as PyTorch's
        packed sequences are: each step's running rows after the previous step's, so that
        each feed's product is one contiguous product over the rows that run (the sources'
        rows gathered into a block first) and padding costs nothing. The runs, and each
        step's (rows, ...) view (None at a step not computed)."""
        counts = self.active[v.name][start:stop]
        offsets = np.concatenate(([0], np.cumsum(counts)))
        shape = preactivation_shape(v, int(offsets[-1]))
        out = space[: math.prod(shape)].reshape(shape)
        bias, runs = self.weights[v.name].bias, step_runs(v.present, start, stop)
        for a, b in runs:
            part = out[..., offsets[a - start] : offsets[b - start], :]
            filled = False
            for feed, weight in feeds:
                for u, w in self._source_runs(feed, a, b):
                    whole = (u, w) == (a, b)
                    if not filled and not whole:
                        part.fill(0)
                    write, span = not filled and whole, (u - start, w - start)
                    self._packed_product(feed, weight, out, offsets, span, start, write)
                    filled = True
            if not filled:
                part.fill(0)
            if bias is not None:
                np.add(part, bias, out=part)
        steps = [None] * (stop - start)
        for a, b in runs:
            for t in range(a - start, b - start):
                steps[t] = out[..., offsets[t] : offsets[t + 1], :]
        return runs, steps

    def _packed_product(self, feed, weight, out, offsets, span, start, write: bool) -> None:
        """The packed rows of steps start + span[0] .. start + span[1] - 1 of `out`, written
        (`write`) or added to: the feed's source rows that run, times `weight`. The source
        rows are gathered into the partial-products buffer (with the products, to add) in
        blocks of as many steps as fit; a step that does not fit alone is multiplied as
        it is."""
        track, space = self.tracks[feed.source][0], self.scratch[1]
        width, columns = track.data.shape[-1], math.prod(out.shape[:-2]) * out.shape[-1]
        per_row = width if write else width + columns
        i, last = span
        while i < last:
            fits = np.searchsorted(offsets, offsets[i] + len(space) // per_row, "right") - 1
            j = min(max(int(fits), i), last)
            into = out[..., offsets[i] : offsets[max(j, i + 1)], :]
            if j == i:  # one step, too large for the buffer
                source = track.at(start + i - feed.lag)[: into.shape[-2]]
                product = np.matmul(source, weight)
                j = i + 1
            else:
                rows = int(offsets[j] - offsets[i])
                source = space[: rows * width].reshape(rows, width)
                k = 0
                for t in range(start + i, start + j):  # the source's running rows, one block
                    n = int(offsets[t - start + 1] - offsets[t - start])
                    source[k : k + n] = track.at(t - feed.lag)[:n]
                    k += n
                product = into if write else space[rows * width : rows * per_row]
                product = np.matmul(source, weight, out=product.reshape(into.shape))
            if write:
                if product is not into:
                    np.copyto(into, product)
            else:
                np.add(into, product, out=into)
            i = j

    def _steps(self, v: Vector, xw: np.ndarray, start: int, stop: int, direction: int) -> None:
        """The recurrence over the steps start..stop-1, all computed: only s_prev Ws here."""
        lag, bound = v.recurrence.lag, self.weights[v.name]
        prev, out = [], []
        for track in self.tracks[v.name]:
            now = track.data[start - track.base : stop - track.base]
            before = track.data[start - lag - track.base : stop - lag - track.base]
            out.append(now[::-1] if direction < 0 else now)
            prev.append(before[::-1] if direction < 0 else before)
        if direction < 0:
            xw = xw[::-1]
        active = self.active.get(v.name)
        if active is not None:  # each step for the leading items still running, as lists
            counts = active[start:stop][::-1] if direction < 0 else active[start:stop]
            xw = [x_t[..., :n, :] for x_t, n in zip(xw, counts)]
            prev = [[p_t[:n] for p_t, n in zip(p, counts)] for p in prev]
            out = [[o_t[:n] for o_t, n in zip(o, counts)] for o in out]
        kind = KINDS[v.kind]
        kind.forward(xw, prev, out, bound.recurrent, bound.extra, self.work[v.name], v.activation)

    def project(self, v: Vector, start: int, stop: int, feeds) -> None:
        buffer = self.general.get(v.name)
        if buffer is None:
            buffer = np.empty(preactivation_shape(v, self.chunk * self.batch), self.dtype)
            self.general[v.name] = buffer
        if v.name in self.active:  # a packed batch: each step's running rows
            self.projected[v.name] = self._project_packed(v, start, stop, feeds, buffer.ravel())[1]
            return
        self._project(v, start, stop, buffer, feeds)
        self.projected[v.name] = _by_step(buffer, self.chunk)

    def _rows(self, name: str, step: int) -> int:
        active = self.active.get(name)
        return self.batch if active is None else int(active[step])

    def preactivation(self, v: Vector, step: int, start: int) -> np.ndarray:
        return self.projected[v.name][step - start][..., : self._rows(v.name, step), :]

    def add_product(self, x_t: np.ndarray, feed: Feed, step: int, weight: np.ndarray) -> None:
        product = self._buffer(1, x_t.shape)
        rows = x_t.shape[-2]
        np.matmul(self.tracks[feed.source][0].at(step - feed.lag)[:rows], weight, out=product)
        np.add(x_t, product, out=x_t)

    def step(self, v: Vector, x_t: np.ndarray, step: int) -> None:
        out = self.tracks[v.name][0].at(step)[: x_t.shape[-2]]
        if v.role != "state":
            ACTIVATIONS[v.activation](x_t, out=out)
            return
        self._steps(v, x_t[np.newaxis], step, step + 1, 1)
