"""The folded graph: one node per vector, one edge per weight use, each edge with its delay."""

from __future__ import annotations

import difflib

import networkx as nx

from composer.errors import SpecError
from composer.graph.loops import check_loops
from composer.kinds import KINDS
from composer.spec.model import NetworkSpec

__all__ = [
    "build",
    "given_states",
    "handover_origins",
    "layer_output",
    "state_nodes",
    "tap_suffix",
    "LEARN",
    "MERGED",
]

#: `initial_state: learn`: the layer starts from a trained vector `<layer>.s0`
LEARN = "learn"
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
    _check_initial_states(graph, spec)
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


def _resolve(
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
        segments = _resolve(graph, spec, name, path)
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
    sources = _resolve(graph, spec, conn.source, path + ("from",))
    layers = {layer.name: layer for layer in spec.layers}
    target = layers.get(conn.target)
    if target is None:
        _resolve(graph, spec, conn.target, path + ("to",), what="a layer")
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
        _resolve(graph, spec, out.source, path + ("from",), what="a layer")
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


def _check_initial_states(graph: nx.MultiDiGraph, spec: NetworkSpec) -> None:
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
                _resolve(graph, spec, source_name, path, what="a recurrent layer or an input")
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
