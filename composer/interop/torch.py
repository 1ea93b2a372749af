"""PyTorch state_dict files in and out: `export --format torch` and `import-weights`.

A state_dict is read from `.safetensors` (tensors only, by construction; its header read
by `composer.interop.safetensors_file`) or from `.pt` / `.pth` through
`torch.load(weights_only=True)` (`composer.interop.pt_file`), which refuses any pickle
that would build anything but tensors and plain containers: nothing in the file runs.
Both declare each tensor's shape and dtype before its values are read, and only the
tensors the spec uses are. Keys are matched by `composer.interop.torch_keys` (our
module's names, or `--map` rules).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import networkx as nx
import numpy as np

from composer.arrays import atomic_write
from composer.engine.memory import DEFAULT_MAX_MEMORY, check_memory
from composer.errors import ComposerError
from composer.interop import need
from composer.interop.declared import Declared
from composer.interop.pt_file import read_pt
from composer.interop.safetensors_file import read_header
from composer.interop.torch_keys import remap, to_state, torch_keys, used_keys
from composer.output_files import shown

__all__ = ["SUFFIXES", "export", "read_state", "write_state", "import_state"]

#: the state_dict files read and written
SUFFIXES = (".safetensors", ".pt", ".pth")


class UsageError(ComposerError):
    """An option this format does not take, or an output name it cannot write."""

    exit_code = 2


def _suffix(path: Path, option: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(
            f"{option} {shown(path)}: expected a .safetensors, .pt or .pth file, got "
            f"{suffix or 'no suffix'}"
        )
    return suffix


def read_state(path: str | Path, max_memory: int = DEFAULT_MAX_MEMORY) -> dict[str, Declared]:
    """A state_dict file's tensors by name, their values unread (`np.asarray` reads one):
    from `.safetensors`, or safely from `.pt`/`.pth`."""
    path = Path(path)
    if _suffix(path, "STATE") == ".safetensors":
        return read_header(path, max_memory)
    return read_pt(path, max_memory)


def write_state(path: str | Path, state: Mapping[str, np.ndarray], overwrite: bool) -> None:
    """A state_dict to `.safetensors` or `.pt`/`.pth`, atomically."""
    path = Path(path)
    if _suffix(path, "--output") == ".safetensors":
        numpy_io = need("safetensors.numpy")
        data = numpy_io.save({k: np.ascontiguousarray(v) for k, v in state.items()})
        atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)
        return
    torch = need("torch")
    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()), overwrite=overwrite)


def export(request) -> str:
    """`export --format torch`: the module's state_dict (`composer.api.export.ExportRequest`)."""
    for option, given in (("--opset", request.opset), ("--steps", request.steps)):
        if given is not None:
            raise UsageError(f"{option} is for --format onnx; a state_dict holds no steps")
    if request.lengths:
        raise UsageError("--lengths is for --format onnx; the PyTorch module takes lengths=")
    _suffix(Path(request.output), "--output")
    state = to_state(request.graph, request.params)
    write_state(request.output, state, overwrite=request.force)
    return f"wrote {shown(request.output)}: {len(state)} tensors (PyTorch state_dict)"


def import_state(
    graph: nx.MultiDiGraph,
    path: str | Path,
    maps: Sequence[str] = (),
    allow_unused: bool = False,
    dtype: str | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> dict[str, np.ndarray]:
    """Our weights from a PyTorch state_dict file; float32 unless every tensor used is
    float64 (or `dtype` says). Only the tensors used are read, after their declared
    shapes were checked and the memory they take estimated (`max_memory`); NaN, Inf and
    values beyond the dtype are refused, naming the file and the key."""
    where = shown(Path(path))
    state = read_state(path, max_memory)
    used = used_keys(graph, state, maps)  # our torch name -> theirs
    if dtype is None:
        dtype = "float64" if all(state[t].dtype == np.float64 for t in used.values()) else "float32"
    # a tensor is read only once its declared shape is the spec's: the spec's sizes count
    sizes = {n: math.prod(k.shape) for k in torch_keys(graph) for n in k.names if n in used}
    each = np.dtype(dtype).itemsize
    need = sum(sizes[n] * (state[t].dtype.itemsize + 2 * each) for n, t in used.items())
    check_memory(need, max_memory, f"reading the weights in {where}")
    state = {name: replace(t, target=dtype) for name, t in state.items()}
    params = remap(graph, state, maps, where, allow_unused)
    return {k: v.astype(dtype) for k, v in params.items()}
