"""Termination signals: each one unwinds the program, so temporary files are removed.

Python turns SIGINT into KeyboardInterrupt; every other catchable signal whose default
is to end the process would end it on the spot, leaving a half-written temporary file.
`install()` makes them raise `Terminated` instead. `shielded()` holds them (SIGINT
included) for the few lines that publish a file or remove a temporary one, then
delivers what came.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["Terminated", "TERMINATING", "install", "shielded", "interrupt_once"]

#: catchable signals whose default action ends the process (SIGINT aside).
TERMINATING = tuple(
    getattr(signal, name)
    for name in (
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGXCPU",
        "SIGVTALRM",
        "SIGPROF",
    )
    if hasattr(signal, name)
)


class Terminated(BaseException):
    """A termination signal arrived; `exit_code` is 128 + its number, as a shell reports it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"


def _raise(signum: int, frame) -> None:
    raise Terminated(signum)


def install() -> None:
    """Make every catchable termination signal raise `Terminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in TERMINATING:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _raise)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT and the termination signals inside the block; deliver them after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    watched = (signal.SIGINT, *TERMINATING)
    saved = {signum: signal.getsignal(signum) for signum in watched}
    for signum in watched:
        if saved[signum] not in (signal.SIG_IGN, None):
            signal.signal(signum, lambda n, frame: held.append(n))
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)
    for signum in held[:1]:
        handler = saved[signum]
        if callable(handler):
            handler(signum, None)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise Terminated(signum)


@contextlib.contextmanager
def interrupt_once() -> Iterator[None]:
    """Inside the block, the first SIGINT raises KeyboardInterrupt and later ones are
    ignored: a second Ctrl-C cannot break the clean stop the first one started."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.getsignal(signal.SIGINT)

    def first(signum, frame):
        signal.signal(signal.SIGINT, lambda n, f: None)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)
