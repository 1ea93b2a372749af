"""A forward pass in one call (`run`), for a whole batch or a padded one (`run_padded`).

Padded batches hold sequences of different lengths, each item as if it ran alone.

Item b of a padded batch gives what its arrays cut to their lengths give alone: its own T,
its windows resolved against that T (a many-to-one output at its own last step), a
backward layer starting at its own last step. Outputs are zero past each item's own last
output step, and `<output>.lengths` says how many steps each item has. The numbers are
an item's alone to rounding, not always to the last bit: the batch's products have more
rows, which BLAS may round differently, depending on the CPU.

Two ways to get there, the same numbers to rounding:

- **packed**, as PyTorch runs packed sequences: the items sorted by T, the longest first,
  one pass over the longest T, and at each step only the leading items still running
  computed, so the padding costs nothing. It applies when every layer exists at every step
  and every input's window is a prefix of the steps (`:` or `:-d`), with no hand-over of
  a state and no future context (`packable`): the plain stacks, bidirectional, dilated,
  feedback, forecasting;
- **grouped**, for every other network (windows inside the steps, encoder-decoders): the
  items grouped by T, each group one run of its own plan.

Examples
--------
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.folded import build
>>> from composer.graph.weights import init_params
>>> graph = build(NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 2}],
...     "layers": [{"name": "rnn", "kind": "gru", "input": "x", "state_size": 3}],
...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"}))
>>> params, x = init_params(graph), np.random.default_rng(0).normal(size=(2, 5, 2))
>>> padded = run_padded(graph, params, {"x": x}, {"x": [5, 3]})
>>> alone = run_padded(graph, params, {"x": x[1:, :3]}, {})
>>> bool(np.allclose(padded["o"][1], alone["o"][0])), padded["o.lengths"].tolist()
(True, [1, 1])
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import networkx as nx
import numpy as np

from composer.engine.executor import Packing, execute
from composer.engine.inputs import batched, check_inputs, infer_steps, is_given
from composer.engine.lengths import LENGTHS_SUFFIX, check_lengths, item_steps
from composer.engine.pipeline import folded_graph, plan_for_steps
from composer.engine.plan import bind_params
from composer.engine.tokens import padding_lengths
from composer.errors import DataError, SpecError
from composer.spec.model import NetworkSpec
from composer.spec.windows import parse_window, window_bounds

__all__ = [
    "run",
    "run_padded",
    "packable",
    "output_steps",
    "input_steps",
    "running",
    "plan_for_item",
]


def run(
    graph_or_spec: NetworkSpec | nx.MultiDiGraph,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray] | np.ndarray,
    steps: int | None = None,
    dtype: str = "float32",
    *,
    lengths: Mapping[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """Build, unroll, plan and execute in one call.

    `inputs` maps input names to (B, T_in, F) arrays, or to (T_in, F) arrays (then the
    outputs are 2-D too); a network with one input also takes the bare array. `steps`
    defaults to what the inputs' lengths imply through their windows (`infer_steps`).
    `lengths` maps inputs to the (B,) real lengths of a padded batch (`run_padded`): the
    result then also holds `<output>.lengths`.

    Examples
    --------
    >>> from composer.graph.folded import build
    >>> from composer.graph.weights import init_params
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4}],
    ...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"})
    >>> graph = build(spec)
    >>> run(graph, init_params(graph), np.ones((5, 3)))["o"].shape
    (1, 4)
    """
    graph = folded_graph(graph_or_spec)
    arrays, flat = batched(graph, inputs)
    if lengths is None and not flat:
        lengths = padding_lengths(graph, arrays) or None  # `padding_id` ends each item
    if lengths is not None:
        if flat:
            raise DataError("lengths describe a batch: give (B, T_in, F) inputs with them")
        return run_padded(graph, params, arrays, lengths, steps, dtype)
    steps = infer_steps(graph, arrays) if steps is None else operator.index(steps)
    outputs = execute(plan_for_steps(graph, steps), params, arrays, dtype)
    return {name: out[0] for name, out in outputs.items()} if flat else outputs


def packable(graph: nx.MultiDiGraph) -> bool:
    """Whether a padded batch of this network can run packed (see the module's notes)."""
    for _, _, data in graph.edges(data=True):
        if data["lag"] < 0 and data["role"] != "recurrent":  # future context: past an item's
            return False  # end it reads what only that item's own shorter run leaves absent
    for _, data in graph.nodes(data=True):
        role, (start, stop) = data["role"], window_bounds(data["window"])
        if role == "output":
            continue
        if role == "input" and start in (None, 0) and (stop is None or stop < 0):
            continue
        if role == "input" or start not in (None, 0) or stop is not None:
            return False
        if data.get("initial_state") is not None:
            return False
        if data.get("lag", 1) < 0 and (data.get("learned") or data.get("given")):
            return False  # a backward layer starts at each item's own end, from its s0 or h0
    return True


def output_steps(graph: nx.MultiDiGraph, name: str, steps: np.ndarray) -> list[range]:
    """The steps of output `name` for items of T `steps`: its window resolved per item."""
    window = graph.nodes[name]["window"]
    return [parse_window(window, int(t)) for t in steps]


def run_padded(
    graph: nx.MultiDiGraph,
    params,
    inputs: Mapping[str, np.ndarray],
    lengths: Mapping[str, object],
    steps: int | None = None,
    dtype: str = "float32",
    *,
    where: str = "lengths",
) -> dict[str, np.ndarray]:
    """Outputs of a padded batch, `{output: (B, T_out, size)}` zero past each item's own
    steps, and `{output}.lengths`, (B,) ints: each item's number of output steps.

    `lengths` maps an input's name to its (B,) lengths; inputs not named are whole.
    `steps` fixes T where the lengths fit several (as for a single run).
    """
    arrays = {name: np.asarray(array) for name, array in inputs.items()}
    checked = check_lengths(graph, arrays, lengths, where)
    per_item = item_steps(graph, arrays, checked, steps)
    run = _packed if packable(graph) else _grouped
    outputs = run(graph, params, arrays, per_item, dtype)
    outputs_names = [n for n, role in graph.nodes(data="role") if role == "output"]
    for name in outputs_names:
        counts = [len(r) for r in output_steps(graph, name, per_item)]
        outputs[f"{name}{LENGTHS_SUFFIX}"] = np.array(counts, dtype=np.int64)
    return outputs


def input_steps(graph: nx.MultiDiGraph, name: str, steps: int) -> int:
    """How many steps input `name` holds at T = `steps`: its window's."""
    return len(parse_window(graph.nodes[name]["window"], steps))


def _cut(graph: nx.MultiDiGraph, name: str, array: np.ndarray, steps: int) -> np.ndarray:
    """An input's array cut to its steps at T = `steps`; a start state as it is."""
    return array if is_given(graph, name) else array[:, : input_steps(graph, name, steps)]


def _outputs(graph: nx.MultiDiGraph, per_item: np.ndarray, dtype) -> dict[str, np.ndarray]:
    out = {}
    for name, data in graph.nodes(data="role"):
        if data == "output":
            longest = max(len(r) for r in output_steps(graph, name, per_item))
            out[name] = np.zeros((len(per_item), longest, graph.nodes[name]["size"]), dtype)
    return out


def _grouped(graph, params, arrays, per_item, dtype) -> dict[str, np.ndarray]:
    """Items grouped by T, each group one run of the plan at its T, scattered back."""
    bound = bind_params(graph, params, dtype)
    outputs = _outputs(graph, per_item, bound.dtype)
    for steps in np.unique(per_item).tolist():
        items = np.flatnonzero(per_item == steps)
        plan = plan_for_item(graph, steps, int(items[0]))
        group = {name: _cut(graph, name, array[items], steps) for name, array in arrays.items()}
        for name, values in execute(plan, bound, group, dtype).items():
            outputs[name][items, : values.shape[1]] = values
    return outputs


def plan_for_item(graph: nx.MultiDiGraph, steps: int, item: int):
    """The plan at an item's T; a T the spec cannot unroll to is that item's data error."""
    try:
        return plan_for_steps(graph, steps)
    except SpecError as err:
        raise DataError(f"batch item {item}: {err}") from None


def _packed(graph, params, arrays, per_item, dtype) -> dict[str, np.ndarray]:
    """One pass over the longest T, items sorted longest first, each step computed for the
    leading items still running (`Packing`)."""
    order = np.argsort(-per_item, kind="stable")
    steps_sorted = per_item[order]
    longest = int(steps_sorted[0])
    packed = graph.copy()  # every step of every output is kept; each item takes its own
    for name, role in graph.nodes(data="role"):
        if role == "output":
            packed.nodes[name]["window"] = ":"
    plan = plan_for_steps(packed, longest)
    ascending = steps_sorted[::-1]

    active = {}
    for name, v in plan.vectors.items():
        if v.role == "input":
            stops = np.array([input_steps(graph, name, t) for t in ascending.tolist()])
            active[name] = running(stops, longest)
        elif v.role != "output":
            active[name] = running(ascending, longest)
    gather, out_steps = {}, {}
    for name in plan.outputs:
        ranges = output_steps(graph, name, steps_sorted)
        out_steps[name] = max(len(r) for r in ranges)
        gather[name] = _gather(ranges, order, longest, out_steps[name])
    inputs = {name: _cut(graph, name, array, longest) for name, array in arrays.items()}
    check_inputs(plan, inputs)
    bound = bind_params(packed, params, dtype)
    packing = Packing(order, active, gather, out_steps)
    return execute(plan, bound, inputs, dtype, packing=packing)


def running(stops: np.ndarray, longest: int) -> np.ndarray:
    """Per step t of 0..longest-1, how many items run past t, given each item's number of
    steps in ascending order (the items themselves sorted longest first)."""
    return len(stops) - np.searchsorted(stops, np.arange(longest), side="right")


def _gather(ranges: list[range], order: np.ndarray, longest: int, out_steps: int) -> tuple:
    """`Packing.gather` of one output: (bounds, steps, rows, places) sorted by step, the
    sorted rows whose own window holds each step and where their values go."""
    counts = np.array([len(r) for r in ranges])
    rows = np.repeat(np.arange(len(ranges)), counts)
    positions = np.concatenate([np.arange(n) for n in counts]) if len(rows) else rows
    steps = np.concatenate([np.arange(r.start, r.stop) for r in ranges]) if len(rows) else rows
    by_step = np.argsort(steps, kind="stable")
    rows, steps = rows[by_step], steps[by_step]
    places = order[rows] * out_steps + positions[by_step]
    return np.searchsorted(steps, np.arange(longest + 1)), steps, rows, places
