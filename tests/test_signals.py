"""Signals: every catchable termination signal cleans up; a second Ctrl-C keeps the weights.

Issue 18, items 7 and 8. Each command-line case runs in a forked child whose write sends
the signal to its own process at a chosen moment, so the timing is exact.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from composer import signals
from composer.arrays import atomic_write
from composer.signals import TERMINATING

ROOT = Path(__file__).parent.parent
SPEC = ROOT / "specs" / "lecture-elman.yaml"
X = ROOT / "specs" / "data" / "lecture-x.csv"
SINE = ROOT / "specs" / "sine.yaml"
SINE_DATA = ROOT / "specs" / "data" / "sine.npz"


def _run_forked(patch, argv: list, cwd: Path) -> tuple[int, str]:
    """Run the command line in a forked child (its own process, for its own signals),
    after `patch()` there; its exit code and stderr."""
    log = cwd.parent / f"{cwd.name}.stderr"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.chdir(cwd)
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the child exits below
            sys.stderr = open(log, "w")  # noqa: SIM115
            patch()
            sys.argv = ["rnn-composer", *map(str, argv)]
            from composer.cli import main

            main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 99
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), log.read_text()


def test_sigterm_during_a_write_exits_143_and_leaves_no_temporary_file(tmp_path):
    from composer import arrays

    def patch():
        real = arrays._savez

        def interrupted(handle, data):
            handle.write(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            real(handle, data)

        arrays._savez = interrupted

    code, stderr = _run_forked(patch, ["run", SPEC, "-i", X, "-o", tmp_path / "big.npz"], tmp_path)
    assert code == 128 + signal.SIGTERM, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert stderr.strip() == "stopped by SIGTERM"


@pytest.fixture
def handlers():
    """`signals.install()` in this process, undone afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in TERMINATING}
    signals.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", TERMINATING, ids=lambda s: signal.Signals(s).name)
def test_every_termination_signal_keeps_the_old_file_and_no_temporary(tmp_path, handlers, signum):
    out = tmp_path / "w.npz"
    out.write_bytes(b"old")

    def interrupted(handle):
        handle.write(b"half")
        os.kill(os.getpid(), signum)
        handle.write(b"never")

    with pytest.raises(signals.Terminated) as caught:
        atomic_write(out, interrupted)
    assert caught.value.exit_code == 128 + signum
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_every_terminating_signal_is_handled():
    names = {signal.Signals(s).name for s in TERMINATING}
    assert {"SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM"} <= names


def test_a_signal_while_publishing_is_delivered_after_it(tmp_path, handlers):
    out = tmp_path / "w.npz"
    with pytest.raises(signals.Terminated), signals.shielded():
        os.kill(os.getpid(), signal.SIGTERM)
        atomic_write(out, lambda handle: handle.write(b"whole"))
    assert out.read_bytes() == b"whole"


def test_a_second_ctrl_c_does_not_abort_writing_the_best_weights(tmp_path):
    from composer import arrays
    from composer.training import loop

    def patch():
        real_epoch, real_savez = loop._Run.epoch, arrays._savez

        def first(self, *args):  # the first Ctrl-C, in the first epoch
            os.kill(os.getpid(), signal.SIGINT)
            return real_epoch(self, *args)

        def second(handle, data):  # the second, while the best weights are written
            os.kill(os.getpid(), signal.SIGINT)
            real_savez(handle, data)

        loop._Run.epoch, arrays._savez = first, second

    out = tmp_path / "w.npz"
    argv = ["train", SINE, "--data", SINE_DATA, "--epochs", 1, "--output", out]
    code, stderr = _run_forked(patch, argv, tmp_path)
    assert code == 130, stderr
    assert "interrupted:" in stderr and out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_two_ctrl_c_at_once_still_write_the_weights(tmp_path):
    from composer.training import loop

    def patch():
        real_epoch = loop._Run.epoch

        def twice(self, *args):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            return real_epoch(self, *args)

        loop._Run.epoch = twice

    out = tmp_path / "w.npz"
    argv = ["train", SINE, "--data", SINE_DATA, "--epochs", 1, "--output", out]
    code, stderr = _run_forked(patch, argv, tmp_path)
    assert code == 130 and out.exists(), stderr
