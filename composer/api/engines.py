"""A network run on one of its engines: NumPy (embedded), PyTorch or ONNX Runtime, with
the same arguments and the same result (`composer.run`'s)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from composer.engine.batches import run
from composer.engine.inputs import batched, check_inputs, infer_steps
from composer.engine.pipeline import plan_for_steps
from composer.interop.torch import UsageError

__all__ = ["ENGINES", "run_on"]

ENGINES = ("numpy", "torch", "onnx")


def run_on(
    engine: str,
    graph: nx.MultiDiGraph,
    params: Mapping[str, np.ndarray],
    inputs,
    steps: int | None = None,
    dtype: str = "float32",
    lengths: Mapping[str, object] | None = None,
    device: str | None = None,
    model: Path | None = None,
) -> dict[str, np.ndarray]:
    """Outputs by name on `engine`: `numpy`, `torch` (on `device`) or `onnx` (the network
    exported in memory, or the exported `model` file). Inputs as `composer.run` takes
    them; with `lengths`, the result also holds `<output>.lengths`."""
    if engine not in ENGINES:
        raise UsageError(f"no engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if device is not None and engine != "torch":
        raise UsageError("a device is chosen on the torch engine only")
    if model is not None and engine != "onnx":
        raise UsageError("a model file runs on the onnx engine only")
    if engine == "numpy":
        return run(graph, params, inputs, steps, dtype, lengths=lengths)
    if engine == "torch":
        from composer.interop.torch_engine import run_torch

        return run_torch(graph, params, inputs, steps, dtype, device, lengths=lengths)
    from composer.interop.onnx import run_onnx

    arrays, flat = batched(graph, inputs)
    if not lengths:  # the inputs against T (and `steps`), as the other engines check them
        plan = plan_for_steps(graph, infer_steps(graph, arrays) if steps is None else steps)
        check_inputs(plan, arrays)
        steps = plan.steps
    outputs = run_onnx(graph, params, arrays, dict(lengths or {}), dtype, steps, model)
    return {name: value[0] for name, value in outputs.items()} if flat else outputs
