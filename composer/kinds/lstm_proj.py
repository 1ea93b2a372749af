"""The projected LSTM (`proj_size: P`): H cells, a state of P numbers."""

from __future__ import annotations

import numpy as np

from composer.kinds.base import Kind, Picture, WeightInfo, aligned
from composer.kinds.lstm import LSTM, LSTMKind, lstm_step

__all__ = ["LSTM_PROJ"]


class _ProjectedLSTM(LSTMKind):
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
        for w in LSTMKind.weights(self, fan_in, size, bias):
            if w.suffix == "Ws":
                w = WeightInfo("Ws", (width, w.shape[1]), "P*4*H", w.bound)
            out.append(w)
        return out + [WeightInfo("Wp", (size, width), "H*P", 1 / np.sqrt(size))]

    def fold_biases(self, biases):
        # the biases (none with `bias: false`), then Wp: the extra every step reads
        return (biases[0] if len(biases) > 1 else None), biases[-1]

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        return (*LSTMKind.workspace(self, batch, size, dtype), np.zeros((batch, size), dtype))

    def leading(self, work: tuple, rows: int) -> tuple:
        return (*LSTMKind.leading(self, work[:6], rows), work[6][:rows])

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
