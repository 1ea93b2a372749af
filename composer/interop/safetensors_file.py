"""`.safetensors` read by its header: every tensor's name, dtype and shape, no values.

The format: 8 bytes giving the header's length N (little-endian), N bytes of JSON
(`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`),
then the data, each tensor's bytes at its offsets. The header is checked as the format
requires (the offsets cover the data exactly, in order, no overlap, each tensor's size
matching its shape and dtype) before anything else is read; a tensor's values are read
from its own offsets only when asked for. Needs no library: bfloat16 is read too.
"""

from __future__ import annotations

import json
import math
import struct
from functools import partial
from pathlib import Path

import numpy as np

from composer.engine.memory import DEFAULT_MAX_MEMORY, check_memory
from composer.errors import DataError
from composer.interop.declared import Declared
from composer.output_files import shown

__all__ = ["read_header", "MAX_HEADER_BYTES"]

#: the longest header read (the format's own limit)
MAX_HEADER_BYTES = 100_000_000
#: the memory a parsed header takes, per byte of its JSON (measured: 19 for 1.5M keys)
_PARSED = 20
#: dtype name -> (bytes per value, NumPy dtype as stored, or None: not read as numbers)
_DTYPES = {
    "F64": (8, "<f8"),
    "F32": (4, "<f4"),
    "F16": (2, "<f2"),
    "BF16": (2, "<u2"),
    "I64": (8, "<i8"),
    "I32": (4, "<i4"),
    "I16": (2, "<i2"),
    "I8": (1, "i1"),
    "U64": (8, "<u8"),
    "U32": (4, "<u4"),
    "U16": (2, "<u2"),
    "U8": (1, "u1"),
    "BOOL": (1, "?"),
    "C64": (8, "<c8"),
    "F8_E5M2": (1, None),
    "F8_E4M3": (1, None),
    "F8_E8M0": (1, None),
}


class _Broken(Exception):
    """What is wrong with the file, as the one-line refusal says it."""


def read_header(path: str | Path, max_memory: int = DEFAULT_MAX_MEMORY) -> dict[str, Declared]:
    """Every tensor of a `.safetensors` file, in the header's order, values unread; the
    memory its parsed header takes (about 20 bytes a byte) is checked first."""
    path = Path(path)
    where = shown(path)
    try:
        return _tensors(path, where, max_memory)
    except _Broken as err:
        raise DataError(f"{where}: not a valid safetensors file ({err})") from None
    except OSError as err:
        raise DataError(f"{where}: cannot be read ({err.strerror or err})") from None


def _tensors(path: Path, where: str, max_memory: int) -> dict[str, Declared]:
    if not path.is_file():
        raise _Broken("not a regular file")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise _Broken(f"{size} bytes, shorter than the 8-byte header length")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES:
            raise _Broken(f"declares a header of {length:,} bytes, over {MAX_HEADER_BYTES:,}")
        if 8 + length > size:
            raise _Broken(f"declares a header of {length:,} bytes, but the file has {size:,}")
        check_memory(_PARSED * length, max_memory, f"reading the header of {where}")
        text = handle.read(length)
    header = _json(text)
    start = 8 + length
    tensors, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            _metadata(entry)
            continue
        declared, span = _entry(name, entry, path, start, where)
        tensors[name] = declared
        spans.append((*span, name))
    _cover(spans, size - start)
    return tensors


def _json(text: bytes) -> dict:
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_unique)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise _Broken(f"the header is not JSON: {str(err)[:120] or type(err).__name__}") from None
    if not isinstance(header, dict):
        raise _Broken(f"the header is a JSON {type(header).__name__}, not an object")
    return header


def _unique(pairs: list) -> dict:
    found = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key[:80]!r} appears twice")
        found[key] = value
    return found


def _metadata(entry) -> None:
    if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
        raise _Broken("__metadata__ must map names to strings")


def _entry(name: str, entry, path: Path, start: int, where: str):
    key = f"key {name[:80]!r}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise _Broken(f"{key}: expected dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise _Broken(f"{key}: unknown dtype {str(dtype)[:40]!r}")
    if not isinstance(shape, list) or not all(_count(side) for side in shape):
        raise _Broken(f"{key}: the shape must be a list of counts, got {str(shape)[:80]}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_count, offsets)):
        raise _Broken(f"{key}: data_offsets must be [begin, end], got {str(offsets)[:80]}")
    begin, end = offsets
    itemsize, stored = _DTYPES[dtype]
    nbytes = math.prod(shape) * itemsize  # Python ints: no overflow, however large
    if end < begin or end - begin != nbytes:
        raise _Broken(
            f"{key}: shape {tuple(shape)} of {dtype} takes {nbytes:,} bytes, but its "
            f"data_offsets [{begin}, {end}] hold {end - begin:,}"
        )
    reads_as = np.dtype("float32") if dtype in ("F16", "BF16") else np.dtype(stored or "V1")
    read = partial(_read, path, start + begin, math.prod(shape), dtype, stored)
    return Declared(name, tuple(shape), reads_as, dtype, read, where=where), (begin, end)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _cover(spans: list, data_bytes: int) -> None:
    """The tensors' bytes follow one another from the data's start to the file's end."""
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            how = "overlaps the one before" if begin < at else f"leaves a gap at byte {at}"
            raise _Broken(f"key {name[:80]!r}: its data_offsets [{begin}, {end}] {how}")
        at = end
    if at != data_bytes:
        raise _Broken(
            f"the tensors hold {at:,} bytes of data, but the file has {data_bytes:,} after "
            "the header"
        )


def _read(path: Path, offset: int, count: int, dtype: str, stored: str | None) -> np.ndarray:
    if stored is None:
        raise DataError(f"{shown(path)}: {dtype} values cannot be read as numbers")
    with open(path, "rb") as handle:
        handle.seek(offset)
        raw = np.fromfile(handle, dtype=stored, count=count)
    if raw.size != count:
        raise DataError(f"{shown(path)}: the file changed while it was read (it is shorter)")
    if dtype == "BF16":  # the top half of a float32
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32) if dtype == "F16" else raw
