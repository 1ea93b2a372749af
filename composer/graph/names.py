"""Names in the folded graph: a layer's state nodes, the vectors a consumer of a name reads,
and a spec's name resolved to them (or an error that suggests the closest)."""

from __future__ import annotations

import difflib

import networkx as nx

from composer.errors import SpecError
from composer.spec.model import NetworkSpec

__all__ = ["state_nodes", "layer_output", "resolve"]


def state_nodes(graph: nx.MultiDiGraph, layer: str) -> list[str]:
    """The state node ids of a layer: one, or two for a bidirectional layer."""
    return [n for n in (f"{layer}.s", f"{layer}.s_rev") if n in graph]


def layer_output(graph: nx.MultiDiGraph, name: str) -> list[tuple[str, int]]:
    """The vectors a consumer of `name` reads, as (node, size) segments concatenated in order.

    An input reads as itself; a layer as its readout y when it has one, else its state(s).
    """
    if name in graph and graph.nodes[name]["role"] == "input":
        return [(name, graph.nodes[name]["size"])]
    if f"{name}.y" in graph:
        return [(f"{name}.y", graph.nodes[f"{name}.y"]["size"])]
    if f"{name}.m" in graph and graph.nodes[f"{name}.m"]["role"] == "merge":
        return [(f"{name}.m", graph.nodes[f"{name}.m"]["size"])]
    return [(n, graph.nodes[n]["size"]) for n in state_nodes(graph, name)]


def resolve(
    graph: nx.MultiDiGraph,
    spec: NetworkSpec,
    name: str,
    path: tuple,
    what: str = "an input or a layer",
) -> list[tuple[str, int]]:
    segments = layer_output(graph, name)
    if segments:
        return segments
    if any(out.name == name for out in spec.outputs):
        raise SpecError(f"`{name}` is an output; expected {what}", path)
    known = [inp.name for inp in spec.inputs] + [layer.name for layer in spec.layers]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else f"; defined: {', '.join(known)}"
    raise SpecError(f"unknown name `{name}`{hint}", path)
