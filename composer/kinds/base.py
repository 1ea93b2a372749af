"""Cells: one time step of each layer kind, and the activations, all numerically stable.

A cell is a single step; the time loop belongs to the executor. Steps work on row vectors
batched as rows, `(B, H)`, write into arrays the caller preallocated (`out=`), and never
allocate. They take the input side already projected, `xw = x Wx + b`, because the executor
computes that for many steps in one matrix product; only the recurrent product is left here.

Gate layout. PyTorch keeps a layer's gates side by side in the columns of Wx (in, G*H),
LSTM i, f, g, o and GRU r, z, n. `arrange_gates` turns every weight feeding a gated cell
into a stack of per-gate matrices, (G, in, H), with the sigmoid gates first (LSTM i, f, o,
g) and halved. The gates of a step are then a (G, B, H) array whose gate blocks are
contiguous (NumPy is several times slower on column slices of a (B, G*H) array), one
`tanh` covers all of them, and sigmoid(x) = (tanh(x / 2) + 1) / 2 costs one multiply and
one add on the sigmoid block.

Examples
--------
>>> import numpy as np
>>> s_prev = np.zeros((1, 2)); xw = np.array([[0.5, -0.5]]); Ws = np.eye(2)
>>> elman_step(xw, s_prev, Ws, np.empty((1, 2))).round(3)
array([[ 0.462, -0.462]])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = [
    "identity",
    "tanh",
    "relu",
    "sigmoid",
    "softmax",
    "ACTIVATIONS",
    "Cell",
    "CELLS",
    "elman_step",
    "lstm_step",
    "gru_step",
    "dense_step",
    "prepare_columns",
    "arrange_gates",
]


def identity(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """psi(x) = x (a copy into `out` when one is given)."""
    if out is None or out is x:
        return x
    np.copyto(out, x)
    return out


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The hyperbolic tangent; saturates to +-1 without overflow."""
    return np.tanh(x, out=out)


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0, out=out)


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)) computed as (tanh(x / 2) + 1) / 2: no exp, so no overflow at +-1e4."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def softmax(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """exp(x) / sum(exp(x)) over the last axis, shifted by the maximum so nothing overflows.

    Shifted values are floored at half the log of the smallest normal number, so `exp`
    never underflows either: the error is below 1e-19 (float32) or 1e-150 (float64).
    """
    floor = 0.5 * np.log(np.finfo(x.dtype).tiny)
    peak = x.max(axis=-1, keepdims=True)
    out = np.subtract(x, peak, out=out)
    np.maximum(out, floor, out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


#: the activations a spec may name, as functions `f(x, out=None)` that may work in place.
ACTIVATIONS: Mapping[str, Callable[..., np.ndarray]] = MappingProxyType(
    {"identity": identity, "tanh": tanh, "relu": relu, "sigmoid": sigmoid, "softmax": softmax}
)


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


def lstm_step(
    xw: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    Ws: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    work: tuple,
) -> np.ndarray:
    """One LSTM step (PyTorch's equations) into `h` and `c`; gate-major weights and `xw`.

    `xw` is (4, B, H), `Ws` (4, H, H) from `arrange_gates`; `work` is
    `CELLS["lstm"].workspace(B, H, dtype)`. `c_prev` may be `c` itself (updated in place).

        i, f, o = sigmoid(.), g = tanh(.)      of xw + h_prev Ws
        c = f * c_prev + i * g
        h = o * tanh(c)
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


def gru_step(
    xw: np.ndarray,
    h_prev: np.ndarray,
    Ws: np.ndarray,
    bs_n: np.ndarray,
    h: np.ndarray,
    work: tuple,
) -> np.ndarray:
    """One GRU step (PyTorch's equations) into `h`; gate-major weights and `xw`.

    `xw` (3, B, H) holds x Wx + bx with the r and z parts of bs already added (they only
    ever appear summed); `bs_n` is the n part of bs, which the reset gate multiplies.

        r, z = sigmoid(xw + h_prev Ws)          (their columns)
        n = tanh(xw_n + r * (h_prev Ws_n + bs_n))
        h = (1 - z) * n + z * h_prev = n + z * (h_prev - n)
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


def dense_step(xw: np.ndarray, activation: Callable[..., np.ndarray]) -> np.ndarray:
    """A stateless layer or a readout, y = psi(xw) with xw = x W + b, in place in `xw`.

    It works on any number of rows at once: one step of a batch, or many steps.
    """
    return activation(xw, out=xw)


def _lstm_workspace(batch: int, state_size: int, dtype) -> tuple:
    gates = np.zeros((4, batch, state_size), dtype=dtype)
    i, f, o, g = gates
    return gates, gates[:3], i, f, o, g


def _gru_workspace(batch: int, state_size: int, dtype) -> tuple:
    gh = np.zeros((3, batch, state_size), dtype=dtype)
    return gh, gh[:2], gh[0], gh[1], gh[2]


def _no_workspace(batch: int, state_size: int, dtype) -> tuple:
    return ()


@dataclass(frozen=True)
class Cell:
    """What the executor needs to know about one layer kind.

    `gates`: blocks of H columns in Wx and Ws. `order`: the gate blocks' order after
    `arrange_gates` (indexes into PyTorch's order). `sigmoid_gates`: how many of the
    reordered blocks, first, are sigmoid gates (their weights are halved).
    `carries`: the arrays a step carries to the next (`h`, and `c` for an LSTM).
    `workspace(B, H, dtype)`: the scratch arrays a step needs, allocated once.
    """

    kind: str
    gates: int
    order: tuple[int, ...]
    sigmoid_gates: int
    carries: tuple[str, ...]
    step: Callable[..., np.ndarray]
    workspace: Callable[[int, int, object], tuple]


#: one entry per spec `kind`.
CELLS: Mapping[str, Cell] = MappingProxyType(
    {
        "elman": Cell("elman", 1, (0,), 0, ("h",), elman_step, _no_workspace),
        "lstm": Cell("lstm", 4, (0, 1, 3, 2), 3, ("h", "c"), lstm_step, _lstm_workspace),
        "gru": Cell("gru", 3, (0, 1, 2), 2, ("h",), gru_step, _gru_workspace),
        "dense": Cell("dense", 1, (0,), 0, (), dense_step, _no_workspace),
    }
)


def prepare_columns(cell: Cell, weight: np.ndarray, state_size: int) -> np.ndarray:
    """A weight (or bias) feeding `cell`, its gate columns side by side in the cell's order.

    The last axis holds `cell.gates` blocks of `state_size` columns in PyTorch's order;
    the result is a new contiguous array with the blocks reordered (sigmoid gates first)
    and the sigmoid blocks halved: the row layout, (in, G*H), of `arrange_gates`' stack.

    Examples
    --------
    >>> b = np.arange(4.0)  # an LSTM bias with H = 1: i, f, g, o
    >>> prepare_columns(CELLS["lstm"], b, 1)
    array([0. , 0.5, 1.5, 2. ])
    """
    if cell.gates == 1:
        return np.ascontiguousarray(weight)
    H = state_size
    out = np.concatenate([weight[..., k * H : (k + 1) * H] for k in cell.order], axis=-1)
    out[..., : cell.sigmoid_gates * H] *= 0.5
    return out


def arrange_gates(cell: Cell, weight: np.ndarray, state_size: int) -> np.ndarray:
    """A weight or bias feeding `cell`, as a stack of per-gate blocks in the cell's order.

    The last axis of `weight` holds `cell.gates` blocks of `state_size` columns in
    PyTorch's order. A gated cell gets a new array: (G, in, H) for a matrix, (G, 1, H) for
    a bias (it broadcasts over rows), sigmoid gates first and halved. A one-gate cell's
    weight comes back as it is, (in, H) or (H,).

    Examples
    --------
    >>> b = np.arange(4.0)  # an LSTM bias with H = 1: i, f, g, o
    >>> arrange_gates(CELLS["lstm"], b, 1).ravel()
    array([0. , 0.5, 1.5, 2. ])
    """
    if cell.gates == 1:
        return np.ascontiguousarray(weight)
    H = state_size
    out = np.stack([weight[..., k * H : (k + 1) * H] for k in cell.order])
    out[: cell.sigmoid_gates] *= 0.5
    return out[:, np.newaxis] if out.ndim == 2 else out
