"""The GRU layer, PyTorch's equations; gates r, z, n.

    r, z = sigmoid(x Wx + bx + h_prev Ws + bs)          (their columns)
    n = tanh(x Wx_n + bx_n + r * (h_prev Ws_n + bs_n))
    h = (1 - z) * n + z * h_prev = n + z * (h_prev - n)

bs's r and z parts only ever appear summed with bx's, so they are folded into the
projected input's bias; its n part, which the reset gate multiplies, stays apart.
"""

from __future__ import annotations

import numpy as np

from composer.kinds.base import Kind, Picture, aligned

__all__ = ["GRU", "gru_step"]

#: a pass of derivative factors covers a few steps at a time, to stay in a core's cache
_CHUNK_BYTES = 1 << 19


def gru_step(
    xw: np.ndarray,
    h_prev: np.ndarray,
    Ws: np.ndarray,
    bs_n: np.ndarray,
    h: np.ndarray,
    work: tuple,
) -> np.ndarray:
    """One GRU step into `h`; gate-major weights and `xw`.

    `xw` (3, B, H) holds x Wx + bx with the r and z parts of bs already added; `bs_n` is
    the n part of bs.
    """
    gh, rz, r, z, n = work
    np.matmul(h_prev, Ws, out=gh)
    np.add(rz, xw[:2], out=rz)
    np.tanh(rz, out=rz)
    rz *= 0.5  # halved weights: sigmoid(x) = (tanh(x / 2) + 1) / 2
    rz += 0.5
    np.add(n, bs_n, out=n)
    np.multiply(n, r, out=n)
    np.add(n, xw[2], out=n)
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    np.multiply(h, z, out=h)
    np.add(h, n, out=h)
    return h


class _GRU(Kind):
    """Three gates and two biases, `bx` and `bs`, as PyTorch's bias_ih and bias_hh."""

    name = "gru"
    gates = 3
    order = (0, 1, 2)
    sigmoid_gates = 2
    biases = (("bx", False), ("bs", False))
    torch_class = "GRU"
    torch_biases = (("bx", ("bias_ih",)), ("bs", ("bias_hh",)))
    tape_numbers = 7  # h_prev Ws_n + bs_n, and the four gate factors, r, z, n
    picture = Picture(tag="GRU h", shape="hexagon", fill="#ede9fe")
    onnx_operator = "GRU"
    onnx_gates = (1, 0, 2)  # ONNX's z, r, h from our r, z, n

    def onnx_attributes(self, activation, directions: int) -> dict:
        # the reset gate multiplies (h_prev Ws_n + bs_n), as PyTorch's GRU and ours do;
        # ONNX's default, 0, would multiply h_prev before the product
        return {"linear_before_reset": 1}

    def onnx_biases(self, biases):
        return biases[0], biases[1]  # bx as Wb, bs as Rb

    def onnx_step(self, g, xw, prev, recurrent, biases, activation):
        (h_prev,) = prev
        bx, bs = biases
        gx = bx if xw is None else g.add(xw, bx)
        gh = g.add(g.matmul(h_prev, recurrent), bs)
        x_r, x_z, x_n = g.split(gx, 3)
        h_r, h_z, h_n = g.split(gh, 3)
        r, z = g.sigmoid(g.add(x_r, h_r)), g.sigmoid(g.add(x_z, h_z))
        n = g.tanh(g.add(x_n, g.mul(r, h_n)))
        return (g.add(n, g.mul(z, g.sub(h_prev, n))),)

    def tensor_step(self, xw, prev, Ws, biases, activation) -> tuple:
        (h_prev,) = prev
        x_r, x_z, x_n = (xw + biases[0]).chunk(3, -1)
        h_r, h_z, h_n = (h_prev @ Ws + biases[1]).chunk(3, -1)
        r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
        n = (x_n + r * h_n).tanh()
        return ((1 - z) * n + z * h_prev,)

    def fold_biases(self, biases):
        bx, bs = biases
        bias = bx.copy()
        bias[:2] += bs[:2]  # bs's r and z parts always appear summed with bx's
        return bias, np.ascontiguousarray(bs[2])

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        gh = np.zeros((3, batch, size), dtype=dtype)
        return gh, gh[:2], gh[0], gh[1], gh[2]

    def leading(self, work: tuple, rows: int) -> tuple:
        # the same memory as a contiguous (3, rows, H) block: a step's gates do not outlive it
        full = work[0]
        gh = full.reshape(-1)[: 3 * rows * full.shape[2]].reshape(3, rows, full.shape[2])
        return gh, gh[:2], gh[0], gh[1], gh[2]

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        batch = work[0].shape[1]
        for x_t, s_prev, s in zip(xw, prev[0], out[0]):
            rows = len(s)
            scratch = work if rows == batch else self.leading(work, rows)
            gru_step(x_t, s_prev, recurrent, extra, s, scratch)

    def tape(self, track, length: int, batch: int, dtype) -> None:
        H = track.size
        track.hn = np.zeros((length, batch, H), dtype)  # h_prev Ws_n + bs_n
        track.dgh = np.zeros((length, batch, 3 * H), dtype)  # gradient w.r.t. h_prev Ws
        track.factor = np.empty((length, batch, 4, H), dtype)

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        tr = track
        lag, Ws, H, gh, bs_n = tr.lag, tr.Ws, tr.size, tr.tmp, tr.extra
        views = [(tr.xw, 0), (tr.h, lag), (tr.h, 0), (tr.hn, 0)]
        for x_t, h_prev, h, hn in zip(*aligned(views, a, b, reverse, tr.rows)):
            gh = tr.tmp[: len(h)]
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

    def factors(self, track, a: int, b: int) -> None:
        step = max(1, _CHUNK_BYTES // track.xw[0].nbytes)
        for u in range(a, b, step):
            self._factors(track, u, min(b, u + step))

    @staticmethod
    def _factors(tr, u: int, w: int) -> None:
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

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        tr = track
        lag, WsT, tmp_h, H = tr.lag, tr.WsT, tr.tmp_h, tr.size
        B = tr.h.shape[1]
        dgh4 = tr.dgh.reshape(len(tr.dgh), B, 3, H)
        k4 = tr.factor  # [dA_n/dh, dA_z/dh, dA_r/dA_n, r] per step
        views = [(tr.g, 0), (tr.g, lag), (tr.dgh, 0), (dgh4, 0), (tr.dxw, 0), (k4, 0)]
        views += [(tr.xw[:, :, H : 2 * H], 0), (tr.keep, 0)]
        steps = aligned(views, a, b, not reverse, tr.rows)
        for dh, dh_prev, dgh, dgh4_t, dxw, k, z, keep in zip(*steps):
            tmp_h = tr.tmp_h[: len(dh)]
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

    def recurrent_gradient(self, track) -> np.ndarray:
        return track.dgh

    def bias_gradients(self, dxw: np.ndarray, drec: np.ndarray) -> tuple[np.ndarray, ...]:
        return dxw, drec  # bs: its r, z parts act like bx's, its n part on h_prev Ws


GRU = _GRU()
