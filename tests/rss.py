"""Peak memory of a command: run it in a child process and read the kernel's account of it.

`os.wait4` returns the resource usage of that one child (not of every child so far, as
`getrusage(RUSAGE_CHILDREN)` would), so several commands can run at once and each is
measured alone. `ru_maxrss` is in KiB on Linux.

`measure_all` starts one interpreter that imports the tool once and forks a child per
command (a child's resident set starts as that interpreter's, the baseline); `start` and
`finish` run one command in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"}


@dataclass(frozen=True)
class Measured:
    """A finished command: its exit code, peak resident memory in bytes, and stderr."""

    code: int
    peak: int
    stderr: str


def start(args: list, cwd: Path | None = None) -> subprocess.Popen:
    """Start `python -m composer ARGS` (this worktree's package) with stderr to a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "composer", *map(str, args)],
        cwd=cwd or ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen) -> Measured:
    """Wait for a started command and read its peak RSS."""
    stderr = process.stderr.read().decode(errors="replace")  # EOF when the child exits
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(process.returncode, usage.ru_maxrss * 1024, stderr)


def baseline(cwd: Path | None = None) -> int:
    """The peak RSS of the interpreter with the tool loaded: a `validate` of a tiny spec."""
    return finish(start(["validate", ROOT / "specs" / "lecture-elman.yaml"], cwd)).peak


_SERVER = r"""
import json, os, sys, traceback
import composer.cli as app

commands, folder = json.loads(sys.argv[1]), sys.argv[2]
running = {}
for name, args in commands.items():
    log = os.path.join(folder, f".{name}.stderr")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.argv = ["rnn-composer", *args]
            app.main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 99
        sys.stderr.flush()
        os._exit(code)
    running[pid] = (name, log)
results = {}
while running:
    pid, status, usage = os.wait4(-1, 0)
    name, log = running.pop(pid)
    with open(log) as handle:
        text = handle.read()
    results[name] = [os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, text]
print(json.dumps(results))
"""


def measure_all(commands: dict[str, list], cwd: Path) -> dict[str, Measured]:
    """Run commands side by side, forked from one interpreter that has imported the tool;
    `baseline` in the results is a fork doing almost nothing (a `validate` of a tiny spec)."""
    commands = dict(commands, baseline=["validate", ROOT / "specs" / "lecture-elman.yaml"])
    plain = {name: [str(a) for a in args] for name, args in commands.items()}
    done = subprocess.run(
        [sys.executable, "-c", _SERVER, json.dumps(plain), str(cwd)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found = json.loads(done.stdout)
    return {name: Measured(*found[name]) for name in commands}
