"""Dependencies: for each emitted output step, the input steps it depends on."""

from __future__ import annotations

import networkx as nx
import numpy as np

from composer.graph.unrolled import Unrolled, unrolled_graph

__all__ = ["dependencies"]


def dependencies(unrolled: Unrolled) -> dict[str, dict[int, dict[str, list[int]]]]:
    """`{output: {t: {input: [steps]}}}`: the input steps each emitted output step reads.

    An input that gives a layer's start state (`initial_state: h0`) has no steps: when an
    output step depends on it, it is listed with an empty list, `{"h0": []}`.

    Read off the unrolled DAG: an input step is a dependency when a path leads from it to
    the output step. Each node carries one integer used as a bit set over all input steps,
    so a whole sequence costs one pass in topological order, not one search per output.

    Examples
    --------
    >>> from composer.graph.folded import build
    >>> from composer.spec.model import NetworkSpec
    >>> from composer.graph.unrolled import unroll
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4}],
    ...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"})
    >>> dependencies(unroll(build(spec), 5))
    {'o': {4: {'x': [0, 1, 2, 3, 4]}}}
    """
    graph = unrolled_graph(unrolled)
    folded, steps = unrolled.folded, unrolled.steps
    inputs = [n for n, role in folded.nodes(data="role") if role == "input"]
    offset = {name: i * (steps + 1) for i, name in enumerate(inputs)}
    given = {n for n, flag in folded.nodes(data="given_state") if flag}
    waiting = dict(graph.out_degree())
    bits: dict[tuple[str, int], int] = {}
    result: dict[str, dict[int, dict[str, list[int]]]] = {
        n: {} for n, role in folded.nodes(data="role") if role == "output"
    }
    for node in nx.lexicographical_topological_sort(graph, key=_order_key):
        vector, t = node
        if vector in given:  # a start state has no steps: one bit stands for all of it
            t = 0
        value = 1 << (offset[vector] + t) if vector in offset else 0
        for parent in graph.predecessors(node):
            value |= bits[parent]
            waiting[parent] -= 1
            if not waiting[parent]:
                del bits[parent]  # every consumer has read it: keep memory to a frontier
        if vector in result:
            result[vector][t] = _decode(value, inputs, offset, steps, given)
        if waiting[node]:
            bits[node] = value
    return {name: dict(sorted(per_step.items())) for name, per_step in result.items()}


def _order_key(node: tuple[str, int]) -> tuple:
    return (node[1], node[0])


def _decode(value: int, inputs: list[str], offset: dict[str, int], steps: int, given=()):
    found = {}
    for name in inputs:
        chunk = (value >> offset[name]) & ((1 << steps) - 1)
        if chunk and name in given:
            found[name] = []  # the start state as a whole: it has no steps
        elif chunk:
            raw = np.frombuffer(chunk.to_bytes((steps + 7) // 8, "little"), dtype=np.uint8)
            found[name] = np.flatnonzero(np.unpackbits(raw, bitorder="little")).tolist()
    return found
