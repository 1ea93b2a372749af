"""Leaving and coming in: PyTorch and ONNX. Each format lives in its own module and imports
its library only when used, so the core install needs neither; `need` says what to
install when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from composer.errors import ComposerError

__all__ = ["MissingExtra", "need"]

#: the extra that brings each optional library
EXTRAS = {"torch": "torch", "safetensors": "torch", "onnx": "onnx", "onnxruntime": "onnx"}


class MissingExtra(ComposerError):
    """An optional library a command needs is not installed (a usage error)."""

    exit_code = 2


def need(module: str) -> ModuleType:
    """Import an optional library, or say in one line what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingExtra(
            f"this needs {top}, which is not installed: pip install 'rnn-composer[{EXTRAS[top]}]'"
        ) from None
