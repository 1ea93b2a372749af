"""The network unfolded in time as DOT text: one column per step, pinned in place."""

from __future__ import annotations

import bisect

from composer.draw.dot import (
    CONE,
    CONE_EDGE,
    EDGE_STYLE,
    FADED,
    FADED_LINE,
    FADED_TEXT,
    FILL,
    attr_list,
    block_shape,
    header,
    html_text,
    node_shape,
    small,
    state_picture,
)
from composer.draw.highlight import highlighted_node
from composer.draw.layout import CELL_LIFT, Grid
from composer.draw.legend import legend_entries
from composer.draw.style import DEFAULT, Style, merged_readouts
from composer.draw.view import (
    Edge,
    Node,
    StepTemplate,
    UnfoldedView,
    display_names,
    same_steps,
    tapped_pairs,
    unfolded_view,
    weight_label,
)
from composer.errors import ComposerError
from composer.graph.unrolled import Unrolled
from composer.kinds import KINDS

__all__ = ["unfolded_dot"]


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
    target = highlighted_node(unrolled, highlight) if highlight is not None else None
    merge = merged_readouts(unrolled.folded) if style.readout == "merged" else {}
    view = unfolded_view(unrolled, max_columns, keep=(target[1],) if target else (), merge=merge)
    drawing = _UnfoldedDrawing(unrolled, view, target, style, same_steps(unrolled, merge))
    drawing.shades, drawing.extra = shades or {}, extra
    return drawing.dot()


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
        self.shapes = {d["weight"]: block_shape(d) for _, _, d in self.folded.edges(data=True)
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
            legend_entries(self.folded, self.style, shaded=self.cone is not None, unfolded=True),
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
            attrs |= node_shape(node.role, state_picture(data)) | {"label": name}
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
