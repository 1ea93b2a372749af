"""The reader front: a file is checked here before any byte of it is read.

Every file a command reads goes through `check_readable`: it must be a regular file (a
folder, a device such as `/dev/zero`, a FIFO or a socket is refused, however it was
named), and reading it must fit a limit known before the read: the command's
`--max-memory`, or for text files read whole without one, a fixed cap. Each refusal is
one line naming the file (docs/errors.md).

Examples
--------
>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> check_readable(folder)
Traceback (most recent call last):
...
composer.errors.DataError: ...: a folder, not a file
>>> check_readable("/dev/zero")
Traceback (most recent call last):
...
composer.errors.DataError: /dev/zero: not a regular file (a device, FIFO or socket); give a file
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from composer.errors import DataError, ResourceError
from composer.output_files import shown
from composer.readable import human_size

__all__ = ["MAX_VOCAB_BYTES", "MAX_TEXT_BYTES", "check_readable", "check_total"]

#: the largest vocabulary file `generate` reads (JSON read whole: a few times its size)
MAX_VOCAB_BYTES = 64 << 20
#: the most text `data text` reads in all: tokenizing holds each token as a Python object,
#: about 30 bytes for each byte of text (measured), so 64 MiB of text takes about 2 GiB
MAX_TEXT_BYTES = 64 << 20


def check_readable(
    path: str | os.PathLike,
    *,
    max_memory: int | None = None,
    factor: int = 1,
    cap: int | None = None,
    what: str = "a file",
) -> int:
    """The size of `path`, once it is known to be a regular file that can be read within
    the limits: `factor` times its size within `max_memory` (a ResourceError, exit 5,
    as every memory estimate), and its size within `cap` (the fixed limit of a kind of
    file, `what` naming the kind; a ResourceError too). Not a file: a DataError (exit 4).
    """
    name = shown(path)
    try:
        info = os.stat(path)  # through symbolic links: what a read would open
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as err:
        raise DataError(f"{name}: cannot be read ({err.strerror or err})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{name}: a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{name}: not a regular file (a device, FIFO or socket); give a file")
    size = info.st_size
    if cap is not None and size > cap:
        raise ResourceError(
            f"{name}: {human_size(size)}, over the {human_size(cap)} limit of {what}"
        )
    if max_memory is not None and size * factor > max_memory:
        raise ResourceError(
            f"reading {name} would need about {human_size(size * factor)}, over the limit of "
            f"{human_size(max_memory)}; raise --max-memory"
        )
    return size


def check_total(paths: list[Path], cap: int, what: str) -> int:
    """`check_readable` for several files read together, their total within `cap`."""
    if len(paths) == 1:
        return check_readable(paths[0], cap=cap, what=what)
    total = sum(check_readable(path) for path in paths)
    if total > cap:
        raise ResourceError(
            f"{', '.join(shown(p) for p in paths[:3])}{', ...' if len(paths) > 3 else ''}: "
            f"{human_size(total)} in all, over the {human_size(cap)} limit of {what}"
        )
    return total
