"""Benchmark: the torch engine against the NumPy engine on the specs that take its cell
loop (dilated, Jordan, the encoder-decoder, NARX), forward and training step, float32.

Run with `make bench` (or `.venv/bin/python bench/bench_engines.py`). Not a test: it
prints medians and ratios measured in this run. Each spec from specs/, its own sizes, B=32,
T=128 where its windows allow (else its own T); one thread each (set before NumPy and
PyTorch load), the two engines alternating call by call in one process. A training step
is the mse loss on every output, its gradients and an Adam update, as
`bench_torch_engine.py` takes it. A spec the torch engine does not run yet is named with
its reason. Target (issue: the torch engine for every spec): at most 1.2x the NumPy
engine on the CPU.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before NumPy and PyTorch load
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPECS = ("dilated", "jordan", "encoder-decoder", "narx")
B, T, TARGET, REPEATS = 32, 128, 1.2, 15


def _setup(name: str):
    """(steps, {engine: {op: function}}) for one spec, or the reason it cannot run."""
    from composer.engine.inputs import input_sizes
    from composer.engine.pipeline import plan_for_steps
    from composer.errors import ComposerError
    from composer.interop.torch_engine import TorchEngine, run_torch
    from composer.network import Network
    from composer.training.backprop import Workspace, grad
    from composer.training.losses import loss_kinds
    from composer.training.optim import make_optimizer

    net = Network.from_file(ROOT / "specs" / f"{name}.yaml")
    graph = net.graph
    try:
        plan = plan_for_steps(graph, T)
        inputs = _inputs(graph, plan, input_sizes(graph))
        net.run(net.init_params(0), inputs, steps=T)
    except ComposerError:  # fixed windows: the spec's own T
        plan = plan_for_steps(graph)
        inputs = _inputs(graph, plan, input_sizes(graph))
    steps = plan.steps
    targets = {k: np.zeros_like(v) for k, v in net.run(net.init_params(0), inputs).items()}
    kinds = loss_kinds(plan, "mse")
    ours, theirs = net.init_params(0), net.init_params(0)
    ours_opt = make_optimizer("adam", ours, 1e-3, 0.0)
    theirs_opt = make_optimizer("adam", theirs, 1e-3, 0.0)
    workspace = Workspace()
    try:
        engine = TorchEngine(graph, "float32")
        run_torch(graph, theirs, inputs, steps)
    except ComposerError as err:
        return steps, str(err)

    def numpy_train():
        _, grads = grad(plan, ours, inputs, targets, kinds, workspace=workspace)
        ours_opt.step(grads)

    def torch_train():
        _, grads = engine(theirs, inputs, targets, {}, {}, kinds, None, True)
        theirs_opt.step(grads)

    return steps, {
        "numpy": {"forward": lambda: net.run(ours, inputs, steps=steps), "train": numpy_train},
        "torch": {"forward": lambda: run_torch(graph, theirs, inputs, steps), "train": torch_train},
    }


def _inputs(graph, plan, sizes) -> dict:
    rng = np.random.default_rng(0)
    found = {}
    for name, size in sizes.items():
        steps = len(plan.window(name))
        vocab = graph.nodes[name].get("vocab")
        if vocab:
            found[name] = rng.integers(0, vocab, (B, steps))
        else:
            found[name] = rng.standard_normal((B, steps, size)).astype(np.float32)
    return found


def main() -> None:
    try:
        import torch
    except ImportError:
        print("bench_engines: PyTorch is not installed (pip install '.[torch]'); skipped")
        return
    torch.set_num_threads(1)
    print(f"torch engine / NumPy engine, float32, B={B}, one thread, median of {REPEATS}")
    for name in SPECS:
        steps, calls = _setup(name)
        if isinstance(calls, str):
            print(f"  {name}: not run by the torch engine yet ({calls})")
            continue
        for op in ("forward", "train"):
            pair = {engine: calls[engine][op] for engine in ("numpy", "torch")}
            for call in pair.values():
                call()  # warm-up
            times = {engine: [] for engine in pair}
            for _ in range(REPEATS):
                for engine, call in pair.items():
                    start = time.perf_counter()
                    call()
                    times[engine].append(time.perf_counter() - start)
            med = {engine: statistics.median(values) * 1e3 for engine, values in times.items()}
            ratio = med["torch"] / med["numpy"]
            mark = "ok" if ratio <= TARGET else f"above the target {TARGET}"
            print(
                f"  {name:16} T={steps:<4} {op:8} NumPy {med['numpy']:8.2f} ms  "
                f"torch {med['torch']:8.2f} ms  torch/NumPy {ratio:5.2f}  {mark}"
            )


if __name__ == "__main__":
    main()
