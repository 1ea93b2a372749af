"""`python -m composer.cli.datasets`: write the example data sets; let a trained Reber model
write strings and count the grammatical ones."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from composer.arrays import write_arrays
from composer.engine.batches import run
from composer.graph.folded import build
from composer.graph.weights import load_params
from composer.spec.reader import load_spec
from composer.training.datasets import DATASETS, accepts, generate

__all__ = ["reber_report", "main"]


def reber_report(spec, weights, count: int = 1000, seed: int = 0, greedy: bool = False):
    """(acceptance rate, strings) of `count` strings a trained Reber model writes."""
    graph = build(load_spec(spec))
    params = load_params(weights, graph)
    (name,) = [n for n, role in graph.nodes(data="role") if role == "input"]

    def predict(x: np.ndarray) -> np.ndarray:
        (out,) = run(graph, params, {name: x}).values()
        return out

    strings = generate(predict, count, seed, greedy)
    return float(np.mean([accepts(s) for s in strings])), strings


def main(argv: list[str] | None = None) -> int:
    """`python -m composer.cli.datasets NAME --output PATH [--seed N] [--count N]` writes a data
    set; `python -m composer.cli.datasets generate SPEC WEIGHTS [--count N] [--seed N]
    [--greedy]` lets a trained Reber model write strings and counts the grammatical ones."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:
        return _generate(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m composer.cli.datasets", description="Write an example data set as .npz."
    )
    parser.add_argument("name", choices=sorted(DATASETS))
    parser.add_argument("--output", required=True, help="the .npz file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=None, help="sequences (default: each's)")
    args = parser.parse_args(argv)
    options = {"seed": args.seed} | ({"count": args.count} if args.count else {})
    data = DATASETS[args.name](**options)
    write_arrays(args.output, data)
    shapes = ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in data.items())
    print(f"wrote {args.output}: {shapes}", file=sys.stderr)
    return 0


def _generate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m composer.cli.datasets generate",
        description="Let a trained next-symbol model write embedded Reber strings.",
    )
    parser.add_argument("spec")
    parser.add_argument("weights")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true", help="the most likely symbol each step")
    args = parser.parse_args(argv)
    rate, strings = reber_report(args.spec, args.weights, args.count, args.seed, args.greedy)
    how = "greedy" if args.greedy else "sampled"
    print(f"{rate:.1%} of {len(strings)} {how} strings are embedded Reber strings")
    print("examples: " + " ".join(strings[:5]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
