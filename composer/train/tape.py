"""Cached cells for training: each recurrent kind's forward steps that keep what the backward
pass needs, and its backward steps (backpropagation through time, one step at a time).

A `Track` holds one recurrent vector over its extent: the steps it is computed at plus its
initial-state steps, index `step - lo`. Its arrays are time-major, `(L, B, columns)`.
Gate columns are in the executor's layout (`cells.prepare_columns`: sigmoid gates first,
their columns halved so one `tanh` serves every gate), so the gradients computed here are
with respect to those prepared weights; `unprepare` maps them back to the file's layout.

The derivative factors of a step depend only on forward values, so `factors` computes them
for all steps at once, vectorised; the time loops are left with a few products per step
and one matrix product, `dA_t Ws^T`, carried to the step the recurrence read.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.kinds.base import ACTIVATIONS, CELLS, Cell, prepare_columns

__all__ = [
    "Bound",
    "Track",
    "forward_run",
    "backward_run",
    "factors",
    "unprepare",
    "activation_grad",
]


class Bound:
    """A vector's weights in the layout its cell computes with (`prepare_columns`)."""

    def __init__(self, vector, params: Mapping[str, np.ndarray], dtype: np.dtype):
        cell = CELLS[vector.kind] if vector.role == "state" else None

        def prepared(key: str) -> np.ndarray:
            value = np.asarray(params[key], dtype=dtype)
            return (
                prepare_columns(cell, value, vector.size) if cell else np.ascontiguousarray(value)
            )

        self.cell = cell
        self.feeds = tuple(
            (feed, prepared(feed.weight)[feed.rows[0] : feed.rows[1]]) for feed in vector.feeds
        )
        self.recurrent = prepared(vector.recurrence.weight) if vector.recurrence else None
        biases = [prepared(key) for key in vector.biases]
        self.bias, self.bias_n = (biases[0] if biases else None), None
        if vector.kind == "gru":  # bs's r and z parts only ever appear summed with bx's
            bx, bs = biases
            split = 2 * vector.size
            self.bias = bx + np.concatenate([bs[:split], np.zeros_like(bs[split:])])
            self.bias_n = np.ascontiguousarray(bs[split:])


class Values:
    """An input's or a dense vector's values over steps 0..T-1 (lo = 0), and for a dense
    vector the gradients of its values (`g`) and of its pre-activation (`dxw`)."""

    lo, kind = 0, "dense"

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
    """A recurrent vector's values, caches and gradients over its extent (index step - lo)."""

    def __init__(self, vector, steps: int, batch: int, dtype):
        self.vector, self.kind, self.size = vector, vector.kind, vector.size
        self.lag = vector.recurrence.lag
        self.lo = min((0, *vector.initial))
        length = max((steps, *(t + 1 for t in vector.initial))) - self.lo
        H, width = vector.size, vector.size * CELLS[vector.kind].gates
        self.h = np.zeros((length, batch, H), dtype)
        # xw: the projected inputs; the forward overwrites it with the activated gates
        self.xw = np.zeros((length, batch, width), dtype)
        self.dxw = np.zeros((length, batch, width), dtype)  # gradient w.r.t. xw
        self.g = np.zeros((length, batch, H), dtype)  # gradient w.r.t. h
        self.tmp = np.empty((batch, width), dtype)
        self.tmp_h = np.empty((batch, H), dtype)
        self.keep = np.ones(length, dtype=bool)  # False: truncated BPTT drops t -> t - lag
        # derivative factors (`factors`): only read at computed steps, so never cleared
        self.factor = np.empty((length, batch, H), dtype)
        if self.kind == "lstm":
            self.c, self.tc, self.gc = (np.zeros((length, batch, H), dtype) for _ in range(3))
            self.factor = np.empty((length, batch, 4, H), dtype)
            self.cell_slope = np.empty((length, batch, H), dtype)
            self.forget = self.xw[:, :, H : 2 * H]
            # row constants tiled to (B, 4H): numpy's same-shape loops on contiguous
            # arrays run about twice as fast as broadcast rows or strided gate blocks
            half = np.repeat(np.array([0.5, 1.0], dtype), [3 * H, H])
            self.slope_scale = np.tile(-half, (batch, 1))
            self.slope_offset = np.tile(half, (batch, 1))
            self.sig_scale = np.tile(np.repeat(np.array([0.5, 1.0], dtype), [3 * H, H]), (batch, 1))
            self.sig_shift = np.tile(np.repeat(np.array([0.5, 0.0], dtype), [3 * H, H]), (batch, 1))
        if self.kind == "gru":
            self.hn = np.zeros((length, batch, H), dtype)  # h_prev Ws_n + bs_n
            self.dgh = np.zeros((length, batch, width), dtype)  # gradient w.r.t. h_prev Ws
            self.factor = np.empty((length, batch, 4, H), dtype)

    def bind(self, bound: Bound) -> None:
        """Take this pass's recurrent weights."""
        self.Ws, self.WsT = bound.recurrent, np.ascontiguousarray(bound.recurrent.T)
        self.bias, self.bias_n = bound.bias, bound.bias_n  # added step by step, in cache
        if self.kind == "lstm":
            self.bias = np.tile(bound.bias, (len(self.tmp), 1))

    def reset(self) -> None:
        """Ready for another pass of the same plan: clear what accumulates. (A pass writes
        only the steps a vector is computed at, and the initial states it is handed, so the
        other steps keep their zeros.)"""
        self.g.fill(0)
        self.keep.fill(True)
        if self.kind == "lstm":
            self.gc.fill(0)


def _views(arrays, a: int, b: int, reverse: bool) -> list:
    """Aligned per-step slices: each (array, shift) as array[a - shift : b - shift]."""
    out = [array[a - shift : b - shift] for array, shift in arrays]
    return [view[::-1] for view in out] if reverse else out


def forward_run(track: Track, a: int, b: int, reverse: bool) -> None:
    """Steps with indexes a..b-1 (in time order, or reversed), caching gate values."""
    {"elman": _elman_forward, "lstm": _lstm_forward, "gru": _gru_forward}[track.kind](
        track, a, b, reverse
    )


def backward_run(track: Track, a: int, b: int, reverse: bool) -> None:
    """The backward of `forward_run` over the same steps, run in the opposite order.

    Reads `g` (the gradient w.r.t. h, consumers' part already in), writes `dxw`, and adds
    what flows through the recurrence to step t - lag, where `keep` allows it.
    """
    {"elman": _elman_backward, "lstm": _lstm_backward, "gru": _gru_backward}[track.kind](
        track, a, b, reverse
    )


def _elman_forward(tr: Track, a: int, b: int, reverse: bool) -> None:
    act = np.tanh if tr.vector.activation == "tanh" else ACTIVATIONS[tr.vector.activation]
    lag, Ws, bias = tr.lag, tr.Ws, tr.bias
    for x_t, s_prev, s in zip(*_views([(tr.xw, 0), (tr.h, lag), (tr.h, 0)], a, b, reverse)):
        np.matmul(s_prev, Ws, out=s)
        np.add(s, x_t, out=s)
        np.add(s, bias, out=s)
        act(s, out=s)


def _elman_backward(tr: Track, a: int, b: int, reverse: bool) -> None:
    lag, WsT, tmp = tr.lag, tr.WsT, tr.tmp
    views = [(tr.g, 0), (tr.g, lag), (tr.dxw, 0), (tr.factor, 0), (tr.keep, 0)]
    for dh, dh_prev, da, slope, keep in zip(*_views(views, a, b, not reverse)):
        np.multiply(dh, slope, out=da)
        if keep:
            np.matmul(da, WsT, out=tmp)
            np.add(dh_prev, tmp, out=dh_prev)


def _lstm_forward(tr: Track, a: int, b: int, reverse: bool) -> None:
    """LSTM steps; each also leaves its derivative factors (`factor`, `cell_slope`), made
    here while its gates are in cache: a vectorised pass over strided gate blocks of all
    steps afterwards costs several times more."""
    lag, Ws, H, tmp, bias = tr.lag, tr.Ws, tr.size, tr.tmp, tr.bias
    scale, offset = tr.slope_scale, tr.slope_offset
    sig_scale, sig_shift = tr.sig_scale, tr.sig_shift
    factor2d = tr.factor.reshape(len(tr.factor), -1, 4 * H)
    views = [(tr.xw, 0), (tr.h, lag), (tr.h, 0), (tr.c, lag), (tr.c, 0), (tr.tc, 0)]
    views += [(tr.factor, 0), (factor2d, 0), (tr.cell_slope, 0)]
    for gates, h_prev, h, c_prev, c, tc, m, m2, slope in zip(*_views(views, a, b, reverse)):
        np.matmul(h_prev, Ws, out=tmp)
        np.add(gates, tmp, out=gates)
        np.add(gates, bias, out=gates)
        np.tanh(gates, out=gates)
        # d gate / d (prepared pre-activation) from t = tanh(.): (1 - t^2) / 2 for the
        # sigmoid gates (their columns are halved), 1 - t^2 for g
        np.multiply(gates, gates, out=m2)
        np.multiply(m2, scale, out=m2)
        np.add(m2, offset, out=m2)
        # sigmoid(x) = (tanh(x / 2) + 1) / 2 on the (pre-halved) sigmoid columns, g kept
        np.multiply(gates, sig_scale, out=gates)
        np.add(gates, sig_shift, out=gates)
        i, f, o, g = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        np.multiply(f, c_prev, out=c)
        np.multiply(i, g, out=tc)
        np.add(c, tc, out=c)
        np.tanh(c, out=tc)
        np.multiply(o, tc, out=h)
        m[:, 0] *= g  # dA_i = dc * g * sigmoid'
        m[:, 1] *= c_prev  # dA_f = dc * c_prev * sigmoid'
        m[:, 2] *= tc  # dA_o = dh * tanh(c) * sigmoid'
        m[:, 3] *= i  # dA_g = dc * i * tanh'
        np.multiply(tc, tc, out=slope)  # dc = dh * o * (1 - tanh(c)^2)
        np.subtract(1, slope, out=slope)
        slope *= o


def _lstm_backward(tr: Track, a: int, b: int, reverse: bool) -> None:
    lag, WsT, tmp_h = tr.lag, tr.WsT, tr.tmp_h
    B, H = tr.h.shape[1], tr.size
    dxw4 = tr.dxw.reshape(len(tr.dxw), B, 4, H)
    views = [(tr.g, 0), (tr.g, lag), (tr.gc, 0), (tr.gc, lag), (tr.dxw, 0), (dxw4, 0)]
    views += [(tr.factor, 0), (tr.cell_slope, 0), (tr.forget, 0), (tr.keep, 0)]
    for dh, dh_prev, dc, dc_prev, da, da4, m4, slope, f, keep in zip(
        *_views(views, a, b, not reverse)
    ):
        np.multiply(dh, slope, out=tmp_h)  # dc += dh * o * (1 - tanh(c)^2)
        np.add(dc, tmp_h, out=dc)
        np.multiply(dc[:, np.newaxis], m4[:, :2], out=da4[:, :2])  # i, f
        np.multiply(dh, m4[:, 2], out=da4[:, 2])  # o
        np.multiply(dc, m4[:, 3], out=da4[:, 3])  # g
        if keep:
            np.multiply(dc, f, out=dc_prev)
            np.matmul(da, WsT, out=tmp_h)
            np.add(dh_prev, tmp_h, out=dh_prev)


def _gru_forward(tr: Track, a: int, b: int, reverse: bool) -> None:
    lag, Ws, H, gh, bs_n = tr.lag, tr.Ws, tr.size, tr.tmp, tr.bias_n
    views = [(tr.xw, 0), (tr.h, lag), (tr.h, 0), (tr.hn, 0)]
    for x_t, h_prev, h, hn in zip(*_views(views, a, b, reverse)):
        np.add(x_t, tr.bias, out=x_t)
        np.matmul(h_prev, Ws, out=gh)
        rz = x_t[:, : 2 * H]  # x_t becomes the cache [r, z, n]
        np.add(rz, gh[:, : 2 * H], out=rz)
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        np.add(gh[:, 2 * H :], bs_n, out=hn)
        n = x_t[:, 2 * H :]
        np.multiply(x_t[:, :H], hn, out=h)
        np.add(n, h, out=n)
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=h)
        np.multiply(h, x_t[:, H : 2 * H], out=h)
        np.add(h, n, out=h)


def _gru_backward(tr: Track, a: int, b: int, reverse: bool) -> None:
    lag, WsT, tmp_h, H = tr.lag, tr.WsT, tr.tmp_h, tr.size
    B = tr.h.shape[1]
    dgh4 = tr.dgh.reshape(len(tr.dgh), B, 3, H)
    k4 = tr.factor  # [dA_n/dh, dA_z/dh, dA_r/dA_n, r] per step
    views = [(tr.g, 0), (tr.g, lag), (tr.dgh, 0), (dgh4, 0), (tr.dxw, 0), (k4, 0)]
    views += [(tr.xw[:, :, H : 2 * H], 0), (tr.keep, 0)]
    for dh, dh_prev, dgh, dgh4_t, dxw, k, z, keep in zip(*_views(views, a, b, not reverse)):
        dan = dxw[:, 2 * H :]
        np.multiply(dh, k[:, 0], out=dan)
        np.multiply(dh, k[:, 1], out=dgh4_t[:, 1])
        np.multiply(dan, k[:, 2], out=dgh4_t[:, 0])
        np.multiply(dan, k[:, 3], out=dgh4_t[:, 2])  # the gradient of h_prev Ws_n + bs_n
        np.copyto(dxw[:, : 2 * H], dgh[:, : 2 * H])  # r and z enter xw and h_prev Ws alike
        if keep:
            np.matmul(dgh, WsT, out=tmp_h)
            np.add(dh_prev, tmp_h, out=dh_prev)
            np.multiply(dh, z, out=tmp_h)
            np.add(dh_prev, tmp_h, out=dh_prev)


#: factors are computed a few steps at a time, so each pass stays in a core's cache
_CHUNK_BYTES = 1 << 19


def factors(tr: Track, a: int, b: int) -> None:
    """Each kind's derivative factors over indexes a..b-1, from the cached forward values."""
    if tr.kind == "lstm":
        return  # made by the forward steps themselves
    fill = {"elman": _elman_factors, "gru": _gru_factors}[tr.kind]
    step = max(1, _CHUNK_BYTES // tr.xw[0].nbytes)
    for u in range(a, b, step):
        fill(tr, u, min(b, u + step))


def _elman_factors(tr: Track, u: int, w: int) -> None:
    y, out, activation = tr.h[u:w], tr.factor[u:w], tr.vector.activation
    if activation == "tanh":
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
    elif activation == "sigmoid":
        np.subtract(1, y, out=out)
        out *= y
    elif activation == "relu":
        np.greater(y, 0, out=out)
    else:
        out.fill(1)


def _gru_factors(tr: Track, u: int, w: int) -> None:
    gates = tr.xw[u:w].reshape(w - u, -1, 3, tr.size)  # the cache r, z, n
    r, z, n = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2]
    k = tr.factor[u:w]
    k_n, k_z, k_r, k_rr = k[:, :, 0], k[:, :, 1], k[:, :, 2], k[:, :, 3]
    np.subtract(1, z, out=k_rr)  # scratch: 1 - z
    np.multiply(n, n, out=k_n)
    np.subtract(1, k_n, out=k_n)
    k_n *= k_rr  # dA_n = dh * (1 - z) * tanh'
    np.subtract(tr.h[u - tr.lag : w - tr.lag], n, out=k_z)
    k_z *= k_rr
    k_z *= z
    k_z *= 2  # dA_z = dh * (h_prev - n) * 2 z (1 - z)
    np.subtract(1, r, out=k_r)
    k_r *= r
    k_r *= 2
    k_r *= tr.hn[u:w]  # dA_r = dA_n * hn * 2 r (1 - r)
    np.copyto(k_rr, r)  # the gradient of hn = dA_n * r


def _slope(activation: str, y: np.ndarray) -> np.ndarray:
    """phi'(a) from y = phi(a), for the elementwise activations."""
    if activation == "tanh":
        return 1 - y * y
    if activation == "sigmoid":
        return y * (1 - y)
    if activation == "relu":
        return (y > 0).astype(y.dtype)
    return np.ones_like(y)


def activation_grad(activation: str, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The gradient w.r.t. a of y = psi(a), given dy; softmax through its Jacobian."""
    if activation == "softmax":
        return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    return dy * _slope(activation, y)


def unprepare(cell: Cell | None, grad: np.ndarray, state_size: int) -> np.ndarray:
    """A gradient w.r.t. a prepared weight, as the gradient w.r.t. the file's weight.

    `prepare_columns` reorders gate blocks and halves the sigmoid ones, so the gradient
    w.r.t. an original sigmoid column is half the prepared one, moved back in place.
    """
    if cell is None or cell.gates == 1:
        return grad
    H = state_size
    out = np.empty_like(grad)
    for position, block in enumerate(cell.order):
        scale = 0.5 if position < cell.sigmoid_gates else 1.0
        out[..., block * H : (block + 1) * H] = grad[..., position * H : (position + 1) * H] * scale
    return out


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
                tracks[name] = Values(v, plan.steps, batch, dtype, trained=v.role != "input")
        self._entries = [(plan, key, tracks), *self._entries[:1]]
        return tracks
