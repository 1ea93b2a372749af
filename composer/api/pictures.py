"""The pictures `render` draws, as text: the folded and unfolded diagrams, the interactive
page, a trace's heatmaps and the gradient through time (Graphviz DOT, or HTML)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import networkx as nx
import numpy as np

from composer.draw.folded_picture import folded_dot
from composer.draw.graphviz import dot_svg
from composer.draw.heatmap import gradient_chart, gradient_shades, trace_dot
from composer.draw.highlight import folded_cone
from composer.draw.page import PAGE_COLUMNS, page_html, page_steps
from composer.draw.style import Style
from composer.draw.unfolded_picture import unfolded_dot
from composer.draw.view import display_names
from composer.engine.inputs import infer_steps
from composer.engine.memory import check_memory, tape_bytes
from composer.engine.pipeline import plan_for_steps, unroll_within
from composer.errors import ComposerError, SpecError
from composer.graph.unrolled import Unrolled
from composer.spec.reader import SourcedSpec
from composer.training.loop import check_data, plan_for
from composer.training.losses import loss_kinds
from composer.training.trace import gradient_norms, trace

__all__ = ["diagrams", "page_text", "page_traces", "trace_text", "gradient_text"]


def diagrams(
    unrolled: Unrolled,
    views: Sequence[str],
    style: Style,
    target: tuple[str, int] | None = None,
    max_columns: int = 12,
) -> dict[str, str]:
    """DOT text by view (`folded`, `unfolded`), every one drawn before any is written;
    `target` shades what that output step depends on."""
    texts = {}
    for name in views:
        if name == "folded":
            cone = folded_cone(unrolled, target) if target else None
            texts[name] = folded_dot(
                unrolled.folded, style=style, cone=cone, title=_title(target, unrolled.steps)
            )
            continue
        texts[name] = unfolded_dot(unrolled, max_columns=max_columns, highlight=target, style=style)
    return texts


def _title(target, steps: int) -> str:
    if target is None:
        return "folded"
    name, t = target
    return f"folded; shaded: what {name}[{t + steps if t < 0 else t}] depends on"


def page_text(
    sourced: SourcedSpec,
    folded: nx.MultiDiGraph,
    steps: int,
    style: Style,
    max_memory,
    name: str,
    values: dict | None = None,
) -> str:
    """The interactive page for every T up to `steps` (`composer.draw.page`), HTML; an
    error of the graph at some T is located in the spec file."""

    def unroll(t: int) -> Unrolled:
        try:
            return unroll_within(folded, t, max_memory=max_memory)
        except SpecError as err:
            raise sourced.locate(err) from err

    return page_html(name, page_steps(steps, unroll), dot_svg, style=style, values=values)


def page_traces(
    folded: nx.MultiDiGraph,
    params: Callable[[], Mapping],
    arrays: Mapping[str, np.ndarray],
    dtype: str,
):
    """(T, {T': the trace of the first sequence by key, (T', size) arrays}) for a page's
    heatmaps: the inputs' first T' steps run at each T' the page offers up to the
    inputs' own T (where the network takes that many steps); `params()` gives the
    weights, called once the inputs' T is known."""
    steps = infer_steps(folded, arrays)
    params = params()
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


def trace_text(name: str, folded: nx.MultiDiGraph, arrays: Mapping[str, np.ndarray]) -> str:
    """A trace's heatmaps, (T, size) arrays by key, as DOT."""
    return trace_dot(name, folded, arrays)


def gradient_text(
    sourced: SourcedSpec, folded: nx.MultiDiGraph, params: Callable[[], Mapping],
    data: Mapping[str, np.ndarray], where: str, label: str, at, loss: str, style: Style,
    max_columns: int, max_memory,
) -> str:  # fmt: skip
    """The unfolded network, each state shaded by ‖∂L/∂s_t‖ of the loss on `data` (named
    `where` in messages, `label` in the chart; of one output step with `at`), with a strip
    chart of the norms, as DOT. `params()` gives the float64 weights, called once the work
    is known to fit in `max_memory`."""
    try:
        plan = plan_for(folded, data, where, max_memory=max_memory)
    except SpecError as err:
        raise sourced.locate(err) from err
    kinds = loss_kinds(plan, loss)
    inputs, targets, masks, batch = check_data(plan, data, kinds, where)
    check_memory(tape_bytes(plan, batch, "float64"), max_memory,
                 f"the gradient of {where} at T = {plan.steps}, B = {batch}")  # fmt: skip
    weights = params()
    if at is not None:
        name, t = at
        at = (name, t + plan.steps if t < 0 else t)
    _, norms = gradient_norms(plan, weights, inputs, targets, loss, masks or None, at, "float64")
    what = (
        "‖∂L/∂s_t‖ per step, "
        + (f"of the loss at {at[0]}[{at[1]}]" if at else "of the whole loss")
        + f", over {batch} sequences of {label}"
    )
    unrolled = unroll_within(folded, plan.steps, max_memory=max_memory)
    chart = gradient_chart(norms, display_names(folded), what)
    return unfolded_dot(unrolled, max_columns=max_columns, style=style,
                        shades=gradient_shades(norms), extra=chart)  # fmt: skip
