"""The diagrams' legend: the key of node shapes and edge styles of the roles present."""

from __future__ import annotations

import networkx as nx

from composer.draw.dot import (
    CONE,
    EDGE_KEY,
    FADED,
    FILL,
    node_shape,
    state_picture,
)
from composer.draw.style import Style, merged_readouts

__all__ = ["legend_entries"]


def legend_entries(
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
        attrs = node_shape(role, state_picture(data) if role == "state" else None)
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
