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

__all__ = [
    "GRU",
    "GRU_RESET_BEFORE",
    "GRUKind",
    "gru_step",
    "gru_reset_before_step",
]

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


class GRUKind(Kind):
    """Three gates and two biases, `bx` and `bs`, as PyTorch's bias_ih and bias_hh."""

    name = spec_kind = "gru"
    takes_recurrent_dropout = True
    #: whether r multiplies the recurrent product (PyTorch; ONNX `linear_before_reset=1`)
    #: or the state before it (Cho et al.; ONNX's default 0): what an exporter must write
    reset_after = True
    gates = 3
    order = (0, 1, 2)
    sigmoid_gates = 2
    biases = (("bx", False), ("bs", False))
    tape_numbers = 7  # h_prev Ws_n + bs_n, and the four gate factors, r, z, n
    picture = Picture(tag="GRU h", shape="hexagon", fill="#ede9fe")
    gate_names = ("r", "z", "n")

    def step(self, ops, xw, prev, w, activation=None, read=None) -> tuple:
        (h_prev,) = prev  # the recurrent product reads `read` (dropout), the mix h_prev
        x_r, x_z, x_n = ops.split(ops.add(xw, w.get("bx")), 3)
        rec = ops.add(ops.matmul(h_prev if read is None else read, w["Ws"]), w.get("bs"))
        h_r, h_z, h_n = ops.split(rec, 3)
        return (self.mix(ops, h_prev, x_r, x_z, x_n, h_r, h_z, h_n),)

    @staticmethod
    def mix(ops, h_prev, x_r, x_z, x_n, h_r, h_z, h_n):
        """h = (1 - z) * n + z * h_prev from the gates' input and recurrent parts."""
        r, z = ops.sigmoid(ops.add(x_r, h_r)), ops.sigmoid(ops.add(x_z, h_z))
        n = ops.tanh(ops.add(x_n, ops.mul(r, h_n)))
        return ops.add(n, ops.mul(z, ops.sub(h_prev, n)))

    def variant(self, layer) -> Kind:
        from composer.kinds.layer_norm import GRU_LAYER_NORM  # the variant subclasses this

        if getattr(layer, "layer_norm", False):
            return GRU_LAYER_NORM
        return GRU if getattr(layer, "reset_after", True) else GRU_RESET_BEFORE

    def fold_biases(self, biases):
        if not biases:  # `bias: false`
            return None, 0.0
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
        mask = tr.recurrent_mask
        views = [(tr.xw, 0), (tr.h, lag), (tr.h, 0), (tr.hn, 0)]
        for x_t, h_prev, h, hn in zip(*aligned(views, a, b, reverse, tr.rows)):
            gh = tr.tmp[: len(h)]
            np.add(x_t, tr.bias, out=x_t)
            # variational dropout: the recurrent product reads h_prev * m, the mix h_prev
            np.matmul(h_prev if mask is None else h_prev * mask[: len(h)], Ws, out=gh)
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
        B, mask = tr.h.shape[1], tr.recurrent_mask
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
                if mask is not None:
                    tmp_h *= mask[: len(dh)]
                np.add(dh_prev, tmp_h, out=dh_prev)
                np.multiply(dh, z, out=tmp_h)
                np.add(dh_prev, tmp_h, out=dh_prev)

    def recurrent_gradient(self, track) -> np.ndarray:
        return track.dgh

    def bias_gradients(self, dxw: np.ndarray, drec: np.ndarray) -> tuple[np.ndarray, ...]:
        return dxw, drec  # bs: its r, z parts act like bx's, its n part on h_prev Ws


def gru_reset_before_step(
    xw: np.ndarray,
    h_prev: np.ndarray,
    Ws: np.ndarray,
    h: np.ndarray,
    work: tuple,
) -> np.ndarray:
    """One step of the GRU that resets before its recurrent product, into `h`.

    `xw` (3, B, H) holds x Wx + bx + bs (every part of bs adds outside the reset gate);
    `Ws` is (3, H, H), gate-major.
    """
    gh, rz, r, z, n, rh = work
    np.matmul(h_prev, Ws[:2], out=rz)
    np.add(rz, xw[:2], out=rz)
    np.tanh(rz, out=rz)
    rz *= 0.5  # halved weights: sigmoid(x) = (tanh(x / 2) + 1) / 2
    rz += 0.5
    np.multiply(r, h_prev, out=rh)
    np.matmul(rh, Ws[2], out=n)
    np.add(n, xw[2], out=n)
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    np.multiply(h, z, out=h)
    np.add(h, n, out=h)
    return h


class _GRUResetBefore(GRUKind):
    """The GRU of Cho et al. 2014 (`reset_after: false`; ONNX's `linear_before_reset=0`,
    Keras' `reset_after=False`): the reset gate scales the state before its product.

        r, z = sigmoid(x Wx + bx + h_prev Ws + bs)          (their columns)
        n = tanh(x Wx_n + bx_n + (r * h_prev) Ws_n + bs_n)
        h = (1 - z) * n + z * h_prev

    The weights are the GRU's, so both biases only ever appear summed: they fold into one.
    """

    name = "gru_reset_before"
    option = "reset_after: false"

    reset_after = False  # r scales h_prev before the product: not nn.GRU's equations
    tape_numbers = 2  # r * h_prev, and its gradient's scratch
    picture = Picture(tag="GRU h (reset before)", shape="hexagon", fill="#ede9fe")

    def variant(self, layer) -> Kind:
        return GRU.variant(layer)

    def step(self, ops, xw, prev, w, activation=None, read=None) -> tuple:
        (h_prev,) = prev
        read = h_prev if read is None else read
        x_r, x_z, x_n = ops.split(ops.add(xw, w.get("bx")), 3)
        W_r, W_z, W_n = ops.split(w["Ws"], 3)
        b_r, b_z, b_n = ops.split(w.get("bs"), 3)
        r = ops.sigmoid(ops.add(x_r, ops.matmul(read, W_r), b_r))
        z = ops.sigmoid(ops.add(x_z, ops.matmul(read, W_z), b_z))
        n = ops.tanh(ops.add(x_n, ops.matmul(ops.mul(r, read), W_n), b_n))
        return (ops.add(n, ops.mul(z, ops.sub(h_prev, n))),)

    def fold_biases(self, biases):
        if not biases:
            return None, None
        bx, bs = biases
        return bx + bs, None

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        gh = np.zeros((3, batch, size), dtype=dtype)
        return gh, gh[:2], gh[0], gh[1], gh[2], np.zeros((batch, size), dtype=dtype)

    def leading(self, work: tuple, rows: int) -> tuple:
        full = work[0]
        gh = full.reshape(-1)[: 3 * rows * full.shape[2]].reshape(3, rows, full.shape[2])
        return gh, gh[:2], gh[0], gh[1], gh[2], work[5][:rows]

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        batch = work[0].shape[1]
        for x_t, s_prev, s in zip(xw, prev[0], out[0]):
            rows = len(s)
            scratch = work if rows == batch else self.leading(work, rows)
            gru_reset_before_step(x_t, s_prev, recurrent, s, scratch)

    def tape(self, track, length: int, batch: int, dtype) -> None:
        H = track.size
        track.rh = np.zeros((length, batch, H), dtype)  # r * h_prev (masked), read by Ws_n
        track.drh = np.empty((batch, H), dtype)

    def tape_bias(self, bias: np.ndarray, batch: int) -> np.ndarray:
        return bias

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        tr = track
        lag, Ws, H, mask = tr.lag, tr.Ws, tr.size, tr.recurrent_mask
        views = [(tr.xw, 0), (tr.h, lag), (tr.h, 0), (tr.rh, 0)]
        for x_t, h_prev, h, rh in zip(*aligned(views, a, b, reverse, tr.rows)):
            read = h_prev if mask is None else h_prev * mask[: len(h)]
            np.add(x_t, tr.bias, out=x_t)  # x_t becomes the cache [r, z, n]
            rz, n = x_t[:, : 2 * H], x_t[:, 2 * H :]
            rz += read @ Ws[:, : 2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            np.multiply(x_t[:, :H], read, out=rh)
            n += rh @ Ws[:, 2 * H :]
            np.tanh(n, out=n)
            np.subtract(h_prev, n, out=h)
            np.multiply(h, x_t[:, H : 2 * H], out=h)
            np.add(h, n, out=h)

    def factors(self, track, a: int, b: int) -> None:
        """Made step by step in `backward`."""

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        tr = track
        lag, WsT, H, mask = tr.lag, tr.WsT, tr.size, tr.recurrent_mask
        views = [(tr.g, 0), (tr.g, lag), (tr.dxw, 0), (tr.xw, 0), (tr.h, lag), (tr.keep, 0)]
        for dh, dh_prev, da, gates, h_prev, keep in zip(
            *aligned(views, a, b, not reverse, tr.rows)
        ):
            rows = len(dh)
            r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
            read = h_prev if mask is None else h_prev * mask[:rows]
            da_r, da_z, da_n = da[:, :H], da[:, H : 2 * H], da[:, 2 * H :]
            np.multiply(dh, 1 - z, out=da_n)
            da_n *= 1 - n * n  # dA_n = dh * (1 - z) * tanh'
            drh = tr.drh[:rows]
            np.matmul(da_n, WsT[2 * H :], out=drh)  # the gradient of r * h_prev
            np.multiply(drh * read, 2 * r * (1 - r), out=da_r)  # halved: 2 s (1 - s)
            np.multiply(dh * (h_prev - n), 2 * z * (1 - z), out=da_z)
            if keep:
                through = drh * r + da[:, : 2 * H] @ WsT[: 2 * H]
                if mask is not None:
                    through *= mask[:rows]
                dh_prev += through + dh * z

    def recurrent_weight_gradient(self, track, a: int, b: int) -> np.ndarray:
        """Ws's r and z columns from the state read, its n columns from r * h_prev."""
        lag, H = track.lag, track.size
        read = track.h[a - lag : b - lag]
        if track.recurrent_mask is not None:
            read = read * track.recurrent_mask
        d = track.dxw[a:b].reshape(-1, 3 * H)
        rz = read.reshape(-1, H).T @ d[:, : 2 * H]
        return np.concatenate([rz, track.rh[a:b].reshape(-1, H).T @ d[:, 2 * H :]], axis=1)

    def recurrent_gradient(self, track) -> np.ndarray:
        return track.dxw

    def bias_gradients(self, dxw: np.ndarray, drec: np.ndarray) -> tuple[np.ndarray, ...]:
        return dxw, dxw  # bx and bs add up in every gate


GRU = GRUKind()
GRU_RESET_BEFORE = _GRUResetBefore()
