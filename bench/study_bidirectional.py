"""Study: a bidirectional LSTM layer's two directions, stepped apart or together.

Run with `.venv/bin/python bench/study_bidirectional.py`. Not part of `make bench`: it
measured a choice recorded in docs/performance.md. The executor runs a bidirectional
layer as two scans, the forward direction over all steps, then the backward one. The
alternative: both directions in one loop, each step one batched product over both
directions' weights, (2, B, H) @ (2, H, 4H), and every elementwise pass over both at once,
half the NumPy calls. Both are timed over T steps (float32, medians of alternated runs,
microseconds per step of both directions).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _step(xw, h_prev, c_prev, Ws, h, c, gates):
    """An LSTM step of PyTorch's row layout; leading axes broadcast (both directions)."""
    np.matmul(h_prev, Ws, out=gates)
    np.add(gates, xw, out=gates)
    H = h.shape[-1]
    i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))
    np.tanh(g, out=g)
    for s in (i, f, o):  # sigmoid as (tanh(x / 2) + 1) / 2
        s *= 0.5
        np.tanh(s, out=s)
        s += 1
        s *= 0.5
    np.multiply(f, c_prev, out=c)
    np.multiply(i, g, out=h)
    np.add(c, h, out=c)
    np.tanh(c, out=h)
    np.multiply(h, o, out=h)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    T, rng = args.steps, np.random.default_rng(0)
    print("| B | H | apart us/step | together us/step | together / apart |\n|---|---|---|---|---|")
    for B, H in ((1, 64), (4, 64), (1, 256), (32, 256)):
        Ws = (rng.standard_normal((2, H, 4 * H)) / np.sqrt(H)).astype(np.float32)
        xw = rng.standard_normal((T, 2, B, 4 * H)).astype(np.float32)
        h, c = np.zeros((T + 1, 2, B, H), np.float32), np.zeros((T + 1, 2, B, H), np.float32)
        gates = np.empty((2, B, 4 * H), np.float32)

        def apart(xw=xw, h=h, c=c, Ws=Ws, gates=gates):
            for d in (0, 1):  # one direction's whole scan, then the other's
                for t in range(T):
                    _step(xw[t, d], h[t, d], c[t, d], Ws[d], h[t + 1, d], c[t + 1, d], gates[d])

        def together(xw=xw, h=h, c=c, Ws=Ws, gates=gates):
            for t in range(T):
                _step(xw[t], h[t], c[t], Ws, h[t + 1], c[t + 1], gates)

        seconds = {apart: [], together: []}
        for _ in range(args.rounds):
            for f in seconds:
                started = time.perf_counter()
                f()
                seconds[f].append(time.perf_counter() - started)
        a, b = (statistics.median(s) / T * 1e6 for s in seconds.values())
        print(f"| {B} | {H} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
