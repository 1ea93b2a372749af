"""Memory estimates, measured: peak RSS stays under `--max-memory` plus the interpreter.

Issue 18, items 16 and 18-23, and the RSS helper (`tests/rss.py`): one case for each of
run, train, render, deps and summary. Every input is sized to cross its limit, so each
command must refuse (exit code 5) before it allocates; the commands run side by side,
each measured alone. `make fuzz` (FUZZ_EXAMPLES set) adds
runs that fit their limit and do the work, measured the same way.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests import rss

ROOT = Path(__file__).parent.parent.parent
LECTURE = ROOT / "specs" / "lecture-elman.yaml"
X = ROOT / "specs" / "data" / "lecture-x.csv"
MiB = 1 << 20
FULL = bool(os.environ.get("FUZZ_EXAMPLES"))


def _chain(count: int, delay: int, steps: int) -> dict:
    layers, previous = [], "x"
    for i in range(count):
        layers.append(
            {"name": f"l{i}", "kind": "elman", "input": previous, "state_size": 2, "delay": delay}
        )
        previous = f"l{i}"
    return {
        "steps": steps,
        "inputs": [{"name": "x", "size": 2}],
        "layers": layers,
        "outputs": [{"name": "y", "from": previous}],
        "alignment": "many-to-many",
    }


def _bomb(path: Path, key: str = "x", members: int = 3, size: int = 16 * MiB) -> Path:
    """A small `.npz` whose members declare `size` bytes each, all zeros (compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(members):
            name = key if i == 0 else f"{key}{i}"
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                shape = (1, size // 8 // 2, 2)
                np.lib.format.write_array_header_1_0(
                    member, {"descr": "<f8", "fortran_order": False, "shape": shape}
                )
                for _ in range(size // MiB):
                    member.write(bytes(MiB))
    return path


def _files(folder: Path) -> dict[str, Path]:
    lecture = LECTURE.read_text()
    files = {
        "wide": folder / "wide.yaml",
        "lstm": folder / "lstm.yaml",
        "delays": folder / "delays.json",
        "bomb": _bomb(folder / "bomb.npz"),
        "csv": folder / "short.csv",
        "lstm_data": folder / "lstm.npz",
    }
    files["wide"].write_text(lecture.replace("state_size: 8", "state_size: 12000"))
    files["lstm"].write_text(
        "inputs: [{name: x, size: 1}]\n"
        "layers: [{name: rnn, kind: lstm, input: x, state_size: 256, output: {size: 1}}]\n"
        "outputs: [{name: o, from: rnn}]\nalignment: many-to-many\n"
    )
    files["delays"].write_text(json.dumps(_chain(20, 1_000_000, 2_000_000)))
    files["csv"].write_text("1,0,0,0\n" * 600_000)  # 4.8 MB of short rows
    x = np.zeros((1024, 200, 1), np.float32)
    np.savez(files["lstm_data"], x=x, o=x)
    return files


CASES = {
    # item: (command, limit)
    "run-weights": (["run", "{wide}", "-i", X, "--max-memory", "100M"], 100 * MiB),
    "train-validation": (
        ["train", "{lstm}", "--data", "{lstm_data}", "--batch-size", "4", "--max-memory", "100M"],
        100 * MiB,
    ),
    "render-highlight": (
        [
            "render",
            LECTURE,
            "-T",
            "3000000",
            "--highlight",
            "y[-1]",
            "--view",
            "unfolded",
            "-f",
            "dot",
            "--max-memory",
            "150M",
        ],
        150 * MiB,
    ),
    "deps-json": (["deps", "--json", LECTURE, "-T", "5000", "--max-memory", "1G"], 1 << 30),
    "summary-delays": (["summary", "{delays}", "--max-memory", "400M"], 400 * MiB),
}
if FULL:  # the same classes through other doors (tests/test_arrays.py and
    # tests/test_execute.py check the reader's estimates in-process in `make test`)
    CASES |= {
        "run-bomb": (["run", LECTURE, "-i", "{bomb}", "--max-memory", "10M"], 10 * MiB),
        "run-csv": (["run", LECTURE, "-i", "{csv}", "--max-memory", "10M"], 10 * MiB),
        "run-bomb-weights": (
            ["run", LECTURE, "-i", X, "-w", "{bomb}", "--max-memory", "10M"],
            10 * MiB,
        ),
        "train-bomb": (["train", LECTURE, "--data", "{bomb}", "--max-memory", "10M"], 10 * MiB),
        "validate-delays": (["validate", "{delays}", "--max-memory", "400M"], 400 * MiB),
        "render-highlight-10M": (
            [
                "render",
                LECTURE,
                "-T",
                "10000000",
                "--highlight",
                "y[-1]",
                "--view",
                "unfolded",
                "-f",
                "dot",
                "--max-memory",
                "500M",
            ],
            500 * MiB,
        ),
    }


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rss")
    files = _files(folder)
    commands = {
        name: [str(a).format(**files) if isinstance(a, str) else a for a in args]
        + (["-o", folder / f"{name}.out"] if args[0] in ("train", "render") else [])
        for name, (args, _) in CASES.items()
    }
    return rss.measure_all(commands, cwd=folder)


@pytest.mark.parametrize("name", CASES)
def test_work_over_the_limit_is_refused_before_it_is_allocated(measured, name):
    result, base = measured[name], measured["baseline"].peak
    assert result.code == 5, result.stderr
    assert "over the limit of" in result.stderr and "Traceback" not in result.stderr
    assert result.peak <= CASES[name][1] + base, (result.peak >> 20, base >> 20)


def test_the_baseline_is_an_interpreter(measured):
    assert measured["baseline"].code == 0
    assert 20 * MiB < measured["baseline"].peak < 400 * MiB


# Runs that fit their limit, measured doing the work (slow: only under `make fuzz`).
FITTING = {
    "run": (["run", "{wide}", "-i", X, "--max-memory", "1800M"], 1800 * MiB),
    "train": (
        [
            "train",
            "{lstm}",
            "--data",
            "{lstm_data}",
            "--batch-size",
            "4",
            "--epochs",
            "0",
            "--max-memory",
            "1200M",
        ],
        1200 * MiB,
    ),
    "render": (
        [
            "render",
            LECTURE,
            "-T",
            "300000",
            "--highlight",
            "y[-1]",
            "--view",
            "unfolded",
            "-f",
            "dot",
            "--max-memory",
            "400M",
        ],
        400 * MiB,
    ),
    "deps": (["deps", "--json", LECTURE, "-T", "3000", "--max-memory", "1G"], 1 << 30),
    "summary": (["summary", "{delays}", "--max-memory", "1200M"], 1200 * MiB),
}


@pytest.mark.skipif(not FULL, reason="slow; runs under `make fuzz`")
@pytest.mark.parametrize("name", FITTING)
def test_work_under_the_limit_stays_under_it(tmp_path, name):
    files = _files(tmp_path)
    args, limit = FITTING[name]
    args = [str(a).format(**files) if isinstance(a, str) else a for a in args]
    args += ["-o", tmp_path / f"{name}.out"] if args[0] in ("train", "render") else []
    base = rss.baseline(tmp_path)
    result = rss.finish(rss.start(args, tmp_path))
    assert result.code == 0, result.stderr
    assert result.peak <= limit + base, (result.peak >> 20, limit >> 20, base >> 20)
