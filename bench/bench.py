"""Benchmark: the executor against PyTorch CPU and a hand-written NumPy loop, float32.

Run with `make bench` (or `.venv/bin/python bench/bench.py`). Not a test: it prints
medians and ratios measured in this run, never pass/fail on absolute times.

PyTorch's and NumPy's thread pools slow each other down when both live in one process
on a small machine, so each side runs in its own worker process (spawned), and the
parent asks them in turn, configuration by configuration, pausing between turns so the
idle side's threads go to sleep. Within the NumPy worker the executor and the hand loop
alternate call by call, so slow phases of a noisy machine hit both alike.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GATES = {"elman": 1, "lstm": 4, "gru": 3}
SIZES = [  # (B, H, T, layers)
    (32, 256, 128, 2),
    (1, 64, 512, 1),
    (32, 1024, 128, 1),
]
TARGETS = {"elman": 0.9, "gru": 1.0, "lstm": 1.3}  # executor / PyTorch at the first size
B1_TARGETS = {"lstm": 1.2, "elman": 1.0, "gru": 1.0}  # ... at B = 1 (at or under PyTorch)
PAUSE = 0.3  # seconds between turns: lets the idle side's spinning threads sleep


def blas_info() -> dict:
    """NumPy's BLAS: library, the kernel it picked for this CPU, its thread count."""
    info = {"library": "unknown", "kernel": "unknown", "threads": None}
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["library"] = f"{config.get('name')} {config.get('version')}"
    except Exception:  # older numpy: no dict mode
        pass
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
            name = f"{prefix}openblas_get_corename{suffix}"
            if hasattr(lib, name):
                getattr(lib, name).restype = ctypes.c_char_p
                info["kernel"] = getattr(lib, name)().decode()
                threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                info["threads"] = threads() if threads else None
                return info
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info.update(kernel=pools[0].get("architecture"), threads=pools[0]["num_threads"])
    except ImportError:
        pass
    return info


def gemm_peak(repeats: int = 7, n: int = 1024) -> float:
    """The machine's float32 matrix-product rate in this process (GFLOP/s): the median of
    `repeats` n x n x n products, with NumPy's BLAS and its threads."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    (seconds,) = _median_times([lambda: np.matmul(a, b, out=out)], repeats, budget=10.0)
    return 2 * n**3 / seconds / 1e9


def flops(kind: str, B: int, H: int, T: int, layers: int) -> float:
    """The matrix products of a forward pass (input and recurrent), 2 flops per multiply-add;
    the elementwise work is left out, as GEMM-bound figures usually do."""
    return 2.0 * layers * T * B * GATES[kind] * H * (H + H)


def make_weights(kind: str, B: int, H: int, T: int, layers: int, seed: int = 0) -> dict:
    """PyTorch-layout weights (uniform +-1/sqrt(H), its default) and a (B, T, H) input."""
    rng = np.random.default_rng(seed)
    bound, G = 1 / np.sqrt(H), GATES[kind]

    def draw(*shape):
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    stack = [
        {
            "weight_ih": draw(G * H, H),
            "weight_hh": draw(G * H, H),
            "bias_ih": draw(G * H),
            "bias_hh": draw(G * H),
        }
        for _ in range(layers)
    ]
    return {"layers": stack, "x": rng.standard_normal((B, T, H)).astype(np.float32)}


def _median_times(functions, repeats: int, budget: float) -> list[float]:
    """Median seconds of each function, calling them in turn `repeats` times (fewer if
    the run would exceed `budget` seconds)."""
    for f in functions:
        f()  # warm up: first-touch of buffers, thread pools
    times = [[] for _ in functions]
    started = time.perf_counter()
    for _ in range(repeats):
        for f, bucket in zip(functions, times):
            t0 = time.perf_counter()
            f()
            bucket.append(time.perf_counter() - t0)
        if time.perf_counter() - started > budget and len(times[0]) >= 5:
            break
    return [statistics.median(bucket) for bucket in times]


def products_only(kind, sizes, data, repeats, budget) -> float:
    """Seconds of a forward pass's matrix products alone, nothing else, done the cheapest
    way NumPy's BLAS allows: each layer's input projection as one product over all steps,
    then its recurrent products step by step (the step-to-step dependency forbids more),
    in the fastest of three layouts for the recurrent product (gate-major (G, H, H) as the
    executor keeps it, PyTorch's (H, G*H), and the transposed (G*H, H) @ (H, B)). What the
    executor cannot beat, whatever it does about its elementwise passes."""
    B, H, T, layers = sizes
    G = GATES[kind]
    rng = np.random.default_rng(1)
    x = data["x"].transpose(1, 0, 2).reshape(T * B, H)
    states = rng.standard_normal((T, B, H)).astype(np.float32)  # what each step would read
    best = 0.0
    for layer in data["layers"]:
        best += _layer_products(x, layer, states, G, repeats, budget)
    return best


def _layer_products(x, layer, states, G, repeats, budget) -> float:
    """`products_only` of one layer: its projection, and its fastest recurrent loop."""
    T, B, H = states.shape
    Wx, Ws = layer["weight_ih"].T.copy(), layer["weight_hh"].T.copy()
    stacked_Ws = np.ascontiguousarray(Ws.reshape(H, G, H).transpose(1, 0, 2))
    column_Ws = np.ascontiguousarray(Ws.T)
    projected = np.empty((T * B, G * H), np.float32)
    stacked, flat = np.empty((G, B, H), np.float32), np.empty((B, G * H), np.float32)
    column = np.empty((G * H, B), np.float32)
    loops = [
        lambda: [np.matmul(h, stacked_Ws, out=stacked) for h in states],
        lambda: [np.matmul(h, Ws, out=flat) for h in states],
        lambda: [np.matmul(column_Ws, h.T, out=column) for h in states],
    ]
    project = lambda: np.matmul(x, Wx, out=projected)  # noqa: E731
    times = _median_times([project, *loops], max(3, repeats // 3), budget)
    return times[0] + min(times[1:])


def numpy_side(kind, sizes, data, repeats, budget):
    """The executor and the hand loop on the same weights: (exec s, hand s, last states)."""
    from loops import LOOPS, arrange

    from composer.engine.executor import execute
    from composer.engine.plan import bind_params, compile_plan
    from composer.graph.folded import build
    from composer.graph.unrolled import unroll
    from composer.kinds import fused
    from composer.spec.model import NetworkSpec

    B, H, T, layers = sizes
    spec = NetworkSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": H}],
            "layers": [
                {"name": f"l{i}", "kind": kind, "input": f"l{i - 1}" if i else "x", "state_size": H}
                for i in range(layers)
            ],
            "outputs": [{"name": "o", "from": f"l{layers - 1}"}],
        }
    )
    plan = compile_plan(unroll(build(spec), T))
    params = {}
    for i, layer in enumerate(data["layers"]):
        params[f"l{i}.Wx"] = layer["weight_ih"].T
        params[f"l{i}.Ws"] = layer["weight_hh"].T
        if kind == "gru":
            params[f"l{i}.bx"], params[f"l{i}.bs"] = layer["bias_ih"], layer["bias_hh"]
        else:
            params[f"l{i}.b"] = layer["bias_ih"] + layer["bias_hh"]
    # both sides get their weights checked and arranged once, outside the timing
    arranged = arrange(kind, data["layers"], np.float32)
    bound = bind_params(plan.folded, params, "float32")
    x = data["x"]

    def executor(kernels: bool = False):  # the NumPy path unless asked for the kernels
        os.environ["RNN_COMPOSER_FUSED"] = "1" if kernels else "0"
        try:
            return execute(plan, bound, {"x": x})
        finally:
            os.environ["RNN_COMPOSER_FUSED"] = "0"

    hand = lambda: LOOPS[kind](x, arranged)  # noqa: E731
    exec_s, hand_s = _median_times([executor, hand], repeats, budget)
    out = executor()["o"]
    gap = float(np.abs(out - hand()).max())
    fused_s = None  # the fused kernels ([fast] extra), where they apply, once loaded
    os.environ["RNN_COMPOSER_FUSED"] = "1"
    if fused.prepare(force=True) and fused.kernels(np.float32, B, H) and kind == "lstm":
        (fused_s,) = _median_times([lambda: executor(kernels=True)], repeats, budget)
        gap = max(gap, float(np.abs(executor(kernels=True)["o"] - hand()).max()))
    os.environ["RNN_COMPOSER_FUSED"] = "0"
    floor_s = products_only(kind, sizes, data, repeats, budget)
    return exec_s, hand_s, out[:, -1], gap, fused_s, fused.load_seconds, floor_s


def torch_side(kind, sizes, data, repeats, budget, threads):
    """PyTorch's nn.RNN/LSTM/GRU under no_grad: (seconds, last outputs)."""
    import torch

    torch.set_num_threads(threads)
    B, H, T, layers = sizes
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    model = cls(H, H, num_layers=layers, batch_first=True)
    with torch.no_grad():
        for i, layer in enumerate(data["layers"]):
            for name, value in layer.items():
                getattr(model, f"{name}_l{i}").copy_(torch.from_numpy(value))
        x = torch.from_numpy(data["x"])
        (seconds,) = _median_times([lambda: model(x)], repeats, budget)
        out = model(x)[0][:, -1].numpy()
    return seconds, out, torch.get_num_threads()


def memory_side(steps_list, H, B):
    """Peak bytes traced during `execute` of a many-to-one LSTM, per T (input excluded)."""
    import tracemalloc

    from composer.engine.executor import execute
    from composer.engine.plan import compile_plan
    from composer.graph.folded import build
    from composer.graph.unrolled import unroll
    from composer.graph.weights import init_params
    from composer.kinds import fused
    from composer.spec.model import NetworkSpec

    spec = NetworkSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": H}],
            "layers": [
                {"name": "a", "kind": "lstm", "input": "x", "state_size": H},
                {
                    "name": "b",
                    "kind": "gru",
                    "input": "a",
                    "state_size": H,
                    "output": {"size": 8, "activation": "softmax"},
                },
            ],
            "outputs": [{"name": "o", "from": "b"}],
            "alignment": "many-to-one",
        }
    )
    graph = build(spec)
    params = init_params(graph)
    fused.prepare(B * max(steps_list))  # the optional kernels load once per process, first
    peaks = {}
    for steps in steps_list:
        x = np.random.default_rng(0).standard_normal((B, steps, H)).astype(np.float32)
        plan = compile_plan(unroll(graph, steps))
        tracemalloc.start()
        t0 = time.perf_counter()
        execute(plan, params, {"x": x})
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        compile_plan(unroll(graph, steps))
        _, plan_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks[steps] = (peak, plan_peak, seconds, x.nbytes)
    return peaks


def _worker(connection, functions=None):
    """Serve (function name, args) requests until told to stop."""
    functions = functions or {
        "numpy": numpy_side,
        "torch": torch_side,
        "memory": memory_side,
        "blas": blas_info,
        "peak": gemm_peak,
    }
    while True:
        request = connection.recv()
        if request is None:
            return
        name, args = request
        connection.send(functions[name](*args))


class Worker:
    """A spawned process that runs one side of a benchmark: `functions` by name (default:
    this file's sides)."""

    def __init__(self, functions=None):
        context = mp.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, functions), daemon=True)
        self.process.start()

    def __call__(self, name, *args):
        self.connection.send((name, args))
        result = self.connection.recv()
        time.sleep(PAUSE)
        return result

    def close(self):
        self.connection.send(None)
        self.process.join(timeout=10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="calls per side and size")
    parser.add_argument("--budget", type=float, default=8.0, help="max seconds per side, size")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller memory runs")
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS and PyTorch threads (default: BLAS's)"
    )
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else args.repeats
    if args.threads:  # inherited by the spawned workers, read when their BLAS loads
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    numpy_worker, torch_worker = Worker(), Worker()
    blas = numpy_worker("blas")
    threads = blas["threads"] or 2
    print(
        f"numpy {np.__version__}, BLAS {blas['library']}, kernel {blas['kernel']}, "
        f"{threads} threads; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )
    peak = numpy_worker("peak")
    print(f"float32 GEMM peak (1024^3, median): {peak:.1f} GFLOP/s")
    rows, fused_rows = [], []
    for sizes in SIZES:
        for kind in ("elman", "lstm", "gru"):
            data = make_weights(kind, *sizes)
            exec_s, hand_s, out, gap, fused_s, load_s, floor_s = numpy_worker(
                "numpy", kind, sizes, data, repeats, args.budget
            )
            torch_s, torch_out, torch_threads = torch_worker(
                "torch", kind, sizes, data, repeats, args.budget, threads
            )
            gap_torch = np.abs(out - torch_out).max()
            rows.append((kind, sizes, exec_s, hand_s, torch_s, gap, gap_torch, floor_s))
            _print_row(rows[-1], torch_threads)
            if fused_s is not None:
                fused_rows.append((kind, sizes, fused_s, torch_s, load_s))
    numpy_worker.close()
    torch_worker.close()
    memory_worker = Worker()
    steps_list = (1_000, 10_000) if args.quick else (10_000, 100_000)
    peaks = memory_worker("memory", steps_list, 64, 4)
    memory_worker.close()
    _print_summary(rows, peaks, peak)
    _print_fused(fused_rows)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _print_fused(rows):
    """The fused kernels' figures ([fast] extra), where they apply."""
    if not rows:
        print("\nfused kernels: not installed (pip install 'rnn-composer[fast]'), or no case")
        return
    print(
        f"\nfused kernels (numba), loaded once per process in {rows[0][4]:.2f} s (a run loads "
        "them at 200,000 item-steps or more):"
    )
    print("| cell | B | H | T | layers | fused ms | PyTorch ms | fused / PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, (B, H, T, layers), fused_s, torch_s, _ in rows:
        target = f" (target <= {B1_TARGETS[kind]})" if B == 1 else ""
        print(
            f"| {kind} | {B} | {H} | {T} | {layers} | {fused_s * 1e3:.2f} | "
            f"{torch_s * 1e3:.2f} | {fused_s / torch_s:.2f}{target} |"
        )


def _print_row(row, threads):
    kind, (B, H, T, layers), exec_s, hand_s, torch_s, gap, torch_gap, _ = row
    print(
        f"{kind:5} B={B:<3} H={H:<5} T={T:<4} layers={layers}  executor {exec_s * 1e3:8.2f} ms"
        f"  hand {hand_s * 1e3:8.2f} ms  torch {torch_s * 1e3:8.2f} ms ({threads} thr)"
        f"  exec/torch {exec_s / torch_s:5.2f}  exec/hand {exec_s / hand_s:5.2f}"
        f"  |exec-hand| {gap:.1e} |exec-torch| {torch_gap:.1e}",
        flush=True,
    )


def _print_summary(rows, peaks, peak):
    print(
        "\n| cell | B | H | T | layers | executor ms | hand loop ms | PyTorch ms "
        "| exec / PyTorch | exec / hand | executor GFLOP/s (of peak) | PyTorch GFLOP/s (of peak) "
        "| products only ms | products only / PyTorch |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, (B, H, T, layers), exec_s, hand_s, torch_s, _, _, floor_s in rows:
        target = ""
        if (B, H, T, layers) == SIZES[0]:
            target = f" (target <= {TARGETS[kind]})"
        elif B == 1:
            target = f" (target <= {B1_TARGETS[kind]})"
        work = flops(kind, B, H, T, layers) / 1e9
        rates = [work / seconds for seconds in (exec_s, torch_s)]
        print(
            f"| {kind} | {B} | {H} | {T} | {layers} | {exec_s * 1e3:.2f} | {hand_s * 1e3:.2f} "
            f"| {torch_s * 1e3:.2f} | {exec_s / torch_s:.2f}{target} | {exec_s / hand_s:.2f} "
            + " ".join(f"| {rate:.1f} ({rate / peak:.0%})" for rate in rates)
            + f" | {floor_s * 1e3:.2f} | {floor_s / torch_s:.2f} |"
        )
    print(
        "(products only: each layer's input projection as one product and its recurrent "
        "products step by step in the fastest layout, nothing else: a floor for the executor)"
    )
    print("\nmany-to-one LSTM(64) -> GRU(64) -> softmax readout, B=4: peak traced bytes")
    print("| T | execute peak | input (excluded) | compile_plan + unroll peak | execute s |")
    print("|---|---|---|---|---|")
    for steps, (peak, plan_peak, seconds, input_bytes) in peaks.items():
        print(
            f"| {steps:,} | {peak / 2**10:.0f} KiB | {input_bytes / 2**20:.1f} MiB "
            f"| {plan_peak / 2**10:.0f} KiB | {seconds:.2f} |"
        )
    small, large = (peaks[s][0] for s in sorted(peaks))
    print(f"execute peak, largest T / smallest T: {large / small:.2f} (target <= 1.5)")


if __name__ == "__main__":
    sys.exit(main())
