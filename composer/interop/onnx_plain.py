"""Networks in ONNX with a dynamic batch and T, grouped as the executor groups them:
each recurrent layer as one ONNX `RNN`, `LSTM` or `GRU` node (float32), else (float64,
which ONNX Runtime's recurrent operators do not run, dilated layers, which they cannot
express, and feedback loops through connections) as a `Scan` whose body is the kinds'
steps; readouts and dense layers over all steps at once.

That takes every network whose layers exist at every step, whose inputs cover the steps
from the first (`:` or `:-d`) and whose outputs end at the last (`d:` or `-k:`), with no
hand-over of a state: what else there is, `fixed_t_reasons` names.

Inside, values are time-major, (T, B, size), as ONNX's recurrent operators take them;
inputs and outputs are batch-first, (B, T, size), as `run` reads and writes them.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from composer.engine.merge import merge_values
from composer.engine.pipeline import plan_for_steps
from composer.errors import SpecError
from composer.graph.features import extended_features
from composer.graph.names import state_nodes
from composer.graph.weights import bias_keys
from composer.interop.native import ONNX_OPERATORS, OnnxOperator
from composer.interop.onnx_graph import Builder
from composer.kinds import KINDS
from composer.spec.windows import parse_window, window_bounds

__all__ = ["fixed_t_reasons", "plain_graph", "sorted_nodes", "input_dims", "input_info", "encoded"]


def sorted_nodes(folded: nx.MultiDiGraph, role: str) -> list[str]:
    """The folded graph's nodes of one role, in spec order."""
    nodes = [n for n, d in folded.nodes(data=True) if d["role"] == role]
    return sorted(nodes, key=lambda n: folded.nodes[n]["order"])


def fixed_t_reasons(folded: nx.MultiDiGraph) -> dict[str, tuple]:
    """What in a network needs a fixed T in ONNX, in words, each with its spec path
    (empty: it exports with a dynamic T)."""
    # taps, future context and merges are written with a dynamic T; a layer without an
    # input and a two-pass hand-over need one (unrolled exactly)
    reasons = {what: path for path, what in extended_features(folded, False, False)}
    loops = [c for c in nx.strongly_connected_components(nx.DiGraph(folded)) if len(c) > 1]
    for node, data in folded.nodes(data=True):
        loop = next((c for c in loops if node in c), ())
        read = [t for _, t, lag in folded.out_edges(node, data="lag") if t in loop and lag]
        if (data.get("learned") or data.get("given")) and set(read) - {node}:
            # a Scan's ring would hold the start state where the other layer reads it
            text = f"`{data['layer']}`'s start state read across steps inside its loop"
            reasons[text] = data["path"] + ("initial_state",)
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
    return reasons


def _tail(window: str) -> int:
    """The steps an input window `:-d` leaves out at the end: d."""
    stop = window_bounds(window)[1]
    return -stop if stop is not None else 0


def input_dims(folded: nx.MultiDiGraph, name: str, steps: int | None) -> list:
    """An input's (B, T_in, F) for the graph's signature, (B, T_in) for token ids, (B, H)
    for a start state (`initial_state: h0`); symbolic without a fixed T."""
    data = folded.nodes[name]
    if data.get("given_state"):
        return ["B", data["size"]]
    length = len(parse_window(data["window"], steps)) if steps else f"T_{name}"
    return ["B", length] if data.get("vocab") else ["B", length, data["size"]]


def input_info(g: Builder, folded: nx.MultiDiGraph, name: str, steps: int | None):
    """An input of the graph's signature: our dtype, or int64 ids for a token input."""
    element = "int64" if folded.nodes[name].get("vocab") else None
    return g.value_info(name, input_dims(folded, name, steps), element)


def encoded(g: Builder, folded: nx.MultiDiGraph, params, name: str) -> str:
    """An input as (B, T_in, size) vectors: a token input's ids embedded (`Gather` on
    `<input>.E`) or one-hot; any other as it comes."""
    data = folded.nodes[name]
    if not data.get("vocab"):
        return name
    table = g.weight(f"{name}.E", params[f"{name}.E"]) if data.get("embed") else None
    return g.tokens(name, data["vocab"], table)


def plain_graph(g: Builder, folded: nx.MultiDiGraph, params, *, lengths: bool, steps, native):
    """Fill `g` with a network that keeps a dynamic T; its graph inputs and outputs."""
    inputs, outputs = [], []
    values, names = {}, sorted_nodes(folded, "input")
    item_steps = None
    for name in names:
        inputs.append(input_info(g, folded, name, steps))
        if folded.nodes[name].get("given_state"):  # (B, H): read once, as initial_h
            continue
        x, tail = encoded(g, folded, params, name), _tail(folded.nodes[name]["window"])
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
    batch = g.dim(names[0], 0)
    if item_steps is not None:  # (T, B, 1): 1 while an item runs, for what reads ahead
        first = values[next(n for n in names if n in values)]
        mask = g.steps_mask(g.dim(first, 0), item_steps)
        values[LIVE] = g.op("Transpose", [g.unsqueeze(g.cast(mask, g.dtype.name), [2])],
                            perm=[1, 0, 2])  # fmt: skip
    done: set[str] = set()
    plan, groups = _groups(folded, steps)
    for kind, group in groups:
        head = folded.nodes[group[0]]
        if group[0] in done:
            continue
        if head["role"] == "merge":  # a bidirectional layer's two directions, mean or product
            forward, backward = (values[feed.source] for feed in plan.vectors[group[0]].feeds)
            values[group[0]] = merge_values(head["merge"], forward, backward, g)
        elif kind == "general":  # a feedback loop
            values.update(_loop(g, folded, params, group, values, item_steps, batch))
        elif head["role"] == "state":
            states = state_nodes(folded, head["layer"])  # both directions at once
            values.update(_recurrent(g, folded, params, states, values, item_steps, native, batch))
            done.update(states)
        else:
            values[group[0]] = _affine(g, folded, params, group[0], values)
    for name in sorted_nodes(folded, "output"):
        result = _emit(g, folded, name, values, item_steps, steps)
        outputs.append(g.value_info(name, ["B", result[1], folded.nodes[name]["size"]]))
        g.name_as(result[0], name)
        if lengths:
            g.name_as(result[2], f"{name}.lengths")
            outputs.append(g.value_info(f"{name}.lengths", ["B"], "int64"))
    return inputs, outputs


#: the T at which a network with a dynamic T is planned for its groups: any T past its
#: windows gives the same groups (a plain network's do not depend on T)
PLAN_STEPS = 64
#: the key, among the values, of the (T, B, 1) mask of the steps each item runs
LIVE = "<live>"


def _groups(folded: nx.MultiDiGraph, steps: int | None) -> tuple:
    """The executor's plan, and the vectors in the groups it computes together, in its
    order, each as (its kind, its vectors in within-step order): `scan` (a recurrent
    layer), `general` (vectors that feed each other across time), `feedforward`."""
    bounds = [window_bounds(w) for _, w in folded.nodes(data="window") if w]
    reach = sum(abs(b) for pair in bounds for b in pair if b is not None)  # past every window
    plan = plan_for_steps(folded, max(steps or 0, PLAN_STEPS + reach))
    groups = [(g.kind, list(g.vectors)) for g in plan.groups if g.kind not in ("input", "output")]
    return plan, groups


def _feeds(folded, node: str) -> list[tuple]:
    """(source, weight key, rows, lag) of a node's weighted in-edges but its recurrence, in
    one order for both directions of a layer."""
    suffix = folded.nodes[node].get("suffix") or ""
    edges = [
        (source, data["weight"], tuple(data["rows"]), data["lag"])
        for source, _, data in folded.in_edges(node, data=True)
        if data["role"] != "recurrent"
    ]
    return sorted(edges, key=lambda e: (e[1].removesuffix(suffix), e[2], e[3]))


def _rows(g: Builder, params, key: str, rows: tuple[int, int]) -> str:
    """The rows of a weight that one source multiplies, stored once."""
    weight = params[key]
    if rows == (0, len(weight)):
        return g.weight(key, weight)
    return g.weight(f"{key}[{rows[0]}:{rows[1]}]", weight[rows[0] : rows[1]])


def _shifted(g: Builder, value: str, lag: int, live: str | None = None) -> str:
    """A (T, B, F) value read `lag` steps back: zeros before step 0 (a source absent); a
    negative lag reads ahead, zeros past the last step and, with `live` ((T, B, 1) ones
    while an item runs), past each item's end."""
    if lag == 0:
        return value
    if lag > 0:
        padded = g.op("Pad", [value, g.const([lag, 0, 0, 0, 0, 0])])
        return g.slice(padded, 0, g.const([0]), g.dim(value, 0))
    if live is not None:
        value = g.mul(value, live)
    padded = g.op("Pad", [value, g.const([0, 0, 0, -lag, 0, 0])])
    return g.slice(padded, 0, g.const([-lag]), g.add(g.dim(value, 0), g.const([-lag])))


def _project(g: Builder, params, feeds, values) -> str | None:
    """The sum over `feeds` of source[t - lag] W[rows], at every step; None without feeds."""
    total = None
    for source, key, rows, lag in feeds:
        shifted = _shifted(g, values[source], lag, values.get(LIVE))
        product = g.matmul(shifted, _rows(g, params, key, rows))
        total = product if total is None else g.add(total, product)
    return total


def _affine(g: Builder, folded, params, node: str, values) -> str:
    """A readout or dense layer at every step: psi(sum of source W[rows] + b)."""
    data = folded.nodes[node]
    pre = _project(g, params, _feeds(folded, node), values)
    biases = [g.weight(key, params[key]) for key in bias_keys(data)]  # none: `bias: false`
    return g.activation(data["activation"], g.add(pre, *biases))


def _gate_rows(native: OnnxOperator, array: np.ndarray, size: int) -> np.ndarray:
    """Our gate blocks along the first axis, in ONNX's order (`OnnxOperator.gates`)."""
    return np.concatenate([array[k * size : (k + 1) * size] for k in native.gates], axis=0)


def _recurrent(g: Builder, folded, params, states, values, item_steps, native, batch) -> dict:
    """A recurrent layer's state(s) at every step, (T, B, H) each."""
    data = folded.nodes[states[0]]
    kind = KINDS[data["kind"]]
    if native and kind.name in ONNX_OPERATORS and data["delay"] == 1:
        return _operator(g, params, states, folded, kind, values, item_steps)
    found = {}
    for state in states:
        found.update(_loop(g, folded, params, [state], values, item_steps, batch))
    return found


def _operator(g: Builder, params, states, folded, kind, values, item_steps) -> dict:
    """The layer as one ONNX RNN, LSTM or GRU node."""
    first, native = folded.nodes[states[0]], ONNX_OPERATORS[kind.name]
    layer, H = first["layer"], first["size"]
    feeds = _feeds(folded, states[0])
    x = [_shifted(g, values[source], lag, values.get(LIVE)) for source, _, _, lag in feeds]
    x = g.concat(x, axis=-1)
    W, R, B = [], [], []
    for state in states:
        suffix = folded.nodes[state]["suffix"]
        rows = [params[key][a:b] for _, key, (a, b), _ in _feeds(folded, state)]
        W.append(_gate_rows(native, np.concatenate(rows).T, H))
        R.append(_gate_rows(native, params[f"{layer}.Ws{suffix}"].T, H))
        biases = [params[key] for key in bias_keys(folded.nodes[state])]
        if not biases:  # `bias: false`: the operator's biases are zero
            biases = [np.zeros(kind.columns(H), params[f"{layer}.Ws{suffix}"].dtype)] * 2
        Wb, Rb = native.biases(biases)
        B.append(np.concatenate([_gate_rows(native, Wb, H), _gate_rows(native, Rb, H)]))
    if len(states) == 2:
        direction = "bidirectional"
    else:
        direction = "reverse" if first["direction"] == "backward" else "forward"
    inputs = [x, g.weight(f"{layer}.W", np.stack(W)), g.weight(f"{layer}.R", np.stack(R))]
    inputs.append(g.weight(f"{layer}.B", np.stack(B)))
    inputs.append(g.cast(item_steps, "int32") if item_steps is not None else "")
    if first.get("learned"):  # initial_h: the trained s0 for every item (c starts at zero)
        s0 = g.weight(first["learned"], params[first["learned"]])
        inputs.append(g.initial(s0, g.dim(x, 1), H, (1,)))
    elif first.get("given"):  # initial_h: each item's own, a graph input (c starts at zero)
        inputs.append(g.unsqueeze(first["given"], [0]))
    while inputs[-1] == "":
        inputs.pop()
    attrs = native.attributes(first.get("activation"), len(states))
    y = g.op(
        native.operator, inputs, hint=f"{layer}.Y", hidden_size=H, direction=direction, **attrs
    )
    if len(states) == 1:
        return {states[0]: g.squeeze(y, [1])}
    return {state: g.op("Gather", [y, g.const(k)], axis=1) for k, state in enumerate(states)}


def _loop(g: Builder, folded, params, members, values, item_steps, batch) -> dict:
    """Vectors that run step by step, as one Scan over time: a recurrent layer (with any
    dilation), or a feedback loop. Feeds from outside are projected ahead, for all steps;
    the body (each state's step is its kind's one `step`) adds those from inside, read
    from rings that carry each vector's last k values (k its longest lag inside the
    loop), oldest first. With lengths, every value is zero past an item's end, so a
    backward layer starts there from its initial zeros."""
    nodes = {m: folded.nodes[m] for m in members}
    inside = set(members)
    reverse = int(any(d["role"] == "state" and d["lag"] < 0 for d in nodes.values()))
    depth = dict.fromkeys(members, 0)
    for m in members:
        for source, _, lag in folded.in_edges(m, data="lag"):
            if source in inside:
                depth[source] = max(depth[source], abs(lag))
    body = g.child()
    carries = {
        m: KINDS[d["kind"]].carries if d["role"] == "state" else ("y",) for m, d in nodes.items()
    }
    rings = {m: [body.fresh(f"{m}.{c}_ring") for c in carries[m]] for m in members if depth[m]}

    def width(m: str, carry: int) -> int:  # h has the state's size, the rest one per unit
        return nodes[m]["size"] if carry == 0 else nodes[m].get("units", nodes[m]["size"])

    state_inputs = [
        body.value_info(ring, [depth[m], "B", width(m, k)])
        for m, names in rings.items()
        for k, ring in enumerate(names)
    ]
    learned = {m: d["learned"] for m, d in nodes.items() if d.get("learned")}
    given = {m: d["given"] for m, d in nodes.items() if d.get("given")}
    # its ring holds s0 at first: only its own recurrence reads it (`fixed_t_reasons`
    # unrolls a loop where another layer reads it across steps)
    s0 = {m: g.weight(key, params[key]) for m, key in learned.items()}  # (H,)
    s0 |= given  # the graph input, (B, H)
    initial = [
        g.add(g.zeros(batch, nodes[m]["size"], (depth[m],)), g.unsqueeze(s0[m], [0]))
        if m in s0 and k == 0
        else g.zeros(batch, width(m, k), (depth[m],))
        for m, names in rings.items()
        for k, _ in enumerate(names)
    ]
    scan_inputs, element_inputs, projected = [], [], {}
    for m in members:
        total = _project(g, params, [f for f in _feeds(folded, m) if f[0] not in inside], values)
        if total is not None:
            projected[m] = body.fresh(f"{m}.xw_t")
            columns = KINDS[nodes[m]["kind"]].columns(width(m, 1))
            scan_inputs.append(total)
            element_inputs.append(body.value_info(projected[m], ["B", columns]))
    if not scan_inputs:  # the spec's rules give every loop a feed from outside it
        raise SpecError(f"`{members[0]}` reads nothing from outside its loop; export --steps T")
    live = None
    if item_steps is not None:
        live = body.fresh("live_t")
        mask = g.steps_mask(g.dim(scan_inputs[0], 0), item_steps)
        scan_inputs.append(g.op("Transpose", [g.unsqueeze(mask, [2])], perm=[1, 0, 2]))
        element_inputs.append(body.value_info(live, ["B", 1], "bool"))

    now: dict[str, tuple] = {}
    carried: dict[str, tuple] = {}  # what the rings keep, where it is not `now`

    def read(source: str, lag: int, carry: int = 0) -> str:
        if lag == 0:
            return now[source][carry]
        back = body.const(depth[source] - abs(lag))  # the ring's oldest value is `depth` back
        return body.op("Gather", [rings[source][carry], back], axis=0)

    for m in members:
        data = nodes[m]
        xw = projected.get(m)
        for source, key, rows, lag in _feeds(folded, m):
            if source in inside:
                product = body.matmul(read(source, lag), _rows(g, params, key, rows))
                xw = product if xw is None else body.add(xw, product)
        if data["role"] == "state":
            kind, lag = KINDS[data["kind"]], data["lag"]
            prev = tuple(read(m, lag, k) for k in range(len(kind.carries)))
            layer, suffix = data["layer"], data["suffix"]
            ws = _rows(g, params, f"{layer}.Ws{suffix}", (0, data["size"]))
            biases = [_rows(g, params, key, (0, len(params[key]))) for key in bias_keys(data)]
            weights = kind.step_weights(ws, biases)
            new = tuple(kind.step(body, xw, prev, weights, data.get("activation")))
        else:
            biases = [g.weight(key, params[key]) for key in bias_keys(data)]
            new = (body.activation(data["activation"], body.add(xw, *biases)),)
        if live is not None and m in s0:  # past an item's end its ring holds s0 again
            h = body.op("Where", [live, new[0], s0[m]])
            carried[m] = (h, *(body.op("Where", [live, c, body.scalar(0.0)]) for c in new[1:]))
        if live is not None:
            new = tuple(body.op("Where", [live, value, body.scalar(0.0)]) for value in new)
        now[m] = new
    state_outputs, element_outputs = [], []
    for m, names in rings.items():
        for k, (ring, value) in enumerate(zip(names, carried.get(m, now[m]))):
            latest = body.unsqueeze(value, [0])
            if depth[m] > 1:
                latest = body.concat([body.slice(ring, 0, 1), latest], axis=0)
            out = body.name_as(latest, body.fresh(f"{ring}_next"))
            state_outputs.append(body.value_info(out, [depth[m], "B", width(m, k)]))
    for m in members:
        out = body.name_as(now[m][0], body.fresh(f"{m}_t"))
        element_outputs.append(body.value_info(out, ["B", nodes[m]["size"]]))
    name = "_".join(m.replace(".", "_") for m in members) + "_step"
    graph = g.onnx.helper.make_graph(
        body.nodes, name, state_inputs + element_inputs, state_outputs + element_outputs
    )
    results = g.op(
        "Scan",
        initial + scan_inputs,
        hint="scan",
        outputs=len(state_outputs) + len(members),
        body=graph,
        num_scan_inputs=len(scan_inputs),
        scan_input_directions=[reverse] * len(scan_inputs),
        scan_output_directions=[reverse] * len(members),
    )
    results = results if isinstance(results, list) else [results]
    return dict(zip(members, results[len(state_outputs) :]))


def _emit(g: Builder, folded, name: str, values, item_steps, steps) -> tuple:
    """An output: (its (B, T_out, size) value, T_out for the signature, its lengths)."""
    data = folded.nodes[name]
    sources = sorted(
        ((source, tuple(d["rows"])) for source, _, d in folded.in_edges(name, data=True)),
        key=lambda pair: pair[1],
    )
    parts: dict = {}  # by rows: the two directions of `merge: sum` share theirs
    for source, rows in sources:
        parts[rows] = g.add(parts.get(rows), values[source])
    value = g.concat(list(parts.values()), axis=-1)
    value = g.op("Transpose", [value], perm=[1, 0, 2])  # (B, T, size)
    start, _ = window_bounds(data["window"])
    start = start or 0
    out_steps = len(parse_window(data["window"], steps)) if steps else f"T_{name}"
    if item_steps is None:
        if start >= 0:
            return (g.slice(value, 1, start) if start else value), out_steps, None
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
