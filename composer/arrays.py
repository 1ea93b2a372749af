"""Safe array files: `.npy` and `.npz` read without pickles or surprise allocations."""

from __future__ import annotations

import os
import struct
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from composer.errors import DataError, WriteError

__all__ = ["read_arrays", "write_arrays", "atomic_write", "MAX_ARRAY_BYTES"]

#: the largest array a file may declare before anything is allocated (8 GiB).
MAX_ARRAY_BYTES = 8 << 30
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
        shape, _, dtype = read_header(handle, max_header_size=10_000)
    except (*_BROKEN, SyntaxError, TypeError, tokenize.TokenError) as err:  # a Python literal
        raise DataError(f"{where}: not a valid .npy array ({err})") from err
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{where}: dtype {dtype} is not allowed; expected numbers (float)")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise DataError(
            f"{where}: declares shape {shape} ({nbytes / 2**30:.1f} GiB), over the "
            f"{MAX_ARRAY_BYTES >> 30} GiB limit"
        )
    return shape, dtype


def _load_npy(handle, where: str, size: int | None) -> np.ndarray:
    start = handle.tell()
    shape, dtype = _read_npy_header(handle, where)
    expected = int(np.prod(shape)) * dtype.itemsize
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
    with open(path, "rb") as handle:
        magic = handle.read(6)
        handle.seek(0)
        if magic.startswith(_NPY_MAGIC):
            return {default_key: _load_npy(handle, str(path), path.stat().st_size)}
        if magic.startswith(_ZIP_MAGIC):
            return _read_npz(handle, path)
    raise DataError(f"{path}: not a .npy or .npz file (leading bytes {magic!r})")


def _read_npz(handle, path: Path) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(handle) as archive:
            return {_key(info): _read_member(archive, info, path) for info in archive.infolist()}
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
    if info.file_size > int(np.prod(shape)) * dtype.itemsize + 4096:
        raise DataError(f"{where}: {info.file_size} bytes do not match shape {shape}")
    with archive.open(info) as member:
        return _load_npy(member, where, info.file_size)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call `write(handle)` on a temporary file beside `path`, then rename it into place.

    An interrupted write leaves the old file or none, never a partial one.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as err:
        raise WriteError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a file's usual mode
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {err.strerror or err}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays to a `.npz` atomically (uncompressed; keys as given)."""
    atomic_write(path, lambda handle: np.savez(handle, **dict(arrays)))
