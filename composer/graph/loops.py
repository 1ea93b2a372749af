"""Loops in the folded graph: the zero-lag order within a step, and the loops refused.

A cycle whose delays sum to zero is an algebraic loop (each step would need its own
result); two cycles of opposite signs through the same vectors combine into a cycle of
the unrolled graph. `check_loops` refuses both, naming the loop the same way every run.
"""

from __future__ import annotations

import collections
import itertools

import networkx as nx

from composer.errors import SpecError

__all__ = ["instant_graph", "check_loops"]


def instant_graph(folded: nx.MultiDiGraph) -> nx.DiGraph:
    """The zero-lag edges: what each step computes from what, a DAG (no algebraic loop)
    that gives the order of the vectors within one step."""
    instant = nx.DiGraph()
    instant.add_nodes_from(folded.nodes)
    instant.add_edges_from((u, v) for u, v, lag in folded.edges(data="lag") if lag == 0)
    return instant


def _cycle_lags(graph: nx.MultiDiGraph, cycle: list[str]) -> set[int]:
    """Every total lag a node cycle can have, choosing one parallel edge per hop."""
    hops = [
        sorted({data["lag"] for data in graph.get_edge_data(u, v).values()})
        for u, v in zip(cycle, cycle[1:] + cycle[:1])
    ]
    totals = {0}
    for lags in hops:
        totals = {t + lag for t in totals for lag in lags}
        if len(totals) > 64:  # enough to decide the sign question on specs people write
            totals = {min(totals), max(totals)} | ({0} if 0 in totals else set())
    return totals


def _cycle_path(graph: nx.MultiDiGraph, cycle: list[str]) -> tuple:
    paths = [
        data["path"]
        for u, v in zip(cycle, cycle[1:] + cycle[:1])
        for data in graph.get_edge_data(u, v).values()
    ]
    connections = [p for p in paths if p[0] == "connections"]
    return min(connections or paths)


def _cycles(graph: nx.MultiDiGraph) -> list[list[str]]:
    """Simple cycles in a stable order, each starting at its earliest node."""
    found = []
    for cycle in itertools.islice(nx.simple_cycles(nx.DiGraph(graph)), _MAX_CYCLES + 1):
        first = min(range(len(cycle)), key=lambda i: graph.nodes[cycle[i]]["order"])
        found.append(cycle[first:] + cycle[:first])
    return sorted(found, key=lambda c: (len(c), [graph.nodes[n]["order"] for n in c]))


def check_loops(graph: nx.MultiDiGraph) -> None:
    """Refuse algebraic loops, and loops running both ways in time (a cyclic unrolling).

    A cycle whose delays sum to zero needs its own result to compute itself; two cycles of
    opposite signs through the same vectors combine into such a loop in the unrolled graph.
    """
    _check_instant_loops(graph)
    signs: dict[frozenset, dict[int, list[str]]] = {}
    components = [frozenset(c) for c in nx.strongly_connected_components(graph)]
    of = {n: c for c in components for n in c}
    cycles = _cycles(graph)
    if len(cycles) > _MAX_CYCLES:  # too many to name one: decide on the delays alone
        _check_signs(graph, components)
        _check_loop_edges(graph)
        return
    for cycle in cycles:
        lags = _cycle_lags(graph, cycle)
        shown = " -> ".join(cycle + cycle[:1])
        if 0 in lags:
            raise SpecError(
                f"algebraic loop {shown}: its delays sum to 0, so each step would "
                "need its own result; add a delay",
                _cycle_path(graph, cycle),
            )
        seen = signs.setdefault(of[cycle[0]], {})
        for sign in {1 if lag > 0 else -1 for lag in lags}:
            seen.setdefault(sign, cycle)
        if len(seen) == 2:
            forward, backward = (" -> ".join(c + c[:1]) for c in (seen[1], seen[-1]))
            raise SpecError(
                f"the loop {forward} runs forward in time and {backward} backward; "
                "together they make the unrolled graph cyclic",
                _cycle_path(graph, cycle),
            )
    _check_loop_edges(graph)


def _check_loop_edges(graph: nx.MultiDiGraph) -> None:
    """Refuse an edge inside a loop that reads against the loop's direction in time: a loop
    is computed step by step, so a forward loop cannot read a member's later steps (nor a
    backward loop its earlier ones), even when every cycle's delays add up the right way."""
    key = _order(graph)
    for component in nx.strongly_connected_components(graph):
        edges = [
            (u, v, data)
            for u, v, data in graph.subgraph(component).edges(data=True)
            if len(component) > 1 or u == v
        ]
        recurrent = [data["lag"] for _, _, data in edges if data["role"] == "recurrent"]
        lags = recurrent or [data["lag"] for _, _, data in edges]
        if not lags:
            continue
        sign = 1 if max(lags) > 0 else -1
        against = sorted(
            (e for e in edges if e[2]["lag"] * sign < 0), key=lambda e: (key(e[0]), key(e[1]))
        )
        if against:
            u, v, data = against[0]
            way = "ahead" if sign > 0 else "back"
            raise SpecError(
                f"`{v}` reads `{u}` {abs(data['lag'])} step(s) {way} inside a loop that runs "
                f"{'forward' if sign > 0 else 'backward'} in time, which computes step by "
                "step: that step is not computed yet",
                data["path"],
            )


_MAX_CYCLES = 10_000  # simple cycles named one by one; beyond, `_check_signs` decides


def _order(graph: nx.MultiDiGraph):
    return lambda node: (graph.nodes[node]["order"], node)


def _check_instant_loops(graph: nx.MultiDiGraph) -> None:
    """Refuse a cycle of zero-delay edges, found directly (however many cycles there are)
    and named the same way every time: the shortest one through the earliest node."""
    instant = instant_graph(graph)
    if nx.is_directed_acyclic_graph(instant):
        return
    key = _order(graph)
    looped = [c for c in nx.strongly_connected_components(instant) if _is_loop(instant, c)]
    start = min((min(c, key=key) for c in looped), key=key)
    cycle = _shortest_cycle(instant, start, key)
    raise SpecError(
        f"algebraic loop {' -> '.join(cycle + cycle[:1])}: its delays sum to 0, so each "
        "step would need its own result; add a delay",
        _cycle_path(graph, cycle),
    )


def _is_loop(graph: nx.DiGraph, component: set) -> bool:
    return len(component) > 1 or any(graph.has_edge(n, n) for n in component)


def _shortest_cycle(graph: nx.DiGraph, start: str, key) -> list[str]:
    """The shortest cycle through `start` (breadth first, successors in `key` order)."""
    parent = {start: None}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.successors(node), key=key):
            if nxt == start:
                cycle = [node]
                while parent[cycle[-1]] is not None:
                    cycle.append(parent[cycle[-1]])
                return cycle[::-1]
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is on no cycle")


def _check_signs(graph: nx.MultiDiGraph, components: list[frozenset]) -> None:
    """Refuse a strongly connected part that has a cycle with delays summing to <= 0 and
    one summing to >= 0 (Bellman-Ford: no enumeration of cycles, however many)."""
    key = _order(graph)
    for component in sorted(components, key=lambda c: min(map(key, c))):
        if len(component) < 2:
            continue
        part = graph.subgraph(component).copy()  # negative_edge_cycle adds a node
        scale = len(component) + 1  # a cycle of k <= n edges and total lag d: d * scale - k
        at_most_zero = nx.negative_edge_cycle(part, lambda u, v, d, n=scale: _lag(d) * n - 1)
        at_least_zero = nx.negative_edge_cycle(part, lambda u, v, d, n=scale: -_lag(d, max) * n - 1)
        if at_most_zero and at_least_zero:
            names = sorted(component, key=key)
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            paths = [data["path"] for _, _, data in part.edges(data=True)]
            connections = [p for p in paths if p[0] == "connections"]
            raise SpecError(
                f"the loops through {shown} run both ways in time (or their delays sum to "
                "0); together they make the unrolled graph cyclic",
                min(connections or paths),
            )


def _lag(edges: dict, pick=min) -> int:
    """The smallest (or largest) lag among parallel edges (networkx passes their dict)."""
    if "lag" in edges or not all(isinstance(data, dict) for data in edges.values()):
        return edges.get("lag", 0)
    return pick((data.get("lag", 0) for data in edges.values()), default=0)
