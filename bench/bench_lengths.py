"""Benchmark: a padded batch with lengths against the same batch without them, and against
PyTorch's packed sequences, float32, forward and training step.

Run with `make bench` (or `.venv/bin/python bench/bench_lengths.py`). Not a test: it
prints medians and ratios measured in this run. One LSTM layer and one GRU layer, B=32,
H=256, T=128, lengths drawn uniformly from 1..T (seeded), so the mean real length is
about half of T. Ours and PyTorch each run in their own worker process, in turns, as in
`bench.py`. The targets (issue: sequences of different lengths):

- ours with lengths / ours without <= 0.65;
- (ours with lengths / PyTorch packed) no worse than (ours without / PyTorch unpadded);
- the peak memory with lengths no more than without.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench import Worker, _median_times, make_weights  # noqa: E402

B, H, T = 32, 256, 128
KINDS = ("lstm", "gru")


def _lengths(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, T + 1, size=B)


def ours(kind, data, lengths, repeats, budget):
    """(forward with, forward without, step with, step without) seconds; peak bytes with
    and without; the outputs with lengths."""
    import tracemalloc

    from composer.engine.batches import run, run_padded
    from composer.engine.pipeline import plan_for_steps
    from composer.graph.folded import build
    from composer.spec.model import NetworkSpec
    from composer.training.backprop import Workspace, grad
    from composer.training.padded import grad_padded

    spec = NetworkSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": H}],
            "layers": [{"name": "l0", "kind": kind, "input": "x", "state_size": H}],
            "outputs": [{"name": "o", "from": "l0"}],
        }
    )
    graph = build(spec)
    layer = data["layers"][0]
    params = {"l0.Wx": layer["weight_ih"].T, "l0.Ws": layer["weight_hh"].T}
    if kind == "gru":
        params["l0.bx"], params["l0.bs"] = layer["bias_ih"], layer["bias_hh"]
    else:
        params["l0.b"] = layer["bias_ih"] + layer["bias_hh"]
    x = data["x"]
    plan = plan_for_steps(graph, T)
    target = np.zeros((B, T, H), np.float32)
    workspace, plans = Workspace(), {}  # kept between calls, as the training loop keeps them
    with_lengths = lambda: run_padded(graph, params, {"x": x}, {"x": lengths})  # noqa: E731
    without = lambda: run(graph, params, {"x": x})  # noqa: E731  (both bind the weights)
    step_with = lambda: grad_padded(  # noqa: E731
        graph, params, {"x": x}, {"o": target}, {"x": lengths}, workspace=workspace, plans=plans
    )
    step_without = lambda: grad(plan, params, {"x": x}, {"o": target}, workspace=workspace)  # noqa: E731
    times = _median_times([with_lengths, without], repeats, budget)
    times += _median_times([step_with, step_without], max(3, repeats // 3), budget)
    peaks = []
    for f in (with_lengths, without):
        tracemalloc.start()
        f()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    spaces = {}  # a workspace per batch size, kept as a training loop keeps its own

    def step_items(n):
        space = spaces.setdefault(n, Workspace())
        return grad(plan, params, {"x": x[:n]}, {"o": target[:n]}, workspace=space)

    floors = (
        step_cost_floor(lambda n: run(graph, params, {"x": x[:n]}), lengths, repeats, budget),
        step_cost_floor(step_items, lengths, repeats, budget),
    )
    return times, peaks, with_lengths()["o"], floors


def step_cost_floor(run_items, lengths, repeats, budget) -> float:
    """What lengths / none would be if every step cost what it costs in a run of just the
    items still running at it: the mean, over the steps, of the time of a whole run of
    that many items (measured at a few batch sizes, interpolated), over the time of a run
    of all of them. A step's cost does not halve with its rows (a matrix product of 16
    rows costs more than half one of 32; a NumPy call costs the same at any size), so
    this is the best a packed run can do with these products."""
    sizes = sorted({1, 2, 4, 8, 12, 16, 20, 24, 28, B})
    seconds = _median_times([lambda n=n: run_items(n) for n in sizes], max(3, repeats // 3), budget)
    ascending = np.sort(lengths)
    running = len(ascending) - np.searchsorted(ascending, np.arange(T), side="right")
    cost = np.where(running > 0, np.interp(running, sizes, seconds), 0)  # none: not run
    return float(cost.mean() / seconds[-1])


def torch_side(kind, data, lengths, repeats, budget, threads):
    """(forward packed, forward unpadded, step packed, step unpadded) seconds, and the
    packed run's outputs padded with zeros."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.set_num_threads(threads)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    model = cls(H, H, batch_first=True)
    with torch.no_grad():
        for name, value in data["layers"][0].items():
            getattr(model, f"{name}_l0").copy_(torch.from_numpy(value))
    x = torch.from_numpy(data["x"])
    sizes = torch.from_numpy(lengths)

    def packed():
        out, _ = model(pack_padded_sequence(x, sizes, batch_first=True, enforce_sorted=False))
        return pad_packed_sequence(out, batch_first=True, total_length=T)[0]

    def unpadded():
        return model(x)[0]

    def step(forward):
        def run():
            model.zero_grad()
            forward().pow(2).mean().backward()

        return run

    with torch.no_grad():
        times = _median_times([packed, unpadded], repeats, budget)
        out = packed().numpy()
    times += _median_times([step(packed), step(unpadded)], max(3, repeats // 3), budget)
    return times, out, torch.get_num_threads()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="calls per side and case")
    parser.add_argument("--budget", type=float, default=8.0, help="max seconds per side, case")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    functions = {"ours": ours, "torch": torch_side}
    numpy_worker, torch_worker = Worker(functions), Worker(functions)
    lengths = _lengths()
    print(f"B={B} H={H} T={T}, lengths uniform in 1..{T}: mean {lengths.mean():.1f}")
    rows = []
    for kind in KINDS:
        data = make_weights(kind, B, H, T, 1)
        mine, peaks, out, floor = numpy_worker(
            "ours", kind, data, lengths, args.repeats, args.budget
        )
        time.sleep(0.3)
        theirs, torch_out, threads = torch_worker(
            "torch", kind, data, lengths, args.repeats, args.budget, 2
        )
        steps = out.shape[1]  # the longest item's: PyTorch's run pads to T
        gap = float(
            max(np.abs(out - torch_out[:, :steps]).max(), np.abs(torch_out[:, steps:]).max())
        )
        rows.append((kind, mine, theirs, peaks, gap, floor))
    numpy_worker.close()
    torch_worker.close()
    print(
        "\n| cell | pass | ours, lengths ms | ours, none ms | PyTorch packed ms "
        "| PyTorch unpadded ms | lengths / none | ours / PyTorch, lengths | ours / PyTorch, none |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, mine, theirs, *_ in rows:
        for label, k in (("forward", 0), ("training step", 2)):
            w, n, pw, pn = mine[k], mine[k + 1], theirs[k], theirs[k + 1]
            print(
                f"| {kind} | {label} | {w * 1e3:.1f} | {n * 1e3:.1f} | {pw * 1e3:.1f} | "
                f"{pn * 1e3:.1f} | {w / n:.2f} (target <= 0.65) | {w / pw:.2f} | {n / pn:.2f} |"
            )
    print("\n| cell | peak with lengths | peak without | ratio | max abs gap to PyTorch |")
    print("|---|---|---|---|---|")
    for kind, _, _, (with_peak, without_peak), gap, _ in rows:
        print(
            f"| {kind} | {with_peak / 2**20:.1f} MiB | {without_peak / 2**20:.1f} MiB "
            f"| {with_peak / without_peak:.2f} | {gap:.1e} |"
        )
    print(
        "\nlengths / none if each step cost what it costs in a run of only the items running "
        "at it (the step-cost floor of a packed run with these products):"
    )
    print("| cell | forward | training step |\n|---|---|---|")
    for kind, *_, (forward, training) in rows:
        print(f"| {kind} | {forward:.2f} | {training:.2f} |")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
