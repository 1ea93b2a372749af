"""The compiled kernels of `composer.kinds.fused` (imports numba: load through `fused`).

Each runs steps 0..S-1 of one layer in order, reading the projected inputs `xw[s]` and
the carried arrays at `prev[s]`, writing `out[s]`; `prev` may be `out` shifted by the
recurrence's lag (the same memory), so a step reads what an earlier step of the same
call wrote. Layouts are the executor's: `xw` (S, G, B, H) gate-major, sigmoid gates'
pre-activations halved (sigmoid(x) = 0.5 tanh(x / 2) + 0.5), `Ws` (G, H, H).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["lstm_scan", "lstm_tape_step", "lstm_tape_back", "ftanh", "flat_gates", "warm"]

_F = np.float32
_A3 = numba.float32[:, :, :]
_A4 = numba.float32[:, :, :, :]
_R2 = numba.float32[:, ::1]  # (rows, columns), rows contiguous


@numba.njit(inline="always", fastmath=True, error_model="numpy")
def ftanh(x):
    """tanh for float32: a 13/6-degree rational interpolant on [-9, 9] (+-1 beyond), as
    Eigen's and oneDNN's float32 kernels compute it; within 4e-7 of the true value."""
    x = min(max(x, _F(-9.0)), _F(9.0))
    x2 = x * x
    p = x2 * _F(-2.76076847742355e-16) + _F(2.00018790482477e-13)
    p = x2 * p + _F(-8.60467152213735e-11)
    p = x2 * p + _F(5.12229709037114e-08)
    p = x2 * p + _F(1.48572235717979e-05)
    p = x2 * p + _F(6.37261928875436e-04)
    p = x2 * p + _F(4.89352455891786e-03)
    q = x2 * _F(1.19825839466702e-06) + _F(1.18534705686654e-04)
    q = x2 * q + _F(2.26843463243900e-03)
    q = x2 * q + _F(4.89352518554385e-03)
    return x * p / q


@numba.njit(
    numba.void(_A4, _A3, _A3, numba.float32[:, ::1], _A3, _A3, numba.float32[::1]),
    cache=True,
    error_model="numpy",
    fastmath=True,
)
def lstm_scan(xw, h_prev, c_prev, Wf, h_out, c_out, acc):
    """LSTM steps, gates i, f, o, g: c = f c_prev + i g, h = o tanh(c). `Wf` is Ws as one
    (H, 4H) matrix (`flat_gates`), `acc` a (4H,) scratch row.

    The recurrent product adds four rows of `Wf` at a time (one pass over `acc` per four
    inputs, not per input), and the cell's arithmetic runs on contiguous scratch rows, so
    that both vectorise whatever the strides of `h_out` and `c_out`: 0.40 ms against
    0.56 ms for 512 steps at B = 1, H = 64 (docs/performance.md, "Short calls")."""
    steps, batch, size = xw.shape[0], xw.shape[2], xw.shape[3]
    half = _F(0.5)
    cell = np.empty(2 * size, _F)  # c, then tanh(c)
    for s in range(steps):
        for b in range(batch):
            for g in range(4):
                for j in range(size):
                    acc[g * size + j] = xw[s, g, b, j]
            k = 0
            while k + 4 <= size:
                h0, h1 = h_prev[s, b, k], h_prev[s, b, k + 1]
                h2, h3 = h_prev[s, b, k + 2], h_prev[s, b, k + 3]
                for j in range(4 * size):
                    acc[j] += (h0 * Wf[k, j] + h1 * Wf[k + 1, j]) + (
                        h2 * Wf[k + 2, j] + h3 * Wf[k + 3, j]
                    )
                k += 4
            while k < size:
                hk = h_prev[s, b, k]
                for j in range(4 * size):
                    acc[j] += hk * Wf[k, j]
                k += 1
            for j in range(4 * size):
                acc[j] = ftanh(acc[j])
            for j in range(size):
                cell[j] = c_prev[s, b, j]
            for j in range(size):
                i, f = half * acc[j] + half, half * acc[size + j] + half
                c = f * cell[j] + i * acc[3 * size + j]
                cell[j] = c
                cell[size + j] = ftanh(c)
            for j in range(size):
                c_out[s, b, j] = cell[j]
                h_out[s, b, j] = (half * acc[2 * size + j] + half) * cell[size + j]


@numba.njit(
    numba.void(_R2, _R2, numba.float32[::1], _R2, _R2, _R2, _R2, _R2, _R2),
    cache=True,
    error_model="numpy",
    fastmath=True,
)
def lstm_tape_step(gates, product, bias, c_prev, c, tc, h, m, slope):
    """The elementwise part of a training tape's LSTM step (`LSTM.cached_forward`), after
    its recurrent product: row layout, gates i, f, o, g side by side, sigmoid columns
    halved. `gates` (n, 4H) holds the projected inputs and becomes the gates' values;
    `product` (n, 4H) is h_prev Ws; `m` (n, 4H) becomes the four derivative factors and
    `slope` (n, H) the cell's, as the NumPy passes leave them. Each row is a few simple
    loops over contiguous memory (few arrays each, so that LLVM vectorises them)."""
    rows, width = gates.shape
    H = width // 4
    half, one = _F(0.5), _F(1.0)
    for b in range(rows):
        g, p, k = gates[b], product[b], m[b]
        for j in range(width):
            g[j] = ftanh(g[j] + p[j] + bias[j])
        for j in range(3 * H):  # sigmoid gates: (tanh(x / 2) + 1) / 2, slope (1 - t^2) / 2
            t = g[j]
            k[j] = half - half * t * t
            g[j] = half * t + half
        for j in range(3 * H, width):
            t = g[j]
            k[j] = one - t * t
        cp, cb, tb, hb, sb = c_prev[b], c[b], tc[b], h[b], slope[b]
        for j in range(H):
            cb[j] = g[H + j] * cp[j] + g[j] * g[3 * H + j]
        for j in range(H):
            t = ftanh(cb[j])
            tb[j] = t
            hb[j] = g[2 * H + j] * t
            sb[j] = g[2 * H + j] * (one - t * t)
        for j in range(H):  # dA_i = dc g i', dA_f = dc c_prev f', dA_o = dh tanh(c) o', ...
            k[j] *= g[3 * H + j]
            k[H + j] *= cp[j]
            k[2 * H + j] *= tb[j]
            k[3 * H + j] *= g[j]


@numba.njit(
    numba.void(_R2, _R2, _R2, _R2, _R2, _R2, _R2, numba.boolean),
    cache=True,
    error_model="numpy",
    fastmath=True,
)
def lstm_tape_back(dh, dc, m, slope, gates, da, dc_prev, keep):
    """The elementwise part of a training tape's LSTM step backward (`LSTM.backward`),
    before its recurrent product: dc += dh * slope, the four gates' pre-activation
    gradients `da` (n, 4H) from the factors `m` (n, 4H), and (`keep`) dc_prev = dc * f,
    f read from the step's `gates` (n, 4H)."""
    rows, H = dh.shape
    for b in range(rows):
        d, c, k, s, a = dh[b], dc[b], m[b], slope[b], da[b]
        for j in range(H):
            c[j] += d[j] * s[j]
        for j in range(H):
            a[j] = c[j] * k[j]
            a[H + j] = c[j] * k[H + j]
            a[3 * H + j] = c[j] * k[3 * H + j]
        for j in range(H):
            a[2 * H + j] = d[j] * k[2 * H + j]
        if keep:
            p, g = dc_prev[b], gates[b]
            for j in range(H):
                p[j] = c[j] * g[H + j]


def flat_gates(Ws: np.ndarray) -> np.ndarray:
    """Gate-major (G, H, H) weights as one contiguous (H, G*H) matrix, gate blocks side by
    side: the kernels' recurrent product is then one row of multiply-adds per input."""
    gates, rows, size = Ws.shape
    return np.ascontiguousarray(Ws.transpose(1, 0, 2)).reshape(rows, gates * size)


def warm() -> None:
    """Call every kernel once on tiny arrays, so that the first real call does not pay the
    dispatcher's one-time set-up (about 1.5 MB of lazy imports and type caches)."""
    zeros = np.zeros((1, 1, 1), _F)
    lstm_scan(np.zeros((1, 4, 1, 1), _F), zeros, zeros, np.zeros((1, 4), _F), zeros, zeros,
              np.zeros(4, _F))  # fmt: skip
    row, rows = np.zeros((1, 1), _F), np.zeros((1, 4), _F)
    lstm_tape_step(rows, rows, np.zeros(4, _F), row, row, row, row, rows, row)
    lstm_tape_back(row, row, rows, row, rows, rows, row, True)
