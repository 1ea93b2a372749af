"""Pictures of numbers, drawn by Graphviz as the diagrams are: a trace's heatmaps (units by
steps, a panel per vector, the gates apart) and the gradient through time (each unrolled
state shaded by ‖∂L/∂s_t‖, with a strip chart of the norms per step on a log scale)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import networkx as nx
import numpy as np

from composer.draw.dot import FONT, html_text, quoted, small
from composer.draw.view import display_names, row_order
from composer.errors import DataError
from composer.kinds import KINDS

__all__ = ["trace_dot", "gradient_shades", "gradient_chart", "MAX_UNITS", "MAX_STEPS"]

#: a panel shows at most this many units (rows) and steps (columns)
MAX_UNITS, MAX_STEPS = 32, 120
CELL, LABEL = 9, 14  # points per cell; for the unit numbers and the step axis


def _diverging(value: float, scale: float) -> str:
    """White at 0, red for positive and blue for negative values, full at |value| = scale."""
    if not math.isfinite(value):
        return "#e5e7eb"
    a = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    fade = round(255 * (1 - abs(a)))
    return f"#ff{fade:02x}{fade:02x}" if a >= 0 else f"#{fade:02x}{fade:02x}ff"


def _sequential(value: float) -> str:
    """White at 0 to dark green at 1: a gate's opening."""
    if not math.isfinite(value):
        return "#e5e7eb"
    a = max(0.0, min(1.0, value))
    r, g, b = (round(255 + (c - 255) * a) for c in (0x06, 0x5F, 0x46))
    return f"#{r:02x}{g:02x}{b:02x}"


def _panel(title: str, values: np.ndarray, gate: bool) -> str:
    """One heatmap as an HTML-like table: a title, then units down and steps across."""
    steps, units = values.shape
    shown = values[:MAX_STEPS, :MAX_UNITS]
    finite = np.abs(shown[np.isfinite(shown)])
    scale = float(finite.max()) if finite.size else 1.0
    note = "sigmoid, 0 to 1" if gate else f"±{scale:.3g}"
    cut = []
    if units > MAX_UNITS:
        cut.append(f"first {MAX_UNITS} of {units} units")
    if steps > MAX_STEPS:
        cut.append(f"first {MAX_STEPS} of {steps} steps")
    head = f"<B>{html_text(title)}</B> " + small(html_text(", ".join([note, *cut])))
    columns = shown.shape[0]
    rows = []
    for unit in range(shown.shape[1]):
        cells = "".join(
            f'<TD BGCOLOR="{_sequential(v) if gate else _diverging(v, scale)}" '
            f'WIDTH="{CELL}" HEIGHT="{CELL}" FIXEDSIZE="TRUE"></TD>'
            for v in shown[:, unit]
        )
        rows.append(
            f'<TR><TD ALIGN="RIGHT" WIDTH="{LABEL}" FIXEDSIZE="TRUE">{small(str(unit))}</TD>'
            f"{cells}</TR>"
        )
    ticks = "".join(
        f'<TD COLSPAN="{min(5, columns - t)}" ALIGN="LEFT">{small(str(t))}</TD>'
        for t in range(0, columns, 5)
    )
    rows.append(f'<TR><TD HEIGHT="{LABEL}">{small("t")}</TD>{ticks}</TR>')
    width, height = LABEL + CELL * columns, CELL * shown.shape[1] + LABEL
    grid = (
        f'<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0" FIXEDSIZE="TRUE" WIDTH="{width}" '
        f'HEIGHT="{height}">' + "".join(rows) + "</TABLE>"
    )
    return (
        '<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">'
        f'<TR><TD ALIGN="LEFT">{head}</TD></TR><TR><TD ALIGN="LEFT">{grid}</TD></TR></TABLE>'
    )


def trace_dot(name: str, folded: nx.MultiDiGraph, trace: Mapping[str, np.ndarray]) -> str:
    """A trace's heatmaps as DOT text: one row per vector of the network, from the inputs
    at the bottom to the outputs at the top; a state's gates and cell state beside it.

    `trace` holds (T, size) arrays by the keys of `composer.training.trace`; a key the
    network does not have is a DataError."""
    groups = _groups(folded, trace)
    names = display_names(folded)
    lines = [
        "digraph trace {",
        f"  graph [rankdir=BT, fontname={quoted(FONT)}, labelloc=t, fontsize=13, "
        f"ranksep=0.3, label=<<B>{html_text(name)}</B>: trace, units by steps>];",
        f'  node [shape=plaintext, fontname="{FONT}", fontsize=11];',
    ]
    previous = None
    for i, (vector, keys) in enumerate(groups):
        panels = [
            _panel(_title(key, vector, names), trace[key], _opens(folded, key)) for key in keys
        ]
        cells = "".join(f'<TD VALIGN="TOP">{panel}</TD>' for panel in panels)
        lines.append(
            f'  v{i} [id={quoted(vector)}, label=<<TABLE BORDER="0" CELLSPACING="8"><TR>'
            f"{cells}</TR></TABLE>>];"
        )
        if previous is not None:
            lines.append(f"  v{previous} -> v{i} [style=invis];")
        previous = i
    lines.append("}")
    return "\n".join(lines) + "\n"


def _opens(folded: nx.MultiDiGraph, key: str) -> bool:
    """Whether a key is a sigmoid gate (0 to 1, drawn white to green); a tanh gate such as
    an LSTM's g is drawn as the values are, blue to red."""
    if ".gates." not in key:
        return False
    kind = KINDS[folded.nodes[_owner(folded, key)]["kind"]]
    gate = key.rpartition(".")[2].removesuffix("_rev")
    return gate in kind.gate_names[: kind.sigmoid_gates]


def _title(key: str, vector: str, names: dict) -> str:
    return names[vector] if key == vector else key


def _groups(folded: nx.MultiDiGraph, trace: Mapping[str, np.ndarray]) -> list:
    """(vector, its keys) bottom to top: the vector's own key, then its gates and carries."""
    extra: dict[str, list[str]] = {v: [] for v in folded}
    for key in trace:
        if key in folded:
            continue
        owner = _owner(folded, key)
        if owner is None:
            raise DataError(
                f"trace key {key!r} is not a vector of this network (its vectors: "
                f"{', '.join(sorted(folded))}); write the trace with `run --trace` on this spec"
            )
        extra[owner].append(key)
    for key, value in trace.items():
        if np.ndim(value) != 2:
            raise DataError(f"trace key {key!r}: expected (T, size), got {np.shape(value)}")
    found = []
    for vector in row_order(folded):
        keys = ([vector] if vector in trace else []) + extra[vector]
        if keys:
            found.append((vector, keys))
    if not found:
        raise DataError("the trace holds none of this network's vectors")
    return found


def _owner(folded: nx.MultiDiGraph, key: str) -> str | None:
    """The state a gate or carry key belongs to: `l1.gates.i_rev` -> `l1.s_rev`."""
    layer, _, rest = key.partition(".")
    suffix = "_rev" if rest.endswith("_rev") else ""
    state = f"{layer}.s{suffix}"
    return state if state in folded and folded.nodes[state]["role"] == "state" else None


# -- gradients --------------------------------------------------------------------------


#: decades below the largest norm that the shading and the chart span: the same scale for
#: every network, so that two pictures set side by side compare
DECADES = 3


def _log_range(norms: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """log10 of (the largest norm / 10^DECADES, the largest norm)."""
    values = np.concatenate([n[np.isfinite(n) & (n > 0)] for n in norms.values()] or [[1.0]])
    high = math.log10(values.max()) if values.size else 0.0
    return high - DECADES, high


def gradient_shades(norms: Mapping[str, np.ndarray]) -> dict[tuple[str, int], str]:
    """A fill colour per (state, t): deep purple for the largest norm, fading to white
    `DECADES` decades below it (log scale); grey where the gradient is exactly 0."""
    low, high = _log_range(norms)
    shades = {}
    for state, values in norms.items():
        for t, value in enumerate(values):
            if not math.isfinite(value):
                continue
            if value <= 0:
                shades[state, t] = "#e5e7eb"
                continue
            a = max(0.0, (math.log10(value) - low) / (high - low))
            r, g, b = (round(255 + (c - 255) * a) for c in (0x6D, 0x28, 0xD9))
            shades[state, t] = f"#{r:02x}{g:02x}{b:02x}"
    return shades


def gradient_chart(norms: Mapping[str, np.ndarray], names: Mapping[str, str], what: str) -> str:
    """A strip chart of ‖∂L/∂s_t‖ per step, one row per state, bars on a log scale, as an
    HTML-like table for a diagram's title."""
    low, high = _log_range(norms)
    height = 36
    rows = [
        f'<TR><TD COLSPAN="3">{small(html_text(what), "#111111")}</TD></TR>',
    ]
    for state, values in norms.items():
        bars = []
        for value in values[:MAX_STEPS]:
            if not math.isfinite(value) or value <= 0:
                h = 0
            else:
                h = max(1, round(height * max(0.0, math.log10(value) - low) / (high - low)))
            bars.append(
                '<TD VALIGN="BOTTOM"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0">'
                f'<TR><TD WIDTH="8" HEIGHT="{height - h + 1}" FIXEDSIZE="TRUE"></TD></TR>'
                f'<TR><TD BGCOLOR="#6d28d9" WIDTH="8" HEIGHT="{max(h, 1)}" FIXEDSIZE="TRUE">'
                "</TD></TR></TABLE></TD>"
            )
        finite = values[np.isfinite(values)]
        span = f"{finite.min():.1e} .. {finite.max():.1e}" if finite.size else "none"
        chart = '<TABLE BORDER="0" CELLSPACING="1" CELLPADDING="0"><TR>' + "".join(bars)
        chart += "</TR></TABLE>"
        rows.append(
            f'<TR><TD ALIGN="RIGHT">{html_text(names.get(state, state))}</TD>'
            f'<TD BORDER="1" SIDES="LB">{chart}</TD><TD ALIGN="LEFT">{small(span)}</TD></TR>'
        )
    axis = f"steps t = 0, 1, ... →; log scale, {DECADES} decades below the largest norm"
    rows.append(f'<TR><TD></TD><TD ALIGN="LEFT">{small(html_text(axis))}</TD><TD></TD></TR>')
    return '<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="1">' + "".join(rows) + "</TABLE>"
