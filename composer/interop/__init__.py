"""Leaving and coming in: PyTorch and ONNX. Each format lives in its own module and imports
its library only when used, so the core install needs neither; `need` says what to
install when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from composer.errors import ComposerError, SpecError

__all__ = ["MissingExtra", "need", "refuse_tokens"]

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


def refuse_tokens(graph, target: str) -> None:
    """Refuse (SpecError) a network with token inputs (`vocab:`) for a format that does not
    carry them yet (PyTorch's nn.Embedding, ONNX's Gather)."""
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    inputs = [(name, data) for name, data in nodes if data["role"] == "input"]
    for index, (name, data) in enumerate(inputs):
        if data.get("vocab"):
            raise SpecError(
                f"`{name}` takes token ids (`vocab`), which {target} does not carry yet",
                ("inputs", index, "vocab"),
            )
