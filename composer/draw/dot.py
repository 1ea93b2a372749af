"""DOT text pieces shared by the diagrams: escaping, attribute lists, styles."""

from __future__ import annotations

import html

from composer.kinds import KINDS, Picture

__all__ = [
    "FONT",
    "FILL",
    "EDGE_STYLE",
    "CONE",
    "CONE_EDGE",
    "FADED",
    "FADED_LINE",
    "FADED_TEXT",
    "html_text",
    "quoted",
    "attr_list",
    "small",
    "header",
    "node_shape",
    "EDGE_KEY",
    "state_picture",
    "block_shape",
]

FONT = "DejaVu Sans"

# Every attribute set later is declared here with its default first: Graphviz 2.43 mixes
# up the values (`Arrow type "1.6" unknown`) of attributes first set on a later statement.
NODE_DEFAULTS = (
    f'id="", class="", fontname="{FONT}", fontsize=12, fontcolor=black, style=filled, '
    "penwidth=1.2, shape=ellipse, fillcolor=lightgrey, color=black, peripheries=1, "
    'margin="0.11,0.055", height=0.5, width=0.75, pos=""'
)
EDGE_DEFAULTS = (
    f'id="", class="", fontname="{FONT}", fontsize=9, fontcolor=black, arrowsize=0.6, '
    'label="", headlabel="", xlabel="", style=solid, color=black, penwidth=1, arrowhead=normal, '
    'dir=forward, constraint=true, weight=1, tailport="", headport="", '
    "labeldistance=1, labelangle=-25"
)

FILL = {
    "input": "#dbeafe",
    "readout": "#ffedd5",
    "dense": "#ffedd5",
    "output": "#fee2e2",
    "init": "#ffffff",
    "merge": "#ede9fe",
}
EDGE_STYLE = {
    "connection": {"style": "dashed"},
    "emit": {"color": "#6b7280", "arrowhead": "empty"},
    "merge": {"color": "#7c3aed"},
    "handover": {"style": "dotted", "penwidth": 1.6},
    "elided": {"style": "dashed", "color": "#9ca3af", "label": None},
}
CONE, CONE_EDGE = "#fca5a5", "#b91c1c"
FADED, FADED_LINE, FADED_TEXT = "#f3f4f6", "#d1d5db", "#9ca3af"

_HTML_KEYS = ("label", "headlabel", "xlabel")


def html_text(text: object) -> str:
    """User text made safe inside an HTML-like label (`<`, `>`, `&`, quotes; newlines)."""
    return html.escape(str(text), quote=False).replace('"', "&quot;").replace("\n", "<BR/>")


def quoted(text: object) -> str:
    """User text as a quoted DOT string whose backslashes and quotes stay literal."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", " ").replace("\r", " ") + '"'


def attr_list(attrs: dict[str, object]) -> str:
    """` [key="value", label=<html>]`, skipping None values; labels are HTML-like."""
    parts = [
        f"{key}=<{value}>" if key in _HTML_KEYS else f"{key}={quoted(value)}"
        for key, value in attrs.items()
        if value is not None
    ]
    return " [" + ", ".join(parts) + "]" if parts else ""


def small(text: str, color: str = "#555555") -> str:
    """An HTML-like label fragment in small grey type."""
    return f'<FONT POINT-SIZE="9" COLOR="{color}">{text}</FONT>'


def header(
    name: str,
    kind: str,
    title: str,
    legend: list[tuple[str, str]] | None = None,
    extra: str | None = None,
) -> list[str]:
    """The opening lines of a diagram: drawn bottom to top, titled `name: title`; a
    legend (("node", "text|fill|shape") and ("edge", text) entries) goes under the title,
    and `extra` (an HTML-like table, such as a chart) under that."""
    label = f"<B>{html_text(name)}</B>: {title}"
    if legend:
        label = _legend_table(label, legend)
    if extra:
        label = f'<TABLE BORDER="0"><TR><TD>{label}</TD></TR><TR><TD>{extra}</TD></TR></TABLE>'

    # pad: room around the drawing, where Graphviz may place the label of an outermost
    # parallel edge (it leaves such labels out of its bounding box, and they were cut off)
    return [
        f"digraph {kind} {{",
        f"  graph [rankdir=BT, fontname={quoted(FONT)}, labelloc=t, fontsize=13, pad=0.2, "
        f"label=<{label}>];",
        f"  node [{NODE_DEFAULTS}];",
        f"  edge [{EDGE_DEFAULTS}];",
    ]


#: the edge styles a legend explains, in its order: (edge role, text)
EDGE_KEY = (
    ("input", "→ a weight: the source times it, same step"),
    ("recurrent", "↻ recurrence: from an earlier step"),
    ("connection", "⇢ dashed: an extra connection (t-k: k steps back)"),
    ("handover", "⋯ dotted: an initial state handed over (a last state, or given)"),
    ("emit", "▷ grey, open head: emitted unchanged"),
    ("merge", "→ violet: both directions combined step by step (merge)"),
)

#: a legend swatch's outline, by the shape it stands for (HTML-like cells are boxes)
_SWATCH = {
    "ellipse": 'STYLE="rounded"',
    "box": "",
    "hexagon": "",
    "dashed": 'STYLE="dashed"',
}


def _legend_table(title: str, legend: list[tuple[str, str]]) -> str:
    """A title over a key: one row of node swatches, one of edge styles."""
    cells = []
    for what, text in legend:
        if what == "node":
            words, fill, shape = text.split("|")
            if shape == "double":  # an emitted output's double border
                words = (
                    f'<TABLE BORDER="1" STYLE="rounded" CELLBORDER="0" BGCOLOR="{fill}">'
                    f"<TR><TD>{words}</TD></TR></TABLE>"
                )
                shape = "ellipse"
            mark = "⬡ " if shape == "hexagon" else ""
            cells.append(f'<TD BGCOLOR="{fill}" BORDER="1" {_SWATCH[shape]}>{mark}{words}</TD>')
    edges = [
        f'<TD ALIGN="LEFT">{small(html_text(t), "#111111")}</TD>' for w, t in legend if w == "edge"
    ]
    rows = [f'<TR><TD COLSPAN="{max(len(cells), 1)}">{title}</TD></TR>']
    rows.append("<TR>" + "".join(cells) + "</TR>")
    if edges:
        rows.append(
            f'<TR><TD COLSPAN="{max(len(cells), 1)}"><TABLE BORDER="0" CELLSPACING="0">'
            + "".join(f"<TR>{e}</TR>" for e in edges)
            + "</TABLE></TD></TR>"
        )
    return '<TABLE BORDER="0" CELLSPACING="3" CELLPADDING="3">' + "".join(rows) + "</TABLE>"


def node_shape(role: str, picture: Picture | None) -> dict[str, object]:
    """Shape and colour of a vector: a state's from its kind's picture (LSTM boxes, GRU
    hexagons), doubled outputs."""
    if role == "state":
        return {"shape": picture.shape, "style": picture.style, "fillcolor": picture.fill}
    if role == "output":
        return {"shape": "ellipse", "fillcolor": FILL[role], "peripheries": 2}
    return {"shape": "ellipse", "fillcolor": FILL[role]}


def state_picture(data: dict):
    """A state's picture, from its layer kind; None for any other vector."""
    return KINDS[data["kind"]].picture if data["role"] == "state" else None


def block_shape(data: dict) -> tuple[int, ...]:
    shape, (a, b) = data["shape"], data["rows"]
    return (b - a, *shape[1:])
