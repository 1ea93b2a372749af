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
from composer.draw.layout import Grid
from composer.draw.view import (
    Edge,
    Node,
    StepTemplate,
    UnfoldedView,
    display_names,
    unfolded_view,
    weight_label,
)
from composer.errors import ComposerError, RenderError, WriteError
from composer.graph.loops import instant_graph
from composer.graph.unrolled import Unrolled
from composer.kinds import KINDS
from composer.outputs import output_problem, shown
from composer.text import format_steps

__all__ = ["FORMATS", "folded_dot", "unfolded_dot", "write_diagram", "svg", "parse_highlight"]

#: the formats `write_diagram` writes; `dot` is the DOT text itself.
FORMATS = ("dot", "svg", "png", "pdf")

INSTALL_HINT = (
    "install Graphviz, which provides it (Debian/Ubuntu: `apt-get install graphviz`; "
    "macOS: `brew install graphviz`)"
)


# -- folded -------------------------------------------------------------------------------


def folded_dot(graph: nx.MultiDiGraph) -> str:
    """The folded network as the lecture draws it: x at the bottom, loops on the states.

    Edges carry their weight's name (`Wx`, `Ws`, `Wy`; `rnn1.Wx` when there are several
    layers); a recurrence with a delay other than 1 says so (`Ws, t-2`), extra
    connections are dashed with their delay, an `initial_state` hand-over is dotted.

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
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    ids = {node: f"n{i}" for i, (node, _) in enumerate(nodes)}
    lines = header(graph.graph.get("name", "network"), "folded", "folded")
    lines.append("  graph [nodesep=0.6, ranksep=0.45];")
    for node, data in nodes:
        attrs = {"id": node, "class": data["role"], **_folded_node(data, names[node])}
        lines.append(f"  {ids[node]}{attr_list(attrs)};")
    for left, right in _side_by_side(graph):
        lines.append(f"  {{ rank=same; {ids[left]}; {ids[right]}; }}")
    for tail, head, attrs in _folded_edges(graph):
        lines.append(f"  {ids[tail]} -> {ids[head]}{attr_list(attrs)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _folded_node(data: dict, name: str) -> dict:
    role, kind, size = data["role"], data.get("kind"), data["size"]
    if role == "state":
        desc = f"{KINDS[kind].picture.tag} ({size})"
    elif role in ("readout", "dense"):
        act = data["activation"]
        desc = ("dense " if role == "dense" else "") + (f"{act} " if act != "identity" else "")
        desc += f"({size})"
    elif data.get("embed"):  # token ids read through the embedding weight <input>.E
        desc = f"ids ({data['vocab']}), {name}.E {data['vocab']}x{size}"
    elif data.get("vocab"):
        desc = f"ids, one-hot ({size})"
    else:
        desc = f"({size})"
    attrs = node_shape(role, _picture(data))
    attrs["label"] = f"<B>{html_text(name)}</B><BR/>{small(html_text(desc))}"
    return attrs


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


def _folded_edges(graph: nx.MultiDiGraph) -> Iterable[tuple[str, str, dict]]:
    order = nx.get_node_attributes(graph, "order")
    edges = sorted(
        graph.edges(keys=True, data=True), key=lambda e: (order[e[0]], order[e[1]], e[2])
    )
    # a state handing over its last value loops on its west side, clear of the hand-over
    # (drawn as a flat edge; ports on it make Graphviz 2.43 read its id as an arrow type)
    west = {data.get("initial_state") for _, data in graph.nodes(data=True)} - {None}
    instant = instant_graph(graph)
    for tail, head, _, data in edges:
        attrs = {"id": f"{tail}->{head}", **_folded_edge(graph, data)}
        if tail == head and tail in west:
            attrs |= {"tailport": "nw", "headport": "sw"}
        if tail != head and data["lag"] and nx.has_path(instant, head, tail):
            # feedback, drawn downwards: point the DOT edge up so it ranks like the rest
            yield head, tail, attrs | {"dir": "back", "constraint": None}
            continue
        yield tail, head, attrs
    for node, data in sorted(graph.nodes(data=True), key=lambda item: item[1]["order"]):
        if data.get("initial_state"):
            attrs = {"id": f"{data['initial_state']}->{node}", "class": "handover"}
            label = "last state, second pass" if data.get("two_pass") else "initial state"
            attrs |= {"label": label, **EDGE_STYLE["handover"]}
            yield data["initial_state"], node, attrs


def _folded_edge(graph: nx.MultiDiGraph, data: dict) -> dict:
    role, lag = data["role"], data["lag"]
    label = weight_label(graph, data["weight"])
    if data["shape"] is not None and data["rows"] != (0, data["shape"][0]):
        label += f"[{data['rows'][0]}:{data['rows'][1]}]"  # one block of a split weight
    if role == "recurrent" and lag != 1 or role in ("connection", "input") and lag != 0:
        label += f", t{-lag:+d}"
    attrs = {"class": role, "label": html_text(label) if label else None}
    attrs |= EDGE_STYLE.get(role, {})
    if lag and role != "recurrent":
        attrs["constraint"] = "false"
    return attrs


# -- unfolded -----------------------------------------------------------------------------


def unfolded_dot(
    unrolled: Unrolled,
    *,
    max_columns: int = 12,
    highlight: tuple[str, int] | None = None,
) -> str:
    """The network unfolded in time: one column per step, the folded picture in each.

    Nodes and edges are exactly those of `unroll.unrolled_graph` in the columns drawn;
    each node's `id` is `vector@t`. Above `max_columns` steps only the first and last few
    (and the steps where something starts, stops or is handed over) are drawn, each
    stretch in between as one `⋯` column. `highlight=(name, t)` shades that node and
    everything it depends on; a negative t counts from T.

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
    view = unfolded_view(unrolled, max_columns, keep=(target[1],) if target else ())
    return _UnfoldedDrawing(unrolled, view, target).dot()


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

    def __init__(self, unrolled: Unrolled, view: UnfoldedView, target) -> None:
        self.unrolled, self.view, self.target = unrolled, view, target
        self.folded = unrolled.folded
        self.cone = self._cone() if target else None
        self.names = display_names(self.folded)
        self.ids = {(n.vector, n.column): f"n{i}" for i, n in enumerate(view.nodes)}
        self.rank = {v: i for i, v in enumerate(view.rows)}
        labels = [len(weight_label(self.folded, e.weight)) for e in view.edges]
        lags = dict(self.folded.nodes(data="lag"))
        self.grid = Grid(view, self.names, lags, max(labels, default=0))

    def _cone(self) -> set[tuple[str, int]]:
        """The drawn cells, (vector, column), of the target and all it depends on."""
        firsts = [c.first for c in self.view.columns]
        cone = StepTemplate(self.unrolled).cone(self.target)
        return {(v, bisect.bisect_right(firsts, t) - 1) for v, t in cone}

    def dot(self) -> str:
        title = f"unfolded, T = {self.unrolled.steps}"
        if self.target is not None:
            name, t = self.target
            title += f"; shaded: what {html_text(self.names[name])}<SUB>{t}</SUB> depends on"
        lines = header(self.folded.graph.get("name", "network"), "unfolded", title)
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
        lines.append("}")
        return "\n".join(lines) + "\n"

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
        if node.role == "init":
            attrs |= {"shape": "ellipse", "style": "dashed,filled", "fillcolor": FILL["init"]}
            given = node.vector in self.unrolled.handover
            learned = data.get("learned")
            attrs["label"] = (
                name if given else f"{name} = {html_text(learned)}" if learned else f"{name} = 0"
            )
        else:
            attrs |= node_shape(node.role, _picture(data)) | {"label": name}
        attrs |= {"margin": "0.04,0.02", "height": 0.36}
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
        label = weight_label(self.folded, edge.weight)
        if edge.role == "handover" and self.folded.nodes[edge.head.vector].get("two_pass"):
            # `initial_state: {from: r, at: end}`: all of r first, then this layer again
            label = "second pass"
            attrs["constraint"] = "false"
        attrs["label"] = html_text(label) if label else None
        if self.grid.passed(edge):
            # around the nodes passed, alternately east and west so that the two skips of
            # a bidirectional layer (input to upper copy, lower copy to readout) never cross
            side = "e" if self.rank[edge.tail.vector] % 2 == 0 else "w"
            attrs |= {"tailport": side, "headport": "s" + side, "labeldistance": 2.2}
        elif edge.tail.vector == edge.head.vector:
            attrs |= self.grid.midway(edge)
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


def write_diagram(
    dot_text: str,
    path: Path,
    fmt: str,
    *,
    timeout: float = 30,
    overwrite: bool = True,
    keep: Iterable[Path] = (),
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
        image = _run_dot(dot_text, fmt, timeout=timeout)
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


def _run_dot(dot_text: str, fmt: str, *, timeout: float) -> bytes:
    """The output of `dot -T<fmt>` on the text; RenderError when it cannot be had."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(f"Graphviz's `dot` program was not found; {INSTALL_HINT}")
    try:
        done = subprocess.run(
            [program, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        raise RenderError(f"`dot -T{fmt}` timed out after {timeout:g} s") from err
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        cause = lines[0] if lines else f"exit status {done.returncode}"
        raise RenderError(f"`dot -T{fmt}` failed: {cause}")
    return done.stdout


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
