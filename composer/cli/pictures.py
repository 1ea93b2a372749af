"""`render`'s pictures beyond the two diagrams, read from and written to files: the
interactive page (`--format html`), a trace's heatmaps (`--view trace`) and the gradient
through time (`--gradients`); `composer.api.pictures` draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from composer.api.pictures import gradient_text, page_text, page_traces, trace_text
from composer.arrays import atomic_write, read_arrays
from composer.cli.files import declared_inputs
from composer.draw.graphviz import write_diagrams
from composer.draw.style import Style
from composer.engine.inputs import read_inputs
from composer.errors import DataError
from composer.graph.weights import init_params, load_params
from composer.output_files import shown

__all__ = ["write_page", "page_values", "read_trace", "write_trace_view", "write_gradient_view"]


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
    name = sourced.spec.name or Path(str(output)).stem
    text = page_text(sourced, folded, steps, style, max_memory, name, values)
    atomic_write(output, lambda handle: handle.write(text.encode()), overwrite=force)
    return output


def page_values(folded, weights: Path | None, inputs: Path, seed: int, dtype: str = "float64"):
    """(T, {T': the trace of the first sequence by key}) for a page's heatmaps, from an
    inputs file (`composer.api.pictures.page_traces`)."""
    arrays, _, _ = read_inputs(inputs, folded)

    def params():
        if weights:
            return load_params(weights, folded, dtype)
        return init_params(folded, seed, dtype)

    return page_traces(folded, params, arrays, dtype)


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


def write_trace_view(sourced, folded, trace_path: Path, path: Path, fmt: str, options, force):
    """`render --view trace`: the trace's heatmaps, drawn by Graphviz."""
    arrays = read_trace(trace_path)
    name = sourced.spec.name or path.stem
    try:
        text = trace_text(name, folded, arrays)
    except DataError as err:
        raise DataError(f"{shown(trace_path)}: {err}") from err
    return write_diagrams({"trace": text}, {"trace": path}, fmt, overwrite=force,
                          keep=(trace_path, *declared_inputs()), options=options)  # fmt: skip


def write_gradient_view(
    sourced, folded, weights: Path, data: Path, at, loss: str, path: Path, fmt: str,
    options, style: Style, max_columns: int, force: bool, max_memory,
):  # fmt: skip
    """`render --gradients`: the unfolded network, each state shaded by ‖∂L/∂s_t‖ of the
    loss on `data` (of one output step with `at`), and a strip chart of the norms."""
    text = gradient_text(
        sourced, folded, lambda: load_params(weights, folded, "float64"), read_arrays(data),
        shown(data), data.name, at, loss, style, max_columns, max_memory,
    )  # fmt: skip
    return write_diagrams({"gradients": text}, {"gradients": path}, fmt, overwrite=force,
                          keep=(weights, data, *declared_inputs()),
                          options=options)  # fmt: skip
