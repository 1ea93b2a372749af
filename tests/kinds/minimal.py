"""A made-up layer kind, as a user would add one: its spec model and this one module.

The `minimal` unit has one gate, z, and a candidate n; both read the input and the last
state, and the gate mixes them:

    z = sigmoid(x Wx_z + h_prev Ws_z + b_z),  n = tanh(x Wx_n + h_prev Ws_n + b_n)
    h = h_prev + z * (n - h_prev)

Weights are PyTorch-style blocks in the columns, z first: Wx (in, 2H), Ws (H, 2H), b (2H).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field

from composer.kinds.base import Kind, Picture, aligned
from composer.spec.model import DenseLayer, ElmanLayer, GRULayer, LSTMLayer, NetworkSpec
from composer.spec.model import RecurrentLayer as _Recurrent

__all__ = ["MinimalLayer", "MinimalSpec", "MINIMAL"]


class MinimalLayer(_Recurrent):
    """The spec model: a recurrent layer of kind `minimal`."""

    kind: Literal["minimal"]


class MinimalSpec(NetworkSpec):
    """A spec whose layers may also be `minimal`."""

    layers: list[
        Annotated[
            Union[ElmanLayer, LSTMLayer, GRULayer, DenseLayer, MinimalLayer],
            Field(discriminator="kind"),
        ]
    ] = Field(min_length=1)


class _Minimal(Kind):
    """Two gate blocks, the first a sigmoid; carries h only."""

    name = "minimal"
    gates = 2
    order = (0, 1)
    sigmoid_gates = 1
    tape_numbers = 1  # its derivative factors take 2H per step, the common tape holds H
    picture = Picture(tag="MIN h", shape="octagon", fill="#e0f2fe")

    def step(self, ops, xw, prev, w, activation=None, read=None) -> tuple:
        """The equations, once: what the PyTorch module and the ONNX exports run."""
        (h_prev,) = prev
        pre = ops.add(xw, ops.matmul(h_prev if read is None else read, w["Ws"]), w.get("b"))
        z, n = ops.split(pre, 2)
        return (ops.add(h_prev, ops.mul(ops.sigmoid(z), ops.sub(ops.tanh(n), h_prev))),)

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        return (np.zeros((2, batch, size), dtype=dtype),)

    def forward(self, xw, prev, out, recurrent, extra, work, activation) -> None:
        for x_t, h_prev, h in zip(xw, prev[0], out[0]):
            gates = work[0][:, : len(h)]
            np.matmul(h_prev, recurrent, out=gates)  # (2, B, H): z and n blocks
            gates += x_t
            np.tanh(gates, out=gates)
            z, n = gates
            z *= 0.5  # the z columns are halved: sigmoid(a) = (tanh(a / 2) + 1) / 2
            z += 0.5
            np.subtract(n, h_prev, out=h)
            h *= z
            h += h_prev

    def tape(self, track, length: int, batch: int, dtype) -> None:
        track.factor = np.empty((length, batch, 2, track.size), dtype)

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        H, tmp = track.size, track.tmp
        views = [(track.xw, 0), (track.h, track.lag), (track.h, 0)]
        for x_t, h_prev, h in zip(*aligned(views, a, b, reverse)):
            np.matmul(h_prev, track.Ws, out=tmp)
            x_t += tmp
            x_t += track.bias
            np.tanh(x_t, out=x_t)  # x_t becomes the cache [z, n]
            z, n = x_t[:, :H], x_t[:, H:]
            z *= 0.5
            z += 0.5
            np.subtract(n, h_prev, out=h)
            h *= z
            h += h_prev

    def factors(self, track, a: int, b: int) -> None:
        H = track.size
        cache = track.xw[a:b]
        z, n = cache[:, :, :H], cache[:, :, H:]
        h_prev = track.h[a - track.lag : b - track.lag]
        k = track.factor[a:b]
        # d h / d (prepared z pre-activation): (n - h_prev) * 2 z (1 - z); for n: z (1 - n^2)
        k[:, :, 0] = (n - h_prev) * 2 * z * (1 - z)
        k[:, :, 1] = z * (1 - n * n)

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        H = track.size
        views = [(track.g, 0), (track.g, track.lag), (track.dxw, 0), (track.factor, 0)]
        views += [(track.xw[:, :, :H], 0), (track.keep, 0)]
        for dh, dh_prev, da, k, z, keep in zip(*aligned(views, a, b, not reverse)):
            np.multiply(dh, k[:, 0], out=da[:, :H])
            np.multiply(dh, k[:, 1], out=da[:, H:])
            if keep:
                dh_prev += da @ track.WsT
                dh_prev += dh * (1 - z)


MINIMAL = _Minimal()
