"""Layer normalisation in a recurrent layer (`layer_norm: true`): the LSTM and the GRU
that normalise their pre-activations, with the one normalisation they share."""

from __future__ import annotations

import numpy as np

from composer.kinds.base import Kind, Picture, WeightInfo, aligned
from composer.kinds.gru import GRU, GRUKind
from composer.kinds.lstm import LSTM, LSTMKind
from composer.kinds.ops import LAYER_NORM_EPS

__all__ = [
    "LSTM_LAYER_NORM",
    "GRU_LAYER_NORM",
    "lstm_layer_norm_step",
    "gru_layer_norm_step",
    "normalise",
    "normalise_back",
]


def normalise(a: np.ndarray, axes) -> tuple[np.ndarray, np.ndarray]:
    """(a - mean) / std over `axes`, and that std (sqrt(var + eps)), keeping dims."""
    centred = a - a.mean(axis=axes, keepdims=True)
    std = np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + LAYER_NORM_EPS)
    return centred / std, std


def normalise_back(dn: np.ndarray, n: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The gradient w.r.t. a of n = (a - mean) / std, over the last axis, given dn."""
    mean_dn = dn.mean(axis=-1, keepdims=True)
    mean_dn_n = (dn * n).mean(axis=-1, keepdims=True)
    return (dn - mean_dn - n * mean_dn_n) / std


def lstm_layer_norm_step(xw, h_prev, c_prev, Ws, extra, h, c) -> None:
    """One layer-normalised LSTM step into `h` and `c`; gate-major `xw` (4, B, H) = x Wx
    and `Ws` (4, H, H), in PyTorch's gate order; `extra` = (b, gx, gs, gc, bc), the 4H
    ones gate-major (4, 1, H)."""
    b, gx, gs, gc, bc = extra
    x_hat, _ = normalise(xw, (0, 2))
    s_hat, _ = normalise(np.matmul(h_prev, Ws), (0, 2))
    gates = x_hat * gx + s_hat * gs + b
    i, f, g, o = gates
    i, f, o = (1 / (1 + np.exp(-v)) for v in (i, f, o))
    np.multiply(f, c_prev, out=c)
    c += i * np.tanh(g)
    c_hat, _ = normalise(c, -1)
    np.multiply(o, np.tanh(c_hat * gc + bc), out=h)


class _LayerNormLSTM(LSTMKind):
    """The LSTM of `layer_norm: true` (Ba, Kiros & Hinton 2016, "Layer Normalization",
    eqs. 20-22), with the two normalisations' shifts merged into `b`:

        gates = LN(x Wx) * gx + LN(h_prev Ws) * gs + b     (LN over all 4H, gates i, f, g, o)
        c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)
        h = sigmoid(o) * tanh(LN(c) * gc + bc)              (LN over the H units)

    It computes in PyTorch's gate order, unhalved (`order` the identity, no sigmoid
    gates): a normalisation is not linear, so the halved-column trick does not apply.
    Written step by step, for clarity over speed.
    """

    fused_step = False  # its own NumPy steps

    name = "lstm_layer_norm"
    option = "layer_norm: true"

    def step(self, ops, xw, prev, w, activation=None, read=None) -> tuple:
        h_prev, c_prev = prev
        rec = ops.matmul(h_prev if read is None else read, w["Ws"])
        pre = ops.add(
            ops.mul(ops.layer_norm(xw), w["gx"]), ops.mul(ops.layer_norm(rec), w["gs"]), w["b"]
        )
        i, f, g, o = ops.split(pre, 4)
        c = ops.add(ops.mul(ops.sigmoid(f), c_prev), ops.mul(ops.sigmoid(i), ops.tanh(g)))
        cell = ops.add(ops.mul(ops.layer_norm(c), w["gc"]), w["bc"])
        return ops.mul(ops.sigmoid(o), ops.tanh(cell)), c

    order = (0, 1, 2, 3)
    sigmoid_gates = 0
    biases = (("b", True), ("gx", False), ("gs", False), ("gc", False), ("bc", False))
    tape_numbers = 16  # normalised parts, their stds, gates, the cell's norm: per unit
    picture = Picture(
        tag="LSTM h (layer norm)", shape="box", fill="#dcfce7", style="rounded,filled"
    )

    def variant(self, layer) -> Kind:
        return LSTM.variant(layer)

    def weights(self, fan_in: int, size: int, bias: bool = True) -> list[WeightInfo]:
        rows = LSTMKind.weights(self, fan_in, size, bias)
        cols = self.columns(size)
        starts = {"gx": "ones", "gs": "ones", "gc": "ones", "bc": "zeros"}
        out = []
        for w in rows:
            if w.suffix in starts:
                shape, formula = ((cols,), "4*H") if w.suffix in ("gx", "gs") else ((size,), "H")
                w = WeightInfo(w.suffix, shape, formula, w.bound, False, starts[w.suffix])
            out.append(w)
        return out

    def fold_biases(self, biases):
        # nothing joins the projected input: it is normalised first
        b, gx, gs, gc, bc = biases
        return None, (b, gx, gs, gc.reshape(-1), bc.reshape(-1))

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        return ()

    def leading(self, work: tuple, rows: int) -> tuple:
        return work

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        for x_t, h_prev, c_prev, h, c in zip(xw, prev[0], prev[1], out[0], out[1]):
            lstm_layer_norm_step(x_t, h_prev, c_prev, recurrent, extra, h, c)

    def tape(self, track, length: int, batch: int, dtype) -> None:
        H = track.size
        shape4, shape1 = (length, batch, 4 * H), (length, batch, 1)
        track.c, track.gc = np.zeros((length, batch, H), dtype), np.zeros((length, batch, H), dtype)
        track.x_hat, track.s_hat = np.zeros(shape4, dtype), np.zeros(shape4, dtype)
        track.x_std, track.s_std, track.c_std = (np.ones(shape1, dtype) for _ in range(3))
        track.gate = np.zeros(shape4, dtype)  # i, f, o as sigmoids, g as tanh
        track.c_hat = np.zeros((length, batch, H), dtype)
        track.tc = np.zeros((length, batch, H), dtype)  # tanh(LN(c) * gc + bc)
        track.da = np.zeros(shape4, dtype)  # the gradient of the gates' pre-activation
        track.dcn = np.zeros((length, batch, H), dtype)  # ... of LN(c) * gc + bc
        track.ds = np.zeros(shape4, dtype)  # ... of h_prev Ws

    def tape_bias(self, bias, batch: int):
        return bias

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        tr, H = track, track.size
        bias, gx, gs, gc, bc = (np.reshape(v, -1) for v in tr.extra)
        mask = tr.recurrent_mask
        views = [(tr.xw, 0), (tr.h, tr.lag), (tr.h, 0), (tr.c, tr.lag), (tr.c, 0)]
        views += [(tr.x_hat, 0), (tr.s_hat, 0), (tr.x_std, 0), (tr.s_std, 0), (tr.c_std, 0)]
        views += [(tr.gate, 0), (tr.c_hat, 0), (tr.tc, 0)]
        for xw, h_prev, h, c_prev, c, xh, sh, xs, ss, cs, gate, ch, tc in zip(
            *aligned(views, a, b, reverse, tr.rows)
        ):
            read = h_prev if mask is None else h_prev * mask[: len(h)]
            xh[...], xs[...] = normalise(xw, -1)
            sh[...], ss[...] = normalise(read @ tr.Ws, -1)
            pre = xh * gx + sh * gs + bias
            gate[...] = 1 / (1 + np.exp(-pre))
            gate[:, 2 * H : 3 * H] = np.tanh(pre[:, 2 * H : 3 * H])
            i, f, g = gate[:, :H], gate[:, H : 2 * H], gate[:, 2 * H : 3 * H]
            c[...] = f * c_prev + i * g
            ch[...], cs[...] = normalise(c, -1)
            tc[...] = np.tanh(ch * gc + bc)
            h[...] = gate[:, 3 * H :] * tc

    def factors(self, track, a: int, b: int) -> None:
        """Made step by step in `backward`."""

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        tr, H = track, track.size
        _, gx, gs, gc, _ = (np.reshape(v, -1) for v in tr.extra)
        mask = tr.recurrent_mask
        views = [(tr.g, 0), (tr.g, tr.lag), (tr.gc, 0), (tr.gc, tr.lag), (tr.c, tr.lag)]
        views += [(tr.gate, 0), (tr.c_hat, 0), (tr.c_std, 0), (tr.tc, 0), (tr.x_hat, 0)]
        views += [(tr.x_std, 0), (tr.s_hat, 0), (tr.s_std, 0), (tr.da, 0), (tr.dcn, 0)]
        views += [(tr.ds, 0), (tr.dxw, 0), (tr.keep, 0)]
        for step in zip(*aligned(views, a, b, not reverse, tr.rows)):
            dh, dh_prev, dc, dc_prev, c_prev, gate, ch, cs, tc, xh, xs, sh, ss = step[:13]
            da, dcn, ds, dxw, keep = step[13:]
            i, f, g, o = gate[:, :H], gate[:, H : 2 * H], gate[:, 2 * H : 3 * H], gate[:, 3 * H :]
            dcn[...] = dh * o * (1 - tc * tc)
            dc += normalise_back(dcn * gc, ch, cs)
            da[:, :H] = dc * g * i * (1 - i)
            da[:, H : 2 * H] = dc * c_prev * f * (1 - f)
            da[:, 2 * H : 3 * H] = dc * i * (1 - g * g)
            da[:, 3 * H :] = dh * tc * o * (1 - o)
            dxw[...] = normalise_back(da * gx, xh, xs)
            ds[...] = normalise_back(da * gs, sh, ss)
            if keep:
                dc_prev += dc * f
                back = ds @ tr.WsT
                dh_prev += back if mask is None else back * mask[: len(dh)]

    def recurrent_gradient(self, track) -> np.ndarray:
        return track.ds

    def bias_rows(self, track, a: int, b: int, dxw, drec) -> tuple:
        def flat(array):
            return array[a:b].reshape(-1, array.shape[-1])

        da, dcn = flat(track.da), flat(track.dcn)
        return da, da * flat(track.x_hat), da * flat(track.s_hat), dcn * flat(track.c_hat), dcn


LSTM_LAYER_NORM = _LayerNormLSTM()


def gru_layer_norm_step(xw, h_prev, Ws, extra, h) -> None:
    """One layer-normalised GRU step into `h`; gate-major `xw` (3, B, H) = x Wx and `Ws`
    (3, H, H); `extra` = (bx, bs, gx, gs), gate-major (3, 1, H)."""
    bx, bs, gx, gs = extra
    a = normalise(xw, (0, 2))[0] * gx + bx
    s = normalise(np.matmul(h_prev, Ws), (0, 2))[0] * gs + bs
    r, z = 1 / (1 + np.exp(-(a[:2] + s[:2])))
    n = np.tanh(a[2] + r * s[2])
    np.subtract(h_prev, n, out=h)
    np.multiply(h, z, out=h)
    np.add(h, n, out=h)


class _LayerNormGRU(GRUKind):
    """The GRU of `layer_norm: true`: the input and the recurrent pre-activations each
    normalised over their 3H units before their gains and biases (as Ba et al. 2016 do for
    an LSTM's two terms), then PyTorch's GRU:

        a = LN(x Wx) * gx + bx,   s = LN(h_prev Ws) * gs + bs      (3H each; r, z, n)
        r, z = sigmoid(a + s),   n = tanh(a_n + r * s_n),   h = (1 - z) * n + z * h_prev

    Unhalved columns in PyTorch's order (a normalisation is not linear); step by step.
    """

    name = "gru_layer_norm"
    option = "layer_norm: true"

    def step(self, ops, xw, prev, w, activation=None, read=None) -> tuple:
        (h_prev,) = prev
        rec = ops.matmul(h_prev if read is None else read, w["Ws"])
        a = ops.add(ops.mul(ops.layer_norm(xw), w["gx"]), w["bx"])
        s = ops.add(ops.mul(ops.layer_norm(rec), w["gs"]), w["bs"])
        return (self.mix(ops, h_prev, *ops.split(a, 3), *ops.split(s, 3)),)

    sigmoid_gates = 0
    biases = (("bx", False), ("bs", False), ("gx", False), ("gs", False))
    tape_numbers = 14
    picture = Picture(tag="GRU h (layer norm)", shape="hexagon", fill="#ede9fe")

    def variant(self, layer) -> Kind:
        return GRU.variant(layer)

    def weights(self, fan_in: int, size: int, bias: bool = True) -> list[WeightInfo]:
        rows = GRUKind.weights(self, fan_in, size, bias)
        return [
            WeightInfo(w.suffix, w.shape, w.formula, w.bound, False, "ones")
            if w.suffix in ("gx", "gs")
            else w
            for w in rows
        ]

    def fold_biases(self, biases):
        return None, tuple(biases)

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        return ()

    def leading(self, work: tuple, rows: int) -> tuple:
        return work

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        for x_t, h_prev, h in zip(xw, prev[0], out[0]):
            gru_layer_norm_step(x_t, h_prev, recurrent, extra, h)

    def tape(self, track, length: int, batch: int, dtype) -> None:
        shape3, shape1 = (length, batch, 3 * track.size), (length, batch, 1)
        track.x_hat, track.s_hat = np.zeros(shape3, dtype), np.zeros(shape3, dtype)
        track.x_std, track.s_std = np.ones(shape1, dtype), np.ones(shape1, dtype)
        track.s_all = np.zeros(shape3, dtype)  # LN(h_prev Ws) * gs + bs
        track.gate = np.zeros(shape3, dtype)  # r, z, n
        track.da, track.dsa = np.zeros(shape3, dtype), np.zeros(shape3, dtype)
        track.ds = np.zeros(shape3, dtype)  # the gradient of h_prev Ws

    def tape_bias(self, bias, batch: int):
        return bias

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        tr, H = track, track.size
        bx, bs, gx, gs = (np.reshape(v, -1) for v in tr.extra)
        mask = tr.recurrent_mask
        views = [(tr.xw, 0), (tr.h, tr.lag), (tr.h, 0), (tr.x_hat, 0), (tr.s_hat, 0)]
        views += [(tr.x_std, 0), (tr.s_std, 0), (tr.s_all, 0), (tr.gate, 0)]
        for xw, h_prev, h, xh, sh, xs, ss, s_all, gate in zip(
            *aligned(views, a, b, reverse, tr.rows)
        ):
            read = h_prev if mask is None else h_prev * mask[: len(h)]
            xh[...], xs[...] = normalise(xw, -1)
            sh[...], ss[...] = normalise(read @ tr.Ws, -1)
            pre = xh * gx + bx
            s_all[...] = sh * gs + bs
            gate[:, : 2 * H] = 1 / (1 + np.exp(-(pre[:, : 2 * H] + s_all[:, : 2 * H])))
            gate[:, 2 * H :] = np.tanh(pre[:, 2 * H :] + gate[:, :H] * s_all[:, 2 * H :])
            n, z = gate[:, 2 * H :], gate[:, H : 2 * H]
            h[...] = n + z * (h_prev - n)

    def factors(self, track, a: int, b: int) -> None:
        """Made step by step in `backward`."""

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        tr, H = track, track.size
        _, _, gx, gs = (np.reshape(v, -1) for v in tr.extra)
        mask = tr.recurrent_mask
        views = [(tr.g, 0), (tr.g, tr.lag), (tr.h, tr.lag), (tr.gate, 0), (tr.s_all, 0)]
        views += [(tr.x_hat, 0), (tr.x_std, 0), (tr.s_hat, 0), (tr.s_std, 0), (tr.da, 0)]
        views += [(tr.dsa, 0), (tr.ds, 0), (tr.dxw, 0), (tr.keep, 0)]
        for step in zip(*aligned(views, a, b, not reverse, tr.rows)):
            dh, dh_prev, h_prev, gate, s_all, xh, xs, sh, ss, da, dsa, ds, dxw, keep = step
            r, z, n = gate[:, :H], gate[:, H : 2 * H], gate[:, 2 * H :]
            dn = dh * (1 - z) * (1 - n * n)  # through tanh
            dr = dn * s_all[:, 2 * H :] * r * (1 - r)
            dz = dh * (h_prev - n) * z * (1 - z)
            da[:, :H], da[:, H : 2 * H], da[:, 2 * H :] = dr, dz, dn
            dsa[:, :H], dsa[:, H : 2 * H], dsa[:, 2 * H :] = dr, dz, dn * r
            dxw[...] = normalise_back(da * gx, xh, xs)
            ds[...] = normalise_back(dsa * gs, sh, ss)
            if keep:
                back = ds @ tr.WsT
                dh_prev += (back if mask is None else back * mask[: len(dh)]) + dh * z

    def recurrent_gradient(self, track) -> np.ndarray:
        return track.ds

    def bias_rows(self, track, a: int, b: int, dxw, drec) -> tuple:
        def flat(array):
            return array[a:b].reshape(-1, array.shape[-1])

        da, dsa = flat(track.da), flat(track.dsa)
        return da, dsa, da * flat(track.x_hat), dsa * flat(track.s_hat)


GRU_LAYER_NORM = _LayerNormGRU()
