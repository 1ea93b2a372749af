"""The figures of docs/gradients.md: ‖∂L/∂h_t‖ and, for the LSTMs, ‖∂L/∂c_t‖ of the echo
task's last-step loss, at initialisation (seed 0) and after training, for an Elman
network, an LSTM and an LSTM whose forget gates start open (`forget_bias: 3`).

Usage: `.venv/bin/python tools/gradients.py` trains each network as a user would
(`rnn-composer train`, 30 epochs, Adam, learning rate 0.01, seed 0) and prints one
Markdown table row per network, state and stage, and the validation losses.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from composer.arrays import read_arrays
from composer.graph.weights import init_params
from composer.network import Network

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "specs" / "data" / "echo.npz"
TRAIN = ["--epochs", "30", "--lr", "0.01", "--seed", "0"]
NETWORKS = {"Elman": "echo-elman", "LSTM": "echo-lstm", "LSTM, forget_bias 3": "echo-lstm-forget"}
STEPS = (19, 15, 10, 5, 0)


def norms(stem: str, params) -> dict[str, np.ndarray]:
    """‖∂L/∂h_t‖ (`rnn.s`) and ‖∂L/∂c_t‖ (`rnn.c`, LSTMs) of the last step's loss."""
    net = Network.from_file(ROOT / "docs" / "examples" / f"{stem}.yaml")
    arrays = read_arrays(DATA)
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return net.gradient_norms(
        params, {"x": arrays["x"].astype(np.float64)}, {"y": arrays["y"].astype(np.float64)},
        at=("y", -1),
    )  # fmt: skip


def untrained(stem: str) -> dict[str, np.ndarray]:
    net = Network.from_file(ROOT / "docs" / "examples" / f"{stem}.yaml")
    return norms(stem, init_params(net.graph, 0, "float64"))


def row(label: str, values: np.ndarray) -> str:
    cells = " | ".join(f"{values[t]:.1e}" for t in STEPS)
    return f"| {label} | {cells} | {values.min() / values.max():.1e} |"


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        for name, stem in NETWORKS.items():
            spec = ROOT / "docs" / "examples" / f"{stem}.yaml"
            weights = Path(scratch) / f"{stem}.npz"
            done = subprocess.run(
                [sys.executable, "-m", "composer", "train", spec, "--data", DATA,
                 "--output", weights, *TRAIN],
                capture_output=True, text=True, check=True, cwd=ROOT,
            )  # fmt: skip
            said = (done.stdout + done.stderr).strip().splitlines()
            print(f"{name}: {said[-1]}", file=sys.stderr)
            for stage, found in (("untrained", untrained(stem)),
                                 ("trained", norms(stem, read_arrays(weights)))):  # fmt: skip
                for key, what in (("rnn.s", "h"), ("rnn.c", "c")):
                    if key in found:
                        print(row(f"{name}, {what}, {stage}", found[key]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
