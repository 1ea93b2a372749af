"""The vanishing gradient, drawn: an Elman network and an LSTM trained on the echo task,
each unfolded with its states shaded by ‖∂L/∂s_t‖ of the last step's loss.

Usage: `.venv/bin/python tools/vanishing.py` writes docs/gradients/echo-{elman,lstm}.
gradients.{svg,png} with the commands a user would run, and prints the norms per step
that docs/diagrams.md quotes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from composer.arrays import read_arrays
from composer.network import Network

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "docs" / "gradients"
TRAIN = ["--epochs", "30", "--lr", "0.01", "--seed", "0"]


def cli(*args: object) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "composer", *map(str, args)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return (done.stdout + done.stderr).strip()


def main() -> int:
    FOLDER.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        data = ROOT / "specs" / "data" / "echo.npz"  # `python -m composer.cli.datasets echo`
        arrays = read_arrays(data)
        for kind in ("elman", "lstm"):
            spec = ROOT / "docs" / "examples" / f"echo-{kind}.yaml"
            weights = Path(scratch) / f"{kind}.npz"
            print(cli("train", spec, "--data", data, "--output", weights, *TRAIN))
            for fmt in ("svg", "png"):
                out = FOLDER / f"echo-{kind}.gradients.{fmt}"
                cli("render", spec, "--gradients", "--weights", weights, "--data", data,
                    "--at", "y[-1]", "--max-columns", 20, "-o", out, "--force")  # fmt: skip
            net = Network.from_file(spec)
            params = {k: v.astype(np.float64) for k, v in read_arrays(weights).items()}
            norms = net.gradient_norms(
                params, {"x": arrays["x"].astype(np.float64)},
                {"y": arrays["y"].astype(np.float64)}, at=("y", -1),
            )["rnn.s"]  # fmt: skip
            steps = [0, 5, 10, 13, 15, 19]
            print(f"{kind}: " + ", ".join(f"t={t} {norms[t]:.1e}" for t in steps)
                  + f"; smallest/largest {norms.min() / norms.max():.1e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
