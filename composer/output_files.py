"""Output files: which targets are safe to write, and how a finished file is published.

The rules (docs/errors.md): an output must not be a folder, a device, a FIFO or a socket;
it must not be an input or another output of the same command, compared through
symbolic and hard links; it must not exist unless `--force` is given. A symbolic link
to a regular file is followed: the file it points to is replaced and the link stays. A
dangling link or a link loop is refused. A file with other hard links is replaced under
the name given only; its other names keep the old contents. A replaced file keeps its
permission bits.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["same_file", "output_problem", "unwritable", "write_target", "shown"]


def shown(path: str | os.PathLike) -> str:
    """A path as a message shows it: control characters escaped, so it stays on one line."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = text.decode(errors="backslashreplace")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file, through symbolic links and hard links."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def write_target(path: str | os.PathLike) -> Path:
    """The file a write to `path` replaces: a symbolic link's final target, else `path`."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def output_problem(
    path: Path,
    force: bool,
    inputs: Iterable[Path | None] = (),
    others: Iterable[Path] = (),
    *,
    writable: bool = True,
) -> str | None:
    """Why writing `path` would lose data or cannot work (a usage error); None if it is safe.

    `inputs` are the command's input files; `others` its other outputs. With
    `writable=False` the folder's permissions are left to `unwritable` (a write error).
    """
    name = shown(path)
    if str(path) in ("", ".", "..") or path.name in ("", ".", ".."):
        return f"{name or repr(str(path))} is a folder; give a file name"
    if path.is_symlink() and not path.exists():
        return f"{name} is a dangling symbolic link or a link loop; remove it or choose another"
    if path.exists():
        try:
            mode = path.stat().st_mode
        except OSError as err:
            return f"{name} cannot be examined: {err.strerror or err}"
        if stat.S_ISDIR(mode):
            return f"{name} is a folder; give a file name"
        if not stat.S_ISREG(mode):
            return f"{name} is not a regular file (a device, FIFO or socket); choose a file name"
    for given in inputs:
        if given is not None and same_file(path, given):
            return f"{name} is also an input; choose another output file"
    for other in others:
        if same_file(path, other) or os.path.abspath(path) == os.path.abspath(other):
            return f"{name} is named by two outputs of this command; give each its own file"
    if path.exists() and not force:
        return f"{name} exists; pass --force to overwrite it"
    target = write_target(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        return f"folder {shown(folder)} does not exist"
    return unwritable(path) if writable else None


def unwritable(path: Path) -> str | None:
    """Why the folder of `path` (a link's target's) refuses a new file: its permissions."""
    target = write_target(path)
    folder = target.parent if str(target.parent) else Path(".")
    if folder.is_dir() and not os.access(folder, os.W_OK):
        return f"cannot write {shown(path)}: folder {shown(folder)} is not writable"
    return None
