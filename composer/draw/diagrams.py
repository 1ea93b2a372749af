"""Graphviz diagrams: the folded network and its unfolding in time, as DOT text and files."""

from __future__ import annotations

import bisect
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from composer.arrays import atomic_write
from composer.draw.dot import (
    CONE,
    CONE_EDGE,
    EDGE_KEY,
    EDGE_STYLE,
    FADED,
    FADED_LINE,
    FADED_TEXT,
    FILL,
    attr_list,
    header,
    html_text,
    node_shape,
    small,
)
from composer.draw.layout import CELL_LIFT, Grid
from composer.draw.style import Style, merged_readouts
from composer.draw.view import (
    Edge,
    Node,
    StepTemplate,
    UnfoldedView,
    display_names,
    folded_edge_id,
    same_steps,
    tapped_pairs,
    unfolded_view,
    weight_label,
)
from composer.errors import ComposerError, RenderError, WriteError
from composer.graph.folded import handover_origins
from composer.graph.loops import instant_graph
from composer.graph.unrolled import Unrolled
from composer.kinds import KINDS
from composer.outputs import output_problem, shown
from composer.text import format_steps

__all__ = [
    "FORMATS",
    "folded_dot",
    "folded_cone",
    "unfolded_dot",
    "write_diagram",
    "write_diagrams",
    "render_options",
    "dot_svg",
    "svg",
    "parse_highlight",
]

#: the formats `write_diagram` writes; `dot` is the DOT text itself.
FORMATS = ("dot", "svg", "png", "pdf")

DEFAULT = Style()

INSTALL_HINT = (
    "install Graphviz, which provides it (Debian/Ubuntu: `apt-get install graphviz`; "
    "macOS: `brew install graphviz`)"
)


# -- folded -------------------------------------------------------------------------------


def folded_dot(
    graph: nx.MultiDiGraph,
    *,
    style: Style = DEFAULT,
    cone: set[tuple[str, int]] | None = None,
    title: str = "folded",
) -> str:
    """The folded network as the lecture draws it: x at the bottom, loops on the states.

    Edges carry their weight's name (`Wx`, `Ws`, `Wy`; `rnn1.Wx` when there are several
    layers); a recurrence with a delay other than 1 says so (`Ws, t-2`), extra
    connections are dashed with their delay, an `initial_state` hand-over is dotted.
    An output that emits a readout unchanged is drawn as one node (`style.readout`).
    `cone`, unrolled nodes (vector, t), shades the vectors among them and the weights
    that carry values between them (`folded_cone`).

    Examples
    --------
    >>> from composer.graph.folded import build
    >>> from composer.spec.model import NetworkSpec
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "s", "kind": "elman", "input": "x", "state_size": 4}],
    ...     "outputs": [{"name": "y", "from": "s"}]})
    >>> 'n1 -> n1 [id="s.s->s.s", class="recurrent", label=<Ws>]' in folded_dot(build(spec))
    True
    """
    names = display_names(graph)
    merged = merged_readouts(graph) if style.readout == "merged" else {}
    shown_as = {readout: output for readout, output in merged.items()}
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    nodes = [(node, data) for node, data in nodes if node not in merged.values()]
    ids = {node: f"n{i}" for i, (node, _) in enumerate(nodes)}
    ids |= {output: ids[readout] for readout, output in merged.items()}
    used = _cone_parts(graph, cone) if cone is not None else None
    legend = _legend(graph, style, shaded=cone is not None)
    lines = header(graph.graph.get("name", "network"), "folded", title, legend)
    lines.append("  graph [nodesep=0.6, ranksep=0.45];")
    for node, data in nodes:
        shown_node = shown_as.get(node, node)
        attrs = {"id": shown_node, "class": graph.nodes[shown_node]["role"]}
        if node in merged:
            attrs |= _folded_node(data, names[shown_node], "output")
        else:
            attrs |= _folded_node(data, names[node])
        if used is not None:
            attrs |= _shaded(node in used[0] or shown_node in used[0], True)
        lines.append(f"  {ids[node]}{attr_list(attrs)};")
    for left, right in _side_by_side(graph):
        lines.append(f"  {{ rank=same; {ids[left]}; {ids[right]}; }}")
    for tail, head, attrs in _folded_edges(graph, style):
        if tail in merged and head == merged[tail]:
            continue
        ends, keys = attrs.pop("ends"), attrs.pop("weight_keys")
        if used is not None:
            attrs |= _shaded(any((*ends, key) in used[1] for key in keys), False)
        ids_ends = attrs["id"].split("->", 1)
        attrs["id"] = "->".join(shown_as.get(end, end) for end in ids_ends[:1]) + "->"
        head_id, colon, rest = ids_ends[1].partition(":")
        attrs["id"] += shown_as.get(head_id, head_id) + colon + rest
        lines.append(f"  {ids[tail]} -> {ids[head]}{attr_list(attrs)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def folded_cone(unrolled: Unrolled, highlight: tuple[str, int]) -> set[tuple[str, int]]:
    """The unrolled nodes a highlighted node depends on, itself included (for `folded_dot`)."""
    return StepTemplate(unrolled).cone(_target(unrolled, highlight))


def _cone_parts(graph: nx.MultiDiGraph, cone: set[tuple[str, int]]):
    """(vectors, (tail, head, weight) edges) of the folded graph that a cone uses."""
    vectors = {v for v, _ in cone}
    edges = set()
    for tail, head, data in graph.edges(data=True):
        if tail in vectors and head in vectors:
            lag = data["lag"]
            if any((tail, t - lag) in cone for v, t in cone if v == head):
                edges.add((tail, head, data["weight"]))
    for node, data in graph.nodes(data=True):
        for origin in [*handover_origins(data), data.get("given")]:
            if origin in vectors and node in vectors:
                edges.add((origin, node, None))
    return vectors, edges


def _shaded(inside: bool, node: bool) -> dict:
    if node:
        if inside:
            return {"color": CONE_EDGE, "fillcolor": CONE}
        return {"color": FADED_LINE, "fontcolor": FADED_TEXT, "fillcolor": FADED}
    if inside:
        return {"color": CONE_EDGE, "fontcolor": CONE_EDGE, "penwidth": 1.8}
    return {"color": FADED_LINE, "fontcolor": FADED_TEXT}


def _folded_node(data: dict, name: str, role: str | None = None) -> dict:
    kind, size = data.get("kind"), data["size"]
    if data["role"] == "state":
        desc = f"{KINDS[kind].picture.tag} ({size})"
        if "units" in data:  # a projected state: h has `size` numbers, the cell c `units`
            desc += f", c ({data['units']})"
    elif data["role"] in ("readout", "dense"):
        act = data["activation"]
        desc = ("dense " if data["role"] == "dense" else "") + (
            f"{act} " if act != "identity" else ""
        )
        desc += f"({size})"
    elif data["role"] == "merge":  # a bidirectional layer's two states, step by step
        desc = f"{_MERGE_WORDS[data['merge']]} ({size})"
    elif data.get("embed"):  # token ids read through the embedding weight <input>.E
        desc = f"ids ({data['vocab']}), {name}.E {data['vocab']}x{size}"
    elif data.get("vocab"):
        desc = f"ids, one-hot ({size})"
    elif data.get("given_state"):
        desc = f"start state ({size})"
    else:
        desc = f"({size})"
    attrs = node_shape(role or data["role"], _picture(data))
    attrs["label"] = f"<B>{html_text(name)}</B><BR/>{small(html_text(desc))}"
    return attrs


_MERGE_WORDS = {"mean": "mean of fwd, bwd", "mul": "fwd × bwd"}


def _picture(data: dict):
    """A state's picture, from its layer kind; None for any other vector."""
    return KINDS[data["kind"]].picture if data["role"] == "state" else None


def _side_by_side(graph: nx.MultiDiGraph) -> list[tuple[str, str]]:
    """Pairs drawn on one level: a bidirectional layer's copies, a hand-over's states."""
    pairs = []
    for node, data in sorted(graph.nodes(data=True), key=lambda item: item[1]["order"]):
        if data["role"] == "state" and data["suffix"] == "_rev":
            pairs.append((f"{data['layer']}.s", node))
        if data.get("initial_state"):
            pairs.append((data["initial_state"], node))
    return pairs


def _folded_edges(graph: nx.MultiDiGraph, style: Style) -> Iterable[tuple[str, str, dict]]:
    order = nx.get_node_attributes(graph, "order")
    edges = sorted(
        graph.edges(keys=True, data=True), key=lambda e: (order[e[0]], order[e[1]], e[2])
    )
    # a state handing over its last value loops on its west side, clear of the hand-over
    # (drawn as a flat edge; ports on it make Graphviz 2.43 read its id as an arrow type)
    west = {origin for _, data in graph.nodes(data=True) for origin in handover_origins(data)}
    instant = instant_graph(graph)
    tapped = tapped_pairs(graph)
    taps: dict[tuple[str, str], list[dict]] = {}
    for tail, head, _, data in edges:
        if (tail, head) in tapped:
            taps.setdefault((tail, head), []).append(data)
    if style.taps == "apart":
        rank = {id(d): i for pair in taps.values() for i, d in enumerate(_fanned(pair))}
        edges.sort(key=lambda e: (order[e[0]], order[e[1]], rank.get(id(e[3]), 0)))
    for tail, head, _, data in edges:
        if (tail, head) in tapped and style.taps == "folded":
            pair = taps[tail, head]
            if data is not min(pair, key=lambda d: abs(d["lag"])):
                continue  # drawn as one edge with the pair's nearest tap
            attrs = {"id": folded_edge_id(tail, head), **_folded_edge(graph, data, style)}
            attrs["label"] = _taps_label(graph, pair, style)
            attrs |= {"ends": (tail, head), "weight_keys": [d["weight"] for d in pair]}
        else:
            attrs = {"id": folded_edge_id(tail, head, data, tapped)}
            attrs |= _folded_edge(graph, data, style)
            attrs |= {"ends": (tail, head), "weight_keys": [data["weight"]]}
        if tail == head and tail in west:
            attrs |= {"tailport": "nw", "headport": "sw"}
        if tail != head and data["lag"] and nx.has_path(instant, head, tail):
            # feedback, drawn downwards: point the DOT edge up so it ranks like the rest
            yield head, tail, attrs | {"dir": "back", "constraint": None}
            continue
        yield tail, head, attrs
    for node, data in sorted(graph.nodes(data=True), key=lambda item: item[1]["order"]):
        for origin in handover_origins(data):
            attrs = {"id": f"{origin}->{node}", "class": "handover"}
            attrs |= {"ends": (origin, node), "weight_keys": [None]}
            label = "last state, second pass" if data.get("two_pass") else "initial state"
            if data.get("initial_rev"):  # a bidirectional source: both final states, merged
                last = "first step" if origin == data["initial_rev"] else "last step"
                label = f"{last}, {data['initial_merge']}"
            attrs |= {"label": label, **EDGE_STYLE["handover"]}
            yield origin, node, attrs
        if data.get("given"):  # a start state given with the data: read before step 0
            attrs = {"id": f"{data['given']}->{node}", "class": "handover"}
            attrs |= {"ends": (data["given"], node), "weight_keys": [None]}
            attrs |= {"label": "initial state", **EDGE_STYLE["handover"]}
            yield data["given"], node, attrs


def _folded_edge(graph: nx.MultiDiGraph, data: dict, style: Style) -> dict:
    role, lag = data["role"], data["lag"]
    label = weight_label(graph, data["weight"], style)
    if data["shape"] is not None and data["rows"] != (0, data["shape"][0]):
        label += f"[{data['rows'][0]}:{data['rows'][1]}]"  # one block of a split weight
    if role == "recurrent" and lag != 1 or role in ("connection", "input") and lag != 0:
        label += f", t{-lag:+d}"
    if data.get("dropout"):  # training drops this edge's source values
        label += f", dropout {data['dropout']:g}"
    if style.labels == "full" and data["shape"] is not None:
        label += f" ({'×'.join(map(str, _block_shape(data)))})"
    if style.labels == "none":
        label = ""
    attrs = {"class": role, "label": html_text(label) if label else None}
    attrs |= EDGE_STYLE.get(role, {})
    if lag and role != "recurrent":
        attrs["constraint"] = "false"
    elif role == "connection":
        attrs["weight"] = 0  # a skip ranks its ends but leaves the stack straight
    elif role in ("input", "readout", "emit"):
        attrs["weight"] = 4
    return attrs


def _fanned(taps: list[dict]) -> list[dict]:
    """A pair's taps in the order that makes Graphviz fan them out by delay: it draws the
    first edge between two nodes in the middle, then the others alternately either side,
    so the middle delay goes first, then its neighbours outwards."""
    ordered = sorted(taps, key=lambda d: d["lag"])
    middle = (len(ordered) - 1) // 2
    found = [ordered[middle]]
    for step in range(1, len(ordered)):
        for at in (middle - step, middle + step):
            if 0 <= at < len(ordered):
                found.append(ordered[at])
    return found


def _taps_label(graph: nx.MultiDiGraph, taps: list[dict], style: Style) -> str | None:
    """One label for a pair's taps: `W@k, t-k, k = -2..2` (the weight at delay k)."""
    if style.labels == "none":
        return None
    lags = sorted(d["lag"] for d in taps)
    base = weight_label(graph, taps[0]["weight"], style).partition("@")[0]
    if lags == list(range(lags[0], lags[-1] + 1)) and len(lags) > 2:
        said = f"{lags[0]}..{lags[-1]}"
    else:
        said = ", ".join(map(str, lags))
    label = f"{base}@k, t-k, k = {said}"
    if style.labels == "full" and taps[0]["shape"] is not None:
        label += f" ({'×'.join(map(str, _block_shape(taps[0])))} each)"
    return html_text(label)


def _block_shape(data: dict) -> tuple[int, ...]:
    shape, (a, b) = data["shape"], data["rows"]
    return (b - a, *shape[1:])


def _legend(
    graph: nx.MultiDiGraph, style: Style, shaded: bool = False, unfolded: bool = False
) -> list[tuple[str, str]] | None:
    """The key of node shapes and edge styles of the roles present, for `--legend`: each
    node swatch drawn with its fill and outline (rounded for an ellipse, double for an
    output); unfolded, the dashed start state; with a highlight, its colours."""
    if not style.legend:
        return None
    merged = merged_readouts(graph) if style.readout == "merged" else {}
    found, seen = [], set()
    for node, data in sorted(graph.nodes(data=True), key=lambda item: item[1]["order"]):
        role = data["role"]
        role = "output" if node in merged else role
        key = (role, data.get("kind")) if role == "state" else (role, None)
        if key in seen:
            continue
        seen.add(key)
        text = {
            "input": "input x<SUB>t</SUB>",
            "state": f"{data.get('kind')} state",
            "readout": "readout",
            "dense": "dense layer",
            "output": "output (emitted)",
            "merge": "merge of two directions",
        }[role]
        attrs = node_shape(role, _picture(data) if role == "state" else None)
        outline = "double" if role == "output" else attrs["shape"]
        found.append(("node", f"{text}|{attrs['fillcolor']}|{outline}"))
    if unfolded and any(data["role"] == "state" for _, data in graph.nodes(data=True)):
        found.append(("node", f"start state (= 0, or handed over)|{FILL['init']}|dashed"))
    if shaded:
        found.append(("node", f"what the shaded node depends on|{CONE}|box"))
        found.append(("node", f"the rest|{FADED}|box"))
    roles = {data["role"] for _, _, data in graph.edges(data=True)}
    if any(data.get("initial_state") or data.get("given") for _, data in graph.nodes(data=True)):
        roles.add("handover")
    for role, text in EDGE_KEY:
        if role in roles and not (role == "emit" and not _emits_apart(graph, merged)):
            found.append(("edge", text))
    return found


def _emits_apart(graph: nx.MultiDiGraph, merged: dict) -> bool:
    return any(
        data["role"] == "emit" and not (tail in merged and merged[tail] == head)
        for tail, head, data in graph.edges(data=True)
    )


# -- unfolded -----------------------------------------------------------------------------


def unfolded_dot(
    unrolled: Unrolled,
    *,
    max_columns: int = 12,
    highlight: tuple[str, int] | None = None,
    style: Style = DEFAULT,
    shades: dict[tuple[str, int], str] | None = None,
    extra: str | None = None,
) -> str:
    """The network unfolded in time: one column per step, the folded picture in each.

    Nodes and edges are exactly those of `unroll.unrolled_graph` in the columns drawn;
    each node's `id` is `vector@t`. Above `max_columns` steps only the first and last few
    (and the steps where something starts, stops or is handed over) are drawn, each
    stretch in between as one `⋯` column. `highlight=(name, t)` shades that node and
    everything it depends on; a negative t counts from T. With `style.readout` `merged`
    (the default), an output that emits its readout unchanged at the same steps is one
    node, the output's (`vector@t` of the output, fed as the readout is). `shades` fills
    nodes, by (vector, t), with a colour of their own (the gradient view); `extra` is an
    HTML-like table drawn under the title.

    Examples
    --------
    >>> from composer.graph.folded import build
    >>> from composer.spec.model import NetworkSpec
    >>> from composer.graph.unrolled import unroll
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "s", "kind": "elman", "input": "x", "state_size": 4}],
    ...     "outputs": [{"name": "y", "from": "s"}]})
    >>> text = unfolded_dot(unroll(build(spec), 3), highlight=("y", -1))
    >>> 'id="s.s@-1"' in text and 'id="x@2"' in text
    True
    """
    if not isinstance(max_columns, int) or max_columns < 1:
        raise ComposerError(f"`max_columns` must be an integer >= 1, got {max_columns!r}")
    target = _target(unrolled, highlight) if highlight is not None else None
    merge = merged_readouts(unrolled.folded) if style.readout == "merged" else {}
    view = unfolded_view(unrolled, max_columns, keep=(target[1],) if target else (), merge=merge)
    drawing = _UnfoldedDrawing(unrolled, view, target, style, same_steps(unrolled, merge))
    drawing.shades, drawing.extra = shades or {}, extra
    return drawing.dot()


def _target(unrolled: Unrolled, highlight: tuple[str, int]) -> tuple[str, int]:
    """The highlighted node with its step made absolute; an error says where it exists."""
    name, t = highlight
    folded = unrolled.folded
    step = t + unrolled.steps if t < 0 else t
    if name in folded and 0 <= step < unrolled.steps and unrolled.present[name][step]:
        return name, step
    outputs = sorted(n for n, role in folded.nodes(data="role") if role == "output")
    where = ""
    if name in folded:
        steps = format_steps(unrolled.steps_of(name), limit=3) or "none"
        where = f"; `{name}` is computed at steps {steps}"
    raise ComposerError(
        f"cannot highlight {name}[{t}]: not a node of the network unrolled to "
        f"T = {unrolled.steps}{where} (outputs: {', '.join(outputs)})"
    )


class _UnfoldedDrawing:
    """DOT text for an `UnfoldedView`: rows (vectors) by columns (steps), pinned in place."""

    def __init__(
        self, unrolled: Unrolled, view: UnfoldedView, target, style: Style, renamed: dict
    ) -> None:
        self.unrolled, self.view, self.style, self.renamed = unrolled, view, style, renamed
        self.target = (renamed.get(target[0], target[0]), target[1]) if target else None
        self.folded = unrolled.folded
        self.cone = self._cone(target) if target else None
        self.names = display_names(self.folded)
        self.ids = {(n.vector, n.column): f"n{i}" for i, n in enumerate(view.nodes)}
        self.rank = {v: i for i, v in enumerate(view.rows)}
        self.shapes = {d["weight"]: _block_shape(d) for _, _, d in self.folded.edges(data=True)
                       if d["shape"] is not None}  # fmt: skip
        self.labelled = set(view.edges)  # every label counts for the gap between columns
        labels = [len(self._label(e)) for e in view.edges]
        lags = dict(self.folded.nodes(data="lag"))
        self.grid = Grid(view, self.names, lags, max(labels, default=0))
        self.labelled = self._labelled()
        self.shades: dict = {}
        self.extra: str | None = None

    def _cone(self, target) -> set[tuple[str, int]]:
        """The drawn cells, (vector, column), of the target and all it depends on."""
        firsts = [c.first for c in self.view.columns]
        cone = StepTemplate(self.unrolled).cone(target)
        return {(self.renamed.get(v, v), bisect.bisect_right(firsts, t) - 1) for v, t in cone}

    def _labelled(self) -> set[Edge]:
        """The edges that carry their weight's name: in each column, the first edge of each
        weight; an edge routed around the rows it passes, only in the first column it is
        drawn in; a tap of a tapped delay line (`tapped_pairs`), once, in the column
        nearest the middle (the same weight's name on every copy would cover the picture)."""
        seen, found = set(), set()
        tapped = tapped_pairs(self.folded)
        middle = len(self.view.columns) // 2
        taps: dict[str, Edge] = {}  # a tap's weight -> its one labelled edge, mid-picture
        for edge in self.view.edges:
            if edge.weight is None or edge.role == "elided":
                continue
            if (edge.tail.vector, edge.head.vector) in tapped:
                best = taps.get(edge.weight)
                if best is None or abs(edge.head.column - middle) < abs(best.head.column - middle):
                    taps[edge.weight] = edge
                continue
            keys = {(edge.weight, edge.head.column)}
            if self.grid.passed(edge):
                keys.add((edge.weight, edge.tail.vector))
            if not keys & seen:
                found.add(edge)
            seen |= keys
        return found | set(taps.values())

    def _label(self, edge: Edge) -> str:
        if self.style.labels == "none" or edge not in self.labelled:
            return ""
        label = weight_label(self.folded, edge.weight, self.style)
        if self.style.labels == "full" and edge.weight in self.shapes:
            label += f" ({'×'.join(map(str, self.shapes[edge.weight]))})"
        return label

    def dot(self) -> str:
        title = f"unfolded, T = {self.unrolled.steps}"
        if self.target is not None:
            name, t = self.target
            # written as `deps` and the folded title write it (`y[2]`), not as a subscript
            title += f"; shaded: what {html_text(self.names[name])}[{t}] depends on"
        lines = header(
            self.folded.graph.get("name", "network"),
            "unfolded",
            title,
            _legend(self.folded, self.style, shaded=self.cone is not None, unfolded=True),
            self.extra,
        )
        # routing edges around nodes is slow: only when a straight edge would cross one
        splines = "true" if self.grid.crossing() else "false"
        lines.append(
            f'  graph [layout=neato, splines={splines}, sep="+5", outputorder=edgesfirst];'
        )
        for node in self.view.nodes:
            attrs = self._node(node) | {"pos": self.grid.pos(node)}
            lines.append(f"  {self.ids[node.vector, node.column]}{attr_list(attrs)};")
        lines += self._axis()
        lines += [self._edge(edge) for edge in self.view.edges]
        if self.style.cell_state:
            lines += self._cell_track()
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _cell_track(self) -> list[str]:
        """`style.cell_state`: each LSTM's cell state c drawn as a row of its own, half a
        row above h and between the columns, so the edges up from h pass it: c_(t-1) ->
        c_t (the forget gate's product, the path the gradient is carried along) and
        c_t -> h_t (h = o * tanh(c)). Drawn only: c is not a vector of the unrolled DAG,
        so it has no id a page or `deps` would click. A bidirectional layer's c is not
        drawn: its two copies and the edges routed around them leave no room."""
        lines = []
        cells: dict[str, list[Node]] = {}
        for node in self.view.nodes:
            data = self.folded.nodes.get(node.vector, {})
            if node.step is None or data.get("role") != "state":
                continue
            both = f"{data['layer']}.s_rev" in self.folded  # no room between two copies
            if "c" in KINDS[data["kind"]].carries and not both:
                cells.setdefault(node.vector, []).append(node)
        for vector, nodes in cells.items():
            data = self.folded.nodes[vector]
            name = f"{html_text(data['layer'])}.c{html_text(data.get('suffix', ''))}"
            ids = {}
            for node in nodes:
                x, y = self.grid.where[node.vector, node.column]
                shift = -0.32 * self.grid.column_gap(max(node.column - 1, 0))
                cid = ids[node.column] = f"c{self.ids[node.vector, node.column]}"
                attrs = {"class": "cell", "shape": "box", "style": "rounded,filled",
                         "fillcolor": "#f5f5f4", "color": "#57534e", "height": 0.3,
                         "margin": "0.04,0.02", "fontsize": 10,
                         "label": f"{name}<SUB>{node.step}</SUB>",
                         "pos": f"{x + shift:.2f},{y + CELL_LIFT:.2f}!"}  # fmt: skip
                lines.append(f"  {cid}{attr_list(attrs)};")
                into = {"class": "cell", "color": "#57534e"}
                lines.append(f"  {cid} -> {self.ids[node.vector, node.column]}{attr_list(into)};")
            step = 1 if (data.get("lag") or 1) > 0 else -1  # a backward copy runs right to left
            along = {"class": "cell", "color": "#57534e", "penwidth": 1.6}
            for column, cid in ids.items():
                if column + step in ids and column + step >= 0:
                    lines.append(f"  {cid} -> {ids[column + step]}{attr_list(along)};")
        return lines

    def _axis(self) -> list[str]:
        lines = []
        for i, column in enumerate(self.view.columns):
            text = f"t = {column.first}" + (f" … {column.last}" if column.elided else "")
            attrs = {"id": f"step@{column.first}", "class": "axis", "shape": "plaintext"}
            attrs |= {"style": "", "peripheries": 0, "height": 0.2}
            attrs |= {"label": small(html_text(text), "#6b7280"), "pos": self.grid.axis_pos(i)}
            lines.append(f"  a{i}{attr_list(attrs)};")
        return lines

    def _node(self, node: Node) -> dict:
        if node.step is None:
            attrs = {"class": "elided", "shape": "plaintext", "style": "", "peripheries": 0}
            return self._shade(attrs | {"label": "⋯", "fontsize": 18}, node)
        data = self.folded.nodes[node.vector]
        name = f"{html_text(self.names[node.vector])}<SUB>{node.step}</SUB>"
        attrs = {"id": f"{node.vector}@{node.step}", "class": node.role}
        if node.role == "given":  # a start state given with the data: one value, no steps
            attrs |= node_shape("input", None) | {"label": f"<B>{html_text(node.vector)}</B>"}
        elif node.role == "init":
            attrs |= {"shape": "ellipse", "style": "dashed,filled", "fillcolor": FILL["init"]}
            given = node.vector in self.unrolled.handover or data.get("given")
            learned = data.get("learned")
            attrs["label"] = (
                name if given else f"{name} = {html_text(learned)}" if learned else f"{name} = 0"
            )
        else:
            attrs |= node_shape(node.role, _picture(data)) | {"label": name}
        attrs |= {"margin": "0.04,0.02", "height": 0.36}
        if (node.vector, node.step) in self.shades:
            attrs["fillcolor"] = self.shades[node.vector, node.step]
        return self._shade(attrs, node)

    def _shade(self, attrs: dict, node: Node) -> dict:
        if self.cone is None:
            return attrs
        filled = node.step is not None
        if (node.vector, node.column) not in self.cone:
            attrs |= {"fontcolor": FADED_TEXT, "color": FADED_LINE}
            return attrs | ({"fillcolor": FADED} if filled else {})
        attrs |= {"color": CONE_EDGE} | ({"fillcolor": CONE} if filled else {})
        attrs |= {} if filled else {"fontcolor": CONE_EDGE}
        if (node.vector, node.step) == self.target:
            attrs["penwidth"] = 3
        return attrs

    def _edge(self, edge: Edge) -> str:
        tail = self.ids[edge.tail.vector, edge.tail.column]
        head = self.ids[edge.head.vector, edge.head.column]
        attrs: dict[str, object] = {"class": edge.role}
        if edge.role != "elided":
            ends = f"{edge.tail.vector}@{edge.tail.step}->{edge.head.vector}@{edge.head.step}"
            attrs["id"] = ends
        label = self._label(edge)
        if edge.role == "handover" and self.folded.nodes[edge.head.vector].get("two_pass"):
            # `initial_state: {from: r, at: end}`: all of r first, then this layer again
            label = "second pass"
            attrs["constraint"] = "false"
        attrs["label"] = html_text(label) if label else None
        if self.grid.passed(edge):
            # around the nodes passed, alternately east and west so that the two skips of
            # a bidirectional layer (input to upper copy, lower copy to readout) never cross;
            # named beside the middle of its route, clear of the straight edges' names
            side = "e" if self.rank[edge.tail.vector] % 2 == 0 else "w"
            attrs |= {"tailport": side, "headport": "s" + side}
            attrs["xlabel"] = attrs.pop("label")
        elif edge.tail.vector == edge.head.vector:
            attrs |= self.grid.midway(edge)
        elif label and edge.tail.column != edge.head.column:  # slanted: beside its middle
            attrs |= self.grid.beside(edge, len(label))
        if "labeldistance" in attrs and attrs["label"]:
            attrs["headlabel"] = attrs.pop("label")  # named just before the arrowhead
        attrs |= EDGE_STYLE.get(edge.role, {})
        if self.cone is not None:
            inside = {(e.vector, e.column) for e in (edge.tail, edge.head)} <= self.cone
            attrs["color"] = CONE_EDGE if inside else FADED_LINE
            attrs["fontcolor"] = CONE_EDGE if inside else FADED_TEXT
            attrs["penwidth"] = 1.8 if inside else None
        return f"  {tail} -> {head}{attr_list(attrs)};"


# -- files --------------------------------------------------------------------------------


DEFAULT_DPI = 150  # Graphviz's own 72 gives PNGs too small to read on a screen


def render_options(fmt: str, dpi: int | None = None, size: str | None = None) -> tuple[str, ...]:
    """`dot` arguments for `--dpi` (PNG only; default 150) and `--size W,H` (inches).

    Examples
    --------
    >>> render_options("png"), render_options("svg", size="8,6")
    (('-Gdpi=150',), ('-Gsize=8,6',))
    """
    options = []
    if dpi is not None and fmt != "png":
        raise ComposerError(f"--dpi sets a PNG's resolution; the format is {fmt}")
    if fmt == "png":
        options.append(f"-Gdpi={dpi or DEFAULT_DPI}")
    if size is not None:
        parts = size.replace("x", ",").split(",")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2) or not all(0 < n <= 1000 for n in numbers):
            raise ComposerError(
                f"expected a size in inches as W,H (such as 8,6) or W, got {size!r}"
            )
        options.append("-Gsize=" + ",".join(f"{n:g}" for n in numbers))
    return tuple(options)


def write_diagrams(
    texts: dict[str, str],
    paths: dict[str, Path],
    fmt: str,
    *,
    overwrite: bool = True,
    keep: Iterable[Path] = (),
    options: tuple[str, ...] = (),
) -> list[Path]:
    """Write several diagrams (`write_diagram` each). When `dot` is missing, every
    picture's DOT source is written beside its path first, then one RenderError says so."""
    if fmt != "dot" and shutil.which("dot") is None:
        written, problems = [], []
        for name, path in paths.items():
            beside = Path(path).with_suffix(".dot")
            problem = output_problem(beside, overwrite, [p for p in keep if p != path])
            if problem is None:
                written.append(shown(_write(beside, texts[name].encode(), overwrite)))
            else:
                problems.append(problem)
        said = f"Graphviz's `dot` program was not found; {INSTALL_HINT}"
        if written:
            said += "; the DOT source" + (" is in " if len(written) == 1 else "s are in ")
            said += ", ".join(written)
        if problems:
            said += "; the DOT source was not written: " + "; ".join(problems)
        raise RenderError(said)
    return [
        write_diagram(texts[name], path, fmt, overwrite=overwrite, keep=keep, options=options)
        for name, path in paths.items()
    ]


def write_diagram(
    dot_text: str,
    path: Path,
    fmt: str,
    *,
    timeout: float = 30,
    overwrite: bool = True,
    keep: Iterable[Path] = (),
    options: tuple[str, ...] = (),
) -> Path:
    """Write a diagram: the DOT text itself (`fmt="dot"`), or `dot -T<fmt>`'s drawing.

    The file is written atomically; with `overwrite=False`, never over an existing file.
    When `dot` is missing, fails or times out, the DOT text is written beside `path`
    (same name, suffix `.dot`), checked as any output is (never over a file in `keep`,
    nor over an existing file without `overwrite`), and a RenderError says why.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if fmt == "dot":
        return _write(path, dot_text.encode(), overwrite)
    try:
        image = _run_dot(dot_text, fmt, timeout=timeout, options=options)
    except RenderError as err:
        beside = path.with_suffix(".dot")
        problem = output_problem(beside, overwrite, [p for p in keep if p != path])
        if problem is not None:
            raise RenderError(f"{err}; the DOT source was not written: {problem}") from err
        _write(beside, dot_text.encode(), overwrite)
        raise RenderError(f"{err}; the DOT source is in {shown(beside)}") from err
    return _write(path, _fixed_dates(image) if fmt == "pdf" else image, overwrite)


_PDF_DATE = re.compile(rb"/(CreationDate|ModDate) \(D:(\d{14})")


def _fixed_dates(pdf: bytes) -> bytes:
    """A PDF with its dates set to SOURCE_DATE_EPOCH (default 0): the same drawing gives
    the same bytes. The replacement has the same length, so the offsets still hold."""
    given = os.environ.get("SOURCE_DATE_EPOCH", "")
    epoch = int(given) if given.isdigit() and len(given) < 12 else 0
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch)).encode()
    return _PDF_DATE.sub(lambda m: b"/" + m.group(1) + b" (D:" + stamp, pdf)


def _write(path: Path, data: bytes, overwrite: bool = True) -> Path:
    try:
        atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)
    except WriteError as err:
        raise RenderError(str(err)) from err
    return path


def _run_dot(dot_text: str, fmt: str, *, timeout: float, options: tuple[str, ...] = ()) -> bytes:
    """The output of `dot -T<fmt>` on the text; RenderError when it cannot be had."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(f"Graphviz's `dot` program was not found; {INSTALL_HINT}")
    try:
        done = subprocess.run(
            [program, *options, f"-T{fmt}"],
            input=dot_text.encode(),
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        raise RenderError(f"`dot -T{fmt}` timed out after {timeout:g} s") from err
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        cause = lines[0] if lines else f"exit status {done.returncode}"
        raise RenderError(f"`dot -T{fmt}` failed: {cause}")
    return done.stdout


def dot_svg(dot_text: str, timeout: float = 30) -> str:
    """`dot -Tsvg` of DOT text, as text; RenderError when it cannot be had."""
    return _run_dot(dot_text, "svg", timeout=timeout).decode()


def svg(graph: nx.MultiDiGraph | Unrolled) -> str:
    """The diagram as SVG text: folded for a graph, unfolded for an `Unrolled` value.

    A notebook shows an object holding a network as its diagram with
    `_repr_svg_ = lambda self: svg(self.graph)`.
    """
    text = unfolded_dot(graph) if isinstance(graph, Unrolled) else folded_dot(graph)
    return _run_dot(text, "svg", timeout=30).decode()


HIGHLIGHT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\[\s*(-?\d+)\s*\]\s*")


def parse_highlight(text: str) -> tuple[str, int]:
    """`"o[7]"` -> `("o", 7)`: a vector's name and a step (negative counts from T).

    Examples
    --------
    >>> parse_highlight("o[7]"), parse_highlight("y[-1]")
    (('o', 7), ('y', -1))
    """
    match = HIGHLIGHT.fullmatch(text)
    if match is None:
        raise ComposerError(
            f"cannot read the highlight {text!r}; expected NAME[t], such as `o[7]` or `y[-1]`"
        )
    return match.group(1), int(match.group(2))
