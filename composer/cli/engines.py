"""The `--engine` and `--device` options of `run` and `train`: NumPy (the default,
embedded), PyTorch (`composer.interop.torch_engine`, the `[torch]` extra), or for `run`
only ONNX Runtime (`composer.interop.onnx`, the `[onnx]` extra)."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

import typer

from composer.output_files import shown

__all__ = [
    "EngineName",
    "RunEngineName",
    "EngineOption",
    "RunEngineOption",
    "DeviceOption",
    "check_device",
    "is_main_process",
]


class EngineName(str, Enum):
    """The engines that train."""

    numpy = "numpy"
    torch = "torch"


class RunEngineName(str, Enum):
    """The engines that run."""

    numpy = "numpy"
    torch = "torch"
    onnx = "onnx"


EngineOption = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="numpy (embedded) or torch (CPU or GPU; under torchrun, data-parallel).",
    ),
]
RunEngineOption = Annotated[
    RunEngineName,
    typer.Option(
        "--engine",
        help="numpy (embedded), torch (CPU or GPU), or onnx: ONNX Runtime on the exported network.",
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="With --engine torch: cpu, cuda or cuda:N (default cpu)."),
]


def check_device(engine: EngineName | RunEngineName, device: str | None) -> None:
    """Refuse `--device` without `--engine torch`, or not of the form `cpu`, `cuda` or
    `cuda:N` (usage errors; whether the GPU exists is checked when torch is loaded)."""
    if device is not None and engine.value != "torch":
        raise typer.BadParameter("--device is for --engine torch", param_hint="--device")
    if device is not None and not re.fullmatch(r"cpu|cuda(:[0-9]{1,4})?", device):
        raise typer.BadParameter(
            f"expected cpu, cuda or cuda:N, got {shown(device)!r}", param_hint="--device"
        )


def is_main_process() -> bool:
    """Whether this process shows progress and writes files: rank 0 under `torchrun`, or
    the one process outside a group, whatever a stray `RANK` says
    (`composer.interop.launch`)."""
    from composer.interop.launch import process_group

    return process_group().main
