"""The LSTM layer, PyTorch's equations; gates i, f, g, o in the file, i, f, o, g in the cells.

i, f, o = sigmoid(.), g = tanh(.)      of x Wx + b + h_prev Ws
c = f * c_prev + i * g
h = o * tanh(c)
"""

from __future__ import annotations

import numpy as np

from composer.kinds import fused
from composer.kinds.base import Kind, Picture, WeightInfo, aligned

__all__ = ["LSTM", "LSTM_LAYER_NORM", "LSTM_PROJ", "lstm_step", "lstm_layer_norm_step"]


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


class _LSTM(Kind):
    """Four gates; carries h and the cell state c."""

    name = spec_kind = "lstm"
    takes_recurrent_dropout = True
    fused_step = True
    forget_gate = 1

    def variant(self, layer) -> Kind:
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


LSTM = _LSTM()


#: added to a variance before its square root, as PyTorch's nn.LayerNorm
_EPS = 1e-5


def _normalise(a: np.ndarray, axes) -> tuple[np.ndarray, np.ndarray]:
    """(a - mean) / std over `axes`, and that std (sqrt(var + eps)), keeping dims."""
    centred = a - a.mean(axis=axes, keepdims=True)
    std = np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + _EPS)
    return centred / std, std


def _normalise_back(dn: np.ndarray, n: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The gradient w.r.t. a of n = (a - mean) / std, over the last axis, given dn."""
    mean_dn = dn.mean(axis=-1, keepdims=True)
    mean_dn_n = (dn * n).mean(axis=-1, keepdims=True)
    return (dn - mean_dn - n * mean_dn_n) / std


def lstm_layer_norm_step(xw, h_prev, c_prev, Ws, extra, h, c) -> None:
    """One layer-normalised LSTM step into `h` and `c`; gate-major `xw` (4, B, H) = x Wx
    and `Ws` (4, H, H), in PyTorch's gate order; `extra` = (b, gx, gs, gc, bc), the 4H
    ones gate-major (4, 1, H)."""
    b, gx, gs, gc, bc = extra
    x_hat, _ = _normalise(xw, (0, 2))
    s_hat, _ = _normalise(np.matmul(h_prev, Ws), (0, 2))
    gates = x_hat * gx + s_hat * gs + b
    i, f, g, o = gates
    i, f, o = (1 / (1 + np.exp(-v)) for v in (i, f, o))
    np.multiply(f, c_prev, out=c)
    c += i * np.tanh(g)
    c_hat, _ = _normalise(c, -1)
    np.multiply(o, np.tanh(c_hat * gc + bc), out=h)


class _LayerNormLSTM(_LSTM):
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
        rows = _LSTM.weights(self, fan_in, size, bias)
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
            xh[...], xs[...] = _normalise(xw, -1)
            sh[...], ss[...] = _normalise(read @ tr.Ws, -1)
            pre = xh * gx + sh * gs + bias
            gate[...] = 1 / (1 + np.exp(-pre))
            gate[:, 2 * H : 3 * H] = np.tanh(pre[:, 2 * H : 3 * H])
            i, f, g = gate[:, :H], gate[:, H : 2 * H], gate[:, 2 * H : 3 * H]
            c[...] = f * c_prev + i * g
            ch[...], cs[...] = _normalise(c, -1)
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
            dc += _normalise_back(dcn * gc, ch, cs)
            da[:, :H] = dc * g * i * (1 - i)
            da[:, H : 2 * H] = dc * c_prev * f * (1 - f)
            da[:, 2 * H : 3 * H] = dc * i * (1 - g * g)
            da[:, 3 * H :] = dh * tc * o * (1 - o)
            dxw[...] = _normalise_back(da * gx, xh, xs)
            ds[...] = _normalise_back(da * gs, sh, ss)
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


class _ProjectedLSTM(_LSTM):
    """The LSTM of `proj_size: P` (Sak, Senior & Beaufays 2014, "Long Short-Term Memory
    Based Recurrent Neural Network Architectures for Large Vocabulary Speech Recognition";
    PyTorch's `nn.LSTM(proj_size=P)`): H cells, a state of P < H numbers.

        i, f, o = sigmoid(.), g = tanh(.)      of x Wx + b + h_prev Ws     (Ws is (P, 4H))
        c = f * c_prev + i * g                 (H)
        h = (o * tanh(c)) Wp                   (P; Wp is (H, P), PyTorch's weight_hr.T)

    The state h (what the recurrence, the readout and every reader see) has P numbers;
    the cell c keeps H. Its steps are the plain LSTM's, whose h becomes m = o * tanh(c),
    followed by one product with Wp (`extras`: the steps receive Wp after the biases).
    """

    fused_step = False  # its own NumPy steps

    name = "lstm_proj"
    option = "proj_size"
    extras = ("Wp",)
    tape_numbers = 4  # c, tanh c, its gradient and m = o * tanh(c), per unit and step
    picture = Picture(tag="projected LSTM h", shape="box", fill="#dcfce7", style="rounded,filled")

    def variant(self, layer) -> Kind:
        return LSTM.variant(layer)

    def width(self, layer) -> int:
        return layer.proj_size

    def weights(self, fan_in, size, bias=True, width=None) -> list[WeightInfo]:
        """Ws is (P, 4H) and Wp (H, P), PyTorch's U(-1/sqrt(H), 1/sqrt(H)) as the rest."""
        out = []
        for w in _LSTM.weights(self, fan_in, size, bias):
            if w.suffix == "Ws":
                w = WeightInfo("Ws", (width, w.shape[1]), "P*4*H", w.bound)
            out.append(w)
        return out + [WeightInfo("Wp", (size, width), "H*P", 1 / np.sqrt(size))]

    def fold_biases(self, biases):
        # the biases (none with `bias: false`), then Wp: the extra every step reads
        return (biases[0] if len(biases) > 1 else None), biases[-1]

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        return (*_LSTM.workspace(self, batch, size, dtype), np.zeros((batch, size), dtype))

    def leading(self, work: tuple, rows: int) -> tuple:
        return (*_LSTM.leading(self, work[:6], rows), work[6][:rows])

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        batch = work[0].shape[1]
        for x_t, h_prev, c_prev, h, c in zip(xw, prev[0], prev[1], out[0], out[1]):
            rows = len(h)
            scratch = work if rows == batch else self.leading(work, rows)
            m = scratch[6]
            lstm_step(x_t, h_prev, c_prev, recurrent, m, c, scratch[:6])  # m = o * tanh(c)
            np.matmul(m, extra, out=h)

    def project(self, ops, h, w):
        return ops.matmul(h, w["Wp"])

    def tape(self, track, length: int, batch: int, dtype) -> None:
        H = track.size
        track.c, track.tc, track.gc, track.m = (
            np.zeros((length, batch, H), dtype) for _ in range(4)
        )

    def tape_bias(self, bias, batch: int):
        return bias

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        """Plain LSTM steps (gates in the compute layout i, f, o, g, the sigmoid columns
        halved), then m Wp; the activated gates stay in `xw`. Written for clarity."""
        tr, H = track, track.size
        mask, S = tr.recurrent_mask, 3 * H  # the sigmoid gates i, f, o come first
        views = [(tr.xw, 0), (tr.h, tr.lag), (tr.h, 0), (tr.c, tr.lag), (tr.c, 0)]
        views += [(tr.tc, 0), (tr.m, 0)]
        for gates, h_prev, h, c_prev, c, tc, m in zip(*aligned(views, a, b, reverse, tr.rows)):
            read = h_prev if mask is None else h_prev * mask[: len(h)]
            gates += read @ tr.Ws + tr.bias
            np.tanh(gates, out=gates)
            gates[:, :S] = (gates[:, :S] + 1) / 2  # sigmoid(x) = (tanh(x / 2) + 1) / 2
            i, f, o, g = (gates[:, k * H : (k + 1) * H] for k in range(4))
            c[...] = f * c_prev + i * g
            tc[...] = np.tanh(c)
            m[...] = o * tc
            h[...] = m @ tr.extra

    def factors(self, track, a: int, b: int) -> None:
        """Made step by step in `backward`."""

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        tr, H = track, track.size
        mask, WpT = tr.recurrent_mask, tr.extra.T
        views = [(tr.g, 0), (tr.g, tr.lag), (tr.gc, 0), (tr.gc, tr.lag), (tr.c, tr.lag)]
        views += [(tr.xw, 0), (tr.tc, 0), (tr.dxw, 0), (tr.keep, 0)]
        for dh, dh_prev, dc, dc_prev, c_prev, gates, tc, da, keep in zip(
            *aligned(views, a, b, not reverse, tr.rows)
        ):
            i, f, o, g = (gates[:, k * H : (k + 1) * H] for k in range(4))
            dm = dh @ WpT
            dc += dm * o * (1 - tc * tc)
            # d gate / d (prepared pre-activation): 2 s (1 - s) for the halved sigmoid
            # columns, 1 - g^2 for g
            da[:, :H] = dc * g * 2 * i * (1 - i)
            da[:, H : 2 * H] = dc * c_prev * 2 * f * (1 - f)
            da[:, 2 * H : 3 * H] = dm * tc * 2 * o * (1 - o)
            da[:, 3 * H :] = dc * i * (1 - g * g)
            if keep:
                dc_prev += dc * f
                back = da @ tr.WsT
                dh_prev += back if mask is None else back * mask[: len(dh)]

    def bias_rows(self, track, a: int, b: int, dxw, drec) -> tuple:
        """b's rows (when the layer has it), then Wp's gradient, the sum over steps of
        m^T dh, as one row."""
        m = track.m[a:b].reshape(-1, track.size)
        dh = track.g[a:b].reshape(-1, track.g.shape[-1])
        wp = (m.T @ dh)[np.newaxis]
        return (dxw, wp) if len(track.vector.biases) > 1 else (wp,)


LSTM_PROJ = _ProjectedLSTM()
