"""The Elman layer of the lecture: s_t = phi(x_t Wx + s_{t-k} Ws + b).

Examples
--------
>>> import numpy as np
>>> s_prev = np.zeros((1, 2)); xw = np.array([[0.5, -0.5]]); Ws = np.eye(2)
>>> elman_step(xw, s_prev, Ws, np.empty((1, 2))).round(3)
array([[ 0.462, -0.462]])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from composer.kinds.activations import ACTIVATIONS, activation_slope
from composer.kinds.base import Kind, Picture, aligned

__all__ = ["ELMAN", "elman_step"]

#: a pass of derivative factors covers a few steps at a time, to stay in a core's cache
_CHUNK_BYTES = 1 << 19


def elman_step(
    xw: np.ndarray,
    s_prev: np.ndarray,
    Ws: np.ndarray,
    s: np.ndarray,
    activation: Callable[..., np.ndarray] = np.tanh,
) -> np.ndarray:
    """One Elman step, s = phi(xw + s_prev Ws), into `s`; xw = x Wx + b."""
    np.matmul(s_prev, Ws, out=s)
    np.add(s, xw, out=s)
    activation(s, out=s)
    return s


def _activation(name: str) -> Callable[..., np.ndarray]:
    return np.tanh if name == "tanh" else ACTIVATIONS[name]


class Elman(Kind):
    """One gate, one activation of the spec's choosing; the bias is PyTorch's two summed."""

    name = spec_kind = "elman"
    takes_recurrent_dropout = True
    picture = Picture(tag="s", shape="ellipse", fill="#fef3c7")

    def step(self, ops, xw, prev, w, activation=None, read=None) -> tuple:
        h_prev = prev[0] if read is None else read
        pre = ops.add(xw, ops.matmul(h_prev, w["Ws"]), w.get("b"))
        return (ops.activation(activation or "tanh", pre),)

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        act = _activation(activation)
        for x_t, s_prev, s in zip(xw, prev[0], out[0]):
            elman_step(x_t, s_prev, recurrent, s, act)

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        act, lag, Ws, bias = _activation(track.vector.activation), track.lag, track.Ws, track.bias
        views = [(track.xw, 0), (track.h, lag), (track.h, 0)]
        mask = track.recurrent_mask
        for x_t, s_prev, s in zip(*aligned(views, a, b, reverse, track.rows)):
            if mask is not None:  # variational dropout: the recurrence reads s_prev * m
                s_prev = s_prev * mask[: len(s_prev)]
            np.matmul(s_prev, Ws, out=s)
            np.add(s, x_t, out=s)
            np.add(s, bias, out=s)
            act(s, out=s)

    def factors(self, track, a: int, b: int) -> None:
        step = max(1, _CHUNK_BYTES // track.xw[0].nbytes)
        for u in range(a, b, step):
            w = min(b, u + step)
            activation_slope(track.vector.activation, track.h[u:w], out=track.factor[u:w])

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        lag, WsT, tmp, mask = track.lag, track.WsT, track.tmp, track.recurrent_mask
        views = [(track.g, 0), (track.g, lag), (track.dxw, 0), (track.factor, 0), (track.keep, 0)]
        for dh, dh_prev, da, slope, keep in zip(*aligned(views, a, b, not reverse, track.rows)):
            np.multiply(dh, slope, out=da)
            if keep:
                product = tmp[: len(da)]
                np.matmul(da, WsT, out=product)
                if mask is not None:
                    product *= mask[: len(da)]
                np.add(dh_prev, product, out=dh_prev)


ELMAN = Elman()
