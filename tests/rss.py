"""Peak memory of a command: run it in a subprocess and read the kernel's account of it.

`os.wait4` returns the resource usage of that one child (not of every child so far, as
`getrusage(RUSAGE_CHILDREN)` would), so several commands can run at once and each is
measured alone. `ru_maxrss` is in KiB on Linux.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent


@dataclass(frozen=True)
class Measured:
    """A finished command: its exit code, peak resident memory in bytes, and stderr."""

    code: int
    peak: int
    stderr: str


def start(args: list, cwd: Path | None = None) -> subprocess.Popen:
    """Start `python -m composer ARGS` (this worktree's package) with stderr to a pipe."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "composer", *map(str, args)],
        cwd=cwd or ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> Measured:
    """Wait for a started command and read its peak RSS."""
    stderr = process.stderr.read().decode(errors="replace")  # EOF when the child exits
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(process.returncode, usage.ru_maxrss * 1024, stderr)


def measure_all(commands: dict[str, list], cwd: Path | None = None) -> dict[str, Measured]:
    """Run commands side by side (each is still measured alone); results by name."""
    started = {name: start(args, cwd) for name, args in commands.items()}
    return {name: finish(process) for name, process in started.items()}


def baseline(cwd: Path | None = None) -> int:
    """The peak RSS of the interpreter with the tool loaded: a `validate` of a tiny spec."""
    return finish(start(["validate", ROOT / "specs" / "lecture-elman.yaml"], cwd)).peak
