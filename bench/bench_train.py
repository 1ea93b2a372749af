"""One training step (forward, backward, Adam update), ours against PyTorch CPU.

B=32 sequences of T=128 steps, F=64 input features, H=256 state, a linear readout of 16
with mean squared error, float32; Elman (tanh), LSTM and GRU, 1 and 2 layers. Each side
runs in its own worker process (on 2 cores the thread pools of NumPy's BLAS and PyTorch
slow each other down in one process), both with their default threads, and half a
second of quiet before every timed step lets the other side's idle threads stop spinning.
The main process alternates configuration by configuration and side by side, round after
round, so a change in the machine's load hits both sides alike; it prints medians and the
ratio ours / PyTorch (lower is better for us).

    .venv/bin/python bench/bench_train.py [--rounds 12] [--kinds elman,lstm,gru,lstm+fused]

A third worker times our step's matrix products alone (`_floor`): how close the step can
come to PyTorch's with NumPy's BLAS, whatever is done about the rest.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import statistics
import time

B, T, F, H, OUT = 32, 128, 64, 256, 16
KINDS, DEPTHS = ("elman", "lstm", "gru"), (1, 2)


def _ours(kind: str, layers: int):
    """A step function of our training step, built once per configuration; `lstm+fused`
    is the LSTM with the compiled elementwise steps of the `[fast]` extra (numba)."""
    import numpy as np

    from composer.kinds import fused

    compiled = kind.endswith("+fused")
    kind = kind.removesuffix("+fused")
    os.environ["RNN_COMPOSER_FUSED"] = "1"  # an earlier configuration's step set it to 0
    if compiled and not fused.prepare(force=True):
        raise SystemExit("lstm+fused needs the [fast] extra (numba)")

    from composer.engine.plan import compile_plan
    from composer.graph.folded import build
    from composer.graph.unrolled import unroll
    from composer.graph.weights import init_params
    from composer.spec.model import NetworkSpec
    from composer.training.backprop import Workspace, grad
    from composer.training.optim import Adam

    stack = [
        {"name": f"l{i}", "kind": kind, "input": f"l{i - 1}" if i else "x", "state_size": H}
        for i in range(layers)
    ]
    stack[-1]["output"] = {"size": OUT}
    spec = NetworkSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": F}],
            "layers": stack,
            "outputs": [{"name": "o", "from": f"l{layers - 1}"}],
        }
    )
    graph = build(spec)
    plan = compile_plan(unroll(graph, T))
    params = init_params(graph, 0)
    optimizer = Adam(params, lr=1e-3)
    rng = np.random.default_rng(0)
    x = {"x": rng.normal(size=(B, T, F)).astype(np.float32)}
    y = {"o": rng.normal(size=(B, T, OUT)).astype(np.float32)}

    workspace = Workspace()  # as composer.training.loop does

    def step():
        os.environ["RNN_COMPOSER_FUSED"] = "1" if compiled else "0"
        _, grads = grad(plan, params, x, y, workspace=workspace)
        optimizer.step(grads)

    return step


def _torch(kind: str, layers: int):
    """The same step in PyTorch: nn.RNN/LSTM/GRU, a Linear readout, MSE, Adam."""
    import torch

    torch.manual_seed(0)
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    cls = cls[kind.removesuffix("+fused")]
    rnn, linear = cls(F, H, num_layers=layers, batch_first=True), torch.nn.Linear(H, OUT)
    optimizer = torch.optim.Adam([*rnn.parameters(), *linear.parameters()], lr=1e-3)
    x, y = torch.randn(B, T, F), torch.randn(B, T, OUT)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(linear(rnn(x)[0]), y)
        loss.backward()
        optimizer.step()

    return step


def _floor(kind: str, layers: int):
    """The matrix products of our training step alone, the cheapest way NumPy's BLAS
    allows: whole-span products in one call each (input projections, weight gradients,
    gradients passed down, the readout), the recurrent products of the forward and the
    backward pass step by step. What our step cannot beat, whatever it does about its
    elementwise passes."""
    import numpy as np

    G = {"elman": 1, "lstm": 4, "gru": 3}[kind.removesuffix("+fused")]
    rng = np.random.default_rng(0)

    def draw(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x, states, d = draw(T * B, F), draw(T, B, H), draw(T, B, G * H)
    Wx = [draw(F if i == 0 else H, G * H) for i in range(layers)]
    Ws, WsT = draw(H, G * H), draw(G * H, H)
    Wo, out = draw(H, OUT), np.empty((T * B, OUT), np.float32)
    xw, gates = np.empty((T * B, G * H), np.float32), np.empty((B, G * H), np.float32)
    back = np.empty((B, H), np.float32)
    rows, flat_d = states.reshape(T * B, H), d.reshape(T * B, G * H)

    def step():
        for i in range(layers):
            np.matmul(x if i == 0 else rows, Wx[i], out=xw)
            for h in states:
                np.matmul(h, Ws, out=gates)
        np.matmul(rows, Wo, out=out)
        np.matmul(out, Wo.T)  # the readout's gradient passed down
        rows.T @ out  # ... and its weight's
        for i in reversed(range(layers)):
            for dA in d:
                np.matmul(dA, WsT, out=back)
            rows.T @ flat_d  # Ws's gradient
            (x if i == 0 else rows).T @ flat_d  # Wx's
            if i:
                flat_d @ Wx[i].T  # the gradient passed to the layer below

    return step


def _threads(side: str) -> str:
    if side == "floor":
        return "our step's matrix products alone"
    if side == "torch":
        import torch

        return f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    import numpy as np

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return f"numpy {np.__version__}, {blas['name']} {blas['version']}, threads: {threads}"


def _worker(side: str, requests, replies) -> None:
    """Serve (kind, layers, repeats) requests with the step times, until None."""
    make = {"torch": _torch, "ours": _ours, "floor": _floor}[side]
    steps = {}
    replies.put(_threads(side))
    while (request := requests.get()) is not None:
        kind, layers, repeats = request
        if (kind, layers) not in steps:
            steps[kind, layers] = make(kind, layers)
            steps[kind, layers]()  # warm up: first-call allocations, thread start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            steps[kind, layers]()
            times.append(time.perf_counter() - start)
        replies.put(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="alternations per config")
    fast = importlib.util.find_spec("numba") is not None  # the [fast] extra
    parser.add_argument("--kinds", default=",".join(KINDS + ("lstm+fused",) * fast))
    args = parser.parse_args()
    context = mp.get_context("spawn")
    sides = {}
    for side in ("ours", "torch", "floor"):
        requests, replies = context.Queue(), context.Queue()
        process = context.Process(target=_worker, args=(side, requests, replies), daemon=True)
        process.start()
        sides[side] = (requests, replies, process)
    for side, (_, replies, _) in sides.items():
        print(f"{side}: {replies.get()}")
    configs = [(kind, layers) for kind in args.kinds.split(",") for layers in DEPTHS]
    times = {(c, side): [] for c in configs for side in sides}
    started = time.perf_counter()
    for _ in range(args.rounds):
        for config in configs:
            for side, (requests, replies, _) in sides.items():
                # let the other side's idle BLAS/OpenMP threads stop spinning first:
                # OpenBLAS threads busy-wait about 0.1 s after each product
                time.sleep(0.5)
                requests.put((*config, 1))
                times[config, side] += replies.get()
    for requests, _, process in sides.values():
        requests.put(None)
        process.join()
    print(f"B={B} T={T} F={F} H={H} out={OUT} float32, one step = forward + backward + Adam;")
    print(f"medians of {args.rounds} alternated steps ({time.perf_counter() - started:.0f} s)\n")
    print(
        f"{'kind':6} {'layers':>6} {'ours ms':>9} {'torch ms':>9} {'ours/torch':>11}"
        f" {'products only ms':>17} {'products only/torch':>20}"
    )
    for kind, layers in configs:
        ours, theirs, floor = (
            statistics.median(times[(kind, layers), side]) * 1e3
            for side in ("ours", "torch", "floor")
        )
        print(
            f"{kind:6} {layers:6d} {ours:9.1f} {theirs:9.1f} {ours / theirs:11.2f}"
            f" {floor:17.1f} {floor / theirs:20.2f}"
        )
    print(
        "\n(products only: our step's matrix products and nothing else, whole-span ones in "
        "one call each and the recurrent ones step by step: a floor for our step)"
    )


if __name__ == "__main__":
    main()
