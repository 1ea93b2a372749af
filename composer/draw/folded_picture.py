"""The folded network as DOT text: x at the bottom, loops on the states."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from composer.draw.dot import (
    CONE,
    CONE_EDGE,
    EDGE_STYLE,
    FADED,
    FADED_LINE,
    FADED_TEXT,
    attr_list,
    block_shape,
    header,
    html_text,
    node_shape,
    small,
    state_picture,
)
from composer.draw.legend import legend_entries
from composer.draw.style import DEFAULT, Style, merged_readouts
from composer.draw.view import (
    display_names,
    folded_edge_id,
    tapped_pairs,
    weight_label,
)
from composer.graph.handover import handover_origins
from composer.graph.loops import instant_graph
from composer.kinds import KINDS

__all__ = ["folded_dot"]


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
    legend = legend_entries(graph, style, shaded=cone is not None)
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
    attrs = node_shape(role or data["role"], state_picture(data))
    attrs["label"] = f"<B>{html_text(name)}</B><BR/>{small(html_text(desc))}"
    return attrs


_MERGE_WORDS = {"mean": "mean of fwd, bwd", "mul": "fwd × bwd"}


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
        label += f" ({'×'.join(map(str, block_shape(data)))})"
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
        label += f" ({'×'.join(map(str, block_shape(taps[0])))} each)"
    return html_text(label)
