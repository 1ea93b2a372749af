"""The plan: an unrolled network compiled once into a flat, ordered, frozen schedule.

`compile_plan` turns an `Unrolled` value into groups of vectors to compute, in an order
where every group's sources come first. A group is a strongly connected component of the
folded graph: vectors that feed each other across time and so must advance step by step
together. Everything else runs a whole range of steps at a time, which is what lets the
executor project the inputs of many steps in one matrix product.

Group kinds:

- `input`: an input sequence, read from the caller's array;
- `feedforward`: a readout or a dense layer that nothing in its own past feeds;
- `scan`: a recurrent state whose only loop is its own recurrence (the common layer):
  its inputs are projected ahead, only `s_prev Ws` stays in the time loop;
- `general`: anything else (Jordan feedback, loops through connections), computed step by
  step, vector by vector in within-step order;
- `output`: an emitted output, copied out of its sources.

`bind_params` compiles the weights the same way, once: checked against the graph, cast
to the run's dtype, gated layers' weights in their kind's compute layout, stacked per gate
(`composer.kinds.prepare` and `gate_stack`); the result serves every plan unrolled from
that graph.

Examples
--------
>>> from composer.graph.folded import build
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.unrolled import unroll
>>> spec = NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 3}],
...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4,
...                 "output": {"size": 2, "activation": "softmax"}}],
...     "outputs": [{"name": "y", "from": "rnn"}], "alignment": "many-to-one"})
>>> plan = compile_plan(unroll(build(spec), 5))
>>> [(g.kind, g.vectors) for g in plan.groups]
[('input', ('x',)), ('scan', ('rnn.s',)), ('feedforward', ('rnn.y',)), ('output', ('y',))]
>>> plan.streaming
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import networkx as nx
import numpy as np

from composer.dtypes import check_dtype
from composer.graph.loops import instant_graph
from composer.graph.unrolled import Unrolled
from composer.graph.unused import needed_inputs
from composer.graph.weights import bias_keys, check_params
from composer.kinds import KINDS, gate_stack, prepare
from composer.kinds.dense import DENSE
from composer.spec.windows import parse_window

__all__ = [
    "step_runs",
    "Feed",
    "Vector",
    "Group",
    "Plan",
    "compile_plan",
    "BoundParams",
    "VectorWeights",
    "bind_params",
    "preactivation_shape",
    "carry_sizes",
]


@dataclass(frozen=True)
class Feed:
    """One weighted edge into a vector: `source[t - lag] @ weight[rows[0]:rows[1]]`.

    `weight` is a parameter key, or None for the identity of an emitted output (then `rows`
    are the output's columns this source fills). `dropout` is the probability that a
    training pass drops each source value on this edge (the executor never does).
    """

    source: str
    weight: str | None
    rows: tuple[int, int]
    lag: int
    dropout: float = 0.0


@dataclass(frozen=True)
class Vector:
    """One vector of the folded graph as the executor computes it.

    `kind` is the layer kind of a state (`composer.kinds.KINDS`), `dense` for readouts
    and dense layers, None for inputs and outputs; `gates` the blocks of `size` columns
    its pre-activation holds, `columns` their total. `feeds` are its in-edges except its
    own recurrence, which is `recurrence`.
    `window` is [start, stop) of the steps it exists at; `span` [first, last + 1) of the
    steps it is computed at (`present`, a read-only mask over 0..T-1). `initial` are the
    steps its recurrence reads outside its window, `handover` the (state, step) whose value
    they take (None: zeros). `history` is how many steps back anyone reads it.
    `recurrent_dropout` is a state's variational dropout (training only).
    """

    name: str
    role: str
    size: int
    kind: str | None
    gates: int
    columns: int
    activation: str | None
    feeds: tuple[Feed, ...]
    recurrence: Feed | None
    biases: tuple[str, ...]
    window: tuple[int, int]
    span: tuple[int, int]
    present: np.ndarray
    initial: tuple[int, ...]
    handover: tuple[str, int] | None
    history: int
    order: int
    learned: str | None = None  # the key of a trained initial state (`initial_state: learn`)
    given: str | None = None  # the input that gives each item's start state h, (B, H)
    recurrent_dropout: float = 0.0
    #: a state's units H, the width of each gate block and of its other carried arrays (an
    #: LSTM's c); `size` unless the state is projected (`proj_size`); 0: `size`
    cells: int = 0
    #: a bidirectional source's backward (state, first step), merged with `handover` by
    #: `merge` (`composer.engine.merge`): a bidirectional encoder's final state
    handover_rev: tuple[str, int] | None = None
    merge: str | None = None

    @property
    def units(self) -> int:
        """H: the gate blocks' width (`size` unless the state is projected)."""
        return self.cells or self.size


@dataclass(frozen=True)
class Group:
    """Vectors computed together, in within-step order; `direction` -1 runs time backwards."""

    kind: str
    vectors: tuple[str, ...]
    direction: int


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one plan, one workspace
class Plan:
    """A compiled network: what to compute, in which order, over `steps` steps.

    `streaming` is True when every group runs forward in time, no feed reads ahead (future
    context) and every handed-over state is final before it is read: the executor may then
    walk time in chunks and keep only a short history of each vector instead of all T
    steps. `windows` holds the steps of each input and output (`window`). `inputs` are
    the sequences a run reads; `given` the inputs that give a layer's start state
    (`initial_state: h0`), one (B, H) array each, with no time axis.
    """

    steps: int
    vectors: Mapping[str, Vector]
    groups: tuple[Group, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    streaming: bool
    folded: nx.MultiDiGraph
    windows: Mapping[str, range] = field(default_factory=dict)
    given: tuple[str, ...] = ()  # inputs that give start states: (B, H), no time axis

    def window(self, name: str) -> range:
        """The steps an input or an output covers: its arrays hold exactly these."""
        if name in self.windows:
            return self.windows[name]
        return parse_window(self.folded.nodes[name]["window"], self.steps)


def step_runs(mask: np.ndarray, start: int, stop: int) -> list[tuple[int, int]]:
    """The maximal ranges of steps in start..stop-1 where `mask` is True."""
    part = mask[start:stop]
    if part.all():
        return [(start, stop)] if stop > start else []
    edges = np.flatnonzero(np.diff(part.astype(np.int8), prepend=0, append=0))
    return [(start + int(a), start + int(b)) for a, b in zip(edges[::2], edges[1::2])]


def compile_plan(unrolled: Unrolled) -> Plan:
    """Compile an unrolled network into a `Plan`; vectors computed at no step are left out.

    Group order is a topological order of the folded graph's strongly connected components
    (hand-overs of `initial_state` count as edges), ties broken by spec order; vectors in
    a group follow the zero-lag edges, again ties broken by spec order, so the plan is the
    same on every run.
    """
    folded, steps = unrolled.folded, unrolled.steps
    kept = [n for n in folded if unrolled.present[n].any()]
    history = _history(folded, kept)
    vectors = {n: _vector(unrolled, n, kept, history[n]) for n in kept}
    groups = _groups(folded, unrolled, kept)
    streaming = (
        all(g.direction > 0 for g in groups)
        and all(v.handover[1] <= v.span[0] for v in vectors.values() if v.handover is not None)
        and all(f.lag >= 0 for v in vectors.values() for f in v.feeds)  # no future context
    )
    roles = nx.get_node_attributes(folded, "role")
    by_order = sorted(folded, key=lambda n: folded.nodes[n]["order"])
    needed = set(needed_inputs(folded))  # an input nothing reads is not asked for
    inputs = tuple(n for n in by_order if roles[n] == "input" and n in needed)
    given = tuple(n for n in inputs if folded.nodes[n].get("given_state"))
    inputs = tuple(n for n in inputs if n not in given)
    outputs = tuple(n for n in by_order if roles[n] == "output")
    windows = {n: parse_window(folded.nodes[n]["window"], steps) for n in inputs + outputs}
    return Plan(
        steps=steps,
        vectors=MappingProxyType(vectors),
        groups=tuple(groups),
        inputs=inputs,
        outputs=outputs,
        streaming=streaming,
        folded=folded,
        windows=MappingProxyType(windows),
        given=given,
    )


def _history(folded: nx.MultiDiGraph, kept: list[str]) -> dict[str, int]:
    """For each vector, the largest positive lag at which a kept vector reads it."""
    alive = set(kept)
    history = dict.fromkeys(folded, 0)
    for source, target, lag in folded.edges(data="lag"):
        if target in alive and lag > 0:
            history[source] = max(history[source], lag)
    return history


def _span(mask: np.ndarray) -> tuple[int, int]:
    # argmax finds the first True without an O(T) index array
    first = int(np.argmax(mask))
    last = len(mask) - int(np.argmax(mask[::-1]))
    return first, last


def _vector(unrolled: Unrolled, node: str, kept: list[str], history: int) -> Vector:
    folded, steps = unrolled.folded, unrolled.steps
    data = folded.nodes[node]
    alive = set(kept)
    feeds, recurrence = [], None
    for source, _, edge in folded.in_edges(node, data=True):
        feed = Feed(
            source, edge["weight"], tuple(edge["rows"]), edge["lag"], edge.get("dropout", 0.0)
        )
        if edge["role"] == "recurrent":
            recurrence = feed
        elif source in alive:  # a source computed at no step contributes nothing
            feeds.append(feed)
    window = parse_window(data["window"], steps)
    kind = data.get("kind") if data["role"] == "state" else None
    if data["role"] in ("readout", "dense"):  # a readout computes as a dense layer does
        kind = DENSE.name
    gates = KINDS[kind].gates if data["role"] == "state" else 1
    handover, rev = unrolled.handover.get(node), unrolled.handover_rev.get(node)
    return Vector(
        name=node,
        role=data["role"],
        size=data["size"],
        kind=kind,
        gates=gates,
        columns=gates * data.get("units", data["size"]),
        activation=data.get("activation"),
        feeds=tuple(feeds),
        recurrence=recurrence,
        biases=bias_keys(data),
        window=(window.start, window.stop),
        span=_span(unrolled.present[node]),
        present=unrolled.present[node],
        initial=tuple(unrolled.initial.get(node, ())),
        handover=None if handover is None else (handover[0], int(handover[1])),
        history=history,
        order=data["order"],
        learned=data.get("learned"),
        given=data.get("given") if unrolled.initial.get(node) else None,
        recurrent_dropout=recurrence.dropout if recurrence else 0.0,
        cells=data.get("units", 0),
        handover_rev=None if rev is None else (rev[0], int(rev[1])),
        merge=data.get("initial_merge"),
    )


def _groups(folded: nx.MultiDiGraph, unrolled: Unrolled, kept: list[str]) -> list[Group]:
    order = nx.get_node_attributes(folded, "order")
    sub = nx.DiGraph(folded.subgraph(kept))
    components = nx.condensation(sub)
    members = nx.get_node_attributes(components, "members")
    for target, (origin, _) in [*unrolled.handover.items(), *unrolled.handover_rev.items()]:
        if target in sub and origin in sub:
            a, b = components.graph["mapping"][origin], components.graph["mapping"][target]
            if a != b:
                components.add_edge(a, b)
    first = {c: min(order[n] for n in members[c]) for c in components}
    groups = []
    for component in nx.lexicographical_topological_sort(components, key=first.__getitem__):
        instant = instant_graph(folded.subgraph(members[component]))
        ordered = tuple(nx.lexicographical_topological_sort(instant, key=order.__getitem__))
        groups.append(Group(_kind(folded, ordered), ordered, _direction(folded, ordered)))
    return groups


def _kind(folded: nx.MultiDiGraph, nodes: tuple[str, ...]) -> str:
    if len(nodes) > 1:
        return "general"
    (node,) = nodes
    role = folded.nodes[node]["role"]
    if role in ("input", "output"):
        return role
    loops = [data["role"] for _, target, data in folded.edges(node, data=True) if target == node]
    if not loops:
        return "feedforward"
    return "scan" if loops == ["recurrent"] else "general"


def _direction(folded: nx.MultiDiGraph, nodes: tuple[str, ...]) -> int:
    lags = [folded.nodes[n].get("lag", 1) for n in nodes if folded.nodes[n]["role"] == "state"]
    return -1 if any(lag < 0 for lag in lags) else 1


@dataclass(frozen=True)
class BoundParams:
    """Weights checked, cast to `dtype` and arranged for their kinds, once.

    `arrays[key]` is the weight `key`, a gated layer's in its kind's compute layout as a
    stack of per-gate blocks (`composer.kinds.gate_stack`), an embedding as it is.
    Reusable by every plan unrolled from `folded`.
    """

    folded: nx.MultiDiGraph
    dtype: np.dtype
    arrays: Mapping[str, np.ndarray]

    def weights(self, vector: Vector) -> VectorWeights:
        """One vector's weights: views of `arrays`, and its biases folded by its kind."""
        feeds = tuple(
            (feed, self.arrays[feed.weight][..., feed.rows[0] : feed.rows[1], :])
            for feed in vector.feeds
            if feed.weight is not None
        )
        recurrent = self.arrays[vector.recurrence.weight] if vector.recurrence else None
        biases = [self.arrays[key] for key in vector.biases]
        bias, extra = KINDS[vector.kind].fold_biases(biases) if vector.kind else (None, None)
        initial = self.arrays[vector.learned] if vector.learned else None
        return VectorWeights(feeds, recurrent, bias, extra, initial)


@dataclass(frozen=True)
class VectorWeights:
    """A vector's weights as the executor uses them: (feed, W[rows]) pairs, the recurrent
    weight, the bias added to its projection, and what else its kind's step needs
    (`Kind.fold_biases`: a GRU's n part of bs, which the reset gate multiplies)."""

    feeds: tuple[tuple[Feed, np.ndarray], ...]
    recurrent: np.ndarray | None
    bias: np.ndarray | None
    extra: object
    initial: np.ndarray | None = None  # a trained initial state h, (H,)


def bind_params(
    graph: nx.MultiDiGraph, params: Mapping[str, np.ndarray], dtype: str = "float32"
) -> BoundParams:
    """Check weights against a folded graph (`check_params`), cast and arrange them."""
    dt = np.dtype(check_dtype(dtype))
    check_params(graph, dict(params))
    arrays = {}
    for node, data in graph.nodes(data=True):
        kind = KINDS[data["kind"]] if data["role"] == "state" else None
        keys = [w for _, _, w in graph.in_edges(node, data="weight") if w is not None]
        units = data.get("units", data["size"])
        for key in keys + list(bias_keys(data)):
            value = np.asarray(params[key], dtype=dt)
            if kind is not None:
                value = gate_stack(kind, prepare(kind, value, units), units)
            arrays[key] = value
        if data.get("learned"):
            arrays[data["learned"]] = np.asarray(params[data["learned"]], dtype=dt)
        if data["role"] == "input" and data.get("embed"):
            arrays[f"{node}.E"] = np.asarray(params[f"{node}.E"], dtype=dt)
    return BoundParams(graph, dt, MappingProxyType(arrays))


def preactivation_shape(vector: Vector, rows: int) -> tuple[int, ...]:
    """A pre-activation's shape: (rows, size), or gate-major (G, rows, H) for a gated cell."""
    gates = vector.gates
    return (gates, rows, vector.units) if gates > 1 else (rows, vector.units)


def carry_sizes(vector: Vector, carries) -> list[int]:
    """The width of each carried array: h has the vector's size, the others (an LSTM's c)
    one number per unit."""
    return [vector.size if name == "h" else vector.units for name in carries]
