"""The LSTM layer, PyTorch's equations; gates i, f, g, o in the file, i, f, o, g in the cells.

i, f, o = sigmoid(.), g = tanh(.)      of x Wx + b + h_prev Ws
c = f * c_prev + i * g
h = o * tanh(c)
"""

from __future__ import annotations

import numpy as np

from composer.kinds import fused
from composer.kinds.base import Kind, Picture, aligned

__all__ = ["LSTM", "LSTMKind", "lstm_step"]


def lstm_step(
    xw: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    Ws: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    work: tuple,
) -> np.ndarray:
    """One LSTM step into `h` and `c`; gate-major weights and `xw`.

    `xw` is (4, B, H), `Ws` (4, H, H) (`gate_stack`); `work` is `LSTM.workspace(B, H,
    dtype)`. `c_prev` may be `c` itself (updated in place).
    """
    gates, sig, i, f, o, g = work
    np.matmul(h_prev, Ws, out=gates)
    np.add(gates, xw, out=gates)
    np.tanh(gates, out=gates)
    sig *= 0.5  # the sigmoid gates hold tanh(x / 2): sigmoid(x) = (tanh(x / 2) + 1) / 2
    sig += 0.5
    np.multiply(f, c_prev, out=c)
    np.multiply(i, g, out=h)  # h as scratch: it is overwritten below
    np.add(c, h, out=c)
    np.tanh(c, out=h)
    np.multiply(h, o, out=h)
    return h


class LSTMKind(Kind):
    """Four gates; carries h and the cell state c."""

    name = spec_kind = "lstm"
    takes_recurrent_dropout = True
    fused_step = True
    forget_gate = 1

    def variant(self, layer) -> Kind:
        from composer.kinds.layer_norm import LSTM_LAYER_NORM  # the variants subclass this
        from composer.kinds.lstm_proj import LSTM_PROJ

        if getattr(layer, "layer_norm", False):
            return LSTM_LAYER_NORM
        return LSTM_PROJ if getattr(layer, "proj_size", None) else LSTM

    gates = 4
    order = (0, 1, 3, 2)
    sigmoid_gates = 3
    carries = ("h", "c")
    tape_numbers = 9  # c, tanh c, its gradient, the cell slope and four gate factors
    picture = Picture(tag="LSTM h", shape="box", fill="#dcfce7", style="rounded,filled")
    gate_names = ("i", "f", "o", "g")

    def step(self, ops, xw, prev, w, activation=None, read=None) -> tuple:
        h_prev, c_prev = prev
        pre = ops.add(xw, ops.matmul(h_prev if read is None else read, w["Ws"]), w.get("b"))
        i, f, g, o = ops.split(pre, 4)
        c = ops.add(ops.mul(ops.sigmoid(f), c_prev), ops.mul(ops.sigmoid(i), ops.tanh(g)))
        return self.project(ops, ops.mul(ops.sigmoid(o), ops.tanh(c)), w), c

    def project(self, ops, h, w):
        """The state from the cells' output o * tanh(c): itself (a projection's: h Wp)."""
        return h

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        gates = np.zeros((4, batch, size), dtype=dtype)
        i, f, o, g = gates
        return gates, gates[:3], i, f, o, g

    def leading(self, work: tuple, rows: int) -> tuple:
        # the same memory as a contiguous (4, rows, H) block: a step's gates do not outlive it
        full = work[0]
        gates = full.reshape(-1)[: 4 * rows * full.shape[2]].reshape(4, rows, full.shape[2])
        i, f, o, g = gates
        return gates, gates[:3], i, f, o, g

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        batch, size = work[0].shape[1:]
        fast = fused.kernels(work[0].dtype, batch, size)
        if fast is not None and isinstance(xw, np.ndarray):  # not a packed batch's lists
            acc = work[0].reshape(-1)[: 4 * size]
            fast.lstm_scan(xw, prev[0], prev[1], fused.flat(recurrent), out[0], out[1], acc)
            return
        for x_t, h_prev, c_prev, h, c in zip(xw, prev[0], prev[1], out[0], out[1]):
            rows = len(h)
            scratch = work if rows == batch else self.leading(work, rows)
            lstm_step(x_t, h_prev, c_prev, recurrent, h, c, scratch)

    def tape(self, track, length: int, batch: int, dtype) -> None:
        H = track.size
        track.c, track.tc, track.gc = (np.zeros((length, batch, H), dtype) for _ in range(3))
        track.factor = np.empty((length, batch, 4, H), dtype)
        track.cell_slope = np.empty((length, batch, H), dtype)
        track.forget = track.xw[:, :, H : 2 * H]
        # row constants tiled to (B, 4H): numpy's same-shape loops on contiguous arrays
        # run about twice as fast as broadcast rows or strided gate blocks
        half = np.repeat(np.array([0.5, 1.0], dtype), [3 * H, H])
        track.slope_scale = np.tile(-half, (batch, 1))
        track.slope_offset = np.tile(half, (batch, 1))
        track.sig_scale = np.tile(np.repeat(np.array([0.5, 1.0], dtype), [3 * H, H]), (batch, 1))
        track.sig_shift = np.tile(np.repeat(np.array([0.5, 0.0], dtype), [3 * H, H]), (batch, 1))

    def tape_bias(self, bias: np.ndarray, batch: int) -> np.ndarray:
        return np.tile(bias, (batch, 1))  # a same-shape add runs faster than a broadcast row

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        """LSTM steps; each also leaves its derivative factors (`factor`, `cell_slope`),
        made here while its gates are in cache: a vectorised pass over strided gate blocks
        of all steps afterwards costs several times more."""
        tr = track
        lag, Ws, H, tmp = tr.lag, tr.Ws, tr.size, tr.tmp
        bias, mask = tr.bias, tr.recurrent_mask
        scale, offset = tr.slope_scale, tr.slope_offset
        sig_scale, sig_shift = tr.sig_scale, tr.sig_shift
        factor2d = tr.factor.reshape(len(tr.factor), -1, 4 * H)
        views = [(tr.xw, 0), (tr.h, lag), (tr.h, 0), (tr.c, lag), (tr.c, 0), (tr.tc, 0)]
        views += [(tr.factor, 0), (factor2d, 0), (tr.cell_slope, 0)]
        steps = aligned(views, a, b, reverse, tr.rows)
        fast = fused.compiled(Ws.dtype)  # the compiled elementwise part, when loaded
        for gates, h_prev, h, c_prev, c, tc, m, m2, slope in zip(*steps):
            if len(h) != len(tmp):  # a packed batch's leading items only
                n = len(h)
                tmp, bias, scale, offset = (
                    tr.tmp[:n],
                    tr.bias[:n],
                    tr.slope_scale[:n],
                    tr.slope_offset[:n],
                )
                sig_scale, sig_shift = tr.sig_scale[:n], tr.sig_shift[:n]
            if mask is not None:  # variational dropout: the recurrence reads h_prev * m
                h_prev = h_prev * mask[: len(h_prev)]
            np.matmul(h_prev, Ws, out=tmp)
            if fast is not None:  # the passes below in one compiled call, 2x faster
                fast.lstm_tape_step(gates, tmp, tr.bias[0], c_prev, c, tc, h, m2, slope)
                continue
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
            i, f, o, g = (gates[:, k * H : (k + 1) * H] for k in range(4))
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

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        tr = track
        lag, WsT, tmp_h, mask = tr.lag, tr.WsT, tr.tmp_h, tr.recurrent_mask
        B, H = tr.h.shape[1], tr.size
        dxw4 = tr.dxw.reshape(len(tr.dxw), B, 4, H)
        factor2d = tr.factor.reshape(len(tr.factor), B, 4 * H)
        views = [(tr.g, 0), (tr.g, lag), (tr.gc, 0), (tr.gc, lag), (tr.dxw, 0), (dxw4, 0)]
        views += [(tr.factor, 0), (tr.cell_slope, 0), (tr.forget, 0), (tr.keep, 0)]
        views += [(factor2d, 0), (tr.xw, 0)]
        fast = fused.compiled(WsT.dtype)  # the compiled elementwise part, when loaded
        for dh, dh_prev, dc, dc_prev, da, da4, m4, slope, f, keep, m2, gates in zip(
            *aligned(views, a, b, not reverse, tr.rows)
        ):
            tmp_h = tr.tmp_h[: len(dh)]
            if fast is not None:  # the passes below but the product, in one call
                fast.lstm_tape_back(dh, dc, m2, slope, gates, da, dc_prev, bool(keep))
            else:
                np.multiply(dh, slope, out=tmp_h)  # dc += dh * o * (1 - tanh(c)^2)
                np.add(dc, tmp_h, out=dc)
                np.multiply(dc[:, np.newaxis], m4[:, :2], out=da4[:, :2])  # i, f
                np.multiply(dh, m4[:, 2], out=da4[:, 2])  # o
                np.multiply(dc, m4[:, 3], out=da4[:, 3])  # g
                if keep:
                    np.multiply(dc, f, out=dc_prev)
            if keep:
                np.matmul(da, WsT, out=tmp_h)
                if mask is not None:
                    tmp_h *= mask[: len(dh)]
                np.add(dh_prev, tmp_h, out=dh_prev)


LSTM = LSTMKind()
