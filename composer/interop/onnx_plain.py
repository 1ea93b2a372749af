"""Plain stacks in ONNX with a dynamic batch and T: each recurrent layer as one ONNX
`RNN`, `LSTM` or `GRU` node (float32), or as a `Scan` over its kind's step (float64, which
ONNX Runtime's recurrent operators do not run, and dilated layers, which they cannot
express).

A plain stack is recurrent and dense layers with readouts, forward, backward or
bidirectional, dilated or not, with no connection, hand-over or window of their own; its
inputs cover the steps from the first (`:` or `:-d`), its outputs end at the last (`d:` or
`-k:`). `fixed_t_reasons` names what keeps a network from being one.

Inside, values are time-major, (T, B, size), as ONNX's recurrent operators take them;
inputs and outputs are batch-first, (B, T, size), as `run` reads and writes them.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from composer.graph.loops import instant_graph
from composer.interop.onnx_graph import Builder
from composer.kinds import KINDS
from composer.spec.windows import parse_window, window_bounds

__all__ = ["fixed_t_reasons", "plain_graph", "sorted_nodes", "input_dims"]


def sorted_nodes(folded: nx.MultiDiGraph, role: str) -> list[str]:
    """The folded graph's nodes of one role, in spec order."""
    nodes = [n for n, d in folded.nodes(data=True) if d["role"] == role]
    return sorted(nodes, key=lambda n: folded.nodes[n]["order"])


def fixed_t_reasons(folded: nx.MultiDiGraph) -> dict[str, tuple]:
    """What in a network needs a fixed T in ONNX, in words, each with its spec path
    (empty: a plain stack)."""
    reasons = {}
    for node, data in folded.nodes(data=True):
        start, stop = window_bounds(data["window"])
        if data["role"] == "state" and data["initial_state"] is not None:
            origin = data["initial_state"].split(".")[0]
            text = f"`{data['layer']}` starting from `{origin}`'s last state"
            reasons[text] = data["path"] + ("initial_state",)
        if data["role"] in ("state", "dense") and (start, stop) not in ((None, None), (0, None)):
            reasons[f"the active steps of `{data['layer']}` (`{data['window']}`)"] = data[
                "window_path"
            ]
        if data["role"] == "input" and (start not in (None, 0) or (stop or -1) >= 0):
            reasons[f"the window `{data['window']}` of input `{node}`"] = data["window_path"]
        if data["role"] == "output" and stop is not None:
            reasons[f"the window `{data['window']}` of output `{node}`"] = data["window_path"]
    for source, target, data in folded.edges(data=True):
        if data["role"] == "connection":
            ends = source.split(".")[0], target.split(".")[0]
            reasons[f"the connection from `{ends[0]}` to `{ends[1]}`"] = data["path"]
    return reasons


def _tail(window: str) -> int:
    """The steps an input window `:-d` leaves out at the end: d."""
    stop = window_bounds(window)[1]
    return -stop if stop is not None else 0


def input_dims(folded: nx.MultiDiGraph, name: str, steps: int | None) -> list:
    """An input's (B, T_in, F) for the graph's signature; symbolic without a fixed T."""
    data = folded.nodes[name]
    length = len(parse_window(data["window"], steps)) if steps else f"T_{name}"
    return ["B", length, data["size"]]


def plain_graph(g: Builder, folded: nx.MultiDiGraph, params, *, lengths: bool, steps, native):
    """Fill `g` with a plain stack; its graph inputs and outputs as value infos."""
    inputs, outputs = [], []
    values, first = {}, sorted_nodes(folded, "input")
    item_steps = None
    for name in first:
        inputs.append(g.value_info(name, input_dims(folded, name, steps)))
        x, tail = name, _tail(folded.nodes[name]["window"])
        if lengths:
            inputs.append(g.value_info(f"{name}.lengths", ["B"], "int64"))
            if tail:  # a layer reads on past an item's end: there the input is absent, zero
                mask = g.steps_mask(g.dim(x, 1), f"{name}.lengths")
                x = g.mul(x, g.unsqueeze(g.cast(mask, g.dtype.name), [2]))
            if item_steps is None:  # each item's T, from the first input's lengths
                item_steps = g.add(f"{name}.lengths", g.const([tail]))
        if tail:
            x = g.op("Pad", [x, g.const([0, 0, 0, 0, tail, 0])])
        values[name] = g.op("Transpose", [x], perm=[1, 0, 2], hint=f"{name}.tm")
    batch = g.dim(first[0], 0)
    for layer_nodes in _layers(folded):
        states = [n for n in layer_nodes if folded.nodes[n]["role"] == "state"]
        if states:
            values.update(_recurrent(g, folded, params, states, values, item_steps, native, batch))
        for node in layer_nodes:
            if folded.nodes[node]["role"] in ("readout", "dense"):
                values[node] = _affine(g, folded, params, node, values)
    for name in sorted_nodes(folded, "output"):
        result = _emit(g, folded, name, values, item_steps, steps)
        outputs.append(g.value_info(name, ["B", result[1], folded.nodes[name]["size"]]))
        g.name_as(result[0], name)
        if lengths:
            g.name_as(result[2], f"{name}.lengths")
            outputs.append(g.value_info(f"{name}.lengths", ["B"], "int64"))
    return inputs, outputs


def _layers(folded: nx.MultiDiGraph) -> list[list[str]]:
    """Each layer's nodes (states, then its readout or dense output), in an order where
    every layer's sources come first."""
    order = nx.get_node_attributes(folded, "order")
    ranked = nx.lexicographical_topological_sort(instant_graph(folded), key=order.__getitem__)
    layers: dict[str, list[str]] = {}
    for node in ranked:
        layer = folded.nodes[node].get("layer")
        if folded.nodes[node]["role"] not in ("input", "output"):
            layers.setdefault(layer, []).append(node)
    return list(layers.values())


def _sources(folded, node, roles=("input", "readout")) -> list[tuple]:
    """(source, weight key, rows) of a node's weighted in-edges, by rows."""
    edges = [
        (source, data["weight"], tuple(data["rows"]))
        for source, _, data in folded.in_edges(node, data=True)
        if data["role"] in roles and source != node
    ]
    return sorted(edges, key=lambda edge: edge[2])


def _affine(g: Builder, folded, params, node: str, values) -> str:
    """A readout or dense layer at every step: psi(sum of source W[rows] + b)."""
    data = folded.nodes[node]
    total = None
    for source, key, rows in _sources(folded, node):
        weight = params[key]
        name = key if rows == (0, len(weight)) else f"{key}[{rows[0]}:{rows[1]}]"
        product = g.matmul(values[source], g.weight(name, weight[rows[0] : rows[1]]))
        total = product if total is None else g.add(total, product)
    bias = f"{data['layer']}.by" if data["role"] == "readout" else f"{data['layer']}.b"
    pre = g.add(total, g.weight(bias, params[bias]))
    return g.activation(data["activation"], pre)


def _layer_input(g: Builder, folded, node: str, values) -> str:
    return g.concat([values[source] for source, _, _ in _sources(folded, node)], axis=-1)


def _gate_rows(kind, array: np.ndarray, size: int) -> np.ndarray:
    """Our gate blocks along the first axis, in ONNX's order (`Kind.onnx_gates`)."""
    return np.concatenate([array[k * size : (k + 1) * size] for k in kind.onnx_gates], axis=0)


def _recurrent(g: Builder, folded, params, states, values, item_steps, native, batch) -> dict:
    """A recurrent layer's state(s) at every step, (T, B, H) each."""
    data = folded.nodes[states[0]]
    kind = KINDS[data["kind"]]
    x = _layer_input(g, folded, states[0], values)
    if native and kind.onnx_operator is not None and data["delay"] == 1:
        return _operator(g, params, states, folded, kind, x, item_steps)
    return {
        state: _scan(g, params, folded.nodes[state], kind, x, item_steps, batch) for state in states
    }


def _operator(g: Builder, params, states, folded, kind, x, item_steps) -> dict:
    """The layer as one ONNX RNN, LSTM or GRU node."""
    first = folded.nodes[states[0]]
    layer, H = first["layer"], first["size"]
    W, R, B = [], [], []
    for state in states:
        suffix = folded.nodes[state]["suffix"]
        W.append(_gate_rows(kind, params[f"{layer}.{kind.input_weight}{suffix}"].T, H))
        R.append(_gate_rows(kind, params[f"{layer}.Ws{suffix}"].T, H))
        biases = [params[f"{layer}.{b}{suffix}"] for b, _ in kind.biases]
        Wb, Rb = kind.onnx_biases(biases)
        B.append(np.concatenate([_gate_rows(kind, Wb, H), _gate_rows(kind, Rb, H)]))
    if len(states) == 2:
        direction = "bidirectional"
    else:
        direction = "reverse" if first["direction"] == "backward" else "forward"
    inputs = [x, g.weight(f"{layer}.W", np.stack(W)), g.weight(f"{layer}.R", np.stack(R))]
    inputs.append(g.weight(f"{layer}.B", np.stack(B)))
    if item_steps is not None:
        inputs.append(g.cast(item_steps, "int32"))
    attrs = kind.onnx_attributes(first.get("activation"), len(states))
    y = g.op(
        kind.onnx_operator, inputs, hint=f"{layer}.Y", hidden_size=H, direction=direction, **attrs
    )
    if len(states) == 1:
        return {states[0]: g.squeeze(y, [1])}
    return {state: g.op("Gather", [y, g.const(k)], axis=1) for k, state in enumerate(states)}


def _scan(g: Builder, params, data, kind, x, item_steps, batch) -> str:
    """One direction of a layer as a Scan over time whose body is the kind's step; the
    inputs' products and biases are added ahead, outside the loop. A layer with `delay: k`
    carries its last k states (oldest first) and reads the oldest."""
    layer, suffix, H, delay = data["layer"], data["suffix"], data["size"], data["delay"]
    key = f"{layer}.{kind.input_weight}{suffix}"
    projected = g.matmul(x, g.weight(key, params[key]))
    ws = g.weight(f"{layer}.Ws{suffix}", params[f"{layer}.Ws{suffix}"])
    biases = tuple(
        g.weight(f"{layer}.{b}{suffix}", params[f"{layer}.{b}{suffix}"]) for b, _ in kind.biases
    )
    body = g.child()
    carried = [body.fresh(f"{layer}.{name}_prev") for name in kind.carries]
    xw_t, mask_t = body.fresh(f"{layer}.xw_t"), body.fresh(f"{layer}.live_t")
    prev = carried
    if delay > 1:
        prev = [body.op("Gather", [ring, body.const(0)], axis=0) for ring in carried]
    new = list(kind.onnx_step(body, xw_t, tuple(prev), ws, biases, data.get("activation")))
    if item_steps is not None:  # zero past an item's end: a backward layer starts from zeros
        new = [body.op("Where", [mask_t, n, body.scalar(0.0)]) for n in new]
    out_names = [body.fresh(f"{layer}.{name}") for name in [*kind.carries, "y_t"]]
    for value, name, ring in zip([*new, new[0]], out_names, [*carried, None]):
        if delay > 1 and ring is not None:
            value = body.concat([body.slice(ring, 0, 1), body.unsqueeze(value, [0])], axis=0)
        body.name_as(value, name)
    held = ["B", H] if delay == 1 else [delay, "B", H]
    body_inputs = [body.value_info(name, held) for name in carried]
    body_inputs.append(body.value_info(xw_t, ["B", kind.gates * H]))
    scan_inputs = [projected]
    if item_steps is not None:
        body_inputs.append(body.value_info(mask_t, ["B", 1], "bool"))
        live = g.steps_mask(g.dim(x, 0), item_steps)  # (B, T)
        scan_inputs.append(g.op("Transpose", [g.unsqueeze(live, [2])], perm=[1, 0, 2]))
    body_outputs = [body.value_info(name, held) for name in out_names[:-1]]
    body_outputs.append(body.value_info(out_names[-1], ["B", H]))
    graph = g.onnx.helper.make_graph(body.nodes, f"{layer}{suffix}_step", body_inputs, body_outputs)
    reverse = int(data["direction"] == "backward")
    lead = () if delay == 1 else (delay,)
    zeros = [g.zeros(batch, H, lead) for _ in kind.carries]
    results = g.op(
        "Scan",
        zeros + scan_inputs,
        hint=f"{layer}.scan",
        outputs=len(kind.carries) + 1,
        body=graph,
        num_scan_inputs=len(scan_inputs),
        scan_input_directions=[reverse] * len(scan_inputs),
        scan_output_directions=[reverse],
    )
    return results[-1]


def _emit(g: Builder, folded, name: str, values, item_steps, steps) -> tuple:
    """An output: (its (B, T_out, size) value, T_out for the signature, its lengths)."""
    data = folded.nodes[name]
    sources = sorted(
        ((source, tuple(d["rows"])) for source, _, d in folded.in_edges(name, data=True)),
        key=lambda pair: pair[1],
    )
    value = g.concat([values[source] for source, _ in sources], axis=-1)
    value = g.op("Transpose", [value], perm=[1, 0, 2])  # (B, T, size)
    start, _ = window_bounds(data["window"])
    start = start or 0
    out_steps = len(parse_window(data["window"], steps)) if steps else f"T_{name}"
    if item_steps is None:
        if start >= 0:
            return g.slice(value, 1, start), out_steps, None
        last = g.const(np.arange(start, 0))  # many-to-one: a Gather of the last step(s)
        return g.op("Gather", [value, last], axis=1), out_steps, None
    if start >= 0:
        value, lengths = g.slice(value, 1, start), g.sub(item_steps, g.const([start]))
    else:  # the last k steps of each item's own T
        k = -start
        first = g.unsqueeze(g.sub(item_steps, g.const([k])), [1])
        index = g.add(first, g.const(np.arange(k)[np.newaxis]))  # (B, k)
        size = g.const([1, 1, data["size"]])
        index = g.op("Expand", [g.unsqueeze(index, [2]), size])
        value = g.op("GatherElements", [value, index], axis=1)
        lengths = g.op("Expand", [g.const([k]), g.dim(item_steps, 0)])
    longest = g.op("ReduceMax", [lengths], keepdims=1)
    value = g.slice(value, 1, g.const([0]), longest)
    live = g.cast(g.steps_mask(longest, lengths), g.dtype.name)
    return g.mul(value, g.unsqueeze(live, [2])), out_steps, lengths
