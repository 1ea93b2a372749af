"""Study: the recurrent product h_prev Ws of a gated cell, in three layouts, by batch rows.

Run with `.venv/bin/python bench/study_product.py [--hidden 256] [--threads N]`. Not part
of `make bench`: it measured the choices recorded in docs/performance.md. Prints the best
of `--repeats` calls, in microseconds, for

- stacked: (n, H) @ (4, H, H), gate-major, what the executor does;
- flat: (n, H) @ (H, 4H), PyTorch's row layout;
- column: (4H, H) @ (H, n), the transposed orientation (h_prev read as a transposed view).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def best(function, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return min(seconds) * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="OpenBLAS threads")
    args = parser.parse_args(argv)
    if args.threads:  # must be set before NumPy's BLAS loads: re-run in a fresh process
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    H, rng = args.hidden, np.random.default_rng(0)
    stacked = rng.standard_normal((4, H, H)).astype(np.float32)
    flat = np.ascontiguousarray(stacked.transpose(1, 0, 2).reshape(H, 4 * H))
    column = np.ascontiguousarray(flat.T)
    print(f"H={H}, best of {args.repeats} calls, microseconds")
    print("| rows | stacked | flat | column |\n|---|---|---|---|")
    for n in (32, 24, 16, 8, 4, 1):
        h = rng.standard_normal((n, H)).astype(np.float32)
        cases = [
            (h, stacked, np.empty((4, n, H), np.float32)),
            (h, flat, np.empty((n, 4 * H), np.float32)),
            (column, h.T, np.empty((4 * H, n), np.float32)),
        ]
        times = [
            best(lambda a=a, b=b, out=out: np.matmul(a, b, out=out), args.repeats)
            for a, b, out in cases
        ]
        print(f"| {n} | " + " | ".join(f"{t:.0f}" for t in times) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
