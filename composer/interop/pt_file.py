"""`.pt` / `.pth` state_dicts read safely and lazily.

`torch.load(weights_only=True)` refuses any pickle that would build anything but
tensors and plain containers: nothing in the file runs. With `mmap=True` the tensors'
bytes stay in the file until used, so a large tensor the spec does not use costs
nothing; a file in PyTorch's older format (which cannot be mapped) is read whole, after
its size is checked against the memory limit. Only plain dense tensors are taken
(`nn.Parameter` too): sparse, quantized, nested and meta tensors are refused by key.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import numpy as np

from composer.engine.memory import check_memory
from composer.errors import ComposerError, DataError
from composer.interop import need
from composer.interop.declared import Declared
from composer.output_files import shown

__all__ = ["read_pt"]

#: torch's own advice in its refusals, which is not ours to give (it would run the file)
_ADVICE = re.compile(r"weights_only|safe_globals|trust|documentation|Re-running|Weights only")


def read_pt(path: str | Path, max_memory: int) -> dict[str, Declared]:
    """Every tensor of a `.pt` state_dict, values unread (mapped from the file)."""
    path = Path(path)
    where = shown(path)
    if not path.is_file():
        raise DataError(f"{where}: not a regular file")
    state = _load(need("torch"), path, where, max_memory)
    return {str(name): _declared(str(name), value, where) for name, value in state.items()}


def _load(torch, path: Path, where: str, max_memory: int) -> Mapping:
    try:
        with warnings.catch_warnings():  # its notes on pickle protocols are not the user's
            warnings.simplefilter("ignore")
            try:
                state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as err:
                if "mmap can only be used" not in str(err):
                    raise
                check_memory(path.stat().st_size, max_memory, f"reading {where} (an old format)")
                state = torch.load(str(path), map_location="cpu", weights_only=True)
    except ComposerError:
        raise
    except Exception as err:  # an UnpicklingError for code, others for broken files
        raise DataError(
            f"{where}: refused: torch.load(weights_only=True) reads tensors and plain "
            f"containers only, and this file holds something else or is damaged "
            f"({_reason(err)})"
        ) from None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise DataError(
            f"{where}: expected a state_dict (a mapping of names to tensors), got "
            f"{type(state).__name__}; save `model.state_dict()`"
        )
    return state


def _reason(err: Exception) -> str:
    """The cause in torch's message, without its advice (such as weights_only=False).

    Examples
    --------
    >>> _reason(ValueError("Weights only load failed. Re-running `torch.load` with "
    ...     "`weights_only` set to `False` will likely succeed.\\n\\nTrying to load "
    ...     "unsupported GLOBAL posix.system whose module posix is blocked.\\n\\nCheck the "
    ...     "documentation of torch.load."))
    'Trying to load unsupported GLOBAL posix.system whose module posix is blocked.'
    >>> _reason(KeyError("101"))
    "KeyError '101'"
    """
    sentences = re.split(r"(?<=[.!?])\s+|\n+", str(err))
    kept = [s.strip() for s in sentences if s.strip() and not _ADVICE.search(s)]
    text = kept[0] if kept else ""
    if not re.search("[A-Za-z]{3}", text):  # such as KeyError('101'): say what failed
        text = f"{type(err).__name__} {text}".strip()
    return text[:200]


def _declared(name: str, tensor, where: str) -> Declared:
    torch = need("torch")
    kind = _not_plain(torch, tensor)
    if kind:
        raise DataError(f"{where}: key {name!r}: {kind}; import-weights reads dense tensors")
    stored = str(tensor.dtype).removeprefix("torch.")
    halves = (torch.float16, torch.bfloat16)
    if tensor.dtype in halves:
        reads_as = np.dtype("float32")
    else:
        try:
            reads_as = np.dtype(torch.empty(0, dtype=tensor.dtype).numpy().dtype)
        except (TypeError, RuntimeError):  # complex32, the float8s: no NumPy dtype
            reads_as = np.dtype("V1")
    shape = tuple(int(side) for side in tensor.shape)
    return Declared(name, shape, reads_as, stored, partial(_values, tensor, halves), where=where)


def _not_plain(torch, tensor) -> str:
    """What makes a tensor other than a plain dense one on the CPU, or ''."""
    if tensor.is_meta:
        return "a meta tensor holds a shape and no values; save the weights once made"
    if tensor.is_quantized:
        return f"a quantized tensor ({tensor.dtype}); save `tensor.dequantize()`"
    if tensor.is_nested:
        return "a nested tensor; save each part as a tensor of its own"
    if tensor.layout != torch.strided:
        return f"a sparse tensor ({tensor.layout}); save `tensor.to_dense()`"
    if tensor.device.type != "cpu":
        return f"a tensor on {tensor.device}"
    return ""


def _values(tensor, halves) -> np.ndarray:
    tensor = tensor.detach()  # an nn.Parameter is a tensor that requires grad
    return (tensor.float() if tensor.dtype in halves else tensor).numpy()
