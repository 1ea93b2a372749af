"""`render`'s pictures beyond the two diagrams: the interactive page (`--format html`),
a trace's heatmaps (`--view trace`) and the gradient through time (`--gradients`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from composer.arrays import atomic_write, read_arrays
from composer.cli.files import declared_inputs
from composer.draw.graphviz import dot_svg, write_diagrams
from composer.draw.heatmap import gradient_chart, gradient_shades, trace_dot
from composer.draw.page import PAGE_COLUMNS, page_html, page_steps
from composer.draw.style import Style
from composer.draw.unfolded_picture import unfolded_dot
from composer.draw.view import display_names
from composer.engine.inputs import infer_steps, read_inputs
from composer.engine.memory import check_memory, tape_bytes
from composer.engine.pipeline import plan_for_steps, unroll_within
from composer.errors import ComposerError, DataError, SpecError
from composer.graph.weights import init_params, load_params
from composer.output_files import shown
from composer.training.loop import check_data, plan_for
from composer.training.losses import loss_kinds
from composer.training.trace import gradient_norms, trace

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
    """(T, {T': the trace of the first sequence by key, (T', size) arrays}) for a page's
    heatmaps: the input's first T' steps run at each T' the page offers up to the
    input's own T (where the network takes that many steps)."""
    arrays, _, _ = read_inputs(inputs, folded)
    steps = infer_steps(folded, arrays)
    params = load_params(weights, folded, dtype) if weights else init_params(folded, seed, dtype)
    traces = {}
    for t in sorted({*range(1, min(steps, PAGE_COLUMNS) + 1), steps}):
        cut = {key: value[:, :t] for key, value in arrays.items()}
        try:
            plan = plan_for_steps(folded, infer_steps(folded, cut))
        except ComposerError:
            continue  # the network needs more steps, or the inputs' windows disagree
        with np.errstate(over="ignore", invalid="ignore"):  # the page refuses an overflow
            found = trace(plan, params, cut, dtype)
        traces[plan.steps] = {key: value[0] for key, value in found.items()}
    return steps, traces


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
        text = trace_dot(name, folded, arrays)
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
    arrays = read_arrays(data)
    try:
        plan = plan_for(folded, arrays, shown(data), max_memory=max_memory)
    except SpecError as err:
        raise sourced.locate(err) from err
    kinds = loss_kinds(plan, loss)
    inputs, targets, masks, batch = check_data(plan, arrays, kinds, shown(data))
    check_memory(tape_bytes(plan, batch, "float64"), max_memory,
                 f"the gradient of {shown(data)} at T = {plan.steps}, B = {batch}")  # fmt: skip
    params = load_params(weights, folded, "float64")
    if at is not None:
        name, t = at
        at = (name, t + plan.steps if t < 0 else t)
    _, norms = gradient_norms(plan, params, inputs, targets, loss, masks or None, at, "float64")
    what = (
        "‖∂L/∂s_t‖ per step, "
        + (f"of the loss at {at[0]}[{at[1]}]" if at else "of the whole loss")
        + f", over {batch} sequences of {data.name}"
    )
    unrolled = unroll_within(folded, plan.steps, max_memory=max_memory)
    chart = gradient_chart(norms, display_names(folded), what)
    text = unfolded_dot(unrolled, max_columns=max_columns, style=style,
                        shades=gradient_shades(norms), extra=chart)  # fmt: skip
    return write_diagrams({"gradients": text}, {"gradients": path}, fmt, overwrite=force,
                          keep=(weights, data, *declared_inputs()),
                          options=options)  # fmt: skip
