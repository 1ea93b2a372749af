"""PyTorch state_dict files in and out: `export --format torch` and `import-weights`.

A state_dict is read from `.safetensors` (tensors only, by construction) or from `.pt` /
`.pth` through `torch.load(weights_only=True)`, which refuses any pickle that would build
anything but tensors and plain containers: nothing in the file runs. Keys are matched by
`composer.interop.torch_keys` (our module's names, or `--map` rules).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import networkx as nx
import numpy as np

from composer.arrays import atomic_write
from composer.errors import ComposerError, DataError
from composer.interop import need
from composer.interop.torch_keys import remap, to_state
from composer.outputs import shown

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


def read_state(path: str | Path) -> dict[str, np.ndarray]:
    """A state_dict as arrays, from `.safetensors` or (safely) from `.pt`/`.pth`."""
    path = Path(path)
    if _suffix(path, "STATE") == ".safetensors":
        numpy_io = need("safetensors.numpy")
        try:
            return dict(numpy_io.load_file(str(path)))
        except Exception as err:  # the library's own parse errors carry no common base
            raise DataError(
                f"{shown(path)}: not a readable safetensors file ({_first(err)})"
            ) from None
    torch = need("torch")
    try:
        with warnings.catch_warnings():  # its notes on pickle protocols are not the user's
            warnings.simplefilter("ignore")
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # an UnpicklingError for code, others for broken files
        raise DataError(
            f"{shown(path)}: refused: torch.load(weights_only=True) reads tensors and plain "
            f"containers only, and this file holds something else or is damaged "
            f"({_first(err)})"
        ) from None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise DataError(
            f"{shown(path)}: expected a state_dict (a mapping of names to tensors), got "
            f"{type(state).__name__}; save `model.state_dict()`"
        )
    return {
        str(k): (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v).numpy()
        for k, v in state.items()
    }


def _first(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


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
    """`export --format torch`: the module's state_dict (`composer.cli.export.ExportRequest`)."""
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
) -> dict[str, np.ndarray]:
    """Our weights from a PyTorch state_dict file; float32 unless it holds float64 (or
    `dtype` says)."""
    state = read_state(path)
    params = remap(graph, state, maps, shown(Path(path)), allow_unused)
    if dtype is None:
        dtype = "float64" if all(v.dtype == np.float64 for v in params.values()) else "float32"
    return {k: v.astype(dtype) for k, v in params.items()}
