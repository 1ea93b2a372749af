"""The training tape: every vector's values, caches and gradients over a whole pass.

A `Track` holds one recurrent vector over its extent: the steps it is computed at plus its
initial-state steps, index `step - lo`. Its arrays are time-major, `(L, B, columns)`, and
its kind adds its own (`Kind.tape`: an LSTM's cell state, a GRU's h Ws_n). Gate columns
are in the compute layout (`composer.kinds.prepare`), so the gradients computed with them
are with respect to those prepared weights; `composer.kinds.unprepare` maps them back.

Each kind's cached forward and backward steps live in its module; the derivative factors
of a step depend only on forward values, so a kind may compute them for many steps at
once (`Kind.factors`), leaving its backward loop a few products per step and one matrix
product, `dA_t Ws^T`, carried to the step the recurrence read.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.kinds import KINDS, prepare

__all__ = ["Bound", "Values", "Track", "Workspace"]


class Bound:
    """A vector's weights in the layout its kind computes with (`composer.kinds.prepare`)."""

    def __init__(self, vector, params: Mapping[str, np.ndarray], dtype: np.dtype):
        kind = KINDS[vector.kind] if vector.role == "state" else None

        def prepared(key: str) -> np.ndarray:
            value = np.asarray(params[key], dtype=dtype)
            return prepare(kind, value, vector.units) if kind else np.ascontiguousarray(value)

        self.kind = kind
        learned = getattr(vector, "learned", None)
        self.initial = np.asarray(params[learned], dtype) if learned else None
        self.feeds = tuple(
            (feed, prepared(feed.weight)[feed.rows[0] : feed.rows[1]])
            for feed in vector.feeds
            if feed.weight is not None  # a merge vector's states: no weight
        )
        self.recurrent = prepared(vector.recurrence.weight) if vector.recurrence else None
        biases = [prepared(key) for key in vector.biases]
        self.bias, self.extra = (biases[0] if biases else None), None
        if kind is not None:  # folded gate-major, then flat again: (G, H) views of (G*H,)
            columns = kind.columns(vector.units)
            gate_major = [
                b.reshape(kind.gates, -1) if b.ndim == 1 and b.size == columns else b
                for b in biases
            ]
            bias, self.extra = kind.fold_biases(gate_major)
            # `bias: false` (or a kind that adds its biases itself): the steps add zeros
            self.bias = np.zeros(columns, dtype) if bias is None else bias.reshape(-1)


class Values:
    """An input's or a dense vector's values over steps 0..T-1 (lo = 0), and for a dense
    vector the gradients of its values (`g`) and of its pre-activation (`dxw`)."""

    lo = 0

    def __init__(self, vector, steps: int, batch: int, dtype, trained: bool = True):
        self.vector = vector
        self.h = np.zeros((steps, batch, vector.size), dtype)
        self.xw = self.h  # a dense vector sums its pre-activation where its values go
        self.g = np.zeros_like(self.h) if trained else None
        self.dxw = np.zeros_like(self.h) if trained else None
        self.logits = self.dlogits = None

    def reset(self) -> None:
        """Ready for another pass of the same plan: clear what accumulates. (A pass writes
        only the steps a vector is computed at, so the others keep their zeros.)"""
        if self.g is not None:
            self.g.fill(0)
        if self.dlogits is not None:
            self.dlogits.fill(0)

    def keep_logits(self, a: int, b: int) -> None:
        """Save steps a..b-1 of a softmax's pre-activation: cross-entropy reads them."""
        if self.logits is None:
            self.logits, self.dlogits = np.zeros_like(self.h), np.zeros_like(self.h)
        self.logits[a:b] = self.h[a:b]


class Track:
    """A recurrent vector's values, caches and gradients over its extent (index step - lo).

    Common to every kind: `h` and its gradient `g`, the projected inputs `xw` (the cached
    forward overwrites them with the activated gates) and their gradient `dxw`, `factor`
    (derivative factors, only read at computed steps, so never cleared) and `keep` (False
    where truncated BPTT drops t -> t - lag). A carried array other than h, such as an
    LSTM's `c`, is an attribute of that name with its gradient as `g` + name (`gc`).
    """

    def __init__(self, vector, steps: int, batch: int, dtype):
        # `size`: the units H (gate blocks, an LSTM's c); h has the vector's own size
        self.vector, self.kind, self.size = vector, KINDS[vector.kind], vector.units
        self.lag = vector.recurrence.lag
        self.lo = min((0, *vector.initial))
        length = max((steps, *(t + 1 for t in vector.initial))) - self.lo
        H, width = vector.size, self.kind.columns(vector.units)
        self.h = np.zeros((length, batch, H), dtype)
        self.xw = np.zeros((length, batch, width), dtype)
        self.dxw = np.zeros((length, batch, width), dtype)
        self.g = np.zeros((length, batch, H), dtype)
        self.tmp = np.empty((batch, width), dtype)
        self.tmp_h = np.empty((batch, H), dtype)
        self.keep = np.ones(length, dtype=bool)
        self.rows = None  # a packed batch: the items still running at each index
        self.recurrent_mask = None  # a training pass's variational dropout mask, (B, H)
        self.factor = np.empty((length, batch, H), dtype)
        self.kind.tape(self, length, batch, dtype)

    def gradient(self, carried: str) -> np.ndarray:
        """The gradient of a carried array: `g` for h, `g` + name for the others."""
        return self.g if carried == "h" else getattr(self, "g" + carried)

    def bind(self, bound: Bound) -> None:
        """Take this pass's recurrent weights and biases (added step by step, in cache)."""
        self.Ws, self.WsT = bound.recurrent, np.ascontiguousarray(bound.recurrent.T)
        self.bias = self.kind.tape_bias(bound.bias, len(self.tmp))
        self.extra = bound.extra

    def reset(self) -> None:
        """Ready for another pass of the same plan: clear what accumulates. (A pass writes
        only the steps a vector is computed at, and the initial states it is handed, so the
        other steps keep their zeros.)"""
        self.g.fill(0)
        self.keep.fill(True)
        for name in self.kind.carries[1:]:
            self.gradient(name).fill(0)


class Workspace:
    """Arrays that `grad` keeps between calls, for a training loop to pass to every call.

    A pass over a network of H = 256 and T = 128 fills tens of megabytes; allocating them
    afresh for every minibatch costs more than clearing the few that need it. One
    workspace holds the arrays of the last two (plan, batch size, dtype) it served.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[object, tuple, dict]] = []

    def tracks(self, plan, batch: int, dtype: np.dtype) -> dict:
        """Every vector's arrays for a pass, reused (and reset) when this plan was seen."""
        key = (batch, np.dtype(dtype).str)
        for held, held_key, tracks in self._entries:
            if held is plan and held_key == key:
                for track in tracks.values():
                    track.reset()
                return tracks
        tracks = {}
        for name, v in plan.vectors.items():
            if v.role == "state":
                tracks[name] = Track(v, plan.steps, batch, dtype)
            elif v.role != "output":
                embedded = bool(plan.folded.nodes[name].get("embed"))
                trained = v.role != "input" or embedded  # an embedding learns from its input
                tracks[name] = Values(v, plan.steps, batch, dtype, trained=trained)
        self._entries = [(plan, key, tracks), *self._entries[:1]]
        return tracks
