"""The pipeline in one place: build -> unroll (within a memory limit) -> plan.

Every caller that goes from a spec or a folded graph to an unrolled network or a plan
(the executor's `run`, training, the `Network` facade, the commands) goes through here,
so the memory check before unrolling is never skipped or done twice.

Examples
--------
>>> from composer.spec.model import NetworkSpec
>>> spec = NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 3}],
...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4}],
...     "outputs": [{"name": "o", "from": "rnn"}], "steps": 6})
>>> plan_for_steps(spec).steps, plan_for_steps(spec, 3).steps
(6, 3)
"""

from __future__ import annotations

import weakref

import networkx as nx

from composer.engine.memory import check_memory, unroll_bytes
from composer.engine.plan import Plan, compile_plan
from composer.graph.folded import build
from composer.graph.unrolled import Unrolled, unroll
from composer.spec.model import NetworkSpec

__all__ = ["folded_graph", "unroll_within", "plan_for_steps", "KEPT_PLANS"]

#: plans kept per folded graph, the most recent ones: a program that calls `run` again and
#: again (a server, a notebook, a stepper's caller) plans once, not at every call, where
#: planning cost as much as running (1.3 ms of 4.6 ms for an LSTM at B = 1, T = 512)
KEPT_PLANS = 4
_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # graph -> {steps: plan}


def folded_graph(graph_or_spec: NetworkSpec | nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The folded graph of a spec (built), or the folded graph itself."""
    if isinstance(graph_or_spec, NetworkSpec):
        return build(graph_or_spec)
    if not isinstance(graph_or_spec, nx.MultiDiGraph):
        raise TypeError("expected a NetworkSpec or a folded graph from composer.graph.build")
    return graph_or_spec


def unroll_within(
    graph_or_spec: NetworkSpec | nx.MultiDiGraph,
    steps: int | None = None,
    *,
    max_memory: int | None = None,
) -> Unrolled:
    """Build if needed and unroll to `steps` (default: the spec's), refusing first
    (`ResourceError`) when unrolling would need more than `max_memory` bytes."""
    folded = folded_graph(graph_or_spec)
    steps = folded.graph["steps"] if steps is None else steps
    if max_memory is not None:
        check_memory(unroll_bytes(folded, steps), max_memory, f"unrolling to T = {steps:,}")
    return unroll(folded, steps)


def plan_for_steps(
    graph_or_spec: NetworkSpec | nx.MultiDiGraph,
    steps: int | None = None,
    *,
    max_memory: int | None = None,
) -> Plan:
    """`unroll_within`, then compiled into the plan the executor and training run; the
    last `KEPT_PLANS` plans of a folded graph are kept and given again (a plan is never
    changed once made)."""
    folded = folded_graph(graph_or_spec)
    steps = folded.graph["steps"] if steps is None else steps
    held = _plans.setdefault(folded, {})
    plan = held.pop(steps, None)
    if plan is None:
        plan = compile_plan(unroll_within(folded, steps, max_memory=max_memory))
    elif max_memory is not None:
        check_memory(unroll_bytes(folded, steps), max_memory, f"unrolling to T = {steps:,}")
    held[steps] = plan  # the most recent last
    while len(held) > KEPT_PLANS:
        del held[next(iter(held))]
    return plan
