"""Text reports for the terminal: the summary table and a short view of output arrays."""

from __future__ import annotations

import numpy as np

from composer.graph.unrolled import Unrolled
from composer.graph.weights import param_table
from composer.kinds import KINDS
from composer.readable import format_steps
from composer.spec.model import NetworkSpec

__all__ = [
    "summary_data",
    "summary_text",
    "output_report",
    "padded_report",
    "format_dependencies",
]


def summary_data(spec: NetworkSpec, unrolled: Unrolled) -> dict:
    """The summary as plain data (what `summary --json` prints)."""
    table = param_table(unrolled.folded)
    sizes = _input_sizes(unrolled.folded)
    return {
        "name": spec.name,
        "steps": unrolled.steps,
        "total_params": sum(info.count for info in table),
        "params": {info.key: list(info.shape) for info in table},
        "weights": [
            {
                "key": i.key,
                "layer": i.layer,
                "shape": list(i.shape),
                "formula": i.formula,
                "numbers": i.numbers,
                "count": i.count,
            }
            for i in table
        ],
        "layers": [_layer_row(unrolled.folded, layer, sizes) for layer in spec.layers],
        "alignment": _alignment(spec, unrolled.folded),
        "windows": _windows(unrolled.folded),
        "start_states": _start_states(unrolled.folded),
        "unrolled_nodes": unrolled.node_count(),
    }


def summary_text(data: dict) -> str:
    """The summary as tables, like a Keras model summary."""
    layers, weights, total = data["layers"], data["weights"], data["total_params"]
    layer_rows = [
        [
            r["name"],
            r["kind"] + (" x2" if r["directions"] == 2 else ""),
            _input_cell(r),
            r["state_size"] or "-",
            r["output_size"],
        ]
        for r in layers
    ]
    weight_rows = [
        [
            w["key"],
            " x ".join(map(str, w["shape"])),
            f"{w['formula']} = {w['numbers']}",
            f"{w['count']:,}",
        ]
        for w in weights
    ]
    return "\n".join(
        [
            f"{data['name']}: {len(layers)} layer(s), alignment {data['alignment']}",
            "",
            _table(["layer", "kind", "input", "state", "output"], layer_rows),
            "",
            _table(["weight", "shape", "formula", "count"], weight_rows, right={3}),
            "",
            f"total parameters: {total:,}",
            f"unrolled to T = {data['steps']}: {data['unrolled_nodes']:,} vector nodes share "
            f"these {len(weights)} weights; the total is {total:,} for every T",
        ]
    )


def _alignment(spec: NetworkSpec, folded) -> str:
    aligned = spec.aligned()
    name = aligned.preset or "explicit"
    if aligned.delay:
        name += f" (delay {aligned.delay})"
    shown = {
        role: ", ".join(f"{n} `{w}`" for n, w in _windows(folded)[role].items())
        for role in ("inputs", "outputs")
    }
    starts = [f"{n} (start of {', '.join(ls)})" for n, ls in _start_states(folded).items()]
    shown["inputs"] = ", ".join(filter(None, [shown["inputs"], *starts]))
    return f"{name}, inputs {shown['inputs']}, outputs {shown['outputs']}"


def _windows(folded) -> dict[str, dict[str, str]]:
    """Each input's and output's own window, as written (or the alignment's default); an
    input that gives a start state has none (see `_start_states`)."""
    nodes = sorted(folded.nodes(data=True), key=lambda item: item[1]["order"])
    return {
        f"{role}s": {
            n: d["window"] for n, d in nodes if d["role"] == role and not d.get("given_state")
        }
        for role in ("input", "output")
    }


def _start_states(folded) -> dict[str, list[str]]:
    """`{input: [layer, ...]}`: the inputs that give layers' start states (`initial_state`)."""
    starts: dict[str, list[str]] = {}
    for _, data in sorted(folded.nodes(data=True), key=lambda item: item[1]["order"]):
        if data.get("given"):
            starts.setdefault(data["given"], []).append(data["layer"])
    return starts


def _input_sizes(folded) -> dict[str, tuple[int, list[int]]]:
    """Each layer's input size and the delays of its taps (`[0]` for a plain input), from
    its input edges: one pass over the edges (a pass per layer made `summary` quadratic,
    26 s for a chain of 4,000 layers)."""
    sizes: dict[str, tuple[int, list[int]]] = {}
    for _, head, data in folded.in_edges(data=True):
        if data["role"] == "input":
            layer = folded.nodes[head].get("layer")
            size, delays = sizes.setdefault(layer, (data["shape"][0], []))
            if data["lag"] not in delays:
                delays.append(data["lag"])
    return sizes


def _layer_row(folded, layer, input_sizes: dict[str, int] | None = None) -> dict:
    if input_sizes is None:
        input_sizes = _input_sizes(folded)
    input_size, delays = input_sizes.get(layer.name, (0, []))
    state = getattr(layer, "state_size", None)
    directions = 2 if getattr(layer, "bidirectional", False) else 1
    if not KINDS[layer.kind].stateful:
        out = layer.size
    elif layer.output is not None:
        out = layer.output.size
    else:  # a bidirectional layer's two states, concatenated or merged (`merge`)
        width = KINDS[layer.kind].variant(layer).width(layer)  # P when projected
        out = width * (1 if getattr(layer, "merge", "concat") != "concat" else directions)
    return {
        "name": layer.name,
        "kind": layer.kind,
        "directions": directions,
        "input_size": input_size,
        "input_delays": sorted(delays),
        "state_size": state,
        "output_size": out,
    }


def _input_cell(row: dict) -> str:
    """A layer's input size; `-` without an input; the taps' delays when not just t."""
    if not row["input_delays"]:
        return "-"
    if row["input_delays"] == [0]:
        return str(row["input_size"])
    return f"{row['input_size']}, delays {format_steps(row['input_delays'])}"


def _table(header: list[str], rows: list[list], right: set[int] = frozenset()) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule] + [line(row) for row in cells[1:]])


def output_report(name: str, value, steps: range, flat: bool) -> str:
    """A few readable lines about one output array: shape, steps, values of the first item."""
    first = value if flat else value[0]
    shape = "x".join(map(str, value.shape))
    lines = [
        f"{name}: {shape} ({'steps' if flat else 'batch, steps'}, size), "
        f"steps {format_steps(list(steps))}" + ("" if flat else "; batch item 0:")
    ]
    shown = list(range(len(steps)))
    if len(shown) > 6:
        shown = shown[:3] + [None] + shown[-3:]
    with np.printoptions(precision=4, suppress=True, linewidth=100, threshold=8, edgeitems=3):
        for i in shown:
            lines.append("  ..." if i is None else f"  {name}[{steps[i]}] = {first[i]}")
    return "\n".join(lines)


def padded_report(name: str, value, lengths, item_steps: list[range], items: int = 4) -> str:
    """A padded batch's output: its shape and lengths, then each of the first `items`
    items' last real step (a many-to-one output's only one)."""
    shape = "x".join(map(str, value.shape))
    lines = [f"{name}: {shape} (batch, steps, size); {name}.lengths = {list(map(int, lengths))}"]
    with np.printoptions(precision=4, suppress=True, linewidth=100, threshold=8, edgeitems=3):
        for item, steps in enumerate(item_steps[:items]):
            count = len(steps)
            lines.append(
                f"  item {item}: {count} step{'s' if count != 1 else ''}, "
                f"{name}[{steps[-1]}] = {value[item, count - 1]}"
            )
    if len(item_steps) > items:
        lines.append(f"  ... ({len(item_steps) - items} more items)")
    return "\n".join(lines)


def format_dependencies(deps: dict[str, dict[int, dict[str, list[int]]]]) -> list[str]:
    """One line per emitted output step, such as `o[7] <- x[0..7]`."""
    lines = []
    for output, per_step in deps.items():
        for t, found in per_step.items():
            parts = [  # a start state (no steps) shows as its name
                f"{name}[{format_steps(steps)}]" if steps else name for name, steps in found.items()
            ]
            lines.append(f"{output}[{t}] <- {', '.join(parts) or '(no input)'}")
    return lines
