"""Benchmark: a network exported to ONNX and run by ONNX Runtime, against our executor.

Run with `make bench` (or `.venv/bin/python bench/bench_onnx.py`). Not a test: it prints
medians and ratios measured in this run, never pass/fail on absolute times. The two
engines alternate call by call, so slow phases of a noisy machine hit both alike.

Forms compared for one layer (float32): ONNX's own operator (`RNN`, `LSTM`, `GRU`), and
the `Scan` over the kind's step that float64 and dilated layers are written as.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from composer import build, execute, init_params  # noqa: E402
from composer.engine.plan import bind_params, compile_plan  # noqa: E402
from composer.graph.unrolled import unroll  # noqa: E402
from composer.interop.onnx import build_model  # noqa: E402
from composer.spec.model import NetworkSpec  # noqa: E402


def network(kind: str, size: int):
    return build(
        NetworkSpec.model_validate(
            {
                "inputs": [{"name": "x", "size": size}],
                "layers": [{"name": "l", "kind": kind, "input": "x", "state_size": size}],
                "outputs": [{"name": "o", "from": "l"}],
            }
        )
    )


def session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    # idle ONNX Runtime threads spin by default, taking the cores our executor then needs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def median_times(calls: dict, repeats: int) -> dict:
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=128)
    args = parser.parse_args()
    B, H, T = args.batch, args.size, args.steps
    print(f"B = {B}, H = {H}, T = {T}, float32, one layer; medians of {args.repeats}")
    print("kind    ours (ms)  operator/ours  scan/ours")
    x = np.random.default_rng(0).normal(size=(B, T, H)).astype(np.float32)
    for kind in ("elman", "lstm", "gru"):
        graph = network(kind, H)
        params = init_params(graph, 0)
        plan = compile_plan(unroll(graph, T))
        bound = bind_params(graph, params, "float32")
        operator = session(build_model(graph, params)[0])
        scan = session(_as_scan(graph, params))  # the step the float64 export writes
        times = median_times(
            {
                "ours": partial(execute, plan, bound, {"x": x}),
                "operator": partial(operator.run, None, {"x": x}),
                "scan": partial(scan.run, None, {"x": x}),
            },
            args.repeats,
        )
        ours = times["ours"]
        print(
            f"{kind:7} {ours * 1e3:9.1f}  {times['operator'] / ours:13.2f}  "
            f"{times['scan'] / ours:9.2f}"
        )


def _as_scan(graph, params):
    """The float32 model with its layer written as a Scan (as float64 writes it)."""
    from composer.interop.onnx import _model, _opset
    from composer.interop.onnx_graph import Builder
    from composer.interop.onnx_plain import plain_graph

    opset = _opset(None)
    g = Builder("float32", opset)
    inputs, outputs = plain_graph(g, graph, params, lengths=False, steps=None, native=False)
    return _model(g, inputs, outputs, "scan", opset)


if __name__ == "__main__":
    main()
