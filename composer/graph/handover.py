"""Start states: `initial_state` as a hand-over from another layer's final state, given
with the data as an input, or learned (`learn`), each checked and marked on the folded graph."""

from __future__ import annotations

import networkx as nx

from composer.errors import SpecError
from composer.graph.names import resolve, state_nodes
from composer.kinds import KINDS
from composer.spec.model import NetworkSpec

__all__ = ["LEARN", "check_initial_states", "handover_origins", "given_states"]

#: `initial_state: learn`: the layer starts from a trained vector `<layer>.s0`
LEARN = "learn"


def check_initial_states(graph: nx.MultiDiGraph, spec: NetworkSpec) -> None:
    layers = {layer.name: layer for layer in spec.layers}
    for i, layer in enumerate(spec.layers):
        source_name = getattr(layer, "initial_source", None)
        if source_name is None:
            continue
        path = ("layers", i, "initial_state")
        if source_name == LEARN:
            _learned_initial_state(graph, layer, layers, path, spec)
            continue
        if not isinstance(layer.initial_state, str):
            path += ("from",)
        given = next((inp for inp in spec.inputs if inp.name == source_name), None)
        if given is not None and path[-1] == "from":
            raise SpecError(
                f"`{source_name}` is an input: a start state given with the data has no end "
                f"to wait for; write `initial_state: {source_name}`",
                path,
            )
        if given is not None:
            _given_initial_state(graph, layer, given, path)
            continue
        source = layers.get(source_name)
        if source is None or not KINDS[source.kind].stateful:
            if source is None:
                resolve(graph, spec, source_name, path, what="a recurrent layer or an input")
            raise SpecError(
                f"`{source_name}` is a dense layer; `initial_state` names a recurrent layer "
                "or an input",
                path,
            )
        if source.name == layer.name:
            raise SpecError("a layer cannot start from its own last state", path)
        if layer.bidirectional:
            raise SpecError("`initial_state` to a bidirectional layer is not supported", path)
        size, merge = _final_size(source)
        if size != layer.state_size:
            what = f"state_size {source.state_size}"
            if source.bidirectional:  # its final state: both directions', merged
                what = f"a final state of size {size} (bidirectional, `merge: {merge}`)"
            raise SpecError(
                f"`{source.name}` has {what} but `{layer.name}` has state_size "
                f"{layer.state_size}; a handed-over state must have the same size",
                path,
            )
        target, origin = f"{layer.name}.s", f"{source.name}.s"
        one = graph.nodes[origin]["size"]  # P when projected
        theirs = one * (2 if source.bidirectional and merge == "concat" else 1)
        ours = graph.nodes[target]["size"]
        if theirs != ours:  # a projected state (`proj_size`) hands over P numbers
            raise SpecError(
                f"`{source.name}` has a state of size {theirs} but `{layer.name}` has one of "
                f"size {ours} (`proj_size`); a handed-over state must have the same size",
                path,
            )
        both = state_nodes(graph, source.name)
        if any(nx.has_path(graph, target, node) for node in both):
            raise SpecError(
                f"`{source.name}` depends on `{layer.name}`, so it cannot hand its "
                "last state to it",
                path,
            )
        graph.nodes[target]["initial_state"] = origin
        graph.nodes[target]["two_pass"] = not isinstance(layer.initial_state, str)
        if source.bidirectional:  # the backward copy's state at its first step joins in
            graph.nodes[target]["initial_rev"] = f"{source.name}.s_rev"
            graph.nodes[target]["initial_merge"] = merge


def _final_size(source) -> tuple[int, str]:
    """The size of a layer's final state as handed over, and how its two directions merge
    (a bidirectional layer's: concatenated, 2H, or summed, averaged or multiplied, H)."""
    merge = getattr(source, "merge", "concat")
    if not source.bidirectional:
        return source.state_size, merge
    return source.state_size * (2 if merge == "concat" else 1), merge


def handover_origins(data: dict) -> list[str]:
    """The states whose final values start a state node: none, one, or a bidirectional
    layer's two (the forward one's at its last step, the backward one's at its first)."""
    origins = [data.get("initial_state"), data.get("initial_rev")]
    return [origin for origin in origins if origin]


def _given_initial_state(graph: nx.MultiDiGraph, layer, given, path: tuple) -> None:
    """`initial_state: h0`, `h0` an input: each item's start state h, (B, H), comes with
    the data. The input has no time axis; an LSTM's c starts at zero."""
    name, node = given.name, f"{layer.name}.s"
    problem = None
    if layer.bidirectional:
        problem = "a bidirectional layer cannot start from a given state"
    elif given.vocab is not None:
        problem = f"`{name}` is a token input (`vocab`); a start state is a vector of numbers"
    elif given.window is not None:
        problem = f"`{name}` has a `window`, but a start state has no time axis; remove it"
    elif given.size != layer.state_size:
        problem = (
            f"input `{name}` has size {given.size} but `{layer.name}` has state_size "
            f"{layer.state_size}; a start state must have the same size"
        )
    elif any(True for _ in graph.out_edges(name)):
        readers = sorted({graph.nodes[t].get("layer", t) for t in graph.successors(name)})
        problem = (
            f"`{name}` is read as a sequence by {', '.join(f'`{r}`' for r in readers)}; an "
            "input that gives a start state has no steps: declare a separate input"
        )
    if problem:
        raise SpecError(problem, path)
    graph.nodes[node]["given"] = name
    graph.nodes[name]["given_state"] = True
    graph.nodes[name]["window"] = ":"  # no time axis: it is read once, before the first step


def given_states(graph: nx.MultiDiGraph) -> dict[str, int]:
    """`{input: size}` of the inputs that give a layer's start state (no time axis)."""
    return {n: d["size"] for n, d in graph.nodes(data=True) if d.get("given_state")}


def _learned_initial_state(
    graph: nx.MultiDiGraph, layer, layers: dict, path: tuple, spec: NetworkSpec
) -> None:
    named = "a layer" if LEARN in layers else None
    if named is None and any(inp.name == LEARN for inp in spec.inputs):
        named = "an input"
    if named:
        raise SpecError(
            f"`initial_state: {LEARN}` means a trained initial state, but {named} is named "
            f"`{LEARN}`; rename that {named.split()[1]}",
            path,
        )
    if layer.bidirectional:
        raise SpecError(f"`initial_state: {LEARN}` of a bidirectional layer is not supported", path)
    graph.nodes[f"{layer.name}.s"]["learned"] = f"{layer.name}.s0"
