"""What a diagram shows: the nodes and edges of the folded and unfolded pictures, collected.

Collecting is kept apart from drawing (micrograd's split): `render` only turns these
values into DOT text. The unfolded collection reads the per-step template of an
`Unrolled` value (folded edges, masks, initial states) for the kept columns only, so a
10,000-step network costs a few columns, and its nodes and edges are exactly those of
`unroll.unrolled_graph` in those columns.
"""

from __future__ import annotations

import bisect
import weakref
from collections import Counter
from dataclasses import dataclass, replace

import networkx as nx

from composer.graph.loops import instant_graph
from composer.graph.unrolled import Unrolled, given_starts

__all__ = [
    "Column",
    "Node",
    "Edge",
    "UnfoldedView",
    "display_names",
    "weight_label",
    "tapped_pairs",
    "folded_edge_id",
    "row_order",
    "kept_columns",
    "StepTemplate",
    "unfolded_view",
    "same_steps",
]

Step = tuple[str, int]  # an unrolled node: (vector, t)


@dataclass(frozen=True)
class Column:
    """One column of the unfolded picture: a step, or an elided stretch `first..last`."""

    first: int
    last: int

    @property
    def elided(self) -> bool:
        return self.first != self.last


@dataclass(frozen=True)
class Node:
    """A drawn node: `vector` at `step` in `column`; `step` is None for an ellipsis."""

    vector: str
    step: int | None
    column: int
    role: str


@dataclass(frozen=True)
class Edge:
    """A drawn edge; `role` is the unrolled edge's role, or `elided` for a continuation."""

    tail: Node
    head: Node
    weight: str | None
    role: str
    lag: int | None


@dataclass(frozen=True)
class UnfoldedView:
    """The kept columns of an unrolled network, rows bottom to top, nodes and edges."""

    rows: tuple[str, ...]
    columns: tuple[Column, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def display_names(folded: nx.MultiDiGraph) -> dict[str, str]:
    """Short names for the vectors: inputs and outputs by name, layers by layer name.

    A readout is `y` when no other vector is called that, else `<layer>.y`; the two
    copies of a bidirectional layer (and a backward layer) carry an arrow.
    """
    names = {}
    for node, data in folded.nodes(data=True):
        role = data["role"]
        if role in ("input", "output"):
            names[node] = node
        elif role == "readout":
            names[node] = "y"
        else:
            names[node] = data["layer"] + _arrow(folded, node)
    counts = Counter(names.values())
    for node, name in names.items():
        if counts[name] > 1 and folded.nodes[node]["role"] == "readout":
            names[node] = f"{folded.nodes[node]['layer']}.y"
    return names


def _arrow(folded: nx.MultiDiGraph, node: str) -> str:
    data = folded.nodes[node]
    if data["role"] != "state":
        return ""
    two_way = f"{data['layer']}.s_rev" in folded
    if data["direction"] == "backward":
        return "←"
    return "→" if two_way else ""


def tapped_pairs(folded: nx.MultiDiGraph) -> set[tuple[str, str]]:
    """(source, target) pairs joined by several weighted edges of different delays, not
    recurrences: the taps of a tapped delay line (`input: {from: x, delays: [...]}`)."""
    lags: dict[tuple[str, str], set[int]] = {}
    for tail, head, data in folded.edges(data=True):
        if data["weight"] is not None and data["role"] != "recurrent":
            lags.setdefault((tail, head), set()).add(data["lag"])
    return {pair for pair, found in lags.items() if len(found) > 1}


def folded_edge_id(
    tail: str, head: str, data: dict | None = None, tapped: set | frozenset = frozenset()
) -> str:
    """A folded edge's id, `tail->head`; a tap drawn apart adds its weight
    (`x->h.y:h.W@2`), so each of a pair's taps has its own."""
    if data is not None and (tail, head) in tapped and data["weight"] is not None:
        return f"{tail}->{head}:{data['weight']}"
    return f"{tail}->{head}"


def weight_label(folded: nx.MultiDiGraph, weight: str | None, style=None) -> str:
    """A weight's name as drawn: `Wx` when the network has one layer, else `rnn1.Wx`;
    renamed by `style.weight_names` (`composer.draw.style.Style`), if given."""
    if weight is None:
        return ""
    if style is not None:
        weight = style.rename(weight)
    layers = _layer_names(folded)
    layer, dot, param = weight.partition(".")
    if dot and layers == {layer}:
        return param
    return weight


_LAYER_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _layer_names(folded: nx.MultiDiGraph) -> frozenset[str]:
    """The layers of a graph, computed once per graph (every edge label asks)."""
    names = _LAYER_NAMES.get(folded)
    if names is None:
        names = frozenset(data["layer"] for _, data in folded.nodes(data=True) if "layer" in data)
        _LAYER_NAMES[folded] = names
    return names


def row_order(folded: nx.MultiDiGraph) -> list[str]:
    """Vectors bottom to top: the within-step (zero-lag) order, ties broken by spec order;
    an input that gives a start state sits just below the first layer it starts."""
    order = nx.get_node_attributes(folded, "order")
    rows = list(nx.lexicographical_topological_sort(instant_graph(folded), key=order.__getitem__))
    for state, given in sorted(folded.nodes(data="given"), key=lambda item: order[item[0]]):
        if given and rows.index(given) < rows.index(state):  # a start state: just below
            rows.remove(given)  # the first layer it starts, its edge short and clear
            rows.insert(rows.index(state), given)
    return rows


class StepTemplate:
    """The unrolled DAG as a per-step template: in-edges of one (vector, t) on demand."""

    def __init__(self, unrolled: Unrolled) -> None:
        folded = unrolled.folded
        order = nx.get_node_attributes(folded, "order")
        self.unrolled = unrolled
        self.initial = {v: frozenset(ts) for v, ts in unrolled.initial.items()}
        self.feeds = {
            v: sorted(
                ((u, key, data) for u, _, key, data in folded.in_edges(v, keys=True, data=True)),
                key=lambda item: (order[item[0]], item[1]),
            )
            for v in folded
        }
        self.lags = sorted({lag for _, _, lag in folded.edges(data="lag") if lag})
        self.given = given_starts(unrolled)  # state -> (input, step): a start state's node
        self.given_at = set(self.given.values())

    def role(self, node: Step) -> str | None:
        """The node's role, `init` for an initial state, `given` for a start state given
        with the data, None when it is not in the DAG."""
        vector, t = node
        if 0 <= t < self.unrolled.steps and self.unrolled.present[vector][t]:
            return self.unrolled.folded.nodes[vector]["role"]
        if node in self.given_at:
            return "given"
        return "init" if t in self.initial.get(vector, ()) else None

    def in_edges(self, node: Step) -> list[tuple[Step, dict]]:
        """The (source, attributes) pairs feeding a node of the unrolled DAG."""
        vector, t = node
        unrolled = self.unrolled
        role = self.role(node)
        if role == "given":
            return []
        if role == "init":
            handed = (
                unrolled.handover.get(vector),
                unrolled.handover_rev.get(vector),
                self.given.get(vector),
            )
            attrs = {"weight": None, "role": "handover", "lag": None}
            return [(origin, dict(attrs)) for origin in handed if origin is not None]
        found = []
        for source, _, data in self.feeds[vector]:
            read = t - data["lag"]
            if data["role"] != "recurrent" and not (
                0 <= read < unrolled.steps and unrolled.present[source][read]
            ):
                continue
            found.append(((source, read), {k: data[k] for k in ("weight", "role", "lag")}))
        return found

    def cone(self, node: Step) -> set[Step]:
        """The node and its ancestors: everything its value depends on."""
        seen, stack = {node}, [node]
        while stack:
            for source, _ in self.in_edges(stack.pop()):
                if source not in seen:
                    seen.add(source)
                    stack.append(source)
        return seen


def kept_columns(
    unrolled: Unrolled, max_columns: int = 12, keep: tuple[int, ...] = ()
) -> list[Column]:
    """The columns drawn: every step when T <= max_columns, else the first and last few.

    Steps where something starts, stops or is handed over are kept too, as are the
    steps in `keep`, and initial states outside 0..T-1 always get their own columns;
    each stretch left out becomes one elided column.
    """
    steps = unrolled.steps
    outside = {t for ts in unrolled.initial.values() for t in ts if not 0 <= t < steps}
    if steps <= max_columns:
        kept = set(range(steps))
    else:
        head = max(1, max_columns // 2)
        tail = max(1, max_columns - 1 - head)
        kept = set(range(head)) | set(range(steps - tail, steps))
        kept |= set(_anchors(unrolled)[:max_columns]) | set(keep)
    columns, previous = [], None
    for t in sorted(kept | outside):
        if previous is not None and 0 <= previous and t < steps and t - previous > 1:
            if t - previous == 2:
                columns.append(Column(previous + 1, previous + 1))
            else:
                columns.append(Column(previous + 1, t - 1))
        columns.append(Column(t, t))
        previous = t
    return columns


def _anchors(unrolled: Unrolled) -> list[int]:
    """Steps inside 0..T-1 worth keeping: first and last steps of vectors, hand-overs."""
    found = set()
    for mask in unrolled.present.values():
        where = mask.nonzero()[0]
        if len(where):
            found |= {int(where[0]), int(where[-1])}
    for steps in unrolled.initial.values():
        found |= {t for t in steps if 0 <= t < unrolled.steps}
    found |= {step for _, step in unrolled.handover.values()}
    found |= {step for _, step in unrolled.handover_rev.values()}
    return sorted(found)


def unfolded_view(
    unrolled: Unrolled,
    max_columns: int = 12,
    keep: tuple[int, ...] = (),
    merge: dict[str, str] | None = None,
) -> UnfoldedView:
    """Collect the kept columns' nodes and edges, plus ellipsis nodes and continuations.

    `merge` (readout -> output, `style.merged_readouts`) draws each such pair as the
    output's one node, where both are computed at the same steps."""
    template = StepTemplate(unrolled)
    columns = kept_columns(unrolled, max_columns, keep)
    rows = [v for v in row_order(unrolled.folded) if _drawn(unrolled, v)]
    firsts = [c.first for c in columns]

    def place(node: Step) -> Node:
        index = bisect.bisect_right(firsts, node[1]) - 1
        if columns[index].elided:
            return Node(node[0], None, index, "elided")
        return Node(node[0], node[1], index, template.role(node))

    nodes = [
        Node(v, c.first, i, role)
        for i, c in enumerate(columns)
        if not c.elided
        for v in rows
        if (role := template.role((v, c.first)))
    ]
    nodes += _ellipses(unrolled, template, columns, rows)
    edges = {}
    for target in _targets(template, columns, nodes):
        head = place(target)
        for source, attrs in template.in_edges(target):
            tail = place(source)
            if head.step is None and tail.step is None:
                continue
            role = attrs["role"] if tail.step is not None and head.step is not None else "elided"
            edge = Edge(tail, head, attrs["weight"], role, attrs["lag"])
            edges.setdefault((tail, head, edge.weight, role), edge)
    renamed = same_steps(unrolled, merge or {})
    if renamed:
        rows = [v for v in rows if v not in renamed]
        nodes = [n for n in nodes if n.vector not in renamed.values()]
        nodes = [_renamed(n, renamed) for n in nodes]
        edges = _contracted(edges.values(), renamed)
    rank = {v: i for i, v in enumerate(rows)}
    nodes.sort(key=lambda n: (n.column, rank[n.vector]))
    ordered = sorted(edges.values(), key=lambda e: _edge_key(e, rank))
    return UnfoldedView(tuple(rows), tuple(columns), tuple(nodes), tuple(ordered))


def same_steps(unrolled: Unrolled, merge: dict[str, str]) -> dict[str, str]:
    """The readout -> output pairs of `merge` computed at exactly the same steps."""
    present = unrolled.present
    return {
        readout: output
        for readout, output in merge.items()
        if (present[readout] == present[output]).all() and not unrolled.initial.get(readout)
    }


def _renamed(node: Node, renamed: dict[str, str]) -> Node:
    if node.vector not in renamed:
        return node
    role = "output" if node.step is not None else node.role
    return replace(node, vector=renamed[node.vector], role=role)


def _contracted(edges, renamed: dict[str, str]) -> dict:
    """Edges with each merged readout's node replaced by its output's, emits dropped."""
    found = {}
    for edge in edges:
        if edge.tail.vector in renamed and edge.head.vector == renamed[edge.tail.vector]:
            continue
        tail, head = _renamed(edge.tail, renamed), _renamed(edge.head, renamed)
        edge = replace(edge, tail=tail, head=head)
        found.setdefault((tail, head, edge.weight, edge.role), edge)
    return found


def _drawn(unrolled: Unrolled, vector: str) -> bool:
    if unrolled.folded.nodes[vector].get("given_state"):
        return any(given == vector for given, _ in given_starts(unrolled).values())
    return bool(unrolled.present[vector].any() or unrolled.initial.get(vector))


def _ellipses(unrolled, template, columns, rows) -> list[Node]:
    found = []
    for i, column in enumerate(columns):
        if not column.elided:
            continue
        for vector in rows:
            inside = unrolled.present[vector][max(column.first, 0) : column.last + 1].any()
            inits = template.initial.get(vector, ())
            if inside or any(column.first <= t <= column.last for t in inits):
                found.append(Node(vector, None, i, "elided"))
    return found


def _targets(template: StepTemplate, columns: list[Column], nodes: list[Node]) -> list[Step]:
    """Kept nodes, plus nodes in elided stretches that kept nodes feed (continuations)."""
    targets = [(n.vector, n.step) for n in nodes if n.step is not None]
    kept = [c.first for c in columns if not c.elided]
    for column in columns:
        if not column.elided:
            continue
        steps = {r + lag for r in kept for lag in template.lags}
        steps |= {t for ts in template.initial.values() for t in ts}
        for t in sorted(s for s in steps if column.first <= s <= column.last):
            targets += [(v, t) for v in template.feeds if template.role((v, t))]
    return targets


def _edge_key(edge: Edge, rank: dict[str, int]) -> tuple:
    return (
        edge.head.column,
        rank[edge.head.vector],
        edge.tail.column,
        rank[edge.tail.vector],
        edge.weight or "",
        edge.role,
    )
