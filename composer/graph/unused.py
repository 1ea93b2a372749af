"""Unused parts: inputs, layers and weights that no emitted output depends on at any T.

A spec can say more than its outputs need: an input nothing reads, a layer whose value
reaches no output, a weight that only ever multiplies an absent vector (a decoder's `Wx`
reading an encoder's input outside its window). Such parts validate, count in the
parameter total and train to nothing. `unused_parts` names each one and says why;
`validate` shows them as warnings, and `--strict` refuses them.

"At any T" is decided on the unrollings at the spec's `steps` and at a longer T that
every window and delay fits in (windows count from both ends, so these two see every
placement a window can take relative to the others); a part used at either is used.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import networkx as nx
import numpy as np

from composer.errors import SpecError
from composer.graph.handover import handover_origins
from composer.graph.unrolled import unroll
from composer.spec.windows import window_bounds

__all__ = ["Unused", "unused_parts", "needed_inputs"]


@dataclass(frozen=True)
class Unused:
    """One unused part: its spec path, what it is (`input`, `layer`, `weight`), its name
    and why no output depends on it."""

    path: tuple
    what: str
    name: str
    why: str

    @property
    def message(self) -> str:
        return f"{self.what} `{self.name}` {self.why}"


def needed_inputs(graph: nx.MultiDiGraph) -> list[str]:
    """The inputs from which some emitted output can be reached, in spec order: the ones a
    run must be given (an input nothing reads may be left out). Found once per graph (every
    run asks, and the search costs about 0.2 ms)."""
    if graph not in _needed:
        _needed[graph] = tuple(_reachable_inputs(graph))
    return list(_needed[graph])


_needed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # graph -> its needed inputs


def _reachable_inputs(graph: nx.MultiDiGraph) -> list[str]:
    flow = nx.DiGraph(graph)
    flow.add_edges_from(  # a hand-over of `initial_state` is a flow the edges do not show
        (origin, node) for node, data in graph.nodes(data=True) for origin in handover_origins(data)
    )
    flow.add_edges_from(  # so is an input that gives a start state (`initial_state: h0`)
        (given, node) for node, given in graph.nodes(data="given") if given
    )
    outputs = [n for n, role in graph.nodes(data="role") if role == "output"]
    reach = set().union(*(nx.ancestors(flow, o) for o in outputs)) if outputs else set()
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    return [n for n, data in nodes if data["role"] == "input" and n in reach]


def _trial_steps(graph: nx.MultiDiGraph) -> list[int]:
    """The spec's T, and a T longer than every window bound and delay put together."""
    bounds = [abs(b) for _, w in graph.nodes(data="window") for b in window_bounds(w) if b]
    lags = [abs(lag) for *_, lag in graph.edges(data="lag")]
    lags += [abs(lag) for _, lag in graph.nodes(data="lag") if lag]
    steps = graph.graph["steps"]
    return [steps, 2 * (sum(bounds) + sum(lags)) + steps + 1]


def unused_parts(graph: nx.MultiDiGraph) -> list[Unused]:
    """Every input, layer and weight of a folded graph (from `build`) that no emitted output
    depends on at any T, in spec order, each with the reason."""
    present: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for steps in _trial_steps(graph):
        try:
            unrolled = unroll(graph, steps)
        except SpecError:  # a window selecting no step at this T: another T decides
            continue
        for node, mask in unrolled.present.items():
            present[node] = present.get(node, False) | mask.any()
        for node, given in graph.nodes(data="given"):  # a start state is read before step 0
            if given and unrolled.initial.get(node):
                present[given] = True
        used |= _used_weights(unrolled)
    if not present:
        return []
    found = _unused_vectors(graph, present)
    covered = {u.name for u in found}
    for source, target, data in sorted(graph.edges(data=True), key=lambda e: e[2]["path"]):
        weight, layer = data["weight"], graph.nodes[target].get("layer")
        if weight is None or weight in used or layer in covered or weight in covered:
            continue
        covered.add(weight)
        found.append(Unused(data["path"], "weight", weight, _why_weight(graph, source, data)))
    return sorted(found, key=lambda u: _path_key(u.path))


def _path_key(path: tuple) -> tuple:
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in path)


def _unused_vectors(graph: nx.MultiDiGraph, present: dict) -> list[Unused]:
    found, layers = [], {}
    for node, data in graph.nodes(data=True):
        if data["role"] in ("state", "readout", "dense"):
            layers.setdefault(data["layer"], []).append(node)
    for node, data in graph.nodes(data=True):
        if data["role"] != "input" or present[node]:
            continue
        readers = sorted({graph.nodes[t].get("layer", t) for t in graph.successors(node)})
        readers += sorted(d["layer"] for _, d in graph.nodes(data=True) if d.get("given") == node)
        why = (
            "is read by no layer or connection"
            if not readers
            else f"reaches no emitted output (read by {_names(readers)}, at steps no output needs)"
        )
        found.append(Unused(("inputs", _index(graph, node)), "input", node, why))
    for layer, nodes in layers.items():
        if any(present[n] for n in nodes):
            continue
        path = graph.nodes[nodes[0]]["path"]
        readers = sorted(
            {graph.nodes[t].get("layer", t) for n in nodes for t in graph.successors(n)} - {layer}
        )
        why = (
            "is read by no layer, connection or output"
            if not readers
            else f"reaches no emitted output (read by {_names(readers)}, at steps no output needs)"
        )
        found.append(Unused(path, "layer", layer, why + "; its weights count for nothing"))
    return found


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _index(graph: nx.MultiDiGraph, node: str) -> int:
    inputs = sorted(
        (data["order"], n) for n, data in graph.nodes(data=True) if data["role"] == "input"
    )
    return [n for _, n in inputs].index(node)


def _used_weights(unrolled) -> set[str]:
    """The weights some computed step multiplies a computed (or initial) value by."""
    used, steps = set(), unrolled.steps
    for source, target, data in unrolled.folded.edges(data=True):
        if data["weight"] is None:
            continue
        at = unrolled.steps_of(target)
        if data["role"] == "recurrent":
            node = unrolled.folded.nodes[target]
            reads_handover = target in unrolled.handover or (
                bool(unrolled.initial.get(target)) and bool(node.get("given"))
            )
            inside = (at - data["lag"] >= 0) & (at - data["lag"] < steps)
            if reads_handover or np.any(unrolled.present[source][(at - data["lag"])[inside]]):
                used.add(data["weight"])
            continue
        reads = at - data["lag"]
        inside = (reads >= 0) & (reads < steps)
        if np.any(unrolled.present[source][reads[inside]]):
            used.add(data["weight"])
    return used


def _why_weight(graph: nx.MultiDiGraph, source: str, data: dict) -> str:
    shown = graph.nodes[source].get("layer", source)
    if data["role"] == "recurrent":
        return "never multiplies anything but a zero initial state (the layer is one step long)"
    lag = data["lag"]
    when = "t" if lag == 0 else f"t{-lag:+d}"
    return (
        f"multiplies `{shown}` at {when} only at steps where `{shown}` is absent (outside its "
        "window or before step 0), so it changes no output"
    )
