"""Hand-written optimised NumPy loops: the baseline the executor is measured against.

Each runs a stack of same-size layers over a (B, T, F) input and returns the last layer's
states as (B, T, H), the executor's layouts: the input projection of every step in one
product, then per step only the recurrent product and the gate arithmetic, in place in
preallocated arrays. Weights are PyTorch's, arranged once (`arrange`, outside any timing)
the way the executor arranges them: transposed, biases summed, a gated layer's gates
stacked gate-major, (G, in, H), sigmoid gates first and halved, so that one tanh covers
all gates and every gate block is contiguous.
"""

from __future__ import annotations

import numpy as np

__all__ = ["arrange", "LOOPS"]

_ORDER = {"elman": (0,), "lstm": (0, 1, 3, 2), "gru": (0, 1, 2)}
_SIGMOID = {"elman": 0, "lstm": 3, "gru": 2}


def _columns(kind: str, weight: np.ndarray, H: int) -> np.ndarray:
    if kind == "elman":
        return np.ascontiguousarray(weight)
    out = np.stack([weight[..., k * H : (k + 1) * H] for k in _ORDER[kind]])
    out[: _SIGMOID[kind]] *= 0.5
    return out[:, np.newaxis] if out.ndim == 2 else out


def arrange(kind: str, layers: list[dict], dtype) -> list[dict]:
    """PyTorch weights ({weight_ih, weight_hh, bias_ih, bias_hh} per layer) for the loops."""
    out = []
    for layer in layers:
        H = layer["weight_hh"].shape[1]
        Wx = _columns(kind, layer["weight_ih"].T.astype(dtype), H)
        Ws = _columns(kind, layer["weight_hh"].T.astype(dtype), H)
        bi = _columns(kind, layer["bias_ih"].astype(dtype), H)
        bh = _columns(kind, layer["bias_hh"].astype(dtype), H)
        if kind == "gru":
            b = bi.copy()
            b[:2] += bh[:2]
            out.append({"Wx": Wx, "Ws": Ws, "b": b, "bs_n": bh[2].copy(), "H": H})
        else:
            out.append({"Wx": Wx, "Ws": Ws, "b": bi + bh, "H": H})
    return out


def _project(inputs: np.ndarray, layer: dict) -> np.ndarray:
    """x Wx + b for every step: (T, B, H), or (T, G, B, H) for a gated layer."""
    T, B, F = inputs.shape
    P = np.matmul(inputs.reshape(T * B, F), layer["Wx"])
    P += layer["b"]
    if P.ndim == 2:
        return P.reshape(T, B, -1)
    return P.reshape(len(P), T, B, -1).transpose(1, 0, 2, 3)


def elman(x: np.ndarray, layers: list[dict]) -> np.ndarray:
    states = np.ascontiguousarray(x.transpose(1, 0, 2))
    for layer in layers:
        P = _project(states, layer)
        T, B, H = P.shape
        S = np.zeros((T + 1, B, H), x.dtype)
        Ws = layer["Ws"]
        for t in range(T):
            s = S[t + 1]
            np.matmul(S[t], Ws, out=s)
            np.add(s, P[t], out=s)
            np.tanh(s, out=s)
        states = S[1:]
    return np.ascontiguousarray(states.transpose(1, 0, 2))


def lstm(x: np.ndarray, layers: list[dict]) -> np.ndarray:
    states = np.ascontiguousarray(x.transpose(1, 0, 2))
    for layer in layers:
        P = _project(states, layer)
        T, G, B, H = P.shape
        S = np.zeros((T + 1, B, H), x.dtype)
        c = np.zeros((B, H), x.dtype)
        g = np.empty((G, B, H), x.dtype)
        sig, (i, f, o, gg) = g[:3], g
        Ws = layer["Ws"]
        for t in range(T):
            h = S[t + 1]
            np.matmul(S[t], Ws, out=g)
            np.add(g, P[t], out=g)
            np.tanh(g, out=g)
            sig *= 0.5
            sig += 0.5
            np.multiply(f, c, out=c)
            np.multiply(i, gg, out=h)
            np.add(c, h, out=c)
            np.tanh(c, out=h)
            np.multiply(h, o, out=h)
        states = S[1:]
    return np.ascontiguousarray(states.transpose(1, 0, 2))


def gru(x: np.ndarray, layers: list[dict]) -> np.ndarray:
    states = np.ascontiguousarray(x.transpose(1, 0, 2))
    for layer in layers:
        P = _project(states, layer)
        T, G, B, H = P.shape
        S = np.zeros((T + 1, B, H), x.dtype)
        gh = np.empty((G, B, H), x.dtype)
        rz, (r, z, n) = gh[:2], gh
        Ws, bs_n = layer["Ws"], layer["bs_n"]
        for t in range(T):
            h, h_prev, p = S[t + 1], S[t], P[t]
            np.matmul(h_prev, Ws, out=gh)
            np.add(rz, p[:2], out=rz)
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            np.add(n, bs_n, out=n)
            np.multiply(n, r, out=n)
            np.add(n, p[2], out=n)
            np.tanh(n, out=n)
            np.subtract(h_prev, n, out=h)
            np.multiply(h, z, out=h)
            np.add(h, n, out=h)
        states = S[1:]
    return np.ascontiguousarray(states.transpose(1, 0, 2))


LOOPS = {"elman": elman, "lstm": lstm, "gru": gru}
