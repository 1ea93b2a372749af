"""The folded graph: one node per vector, one edge per weight use, each edge with its delay."""

from __future__ import annotations

import networkx as nx

from composer.errors import SpecError
from composer.graph.handover import check_initial_states
from composer.graph.loops import check_loops
from composer.graph.names import layer_output, resolve, state_nodes
from composer.kinds import KINDS
from composer.spec.model import NetworkSpec

__all__ = [
    "build",
    "tap_suffix",
    "MERGED",
]

#: the merges of a bidirectional layer computed as a vector of their own (`<layer>.m`)
MERGED = ("mean", "mul")


def build(spec: NetworkSpec) -> nx.MultiDiGraph:
    """The folded graph of a spec, checked: names resolve, sizes agree, no algebraic loop.

    Nodes are vector ids: an input's name (`x`), a layer's state (`rnn.s`, and `rnn.s_rev`
    for the backward copy of a bidirectional layer), a readout or a dense layer's output
    (`rnn.y`), an emitted output's name (`o`). Edge attributes: `weight` (the parameter key,
    or None for an identity), `rows` (the rows of that weight this edge feeds), `lag` (the
    source is read at t - lag; negative for backward recurrences), `role` and `path` (the
    spec field that made the edge, for error messages).

    Examples
    --------
    >>> from composer.spec.model import NetworkSpec
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4,
    ...                 "output": {"size": 2, "activation": "softmax"}}],
    ...     "outputs": [{"name": "y", "from": "rnn"}]})
    >>> sorted(build(spec).nodes)
    ['rnn.s', 'rnn.y', 'x', 'y']
    """
    graph = nx.MultiDiGraph(
        name=spec.name or "network", steps=spec.steps, preset=spec.aligned().preset
    )
    _check_names(spec)
    ins, outs = spec.aligned().windows()
    for i, inp in enumerate(spec.inputs):
        path = ("inputs", i, "window") if inp.window else ("alignment",)
        graph.add_node(
            inp.name,
            role="input",
            size=inp.width,
            vocab=inp.vocab,
            embed=inp.embed,
            padding_id=inp.padding_id,
            window=inp.window or ins,
            window_path=path,
            order=len(graph),
            label=inp.name,
        )
    for i, layer in enumerate(spec.layers):
        _add_layer_nodes(graph, i, layer)
    for i, layer in enumerate(spec.layers):
        _add_layer_edges(graph, spec, i, layer)
    for j, conn in enumerate(spec.connections):
        _add_connection(graph, spec, j, conn)
    for i, out in enumerate(spec.outputs):
        _add_output(graph, spec, i, out, outs)
    check_initial_states(graph, spec)
    check_loops(graph)
    return graph


def _check_names(spec: NetworkSpec) -> None:
    seen: dict[str, tuple] = {}
    groups = [("inputs", spec.inputs), ("layers", spec.layers), ("outputs", spec.outputs)]
    for group, items in groups:
        for i, item in enumerate(items):
            if item.name in seen:
                first = _dotted(seen[item.name])
                raise SpecError(
                    f"duplicate name `{item.name}` (already used by {first})", (group, i, "name")
                )
            seen[item.name] = (group, i)


def _dotted(path: tuple) -> str:
    return SpecError("", path).dotted_path


def _init_options(layer) -> tuple:
    """A layer's `init:` as plain data: ((weight, scheme), ...), a scheme being a name or
    (`uniform` | `normal`, value), and (`forget_bias`, value)."""
    if layer.init is None:
        return ()
    out = []
    for key, value in layer.init.model_dump(exclude_none=True).items():
        out.append((key, tuple(next(iter(value.items()))) if isinstance(value, dict) else value))
    return tuple(out)


def _takers() -> set[str]:
    return {k.spec_kind for k in KINDS.values() if k.takes_recurrent_dropout}


def _add_layer_nodes(graph: nx.MultiDiGraph, i: int, layer) -> None:
    path = ("layers", i)
    kind = KINDS[layer.kind].variant(layer)
    if getattr(layer, "recurrent_dropout", 0) and not kind.takes_recurrent_dropout:
        raise SpecError(
            f"`recurrent_dropout` is not supported by {layer.kind} layers; the kinds that "
            f"take it: {', '.join(sorted(_takers()))}",
            path + ("recurrent_dropout",),
        )
    common = dict(
        layer=layer.name,
        kind=kind.name,
        path=path,
        window=layer.active or ":",
        window_path=path + ("active",),
        bias=layer.bias,
        init=_init_options(layer),
    )
    if not KINDS[layer.kind].stateful:
        graph.add_node(
            f"{layer.name}.y",
            role="dense",
            size=layer.size,
            activation=layer.activation,
            order=len(graph),
            label=layer.name,
            **common,
        )
        return
    H = layer.state_size
    width = kind.width(layer)  # the state's size: H, or P for a projected LSTM
    units = {"units": H} if width != H else {}  # the gate blocks' and the cell's width
    directions = ["forward", "backward"] if layer.bidirectional else [layer.direction]
    for direction, suffix in zip(directions, ["", "_rev"]):
        lag = layer.delay if direction == "forward" else -layer.delay
        graph.add_node(
            f"{layer.name}.s{suffix}",
            role="state",
            size=width,
            direction=direction,
            delay=layer.delay,
            lag=lag,
            suffix=suffix,
            activation=getattr(layer, "activation", None),
            initial_state=None,
            merge=getattr(layer, "merge", "concat"),
            order=len(graph),
            label=f"{layer.name}.s{suffix}",
            **units,
            **common,
        )
    if getattr(layer, "merge", "concat") in MERGED:
        graph.add_node(
            f"{layer.name}.m",
            role="merge",
            size=H,
            merge=layer.merge,
            order=len(graph),
            label=f"{layer.name}.m",
            **common,
        )
    if layer.output is not None:
        graph.add_node(
            f"{layer.name}.y",
            role="readout",
            size=layer.output.size,
            activation=layer.output.activation,
            order=len(graph),
            label=f"{layer.name}.y",
            **common,
        )


def _targets(graph: nx.MultiDiGraph, layer_name: str) -> list[tuple[str, str]]:
    """(node, weight suffix) pairs that a layer's inputs feed."""
    if f"{layer_name}.y" in graph and graph.nodes[f"{layer_name}.y"]["role"] == "dense":
        return [(f"{layer_name}.y", "")]
    return [(n, graph.nodes[n]["suffix"]) for n in state_nodes(graph, layer_name)]


def placed(graph: nx.MultiDiGraph, sources) -> tuple[list[tuple[str, int, int]], int]:
    """Source segments as (node, size, first row) and the total width: concatenated, except
    the two states of a bidirectional layer with `merge: sum`, which share their rows (the
    reader's weight multiplies their sum)."""
    out, row = [], 0
    for node, size in sources:
        data = graph.nodes[node]
        if data.get("suffix") == "_rev" and data.get("merge") == "sum" and out:
            out.append((node, size, out[-1][2]))
            continue
        out.append((node, size, row))
        row += size
    return out, row


def _shared(graph: nx.MultiDiGraph, node: str) -> str:
    """A key suffix for the backward state of a summed layer, which shares its rows."""
    data = graph.nodes[node]
    return "+rev" if data.get("suffix") == "_rev" and data.get("merge") == "sum" else ""


def _add_feed(graph, sources, target_layer, weight_base, lag, role, path, tap="", dropout=0.0):
    """Edges from concatenated source segments into every target node of a layer;
    `dropout`, the probability that training drops each source value on these edges.

    The weight of each target is `weight_base`, its direction's suffix (`_rev`), then
    `tap` (`@d` for a tapped delay line's tap at delay d).
    """
    segments, width = placed(graph, sources)
    for target, suffix in _targets(graph, target_layer):
        tnode = graph.nodes[target]
        _check_causal(graph, target, sources, lag, path)
        cols = KINDS[tnode["kind"]].columns(tnode.get("units", tnode["size"]))
        for source, size, row in segments:
            graph.add_edge(
                source,
                target,
                key=f"{weight_base}{suffix}{tap}[{row}]{_shared(graph, source)}",
                weight=f"{weight_base}{suffix}{tap}",
                shape=(width, cols),
                rows=(row, row + size),
                lag=lag,
                role=role,
                path=path,
                dropout=dropout,
            )


def tap_suffix(delay: int) -> str:
    """The key suffix of a layer's input tap at `delay`: none at delay 0 (the key of a spec
    without taps, `rnn.Wx`), else `@d` (`rnn.Wx@2`; `@-2` reads two steps ahead)."""
    return f"@{delay}" if delay else ""


def _check_causal(graph, target: str, sources, lag: int, path: tuple) -> None:
    """Refuse future context (a negative delay) into a state that runs forward in time."""
    node = graph.nodes[target]
    if lag >= 0 or node["role"] != "state" or node["direction"] != "forward":
        return
    if f"{node['layer']}.s_rev" in graph:  # bidirectional: it reads the whole sequence anyway
        return
    names = ", ".join(f"`{graph.nodes[s].get('layer', s)}`" for s, _ in sources[:1])
    raise SpecError(
        f"delay {lag} reads {names} {-lag} step(s) ahead, but `{node['layer']}` runs forward "
        f"in time: its state at t may only depend on steps <= t (causality); give future "
        f"context to a dense layer (a window), a backward or a bidirectional layer",
        path,
    )


def _input_taps(layer, graph, spec, i) -> dict[int, list[tuple[str, int]]]:
    """A layer's input sources by delay: {delay: [(node, size), ...]} in spec order."""
    items = [layer.input] if not isinstance(layer.input, list) else list(layer.input)
    taps: dict[int, list[tuple[str, int]]] = {}
    for j, item in enumerate(items):
        path = ("layers", i, "input") + ((j,) if isinstance(layer.input, list) else ())
        name, delays = (item, [0]) if isinstance(item, str) else (item.source, item.delays)
        if not isinstance(item, str):
            path = path + ("from",)
        segments = resolve(graph, spec, name, path)
        for delay in delays:
            taps.setdefault(delay, []).extend(segments)
    return dict(sorted(taps.items()))


def _add_layer_edges(graph: nx.MultiDiGraph, spec: NetworkSpec, i: int, layer) -> None:
    kind = KINDS[layer.kind]
    if layer.input is None:
        _check_inputless(spec, i, layer)
    else:
        path = ("layers", i, "input")
        taps = _input_taps(layer, graph, spec, i)
        base = f"{layer.name}.{kind.input_weight}"
        for delay, sources in taps.items():
            _add_feed(
                graph, sources, layer.name, base, delay, "input", path, tap_suffix(delay),
                dropout=layer.dropout,
            )  # fmt: skip
    if not kind.stateful:
        return
    cols = kind.columns(layer.state_size)
    for state in state_nodes(graph, layer.name):
        node = graph.nodes[state]
        H = node["size"]  # what the recurrence reads: H, or P for a projected state
        graph.add_edge(
            state,
            state,
            key=f"{layer.name}.Ws{node['suffix']}",
            weight=f"{layer.name}.Ws{node['suffix']}",
            shape=(H, cols),
            rows=(0, H),
            lag=node["lag"],
            role="recurrent",
            path=("layers", i, "delay"),
            dropout=layer.recurrent_dropout,  # the same mask at every step (variational)
        )
    read = [(n, H) for n in state_nodes(graph, layer.name)]
    if f"{layer.name}.m" in graph:  # `merge: mean | mul`: a vector of its own, size H
        for state, _ in read:
            graph.add_edge(
                state,
                f"{layer.name}.m",
                key="merge",
                weight=None,
                shape=None,
                rows=(0, H),
                lag=0,
                role="merge",
                path=("layers", i, "merge"),
            )
        read = [(f"{layer.name}.m", H)]
    if layer.output is not None:
        states, width = placed(graph, read)
        for state, _, row in states:
            graph.add_edge(
                state,
                f"{layer.name}.y",
                key=f"{layer.name}.Wy[{row}]{_shared(graph, state)}",
                weight=f"{layer.name}.Wy",
                shape=(width, layer.output.size),
                rows=(row, row + H),
                lag=0,
                role="readout",
                path=("layers", i, "output"),
                dropout=layer.output_dropout,
            )


def _add_connection(graph: nx.MultiDiGraph, spec: NetworkSpec, j: int, conn) -> None:
    path = ("connections", j)
    sources = resolve(graph, spec, conn.source, path + ("from",))
    layers = {layer.name: layer for layer in spec.layers}
    target = layers.get(conn.target)
    if target is None:
        resolve(graph, spec, conn.target, path + ("to",), what="a layer")
        raise SpecError(
            f"`{conn.target}` is an input; a connection goes into a layer", path + ("to",)
        )
    if getattr(target, "bidirectional", False):
        raise SpecError(
            f"connections into the bidirectional layer `{conn.target}` are not supported; "
            "list the source in its `input` instead",
            path + ("to",),
        )
    pair = [c for c in spec.connections if (c.source, c.target) == (conn.source, conn.target)]
    several = len({d for c in pair for d in c.taps()}) > 1
    for k, other in enumerate(spec.connections[:j]):
        if (other.source, other.target) != (conn.source, conn.target):
            continue
        shared = sorted(set(other.taps()) & set(conn.taps()))
        if shared:
            raise SpecError(
                f"duplicate connection from `{conn.source}` to `{conn.target}` at delay "
                f"{shared[0]} (already connections[{k}]); each delay of a pair has one weight",
                path,
            )
    weight = f"{conn.target}.W_{conn.source}"
    for delay in conn.taps():
        tap = f"@{delay}" if several else ""
        _add_feed(graph, sources, conn.target, weight, delay, "connection", path, tap)


def _check_inputless(spec: NetworkSpec, i: int, layer) -> None:
    """A layer without `input` must be driven by something: an initial state or a
    connection into it."""
    if getattr(layer, "initial_source", None) is not None:
        return
    if any(conn.target == layer.name for conn in spec.connections):
        return
    raise SpecError(
        "missing required field `input` (a layer may leave it out only when an "
        "`initial_state` or a connection drives it)",
        ("layers", i),
    )


def _add_output(graph: nx.MultiDiGraph, spec: NetworkSpec, i: int, out, default: str) -> None:
    path = ("outputs", i)
    if not any(layer.name == out.source for layer in spec.layers):
        resolve(graph, spec, out.source, path + ("from",), what="a layer")
        raise SpecError(
            f"`{out.source}` is an input; an output comes from a layer", path + ("from",)
        )
    sources, size = placed(graph, layer_output(graph, out.source))
    graph.add_node(
        out.name,
        role="output",
        size=size,
        window=out.window or default,
        window_path=path + ("window",) if out.window else ("alignment",),
        layer=out.source,
        order=len(graph),
        label=out.name,
        path=path,
    )
    for source, width, row in sources:
        graph.add_edge(
            source,
            out.name,
            key=f"emit[{row}]{_shared(graph, source)}",
            weight=None,
            shape=None,
            rows=(row, row + width),
            lag=0,
            role="emit",
            path=path + ("from",),
        )
