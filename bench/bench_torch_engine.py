"""Benchmark: a training step on the PyTorch engine, against the NumPy engine and against
the same step written by hand in PyTorch, float32.

Run with `make bench` (or `.venv/bin/python bench/bench_torch_engine.py [--threads N]`).
Not a test: it prints medians and ratios measured in this run. One layer of each kind,
B=32, H=256, T=128, many-to-many, mse on its states; a step is the loss, its gradients
and an Adam update:

- **torch engine**: what `train --engine torch` does per minibatch: the weights copied
  into the module, its forward and autograd backward, the gradients copied out, our Adam;
- **NumPy engine**: `composer.training.grad` and our Adam;
- **PyTorch by hand**: `nn.RNN`/`nn.LSTM`/`nn.GRU`, `mse_loss`, `backward`,
  `torch.optim.Adam`.

The goal: torch engine / PyTorch by hand <= 1.1 (plain layers run the same kernels).
The three alternate call by call, so slow phases of a busy machine hit all alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

B, H, T = 32, 256, 128
KINDS = ("elman", "lstm", "gru")
GOAL = 1.1


def _setup(kind: str):
    import torch

    from composer.engine.pipeline import plan_for_steps
    from composer.graph.folded import build
    from composer.graph.weights import init_params
    from composer.interop.torch_engine import TorchEngine
    from composer.spec.model import NetworkSpec
    from composer.training.backprop import Workspace, grad
    from composer.training.losses import loss_kinds
    from composer.training.optim import make_optimizer

    spec = NetworkSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": H}],
            "layers": [{"name": "l0", "kind": kind, "input": "x", "state_size": H}],
            "outputs": [{"name": "o", "from": "l0"}],
        }
    )
    graph = build(spec)
    plan = plan_for_steps(graph, T)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, H)).astype(np.float32)
    y = rng.normal(size=(B, T, H)).astype(np.float32)
    kinds = loss_kinds(plan, "mse")

    numpy_weights = init_params(graph, 0, "float32")
    numpy_opt = make_optimizer("adam", numpy_weights, 1e-3, 0.0)
    workspace = Workspace()

    def numpy_step():
        _, grads = grad(plan, numpy_weights, {"x": x}, {"o": y}, kinds, workspace=workspace)
        numpy_opt.step(grads)

    engine = TorchEngine(graph, "float32")
    torch_weights = init_params(graph, 0, "float32")
    torch_opt = make_optimizer("adam", torch_weights, 1e-3, 0.0)

    def engine_step():
        _, grads = engine(torch_weights, {"x": x}, {"o": y}, {}, {}, kinds, None, True)
        torch_opt.step(grads)

    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    model = cls(H, H, batch_first=True)
    hand_opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def hand_step():
        hand_opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(tx)[0], ty)
        loss.backward()
        hand_opt.step()

    return {"torch engine": engine_step, "NumPy engine": numpy_step, "PyTorch by hand": hand_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"training step, float32, B={B} H={H} T={T}, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats}"
    )
    print(f"{'kind':6} {'torch engine':>13} {'NumPy engine':>13} {'by hand':>9}"
          f" {'engine/hand':>12} {'NumPy/hand':>11}")  # fmt: skip
    for kind in KINDS:
        steps = _setup(kind)
        for step in steps.values():  # warm-up: allocations, kernels chosen
            step()
        times = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        med = {name: statistics.median(values) for name, values in times.items()}
        hand = med["PyTorch by hand"]
        ratio = med["torch engine"] / hand
        mark = "ok" if ratio <= GOAL else f"above the goal {GOAL}"
        print(
            f"{kind:6} {med['torch engine'] * 1e3:11.1f}ms {med['NumPy engine'] * 1e3:11.1f}ms "
            f"{hand * 1e3:7.1f}ms {ratio:12.2f} {med['NumPy engine'] / hand:11.2f}  {mark}"
        )


if __name__ == "__main__":
    main()
