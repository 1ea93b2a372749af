"""Safe array files: `.npy` and `.npz` read without pickles or surprise allocations."""

from __future__ import annotations

import math
import os
import stat
import struct
import tempfile
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from composer.errors import DataError, OutputExistsError, WriteError
from composer.output_files import shown, write_target
from composer.signals import shielded

__all__ = [
    "read_arrays",
    "declared_bytes",
    "write_arrays",
    "atomic_write",
    "MAX_ARRAY_BYTES",
    "MAX_MEMBERS",
]

#: the largest array a file may declare before anything is allocated (8 GiB).
MAX_ARRAY_BYTES = 8 << 30
#: the most arrays a `.npz` may hold.
MAX_MEMBERS = 100_000
_BROKEN = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
    OverflowError,
)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"  # an archive that is only its end record: no member
_REFUSED = {
    ".pt": "a PyTorch pickle",
    ".pth": "a PyTorch pickle",
    ".pkl": "a Python pickle",
    ".pickle": "a Python pickle",
    ".h5": "an HDF5 file",
    ".hdf5": "an HDF5 file",
}


def _read_npy_header(handle, where: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(handle)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        with warnings.catch_warnings():  # a header only Python 2's parsing reads is broken
            warnings.simplefilter("error", UserWarning)
            shape, _, dtype = read_header(handle, max_header_size=10_000)
    except (*_BROKEN, SyntaxError, TypeError, tokenize.TokenError, UserWarning) as err:
        raise DataError(f"{where}: not a valid .npy array ({err})") from err
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{where}: dtype {dtype} is not allowed; expected numbers (float)")
    if any(side < 0 for side in shape):
        raise DataError(f"{where}: not a valid .npy array (shape {shape})")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow, however large
    if nbytes > MAX_ARRAY_BYTES:
        raise DataError(
            f"{where}: declares shape {_short(shape)} ({_gib(nbytes)}), over the "
            f"{MAX_ARRAY_BYTES >> 30} GiB limit"
        )
    return shape, dtype


def _gib(nbytes: int) -> str:
    if nbytes < 2**900:
        return f"{nbytes / 2**30:.1f} GiB"
    return f"about 2^{nbytes.bit_length()} bytes"


def _short(shape: tuple[int, ...]) -> str:
    sides = [
        str(side) if len(str(side)) <= 12 else f"{str(side)[:4]}...({len(str(side))} digits)"
        for side in shape
    ]
    return f"({', '.join(sides)}{',' if len(sides) == 1 else ''})"


def _load_npy(handle, where: str, size: int | None) -> np.ndarray:
    start = handle.tell()
    shape, dtype = _read_npy_header(handle, where)
    expected = math.prod(shape) * dtype.itemsize
    if size is not None and size - (handle.tell() - start) < expected:
        raise DataError(f"{where}: truncated; shape {shape} needs {expected} bytes of data")
    handle.seek(start)
    try:
        return np.lib.format.read_array(handle, allow_pickle=False)
    except _BROKEN as err:
        raise DataError(f"{where}: could not read the array ({err})") from err


def read_arrays(path: str | os.PathLike, *, default_key: str = "x") -> dict[str, np.ndarray]:
    """The arrays of a `.npz` (by key) or a `.npy` (under `default_key`), checked before loading."""
    path = Path(path)
    refused = _REFUSED.get(path.suffix.lower())
    if refused:
        raise DataError(
            f"{path}: {refused} is not supported (it may run code); save the arrays "
            "with numpy.savez as .npz"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
            handle.seek(0)
            if magic.startswith(_NPY_MAGIC):
                return {default_key: _load_npy(handle, str(path), path.stat().st_size)}
            if magic.startswith(_ZIP_MAGIC):
                return _read_npz(handle, path)
            if not magic:
                raise DataError(f"{shown(path)}: an empty file (0 bytes); expected .npy or .npz")
            if magic.startswith(_EMPTY_ZIP_MAGIC):
                raise DataError(f"{shown(path)}: an empty .npz archive; it holds no arrays")
    except OSError as err:  # /proc/self/mem and the like open, then fail to read
        raise DataError(f"{shown(path)}: cannot be read ({err.strerror or err})") from err
    raise DataError(f"{path}: not a .npy or .npz file (leading bytes {magic!r})")


def declared_bytes(path: str | os.PathLike) -> int:
    """The memory the arrays of a `.npy` or `.npz` file take once read, from their headers
    alone (nothing is decompressed beyond them); the file's size for any other file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
            handle.seek(0)
            if magic.startswith(_NPY_MAGIC):
                shape, dtype = _read_npy_header(handle, shown(path))
                return math.prod(shape) * dtype.itemsize
            if magic.startswith(_ZIP_MAGIC):
                with zipfile.ZipFile(handle) as archive:
                    infos = _members(archive, path)
                    return sum(_declared(archive, info, path) for info in infos)
            return path.stat().st_size
    except DataError:
        raise
    except _BROKEN as err:
        raise DataError(f"{shown(path)}: not a valid .npy or .npz file ({err})") from err


def _declared(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> int:
    if not info.filename.endswith(".npy"):
        return info.file_size
    with archive.open(info) as member:
        shape, dtype = _read_npy_header(member, f"{shown(path)}: key {_key(info)!r}")
    return math.prod(shape) * dtype.itemsize


def _members(archive: zipfile.ZipFile, path: Path) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise DataError(
            f"{shown(path)}: holds {len(infos):,} arrays, over the limit of {MAX_MEMBERS:,}"
        )
    # A zip may hold one name twice; numpy would silently keep one of them.
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise DataError(
                f"{shown(path)}: holds the member {info.filename!r} twice; "
                "which one is meant is unclear, so write each array once"
            )
        seen.add(info.filename)
    return infos


def _read_npz(handle, path: Path) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(handle) as archive:
            infos = _members(archive, path)
            return {_key(info): _read_member(archive, info, path) for info in infos}
    except DataError:
        raise
    except _BROKEN as err:  # a damaged archive can fail in any of the zip layer's ways
        raise DataError(f"{path}: not a valid .npz archive ({err})") from err


def _key(info: zipfile.ZipInfo) -> str:
    return info.filename.removesuffix(".npy")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    where = f"{path}: key {_key(info)!r}"
    if not info.filename.endswith(".npy"):
        raise DataError(f"{where}: unexpected member {info.filename!r} in the archive")
    with archive.open(info) as member:
        shape, dtype = _read_npy_header(member, where)
    # The declared size bounds what decompression may produce: a zip bomb stops here.
    if info.file_size > math.prod(shape) * dtype.itemsize + 4096:
        raise DataError(f"{where}: {info.file_size} bytes do not match shape {shape}")
    with archive.open(info) as member:
        return _load_npy(member, where, info.file_size)


def atomic_write(path: str | os.PathLike, write, *, overwrite: bool = True) -> None:
    """Call `write(handle)` on a temporary file beside `path`, then publish it there.

    An interrupted write (an error, Ctrl-C, a termination signal) leaves the old file or
    none, never a partial one, and no temporary file. With `overwrite=False` the file
    is published only if `path` still does not exist (`OutputExistsError` otherwise),
    so two runs racing for one name cannot silently lose a result. A symbolic link is
    followed (its target is replaced); a replaced file keeps its permission bits;
    a device, FIFO or socket is never replaced.
    """
    path = Path(path)
    target = write_target(path)
    old = _regular_or_none(target, path)
    tmp = None
    try:
        with shielded():  # the name of the temporary file must not be lost
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or "."
            )
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        mode = stat.S_IMODE(old.st_mode) if old is not None else 0o666 & ~_umask()
        os.chmod(tmp, mode)  # mkstemp makes it private
        with shielded():
            _publish(tmp, target, overwrite, path)
            tmp = None
    except OSError as err:
        raise WriteError(f"cannot write {shown(path)}: {err.strerror or err}") from err
    finally:
        if tmp is not None:
            with shielded():
                Path(tmp).unlink(missing_ok=True)


def _regular_or_none(target: Path, path: Path) -> os.stat_result | None:
    try:
        old = os.stat(target)
    except FileNotFoundError:
        if path.is_symlink():
            raise WriteError(f"cannot write {shown(path)}: a dangling symbolic link") from None
        return None
    except OSError as err:
        raise WriteError(f"cannot write {shown(path)}: {err.strerror or err}") from err
    if not stat.S_ISREG(old.st_mode):
        raise WriteError(f"cannot write {shown(path)}: not a regular file")
    return old


def _publish(tmp: str, target: Path, overwrite: bool, path: Path) -> None:
    """Rename `tmp` to `target`; without `overwrite`, only if `target` does not exist."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the name appeared meanwhile: nothing is lost
    except FileExistsError:
        raise OutputExistsError(
            f"{shown(path)} appeared while this command ran; it was left as it is "
            "(pass --force to overwrite it)"
        ) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(target):
            raise OutputExistsError(
                f"{shown(path)} appeared while this command ran; it was left as it is "
                "(pass --force to overwrite it)"
            ) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_arrays(
    path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *, overwrite: bool = True
) -> None:
    """Write arrays to a `.npz` atomically (uncompressed; keys as given, whatever they are)."""
    atomic_write(path, lambda handle: _savez(handle, arrays), overwrite=overwrite)


def _savez(handle, arrays: Mapping[str, np.ndarray]) -> None:
    """`numpy.savez` without keyword arguments: a key such as `file` or `allow_pickle` is
    a member like any other. Members carry a fixed date, so equal arrays give equal bytes."""
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
