"""`render`'s pictures beyond the two diagrams: the interactive page (`--format html`),
a trace's heatmaps (`--view trace`) and the gradient through time (`--gradients`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from composer.arrays import atomic_write, read_arrays
from composer.draw.diagrams import dot_svg
from composer.draw.page import page_html, page_steps
from composer.draw.style import Style
from composer.engine.inputs import infer_steps, read_inputs
from composer.engine.pipeline import plan_for_steps, unroll_within
from composer.errors import DataError, SpecError
from composer.graph.weights import init_params, load_params
from composer.outputs import shown
from composer.training.trace import trace

__all__ = ["write_page", "page_values"]


def write_page(
    sourced,
    folded,
    steps: int,
    output: Path,
    style: Style,
    force: bool,
    max_memory,
    values: dict | None = None,
) -> Path:
    """The interactive page for every T up to `steps` (`composer.draw.page`), written
    atomically."""

    def unroll(t: int):
        try:
            return unroll_within(folded, t, max_memory=max_memory)
        except SpecError as err:
            raise sourced.locate(err) from err

    name = sourced.spec.name or Path(str(output)).stem
    text = page_html(name, page_steps(steps, unroll), dot_svg, style=style, values=values)
    atomic_write(output, lambda handle: handle.write(text.encode()), overwrite=force)
    return output


def page_values(folded, weights: Path | None, inputs: Path, seed: int, dtype: str = "float64"):
    """(T, the trace of the first sequence by key, (T, size) arrays) for a page's heatmaps."""
    arrays, _, _ = read_inputs(inputs, folded)
    steps = infer_steps(folded, arrays)
    plan = plan_for_steps(folded, steps)
    params = load_params(weights, folded, dtype) if weights else init_params(folded, seed, dtype)
    found = trace(plan, params, arrays, dtype)
    return steps, {key: value[0] for key, value in found.items()}


def require(value, option: str, why: str):
    if value is None:
        raise typer.BadParameter(f"{why}; give {option}", param_hint=option)
    return value


def read_trace(path: Path) -> dict[str, np.ndarray]:
    """A `run --trace` file: (T, size) or (B, T, size) arrays by key (the first sequence)."""
    arrays = read_arrays(path)
    found = {}
    for key, value in arrays.items():
        if value.ndim == 3:
            value = value[0]
        if value.ndim != 2:
            raise DataError(
                f"{shown(path)}: key {key!r}: expected (T, size) or (B, T, size), got {value.shape}"
            )
        found[key] = np.asarray(value, dtype=np.float64)
    if not found:
        raise DataError(f"{shown(path)}: no arrays; write one with `run --trace`")
    return found
