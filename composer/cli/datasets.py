"""`python -m composer.cli.datasets`: write the example data sets."""

from __future__ import annotations

import argparse
import sys

from composer.arrays import write_arrays
from composer.training.example_data import DATASETS

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """`python -m composer.cli.datasets NAME --output PATH [--seed N] [--count N]` writes a data
    set. (A trained Reber model writes strings with `rnn-composer generate --accept reber`.)"""
    argv = sys.argv[1:] if argv is None else argv
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


if __name__ == "__main__":
    raise SystemExit(main())
