"""Standard output that reports its failures: a full disk, a closed or broken pipe.

Without this, a `validate` whose stdout is closed exits 0 having said nothing, and one
whose stdout is full ends in a traceback. Each write goes through `CheckedStdout`,
which raises `WriteError` (exit code 5) instead.
"""

from __future__ import annotations

import os
import sys

from composer.errors import WriteError

__all__ = ["CheckedStdout", "check_stdout"]


class CheckedStdout:
    """A text stream over the real stdout (or none, when it is closed) whose failures are
    `WriteError`s, raised again at each later write; flushing at exit stays quiet."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._failed: str | None = None

    def _fail(self, reason: str) -> None:
        self._failed = reason
        if self._stream is not None:
            try:  # what is still buffered would fail again at exit
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
        raise WriteError(f"cannot write to standard output: {reason}")

    def write(self, text: str) -> int:
        if self._failed:  # again: a probe may have swallowed the first error
            raise WriteError(f"cannot write to standard output: {self._failed}")
        if self._stream is None:
            self._fail("it is closed")
        try:
            return self._stream.write(text)
        except OSError as err:
            self._fail(err.strerror or str(err))
        return 0

    def flush(self) -> None:
        if self._failed or self._stream is None:
            return
        try:
            self._stream.flush()
        except OSError as err:
            self._fail(err.strerror or str(err))

    def __getattr__(self, name: str):
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def check_stdout() -> None:
    """Route `sys.stdout` through `CheckedStdout` (once)."""
    if not isinstance(sys.stdout, CheckedStdout):
        sys.stdout = CheckedStdout(sys.stdout)
