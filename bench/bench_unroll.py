"""How long unrolling takes: the masks (`unroll`) and the networkx DAG (`unrolled_graph`).

A 4-layer LSTM stack at T = 10,000 and 100,000; prints the best of three runs.
Run: `.venv/bin/python bench/bench_unroll.py` (also part of `make bench`).
"""

from __future__ import annotations

import time

from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.spec.model import NetworkSpec


def best(function, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    layers = [
        {"name": f"l{i}", "kind": "lstm", "input": f"l{i - 1}" if i else "x", "state_size": 16}
        for i in range(4)
    ]
    layers[-1]["output"] = {"size": 4}
    spec = NetworkSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": 8}],
            "layers": layers,
            "outputs": [{"name": "o", "from": "l3"}],
        }
    )
    folded = build(spec)
    for steps in (10_000, 100_000):
        seconds = best(lambda steps=steps: unroll(folded, steps))
        print(f"unroll, 4-layer LSTM stack, T = {steps:,}: {seconds * 1000:.1f} ms")
    unrolled = unroll(folded, 10_000)
    seconds = best(lambda: unrolled_graph(unrolled), repeat=1)
    graph = unrolled_graph(unrolled)
    print(
        f"unrolled_graph (networkx), T = 10,000: {seconds:.2f} s, "
        f"{graph.number_of_nodes():,} nodes, {graph.number_of_edges():,} edges"
    )


if __name__ == "__main__":
    main()
