"""Unrolling: the folded graph and T give the steps each vector is computed at, and the DAG."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from composer.errors import SpecError
from composer.graph.handover import handover_origins
from composer.graph.loops import instant_graph
from composer.spec.windows import parse_window

__all__ = ["Unrolled", "unroll", "unrolled_graph", "given_starts"]


@dataclass(frozen=True)
class Unrolled:
    """A network unrolled to `steps` steps, described without materialising a per-step graph.

    `present[v]` is a read-only boolean mask over 0..steps-1: the steps at which vector `v` is
    computed (inputs: read), already pruned to what emitted outputs need. `initial[v]` lists,
    for a state vector, the steps its recurrence reaches outside its active window: its
    initial-state nodes (zeros, or the handed-over state named by `initial_state`).
    `handover[v]` is the (source state, step) whose value those initial nodes take;
    `handover_rev[v]`, for a bidirectional source, its backward state's (state, first step),
    merged with it by the source's `merge` (the target's `initial_merge`).
    Together with the folded graph's edges and lags this is the whole unrolled DAG, a
    per-step template plus window boundaries; `unrolled_graph` materialises it.
    """

    folded: nx.MultiDiGraph
    steps: int
    present: Mapping[str, np.ndarray]
    initial: Mapping[str, tuple[int, ...]]
    handover: Mapping[str, tuple[str, int]]
    handover_rev: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    def steps_of(self, node: str) -> np.ndarray:
        """The steps at which `node` is computed, ascending."""
        return np.flatnonzero(self.present[node])

    def node_count(self) -> int:
        """Nodes of the unrolled DAG, initial-state nodes included."""
        return int(sum(int(m.sum()) for m in self.present.values())) + sum(
            len(t) for t in self.initial.values()
        )


def _window_mask(graph: nx.MultiDiGraph, node: str, steps: int) -> np.ndarray:
    data = graph.nodes[node]
    where = parse_window(data["window"], steps)
    if len(where) == 0:
        raise SpecError(
            f"window `{data['window']}` of `{node}` selects no step of 0..{steps - 1} "
            f"(T = {steps})",
            data["window_path"],
        )
    mask = np.zeros(steps, dtype=bool)
    mask[where.start : where.stop] = True
    return mask


def _shift(mask: np.ndarray, lag: int) -> np.ndarray:
    """`out[t - lag] = mask[t]`: the steps a source is read at, for a consumer's steps."""
    out = np.zeros_like(mask)
    steps = len(mask)
    if lag >= 0:
        out[: steps - lag] = mask[lag:] if lag < steps else False
    elif -lag < steps:
        out[-lag:] = mask[: steps + lag]
    return out


def _close_recurrence(need: np.ndarray, exists: np.ndarray, lag: int) -> np.ndarray:
    """Steps a recurrence s_t <- s_{t-lag} needs, from the steps `need`, within `exists`."""
    period, steps = abs(lag), len(need)
    # the chains t = c, c + period, ... are the columns of a (rows, period) grid: one
    # accumulation down the columns closes them all, however many residues there are
    rows = -(-steps // period)
    grid = np.zeros(rows * period, dtype=bool)
    grid[:steps] = need
    grid = grid.reshape(rows, period)
    if lag > 0:  # forward: every needed step needs all earlier ones of its chain
        np.logical_or.accumulate(grid[::-1], axis=0, out=grid[::-1])
    else:
        np.logical_or.accumulate(grid, axis=0, out=grid)
    return grid.reshape(-1)[:steps] & exists


def _check_alignment(graph: nx.MultiDiGraph, exists: dict, steps: int) -> None:
    if graph.graph["preset"] == "one-to-one" and steps != 1:
        raise SpecError(f"a one-to-one network has exactly 1 step, got T = {steps}", ("alignment",))
    for node, data in graph.nodes(data=True):
        if data["role"] != "output":
            continue
        for source, _ in graph.in_edges(node):
            missing = np.flatnonzero(exists[node] & ~exists[source])
            if len(missing):
                raise SpecError(
                    f"output `{node}` is emitted at step {missing[0]} where layer "
                    f"`{data['layer']}` is not active (T = {steps})",
                    data["window_path"],
                )


def unroll(graph: nx.MultiDiGraph, steps: int) -> Unrolled:
    """Unroll a folded graph (from `build`) to `steps` steps, pruned to what outputs need.

    Examples
    --------
    >>> from composer.graph.folded import build
    >>> from composer.spec.model import NetworkSpec
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4}],
    ...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"})
    >>> unrolled = unroll(build(spec), 5)
    >>> unrolled.steps_of("o").tolist(), unrolled.steps_of("rnn.s").tolist()
    ([4], [0, 1, 2, 3, 4])
    >>> unrolled.initial["rnn.s"]
    (-1,)
    """
    given = steps
    try:
        steps = -1 if isinstance(given, bool) else operator.index(given)  # numpy ints too
    except TypeError:
        steps = -1
    if steps < 1:
        raise SpecError(f"steps must be an integer >= 1, got {given!r}", ("steps",))
    exists = {node: _window_mask(graph, node, steps) for node in graph}
    _check_alignment(graph, exists, steps)
    need = {
        node: exists[node].copy() if data["role"] == "output" else np.zeros(steps, dtype=bool)
        for node, data in graph.nodes(data=True)
    }
    states = [n for n, d in graph.nodes(data=True) if d["role"] == "state"]
    order = list(reversed(list(nx.topological_sort(instant_graph(graph)))))
    total = -1
    while total != (total := sum(int(m.sum()) for m in need.values())):
        for node in order:
            for source, _, data in graph.in_edges(node, data=True):
                if source == node:
                    need[node] = _close_recurrence(need[node], exists[node], data["lag"])
                else:
                    need[source] |= _shift(need[node], data["lag"]) & exists[source]
            if need[node].any():
                for origin in handover_origins(graph.nodes[node]):
                    need[origin][_final_step(exists[origin], graph.nodes[origin]["lag"])] = True
    initial, handover, handover_rev = {}, {}, {}
    for node in states:
        lag = graph.nodes[node]["lag"]
        reads = np.flatnonzero(need[node]) - lag
        inside = (reads >= 0) & (reads < steps)
        inside[inside] = exists[node][reads[inside]]
        initial[node] = tuple(reads[~inside].tolist())  # Python ints, made in C
        origin = graph.nodes[node]["initial_state"]
        if origin is not None and initial[node]:
            handover[node] = (origin, _final_step(exists[origin], graph.nodes[origin]["lag"]))
            _check_causal_handover(graph, node, need[node], handover[node], steps)
            rev = graph.nodes[node].get("initial_rev")
            if rev is not None:  # a bidirectional source: its backward copy's first step
                handover_rev[node] = (rev, _final_step(exists[rev], graph.nodes[rev]["lag"]))
    for mask in need.values():
        mask.flags.writeable = False
    return Unrolled(graph, steps, need, initial, handover, handover_rev)


def _check_causal_handover(graph, node: str, need: np.ndarray, handover, steps: int) -> None:
    """Refuse a forward layer that starts from a state computed after it starts, unless
    the spec says so (`initial_state: {from: r, at: end}`, a two-pass design)."""
    data = graph.nodes[node]
    origin, final = handover
    first = int(np.argmax(need))
    if data["lag"] < 0 or final < first or data.get("two_pass"):
        return
    layer, source = data["layer"], graph.nodes[origin]["layer"]
    raise SpecError(
        f"`{layer}` starts at step {first} from the last state of `{source}`, which is only "
        f"known at step {final} (T = {steps}): its first steps would depend on later ones; "
        f"start `{layer}` after `{source}` ends (`active`), or say "
        f"`initial_state: {{from: {source}, at: end}}` for a two-pass design",
        data["path"] + ("initial_state",),
    )


def _final_step(exists: np.ndarray, lag: int) -> int:
    """The step holding a layer's last state: its last active step (first, if backward)."""
    where = np.flatnonzero(exists)
    return int(where[-1] if lag > 0 else where[0])


def given_starts(unrolled: Unrolled) -> dict[str, tuple[str, int]]:
    """`{state: (input, step)}` for each state that starts from a state given with the
    data (`initial_state: h0`): the input's one node of the unrolled DAG sits at the
    state's first initial step (the earliest; the latest for a backward layer)."""
    found = {}
    for target, given in unrolled.folded.nodes(data="given"):
        starts = unrolled.initial.get(target, ())
        if given and starts:
            lag = unrolled.folded.nodes[target]["lag"]
            found[target] = (given, min(starts) if lag > 0 else max(starts))
    return found


def _parallel_edges(folded: nx.MultiDiGraph) -> dict[tuple, list[tuple[str | None, str]]]:
    """Folded edges grouped by (source, target, lag): those land on the same unrolled pair.

    A recurrence comes first in its group so that it names the edge.
    """
    groups: dict[tuple, list[tuple[str | None, str]]] = {}
    for source, target, data in folded.edges(data=True):
        groups.setdefault((source, target, data["lag"]), []).append((data["weight"], data["role"]))
    return {
        key: sorted(uses, key=lambda use: use[1] != "recurrent") for key, uses in groups.items()
    }


def unrolled_graph(unrolled: Unrolled) -> nx.DiGraph:
    """The unrolled DAG as networkx: nodes (vector, t), edges keep the weights they use.

    Each edge has `weight` (the first weight, or None for an identity) and `weights` (all
    of them: two folded edges between the same vectors at the same lag, such as `input:
    [x, x]`, share one unrolled edge). Initial-state nodes have `role="init"`; an edge from
    the handing-over layer's last state reaches them when `initial_state` is set, and one
    from the input (`role="given"`, at the first initial step) when it names an input.
    """
    graph, folded = nx.DiGraph(), unrolled.folded
    for node, data in folded.nodes(data=True):
        attrs = {"role": data["role"], "vector": node, "size": data["size"]}
        graph.add_nodes_from(((node, int(t)), attrs) for t in unrolled.steps_of(node))
        init = {"role": "init", "vector": node, "size": data["size"]}
        graph.add_nodes_from(((node, t), init) for t in unrolled.initial.get(node, ()))
    for (source, target, lag), uses in _parallel_edges(folded).items():
        steps = unrolled.steps_of(target)
        reads = steps - lag
        inside = (reads >= 0) & (reads < unrolled.steps)
        inside[inside] = unrolled.present[source][reads[inside]]
        recurrent = tuple(w for w, role in uses if role == "recurrent")
        attrs = {"weights": tuple(w for w, _ in uses), "role": uses[0][1], "lag": lag}
        attrs["weight"] = attrs["weights"][0]
        graph.add_edges_from(
            (((source, int(r)), (target, int(t))) for r, t in zip(reads[inside], steps[inside])),
            **attrs,
        )
        if recurrent:  # outside its window a recurrence reads the initial state
            outside = ~inside
            graph.add_edges_from(
                (
                    ((source, int(r)), (target, int(t)))
                    for r, t in zip(reads[outside], steps[outside])
                ),
                weight=recurrent[0],
                weights=recurrent,
                role="recurrent",
                lag=lag,
            )
    given = given_starts(unrolled)
    for name, step in given.values():
        graph.add_node((name, step), role="given", vector=name, size=folded.nodes[name]["size"])
    handovers = [*given.items(), *unrolled.handover.items(), *unrolled.handover_rev.items()]
    for target, (origin, step) in handovers:  # a start state given, or handed over
        graph.add_edges_from(
            (((origin, step), (target, t)) for t in unrolled.initial[target]),
            weight=None,
            weights=(),
            role="handover",
            lag=None,
        )
    return graph
