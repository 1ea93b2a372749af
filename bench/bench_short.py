"""Benchmark: short calls, many in one process, against PyTorch measured in the same run.

Run with `make bench` (or `.venv/bin/python bench/bench_short.py [--rounds N]`). Not a
test: it prints medians and ratios. One thread on both sides (a call this small does not
use a second one: `composer.threads`), float32, each side in its own fresh process:

- **run**: `Network.run` of an LSTM (B=1, H=64) over 512 steps, called 15 times in a
  fresh process, the median call; PyTorch: `nn.LSTM` under `no_grad`, the same. Ours is
  measured as shipped (the compiled kernels load only once a process's work adds up to
  `fused.LOAD_AT` item-steps: 15 such calls are 7,680) and with the kernels loaded first
  (`fused.prepare(force=True)`, what a long-lived process has), and their load is timed;
- **step**: a language model's generation, tokens per second: an embedding of 64 tokens
  into 32, two LSTM layers of H=256, a softmax readout, B=1, greedy; `Network.stepper`
  against `nn.LSTM` stepped one token at a time, 300 tokens after 20 of warm-up.

Targets (issue: short calls): run, at most 1.3x PyTorch's median; step, at least
PyTorch's tokens per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

B, H, T, CALLS = 1, 64, 512, 15
VOCAB, EMBED, LM_H, TOKENS = 64, 32, 256, 300
RUN_TARGET = 1.3
SIDES = ("ours", "ours, kernels loaded", "pytorch")


def _lstm_spec():
    return {
        "inputs": [{"name": "x", "size": H}],
        "layers": [{"name": "l", "kind": "lstm", "input": "x", "state_size": H}],
        "outputs": [{"name": "o", "from": "l"}],
    }


def _lm_spec():
    return {
        "inputs": [{"name": "x", "vocab": VOCAB, "embed": EMBED}],
        "layers": [
            {"name": "l1", "kind": "lstm", "input": "x", "state_size": LM_H},
            {"name": "l2", "kind": "lstm", "input": "l1", "state_size": LM_H,
             "output": {"size": VOCAB, "activation": "softmax"}},
        ],
        "outputs": [{"name": "y", "from": "l2"}],
    }  # fmt: skip


def worker(side: str) -> dict:
    """One side's figures in this fresh process."""
    import numpy as np

    from composer.network import Network

    x = np.random.default_rng(0).standard_normal((B, T, H)).astype(np.float32)
    lm = Network.from_spec(_lm_spec())
    lm_params = lm.init_params(0)
    found = {}
    if side == "pytorch":
        import torch

        torch.set_num_threads(1)
        model, tx = torch.nn.LSTM(H, H, batch_first=True), torch.from_numpy(x)

        def call():
            with torch.no_grad():
                model(tx)

        embedding = torch.nn.Embedding(VOCAB, EMBED)
        lstm = torch.nn.LSTM(EMBED, LM_H, num_layers=2)
        with torch.no_grad():
            embedding.weight.copy_(torch.tensor(lm_params["x.E"]))
            for layer, name in enumerate(("l1", "l2")):
                getattr(lstm, f"weight_ih_l{layer}").copy_(torch.tensor(lm_params[f"{name}.Wx"].T))
                getattr(lstm, f"weight_hh_l{layer}").copy_(torch.tensor(lm_params[f"{name}.Ws"].T))
                getattr(lstm, f"bias_ih_l{layer}").copy_(torch.tensor(lm_params[f"{name}.b"]))
                getattr(lstm, f"bias_hh_l{layer}").zero_()
        Wy, by = torch.tensor(lm_params["l2.Wy"]), torch.tensor(lm_params["l2.by"])
        state, token = None, torch.tensor([[1]])

        def step():
            nonlocal state, token
            with torch.inference_mode():
                out, state = lstm(embedding(token), state)
                token = torch.softmax(out[-1] @ Wy + by, dim=-1).argmax(dim=-1, keepdim=True)
    else:
        from composer.kinds import fused

        if side == "ours, kernels loaded":
            started = time.perf_counter()
            loaded = fused.prepare(force=True)
            found["load s"] = time.perf_counter() - started
            if not loaded:
                raise SystemExit("the compiled kernels did not load (is numba installed?)")
        net = Network.from_spec(_lstm_spec())
        params = net.init_params(0)

        def call():
            net.run(params, x)

        stepper, token = lm.stepper(lm_params), np.array([1])

        def step():
            nonlocal token
            token = stepper.step({"x": token})["y"].argmax(axis=1)

    times = []
    for _ in range(CALLS):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    found["run ms"] = statistics.median(times) * 1e3
    found["first run ms"] = times[0] * 1e3
    for _ in range(20):
        step()
    steps = []
    for _ in range(TOKENS):
        begin = time.perf_counter()
        step()
        steps.append(time.perf_counter() - begin)
    found["tokens/s"] = 1 / statistics.median(steps)
    return found


def _run_worker(side: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, __file__, "--worker", side],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{side} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=SIDES)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print("bench_short: PyTorch is not installed (pip install '.[torch]'); skipped")
        return
    print(
        f"short calls, one thread, float32: run = LSTM B={B} H={H} T={T}, median of {CALLS} "
        f"calls in a fresh process; step = 2-layer LSTM LM H={LM_H}, tokens/s at B=1"
    )
    rows = []
    for round_ in range(args.rounds):
        load = os.getloadavg()[0]
        got = {side: _run_worker(side) for side in SIDES}
        torch_ms, torch_rate = got["pytorch"]["run ms"], got["pytorch"]["tokens/s"]
        ours, loaded = got["ours"], got["ours, kernels loaded"]
        rows.append((ours["run ms"] / torch_ms, loaded["run ms"] / torch_ms))
        print(
            f"round {round_ + 1} (load average {load:.1f}): run: PyTorch {torch_ms:.2f} ms, "
            f"ours {ours['run ms']:.2f} ms ({ours['run ms'] / torch_ms:.2f}x), "
            f"kernels loaded {loaded['run ms']:.2f} ms ({loaded['run ms'] / torch_ms:.2f}x; "
            f"their load {loaded['load s']:.2f} s)"
        )
        print(
            f"    step: PyTorch {torch_rate:.0f} tokens/s, ours {ours['tokens/s']:.0f} "
            f"({ours['tokens/s'] / torch_rate:.2f}x), kernels loaded "
            f"{loaded['tokens/s']:.0f} ({loaded['tokens/s'] / torch_rate:.2f}x)"
        )
    shipped, forced = zip(*rows)
    print(
        f"run / PyTorch (target <= {RUN_TARGET}): as shipped {min(shipped):.2f} to "
        f"{max(shipped):.2f}, kernels loaded {min(forced):.2f} to {max(forced):.2f}"
    )


if __name__ == "__main__":
    main()
