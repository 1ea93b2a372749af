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
CELL, LABEL = 9, 14  # points per cell (at least); for the unit numbers and the step axis
BIG_CELL, PANEL_WIDTH = 22, 400  # points: the largest cell; the width a panel aims at
GATE_INK = (0x06, 0x5F, 0x46)  # dark green: a gate wide open
POSITIVE_INK = (0x7C, 0x2D, 0x12)  # dark brown-orange: the largest of non-negative values


def _diverging(value: float, scale: float) -> str:
    """White at 0, red for positive and blue for negative values, full at |value| = scale."""
    if not math.isfinite(value):
        return "#e5e7eb"
    a = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    fade = round(255 * (1 - abs(a)))
    return f"#ff{fade:02x}{fade:02x}" if a >= 0 else f"#{fade:02x}{fade:02x}ff"


def _sequential(value: float, scale: float = 1.0, ink: tuple[int, ...] = GATE_INK) -> str:
    """White at 0 to `ink` at `scale`: a gate's opening (0 to 1), or values that are never
    negative (probabilities, ReLU outputs), which a diverging scale would show all red."""
    if not math.isfinite(value):
        return "#e5e7eb"
    a = max(0.0, min(1.0, value / scale)) if scale > 0 else 0.0
    r, g, b = (round(255 + (c - 255) * a) for c in ink)
    return f"#{r:02x}{g:02x}{b:02x}"


def cell_size(steps: int) -> int:
    """Points per cell: large for a short trace, down to `CELL` for a long one, so that a
    panel is about as wide as a slide allows."""
    return max(CELL, min(BIG_CELL, PANEL_WIDTH // max(steps, 1)))


def _tick_every(steps: int) -> int:
    return next(k for k in (1, 2, 5, 10, 20, 50) if steps / k <= 12)


def _panel(title: str, values: np.ndarray, gate: bool, same_as: list[str] = ()) -> str:
    """One heatmap as an HTML-like table: a title, then units down and steps across, and a
    time axis with a tick every few steps."""
    steps, units = values.shape
    shown = values[:MAX_STEPS, :MAX_UNITS]
    finite = shown[np.isfinite(shown)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    positive = not gate and finite.size > 0 and float(finite.min()) >= 0
    if gate:
        note, colour = "sigmoid, 0 to 1", _sequential
    elif positive:
        note = f"0 to {scale:.3g}, never negative"
        colour = lambda v: _sequential(v, scale, POSITIVE_INK)  # noqa: E731
    else:
        note, colour = f"±{scale:.3g}", lambda v: _diverging(v, scale)  # noqa: E731
    cut = [f"= {', '.join(same_as)}"] if same_as else []
    if units > MAX_UNITS:
        cut.append(f"first {MAX_UNITS} of {units} units")
    if steps > MAX_STEPS:
        cut.append(f"first {MAX_STEPS} of {steps} steps")
    head = f"<B>{html_text(title)}</B> " + small(html_text(", ".join([note, *cut])))
    columns = shown.shape[0]
    cell = cell_size(columns)
    rows = []
    for unit in range(shown.shape[1]):
        cells = "".join(
            f'<TD BGCOLOR="{colour(v)}" WIDTH="{cell}" HEIGHT="{cell}" FIXEDSIZE="TRUE"></TD>'
            for v in shown[:, unit]
        )
        rows.append(
            f'<TR><TD ALIGN="RIGHT" WIDTH="{LABEL}" FIXEDSIZE="TRUE">{small(str(unit))}</TD>'
            f"{cells}</TR>"
        )
    every = _tick_every(columns)
    ticks = "".join(
        f'<TD COLSPAN="{min(every, columns - t)}" ALIGN="LEFT">{small(str(t))}</TD>'
        for t in range(0, columns, every)
    )
    rows.append(f'<TR><TD HEIGHT="{LABEL}">{small("t")}</TD>{ticks}</TR>')
    width, height = LABEL + cell * columns, cell * shown.shape[1] + LABEL
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
    Vectors holding the same numbers share one panel (`y = s.y`); non-negative values are
    drawn white to brown, signed ones blue to red, gates white to green.

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
    # the top-most of equal panels stays (an output over the readout it emits)
    same = _duplicates({k: trace[k] for _, keys in reversed(groups) for k in reversed(keys)})
    gone = {k for twins in same.values() for k in twins}
    groups = [(v, [k for k in keys if k not in gone]) for v, keys in groups]
    groups = [(v, keys) for v, keys in groups if keys]
    for i, (vector, keys) in enumerate(groups):
        panels = [
            _panel(_title(key, vector, names), trace[key], _opens(folded, key), same.get(key, []))
            for key in keys
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


def _duplicates(trace: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    """A key -> the later keys holding the same numbers (an output that emits its readout
    unchanged: `y` and `s.y`); those get no panel of their own."""
    found: dict[str, list[str]] = {}
    kept: list[str] = []
    for key, value in trace.items():
        twin = next(
            (k for k in kept if trace[k].shape == np.shape(value)
             and np.array_equal(trace[k], value, equal_nan=True)),
            None,
        )  # fmt: skip
        if twin is None:
            kept.append(key)
        else:
            found.setdefault(twin, []).append(key)
    return found


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
