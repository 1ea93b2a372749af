"""Benchmark: speed on a quiet and on a busy machine, with the thread policy
(`composer.threads`), with one thread, and with the libraries' default thread counts.

Run with `make bench` (or `.venv/bin/python bench/bench_load.py [--rounds N]`). Not a
test: it prints medians and ratios measured in this run. An LSTM, float32, at the
benchmark size (B=32, H=256, T=128) and at B=1 (H=256, T=128), many-to-many:

- **forward**: `Network.run` (NumPy engine), `run_torch` (torch engine), `nn.LSTM` under
  `no_grad` (PyTorch by hand);
- **training step**: the loss (mse on the states), its gradients and an Adam update, as
  `bench_torch_engine.py` takes them.

Conditions: quiet (nothing of ours beside it; other users' load is printed), then beside
N busy processes (N = the cores this process may use; each spins a Python loop, started
and stopped here). Thread settings: `policy` (no `threads=`: the count chosen per call),
`one` (`threads=1`), `default` (`threads=` the core count: what OpenBLAS and PyTorch take
when nobody limits them); hand-written PyTorch at its default count and at one thread.
Each contestant runs in its own process, one after another, with OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS removed from its environment (the policy leaves
a user's own setting alone, so with them set it would not be measured).

Targets (issue: speed on a busy machine): under load, the policy within 1.3x of one
thread; quiet, within 1.05x of the best fixed thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {"B=32": (32, 256, 128), "B=1": (1, 256, 128)}
OPS = ("forward", "train")
CONTESTANTS = ("numpy", "torch engine", "pytorch")
LOAD_TARGET, QUIET_TARGET = 1.3, 1.05
ENV_NAMES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def _median_times(calls: dict, budget: float, most: int = 21, least: int = 5) -> dict:
    """{name: median seconds} of `calls`, taken in turns, call by call, so that a slow
    phase of a busy machine hits every setting alike; after one warm-up call each."""
    for call in calls.values():
        call()  # warm-up: allocations, kernels chosen, pools started
    times = {name: [] for name in calls}
    started = time.perf_counter()
    while len(times[next(iter(calls))]) < most:
        for name, call in calls.items():
            begin = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - begin)
        done = len(times[next(iter(calls))])
        if done >= least and time.perf_counter() - started > budget * len(calls):
            break
    return {name: statistics.median(values) for name, values in times.items()}


def _calls(contestant: str, size: tuple[int, int, int]):
    """{op: function(threads) -> None} for one contestant at one size."""
    import numpy as np

    B, H, T = size
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, H)).astype(np.float32)
    y = rng.normal(size=(B, T, H)).astype(np.float32)
    if contestant == "pytorch":
        import torch

        model = torch.nn.LSTM(H, H, batch_first=True)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def forward(threads):
            torch.set_num_threads(threads)
            with torch.no_grad():
                model(tx)

        def train(threads):
            torch.set_num_threads(threads)
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(tx)[0], ty).backward()
            opt.step()

        return {"forward": forward, "train": train}

    from composer.engine.pipeline import plan_for_steps
    from composer.network import Network
    from composer.threads import limited, work_of
    from composer.training.backprop import Workspace, grad
    from composer.training.losses import loss_kinds
    from composer.training.optim import make_optimizer

    net = Network.from_spec(
        {
            "inputs": [{"name": "x", "size": H}],
            "layers": [{"name": "l0", "kind": "lstm", "input": "x", "state_size": H}],
            "outputs": [{"name": "o", "from": "l0"}],
        }
    )
    graph, work = net.graph, work_of(net.graph, B)
    plan = plan_for_steps(graph, T)
    kinds = loss_kinds(plan, "mse")
    weights = net.init_params(0)
    opt = make_optimizer("adam", weights, 1e-3, 0.0)
    if contestant == "numpy":
        workspace = Workspace()

        def forward(threads):
            net.run(weights, x, threads=threads)

        def train(threads):
            with limited(threads, work):
                _, grads = grad(plan, weights, {"x": x}, {"o": y}, kinds, workspace=workspace)
                opt.step(grads)

        return {"forward": forward, "train": train}

    from composer.interop.torch_engine import TorchEngine, run_torch

    engine = TorchEngine(graph, "float32")

    def forward(threads):
        with limited(threads, work):
            run_torch(graph, weights, {"x": x}, T, "float32", None)

    def train(threads):
        with limited(threads, work):
            _, grads = engine(weights, {"x": x}, {"o": y}, {}, {}, kinds, None, True)
            opt.step(grads)

    return {"forward": forward, "train": train}


def worker(contestant: str, budget: float) -> None:
    """Measure one contestant at every size, op and setting; print one JSON line."""
    from composer import threads as policy

    cores = _cores()
    settings = {"default": cores, "one": 1}
    if contestant != "pytorch":
        settings = {"policy": None, **settings}
    found = {}
    for name, size in SIZES.items():
        calls = _calls(contestant, size)
        for op in OPS:
            timed = {
                setting: (lambda c=count: calls[op](c))  # noqa: B023
                for setting, count in settings.items()
            }
            medians = _median_times(timed, budget)
            for setting, count in settings.items():
                chosen = count or policy.for_call(None, size[0] * size[1])
                found[f"{name} {op} {setting}"] = (medians[setting] * 1e3, chosen)
    print(json.dumps(found))


def _run_worker(contestant: str, budget: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, __file__, "--worker", contestant, "--budget", str(budget)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{contestant} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _spinners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _table(condition: str, results: dict) -> list[str]:
    """Rows of one condition, and the checks against the targets."""
    lines = []
    for name in SIZES:
        for op in OPS:
            row = {c: results[c] for c in CONTESTANTS}
            key = f"{name} {op}"
            cells = []
            for contestant in ("numpy", "torch engine"):
                got = {s: row[contestant][f"{key} {s}"] for s in ("policy", "one", "default")}
                policy_ms, chosen = got["policy"]
                one, default = got["one"][0], got["default"][0]
                if condition == "quiet":
                    ratio, target = policy_ms / min(one, default), QUIET_TARGET
                    against = "best fixed"
                else:
                    ratio, target = policy_ms / one, LOAD_TARGET
                    against = "one thread"
                mark = "ok" if ratio <= target else "MISSED"
                cells.append(
                    f"{contestant}: policy ({chosen}) {policy_ms:8.1f} one {one:8.1f} "
                    f"default {default:8.1f} ms; policy / {against} {ratio:.2f} "
                    f"(target <= {target}) {mark}"
                )
            hand = row["pytorch"]
            cells.append(
                f"PyTorch by hand: default {hand[f'{key} default'][0]:8.1f} "
                f"one {hand[f'{key} one'][0]:8.1f} ms"
            )
            lines.append(f"  {key} (H=256, T=128):")
            lines += [f"    {cell}" for cell in cells]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=CONTESTANTS)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=1, help="quiet then busy, this often")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.budget)
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print("bench_load: PyTorch is not installed (pip install '.[torch]'); skipped")
        return
    cores = _cores()
    print(f"speed under load: LSTM float32, {_cpu()}, {cores} usable cores, median per call")
    for round_ in range(args.rounds):
        for condition in ("quiet", "busy"):
            spinners = _spinners(cores) if condition == "busy" else []
            try:
                if spinners:
                    time.sleep(1.0)  # they are running before the first measurement
                before = os.getloadavg()[0]
                results = {c: _run_worker(c, args.budget) for c in CONTESTANTS}
                after = os.getloadavg()[0]
            finally:
                _stop(spinners)
            beside = f"beside {cores} busy processes" if spinners else "quiet (nothing of ours)"
            print(f"round {round_ + 1}, {beside}; load average {before:.1f} then {after:.1f}")
            print("\n".join(_table(condition, results)))
            time.sleep(1.0)


if __name__ == "__main__":
    main()
