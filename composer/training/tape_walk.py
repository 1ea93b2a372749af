"""The tape's walk: one forward pass over a plan that keeps every step of every vector,
the loss over it, and the backward pass through time that fills the weights' gradients
(`composer.training.backprop` runs it; the arrays it keeps are `composer.training.tape`'s)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.engine.merge import merge_grads, merge_values
from composer.engine.plan import Plan, Vector, step_runs
from composer.engine.tokens import embedding_grads
from composer.engine.walk import Walk, handed_carries, start_values
from composer.graph.weights import param_shapes
from composer.kinds import ACTIVATIONS, unprepare
from composer.kinds.activations import activation_grad
from composer.kinds.base import live_rows
from composer.training.dropout import Dropout, pass_masks
from composer.training.losses import (
    binary_cross_entropy,
    cross_entropy,
    logit_source,
    mse,
)
from composer.training.tape import Bound, Track, Workspace

__all__ = ["Tape"]

Arrays = Mapping[str, np.ndarray]


def _flat(array: np.ndarray) -> np.ndarray:
    """(steps, B, n) as (steps * B, n): a view, the arrays here being contiguous."""
    return array.reshape(-1, array.shape[-1])


class Tape(Walk):
    """One forward pass over a plan, kept whole, and its backward pass.

    `tracks[name]` holds each vector's values `h` over its extent (step t at index t - lo),
    the gradient `g` of those values and `dxw` of its summed pre-activation `xw`.
    """

    def __init__(self, plan: Plan, params: Arrays, dtype: np.dtype, batch: int, bptt, workspace):
        self.dtype, self.batch = dtype, batch
        self.bptt = None if bptt is None else int(bptt)
        self.bound, self.visible, self.outputs, self.inputs = {}, {}, {}, {}
        self.dW = {k: np.zeros(s, dtype) for k, s in param_shapes(plan.folded).items()}
        self.owner = {}  # weight key -> (kind, state size) of the state computing with it
        workspace = workspace if workspace is not None else Workspace()
        self.tracks = workspace.tracks(plan, batch, dtype)
        for name, v in plan.vectors.items():
            if v.role in ("input", "output"):
                continue
            bound = self.bound[name] = Bound(v, params, dtype)
            if v.role == "state":
                self.tracks[name].bind(bound)
                keys = [f.weight for f in v.feeds] + [v.recurrence.weight, *v.biases]
                self.owner.update(dict.fromkeys(keys, (bound.kind, v.units)))
        super().__init__(plan, {name: bound.feeds for name, bound in self.bound.items()})

    def drop(self, dropout: Dropout | None) -> None:
        """This pass's dropout masks (none without `dropout`): per feed that drops its
        source, (T, B, rows) indexed by the reading step; per state with recurrent
        dropout, one (B, H) mask for every step."""
        self.masks, recurrent = {}, {}
        if dropout is not None:
            self.masks, recurrent = pass_masks(self.plan, dropout, self.batch, self.dtype)
        for name, track in self.tracks.items():
            if isinstance(track, Track):
                track.recurrent_mask = recurrent.get(name)

    def _source(self, feed, t0: int, t1: int) -> np.ndarray:
        """What a feed reads at steps t0..t1-1 (its source at t - lag), dropout applied,
        as (steps * B, rows)."""
        source = self._visible(feed.source)[t0 - feed.lag : t1 - feed.lag]
        mask = self.masks.get(feed)
        return _flat(source if mask is None else source * mask[t0:t1])

    def _live(self, track, t0: int, t1: int) -> np.ndarray | None:
        """`live_rows` of a track's steps t0..t1-1 (None unless it is packed)."""
        rows = getattr(track, "rows", None)
        return None if rows is None else live_rows(rows[t0 - track.lo : t1 - track.lo], self.batch)

    def pack(self, active: Mapping[str, np.ndarray]) -> None:
        """Each recurrent track's items still running per index (its initial steps: all)."""
        for name, counts in active.items():
            track = self.tracks.get(name)
            if isinstance(track, Track):
                rows = np.full(len(track.h), self.batch, dtype=np.intp)
                rows[-track.lo : -track.lo + len(counts)] = counts
                track.rows = rows
        for track in self.tracks.values():
            if isinstance(track, Track) and track.vector.name not in active:
                track.rows = None

    def _visible(self, name: str) -> np.ndarray:
        """Steps 0..T-1 of a finished vector as its readers see it: an initial state that
        falls inside 0..T-1 (a layer starting late) is zero there, for its recurrence only."""
        if name not in self.visible:
            track = self.tracks[name]
            view = track.h[-track.lo : self.steps - track.lo]
            inside = [t for t in track.vector.initial if 0 <= t < self.steps]
            if inside:
                view = view.copy()
                view[inside] = 0
            self.visible[name] = view
        return self.visible[name]

    # -- forward: the walk's hooks, each over a vector's whole span ---------------------

    def read_input(self, v: Vector, start: int, stop: int) -> None:
        start, stop = v.window
        self.tracks[v.name].h[start:stop] = np.asarray(self.inputs[v.name]).transpose(1, 0, 2)

    def emit(self, v: Vector, start: int, stop: int) -> None:
        start, stop = v.window
        out = self.outputs[v.name] = np.empty((self.batch, stop - start, v.size), self.dtype)
        seen = set()
        for feed in v.feeds:
            track = self.tracks[feed.source]
            values = track.h[start - track.lo : stop - track.lo].transpose(1, 0, 2)
            if feed.rows in seen:  # `merge: sum`: the two directions add up
                out[:, :, feed.rows[0] : feed.rows[1]] += values
            else:
                out[:, :, feed.rows[0] : feed.rows[1]] = values
            seen.add(feed.rows)

    def feedforward(self, v: Vector, start: int, stop: int) -> None:
        if v.role == "merge":
            self._merge(v, backward=False)
            return
        self.project(v, start, stop, self.feeds[v.name])
        self._activate(v, *v.span)

    def _merge(self, v: Vector, backward: bool) -> None:
        """A bidirectional layer's merge vector (`merge: mean | mul`) at its steps from its
        two states; with `backward`, its gradient handed to theirs."""
        how, track = self.plan.folded.nodes[v.name]["merge"], self.tracks[v.name]
        states = [self.tracks[feed.source] for feed in v.feeds]
        for a, b in step_runs(v.present, *v.span):
            forward, back = (s.h[a - s.lo : b - s.lo] for s in states)
            if not backward:
                track.h[a:b] = merge_values(how, forward, back)
                continue
            for state, g in zip(states, merge_grads(how, track.g[a:b], forward, back)):
                state.g[a - state.lo : b - state.lo] += g

    def project(self, v: Vector, start: int, stop: int, feeds) -> None:
        """xw[t] = bias + sum over feeds of source[t - lag] W, for t in v's span."""
        (a, b), track, first = v.span, self.tracks[v.name], True
        part = track.xw[a - track.lo : b - track.lo]
        for feed, weight in feeds:
            t0, t1 = max(a, feed.lag), min(b, self.steps + feed.lag)
            if t0 >= t1:
                continue
            source = self._source(feed, t0, t1)
            rows = _flat(part[t0 - a : t1 - a])
            live = self._live(track, t0, t1)
            if live is not None:  # a packed batch: the items still running only
                if first:
                    part.fill(0)
                rows[live] += source[live] @ weight
            elif first and (t0, t1) == (a, b):
                np.matmul(source, weight, out=rows)  # the common case writes in place
            else:
                if first:
                    part.fill(0)
                np.add(rows, source @ weight, out=rows)
            first = False
        if first:
            part.fill(0)
        if self.bound[v.name].bias is not None and v.role != "state":
            part += self.bound[v.name].bias  # a state adds its own, step by step

    def _activate(self, v: Vector, a: int, b: int) -> None:
        """A dense vector's values over steps a..b-1 from its pre-activation, in place."""
        track = self.tracks[v.name]
        if v.activation in ("softmax", "sigmoid"):  # what a cross-entropy reads
            track.keep_logits(a, b)
        ACTIVATIONS[v.activation](track.h[a:b], out=track.h[a:b])
        holes = np.flatnonzero(~v.present[a:b]) + a
        track.h[holes] = 0  # the span's steps where it is not computed read as zero

    def start_state(self, v: Vector, start: int, stop: int, direction: int) -> None:
        """Initial states: zeros, the trained one, the one given with the data, or the
        handed-over last state (and what else both carry)."""
        track = self.tracks[v.name]
        learned, given = (lambda: self.bound[v.name].initial), (lambda: self.inputs[v.given])
        found = start_values(v, track.kind.carries, self._final, learned, given)
        for name, value in found.items():
            for t in v.initial:
                getattr(track, name)[t - track.lo] = value

    def _final(self, origin: str, step: int) -> dict:
        """{carry: value} of a state at `step`: the final values it hands over."""
        source = self.tracks[origin]
        return {name: getattr(source, name)[step - source.lo] for name in source.kind.carries}

    def scan(self, v: Vector, start: int, stop: int, direction: int) -> None:
        track = self.tracks[v.name]
        self.project(v, start, stop, self.feeds[v.name])
        self.start_state(v, start, stop, direction)
        reverse, runs = track.lag < 0, step_runs(v.present, *v.span)
        for a, b in runs[::-1] if reverse else runs:
            track.kind.cached_forward(track, a - track.lo, b - track.lo, reverse)

    def preactivation(self, v: Vector, step: int, start: int) -> np.ndarray:
        track = self.tracks[v.name]
        return track.xw[step - track.lo]

    def add_product(self, x_t: np.ndarray, feed, step: int, weight: np.ndarray) -> None:
        track, mask = self.tracks[feed.source], self.masks.get(feed)
        read = track.h[step - feed.lag - track.lo]
        x_t += (read if mask is None else read * mask[step]) @ weight

    def step(self, v: Vector, x_t: np.ndarray, step: int) -> None:
        track = self.tracks[v.name]
        if v.role == "state":
            track.kind.cached_forward(track, step - track.lo, step + 1 - track.lo, False)
        else:
            self._activate(v, step, step + 1)

    # -- loss ---------------------------------------------------------------------------

    def loss(self, goals: dict, kinds: dict, seed: bool, totals=None) -> float:
        """The summed loss of every output; with `seed`, their gradients become the start
        of the backward pass (cross-entropy's p - y goes straight to the logits)."""
        total, totals = 0.0, totals or {}
        for name in self.plan.outputs:
            target, mask = goals[name]
            divisor = totals.get(name)
            if target.dtype.kind == "f":
                target = target.astype(self.dtype, copy=False)
            start, stop = self.plan.vectors[name].window
            if kinds[name] in ("cross-entropy", "binary-cross-entropy"):
                track = self.tracks[logit_source(self.plan, name)]
                logits = track.logits[start:stop].transpose(1, 0, 2)
                of = cross_entropy if kinds[name] == "cross-entropy" else binary_cross_entropy
                value, d = of(logits, target, mask, divisor)
                if seed:
                    track.dlogits[start:stop] += d.transpose(1, 0, 2)
            else:
                value, d = mse(self.outputs[name], target, mask, divisor)
                for feed in self.plan.vectors[name].feeds if seed else ():
                    source = self.tracks[feed.source]
                    part = d[..., feed.rows[0] : feed.rows[1]].transpose(1, 0, 2)
                    source.g[start - source.lo : stop - source.lo] += part
            total += value
        return total

    # -- backward -----------------------------------------------------------------------

    def backward(self) -> None:
        for group in reversed(self.plan.groups):
            vectors = [self.plan.vectors[name] for name in group.vectors]
            if group.kind in ("input", "output"):
                continue
            for v in vectors:  # readers add gradients at every step they read; keep ours
                track = self.tracks[v.name]
                track.g[np.flatnonzero(~v.present) - track.lo] = 0
                if v.role == "state":
                    track.kind.factors(track, v.span[0] - track.lo, v.span[1] - track.lo)
                    self._truncate(track)
            if group.kind == "feedforward" and vectors[0].role == "merge":
                self._merge(vectors[0], backward=True)
            elif group.kind == "feedforward":
                self._deactivate(vectors[0], *vectors[0].span)
            elif group.kind == "scan":
                track = self.tracks[vectors[0].name]
                reverse, runs = track.lag < 0, step_runs(vectors[0].present, *vectors[0].span)
                for a, b in runs if reverse else runs[::-1]:
                    track.kind.backward(track, a - track.lo, b - track.lo, reverse)
                if track.rows is not None:  # nothing flows from items past their end
                    gradients = [track.dxw, track.kind.recurrent_gradient(track)]
                    for gradient in gradients[: 1 if gradients[1] is track.dxw else 2]:
                        for index, rows in enumerate(track.rows):
                            gradient[index, rows:] = 0
            else:
                self._loop_backward(vectors)
            inside, outside = self.split(vectors)
            for v in vectors:
                self._feeds_backward(v, outside[v.name])
                self._feeds_backward(v, inside[v.name], propagate=False)  # done step by step
                self._own_backward(v)

    def _deactivate(self, v: Vector, a: int, b: int) -> None:
        """dxw over steps a..b-1 of a dense vector, from its values' gradient (and logits')."""
        track = self.tracks[v.name]
        track.dxw[a:b] = activation_grad(v.activation, track.h[a:b], track.g[a:b])
        if track.dlogits is not None:
            track.dxw[a:b] += track.dlogits[a:b]

    def _loop_backward(self, vectors: list[Vector]) -> None:
        """The backward of `Walk.loop`: steps and vectors in the reverse order."""
        inside, _ = self.split(vectors)
        steps = range(min(v.span[0] for v in vectors), max(v.span[1] for v in vectors))
        for step in reversed(steps):
            for v in reversed([v for v in vectors if v.present[step]]):
                track = self.tracks[v.name]
                if v.role == "state":
                    track.kind.backward(track, step - track.lo, step + 1 - track.lo, False)
                else:
                    self._deactivate(v, step, step + 1)
                da = track.dxw[step - track.lo]
                for feed, weight in inside[v.name]:
                    at = step - feed.lag
                    if self.computed(feed.source, at) and self._keeps(step, at):
                        source, mask = self.tracks[feed.source], self.masks.get(feed)
                        back = da @ weight.T
                        source.g[at - source.lo] += back if mask is None else back * mask[step]

    def _block(self, step: int, forward: bool) -> int:
        return step // self.bptt if forward else (self.steps - 1 - step) // self.bptt

    def _keeps(self, step: int, source: int) -> bool:
        """Whether a forward feedback edge from `source` to `step` carries gradient."""
        return self.bptt is None or self._block(step, True) == self._block(source, True)

    def _truncate(self, track: Track) -> None:
        """Mark the recurrent reads that truncated BPTT cuts (never the initial state's)."""
        if self.bptt is None:
            return
        v, forward = track.vector, track.lag > 0
        for step in np.flatnonzero(v.present):
            source = int(step) - track.lag
            if 0 <= source < self.steps and v.present[source]:
                same = self._block(int(step), forward) == self._block(source, forward)
                track.keep[step - track.lo] = same

    def _feeds_backward(self, v: Vector, feeds, propagate: bool = True) -> None:
        """Weight gradients of a vector's feeds over its span, one product per feed; with
        `propagate`, the gradient of each feed's source too."""
        (a, b), track = v.span, self.tracks[v.name]
        da = track.dxw[a - track.lo : b - track.lo]
        for feed, weight in feeds:
            t0, t1 = max(a, feed.lag), min(b, self.steps + feed.lag)
            if t0 >= t1:
                continue
            source = self._source(feed, t0, t1)
            d = _flat(da[t0 - a : t1 - a])
            live = self._live(track, t0, t1)
            if live is not None:  # a packed batch: padding rows carry no gradient
                source, d = source[live], d[live]
            self.dW[feed.weight][feed.rows[0] : feed.rows[1]] += source.T @ d
            target = self.tracks[feed.source]
            if propagate and target.g is not None:
                lo = target.lo
                rows = _flat(target.g[t0 - feed.lag - lo : t1 - feed.lag - lo])
                back = d @ weight.T
                mask = self.masks.get(feed)
                if mask is not None:
                    mask = _flat(mask[t0:t1])
                    back *= mask if live is None else mask[live]
                if live is None:
                    np.add(rows, back, out=rows)
                else:
                    rows[live] += back

    def _own_backward(self, v: Vector) -> None:
        """Gradients of a vector's biases and recurrent weight over its span, and of the
        initial states it was handed."""
        (a, b), track = v.span, self.tracks[v.name]
        lo = track.lo
        dxw = _flat(track.dxw[a - lo : b - lo])
        if v.role != "state":
            if v.biases:
                self.dW[v.biases[0]] += dxw.sum(axis=0)
            return
        d = _flat(track.kind.recurrent_gradient(track)[a - lo : b - lo])
        for key, rows in zip(v.biases, track.kind.bias_rows(track, a - lo, b - lo, dxw, d)):
            self.dW[key] += rows.sum(axis=0)
        self.dW[v.recurrence.weight] += track.kind.recurrent_weight_gradient(track, a - lo, b - lo)
        if v.learned:  # every item's initial state is the one trained vector
            for t in v.initial:
                self.dW[v.learned] += track.g[t - lo].sum(axis=0)
        if v.handover is not None:
            origin, step = v.handover
            source = self.tracks[origin]
            for name in handed_carries(track.kind.carries, source.kind.carries):
                grads = sum(track.gradient(name)[t - lo] for t in v.initial)
                if v.handover_rev is None:
                    source.gradient(name)[step - source.lo] += grads
                    continue
                other, at = self.tracks[v.handover_rev[0]], v.handover_rev[1]
                pair = merge_grads(
                    v.merge, grads, getattr(source, name)[step - source.lo],
                    getattr(other, name)[at - other.lo],
                )  # fmt: skip
                source.gradient(name)[step - source.lo] += pair[0]
                other.gradient(name)[at - other.lo] += pair[1]

    def gradients(self) -> dict[str, np.ndarray]:
        """Every weight's gradient, in the file's layout (gate order and scale)."""
        out = {}
        for key, d in self.dW.items():
            kind, size = self.owner.get(key, (None, 0))
            out[key] = unprepare(kind, d, size)
        vectors = {}  # each embedded input's gradient, (B, T_in, E)
        for name in self.plan.inputs:
            track = self.tracks[name]
            if track.g is not None:
                start, stop = self.plan.vectors[name].window
                vectors[name] = track.g[start:stop].transpose(1, 0, 2)
        out.update(embedding_grads(self.plan.folded, self.ids, vectors))
        return out
