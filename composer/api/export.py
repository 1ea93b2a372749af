"""A network and its weights written for another engine. Each format is one entry of
`EXPORTERS`, a function in `composer.interop` imported only when used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from composer.interop.torch import UsageError

__all__ = ["ExportRequest", "EXPORTERS", "export"]

#: format -> "module:function"; the function takes an ExportRequest, writes
#: `request.output` (atomically) and returns the line to report
EXPORTERS = {
    "torch": "composer.interop.torch:export",
    "onnx": "composer.interop.onnx:export",
}


@dataclass(frozen=True)
class ExportRequest:
    """Everything an exporter may use; options a format does not take are refused by it."""

    graph: object  # the folded graph
    params: dict
    output: Path
    spec_path: Path | None
    spec_text: str
    weights_path: Path | None
    dtype: str
    steps: int | None
    lengths: bool
    opset: int | None
    force: bool


def export(request: ExportRequest, format: str) -> str:
    """Write `request.output` in `format` (`torch` or `onnx`); the line to report. A spec
    feature the format cannot take raises `SpecError` naming it."""
    if format not in EXPORTERS:
        raise UsageError(f"no export format {format!r}; choose one of {', '.join(EXPORTERS)}")
    module, function = EXPORTERS[format].split(":")
    return getattr(importlib.import_module(module), function)(request)
