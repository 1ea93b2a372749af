"""Training on padded batches: the loss and its gradients over each item's real steps only.

A padded batch's loss is what the losses say of any batch, a mean over the emitted
(batch, step) pairs, over each item's real output steps only (those within its own
lengths, `composer.engine.batches`), weighted by an optional mask as well. So its gradient
is the sum of each item's gradient alone, each weighted by its share of the real steps.

Two ways to get it, the same numbers to rounding:

- a network whose layers all run forward in time (and that could run packed) is one
  pass over the longest T: padding reads as zero, every output step of every item is
  kept, and the mask keeps only each item's own steps. Nothing computed past an item's
  end reaches its real steps, so nothing flows back from there;
- any other network (a backward layer starts at each item's own end) is grouped by T,
  each group one pass of its own plan, every group's loss divided by the whole batch's
  real steps (`grad(..., totals=...)`).

Examples
--------
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.folded import build
>>> from composer.graph.weights import init_params
>>> graph = build(NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 2}],
...     "layers": [{"name": "rnn", "kind": "gru", "input": "x", "state_size": 3,
...                 "output": {"size": 1}}],
...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"}))
>>> params, rng = init_params(graph, dtype="float64"), np.random.default_rng(0)
>>> x, y = rng.normal(size=(2, 5, 2)), rng.normal(size=(2, 1, 1))
>>> value, grads = grad_padded(graph, params, {"x": x}, {"o": y}, {"x": [5, 3]})
>>> alone = [grad_padded(graph, params, {"x": x[b:b + 1, :n]}, {"o": y[b:b + 1]}, {})
...          for b, n in enumerate([5, 3])]
>>> bool(np.isclose(value, (alone[0][0] + alone[1][0]) / 2))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np

from composer.engine.batches import input_steps, output_steps, packable, plan_for_item, running
from composer.engine.inputs import input_sizes, is_given
from composer.engine.lengths import check_lengths, item_steps
from composer.engine.plan import Plan
from composer.errors import DataError
from composer.training.backprop import Workspace, evaluate, grad
from composer.training.dropout import Dropout

__all__ = ["Part", "padded_parts", "grad_padded", "evaluate_padded"]

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Part:
    """A plan and the arrays it takes: the whole padded batch (its items sorted longest
    first, `active` the items still running at each step), or the items of one T."""

    plan: Plan
    inputs: dict
    targets: dict
    masks: dict
    active: dict | None = None


def _outputs(graph: nx.MultiDiGraph) -> list[str]:
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    return [name for name, data in nodes if data["role"] == "output"]


def _by_output(outputs: list[str], arrays, what: str) -> dict:
    if arrays is None or isinstance(arrays, Mapping):
        return {name: np.asarray(value) for name, value in dict(arrays or {}).items()}
    if len(outputs) != 1:
        raise DataError(f"this network has outputs {', '.join(outputs)}; pass {what} by name")
    return {outputs[0]: np.asarray(arrays)}


def padded_parts(
    graph: nx.MultiDiGraph,
    inputs: Arrays,
    targets,
    lengths: Mapping[str, object],
    mask=None,
    steps: int | None = None,
    where: str = "lengths",
    plans: dict | None = None,
) -> tuple[list[Part], dict[str, float]]:
    """The passes a padded batch's loss is made of, and each output's divisor: the weight
    of all its items' real steps. Targets and masks are (B, T_out, ...) with each item's
    real output steps first. `plans` keeps the plans made, by T, for the next call (a
    training loop's minibatches share them, and with them their workspace)."""
    arrays = {name: np.asarray(array) for name, array in inputs.items()}
    checked = check_lengths(graph, arrays, lengths, where)
    per_item = item_steps(graph, arrays, checked, steps)
    outputs = _outputs(graph)
    targets, masks = _by_output(outputs, targets, "targets"), _by_output(outputs, mask, "masks")
    real, totals = {}, {}
    for name in outputs:
        if name not in targets:
            raise DataError(f"targets: missing {name!r}")
        counts = np.array([len(r) for r in output_steps(graph, name, per_item)])
        width = targets[name].shape[1] if targets[name].ndim >= 2 else 0
        if counts.max() > width:
            item = int(np.argmax(counts > width))
            raise DataError(
                f"targets: key {name!r}: batch item {item} has {counts[item]} output steps, "
                f"but the targets hold {width}"
            )
        weight = (np.arange(width)[np.newaxis] < counts[:, np.newaxis]).astype(np.float64)
        if name in masks:
            weight = weight * masks[name]
        real[name], totals[name] = weight, float(weight.sum())
    forward = all(lag > 0 for _, lag in graph.nodes(data="lag") if lag is not None)
    if packable(graph) and forward:
        return [_whole(graph, arrays, targets, real, per_item, plans)], totals
    return _grouped(graph, arrays, targets, real, per_item, plans), totals


def _plan(
    graph: nx.MultiDiGraph, steps: int, whole: bool, plans: dict | None, item: int = 0
) -> Plan:
    """The plan at `steps`; `whole`: every output step kept (each item takes its own)."""
    key = (whole, steps)
    if plans is not None and key in plans:
        return plans[key]
    if whole:
        graph = graph.copy()
        for name in _outputs(graph):
            graph.nodes[name]["window"] = ":"
    plan = plan_for_item(graph, steps, item)
    if plans is not None:
        plans[key] = plan
    return plan


def _whole(graph, arrays, targets, real, per_item, plans) -> Part:
    """The whole batch at the longest T, its items sorted longest first: padding zeroed,
    every output step kept, each item's targets and weights moved to the steps of its own
    window, and each recurrent layer run for the items still running only."""
    order = np.argsort(-per_item, kind="stable")
    per_item = per_item[order]
    longest = int(per_item[0])
    plan = _plan(graph, longest, True, plans)
    inputs = {}
    for name in input_sizes(graph):
        if is_given(graph, name):  # a start state: no steps, no padding
            inputs[name] = arrays[name][order]
            continue
        cut = arrays[name][order, : input_steps(graph, name, longest)]
        for item, steps in enumerate(per_item.tolist()):
            cut[item, input_steps(graph, name, steps) :] = 0  # padding reads as absent
        inputs[name] = cut
    moved_targets, moved_masks = {}, {}
    for name in _outputs(graph):
        target, weight_of = targets[name][order], real[name][order]
        moved = np.zeros((target.shape[0], longest, *target.shape[2:]), target.dtype)
        weight = np.zeros((target.shape[0], longest))
        for item, steps in enumerate(output_steps(graph, name, per_item)):
            moved[item, steps.start : steps.stop] = target[item, : len(steps)]
            weight[item, steps.start : steps.stop] = weight_of[item, : len(steps)]
        moved_targets[name], moved_masks[name] = moved, weight
    counts = running(per_item[::-1], longest)
    active = {name: counts for name, v in plan.vectors.items() if v.role == "state"}
    return Part(plan, inputs, moved_targets, moved_masks, active)


def _grouped(graph, arrays, targets, real, per_item, plans) -> list[Part]:
    """The items of each T apart, their arrays cut to that T's windows."""
    parts = []
    for steps in np.unique(per_item).tolist():
        items = np.flatnonzero(per_item == steps)
        plan = _plan(graph, steps, False, plans, int(items[0]))
        inputs = {
            name: arrays[name][items]
            if is_given(graph, name)
            else arrays[name][items, : input_steps(graph, name, steps)]
            for name in input_sizes(graph)
        }
        cut = {name: len(plan.window(name)) for name in plan.outputs}
        part_targets = {name: targets[name][items, : cut[name]] for name in plan.outputs}
        masks = {name: real[name][items, : cut[name]] for name in plan.outputs}
        parts.append(Part(plan, inputs, part_targets, masks))
    return parts


def grad_padded(
    graph: nx.MultiDiGraph,
    params: Arrays,
    inputs: Arrays,
    targets,
    lengths: Mapping[str, object],
    loss: str | Mapping[str, str] = "mse",
    mask=None,
    bptt: int | None = None,
    steps: int | None = None,
    *,
    dtype: str | None = None,
    workspace: Workspace | None = None,
    where: str = "lengths",
    plans: dict | None = None,
    train=False,
) -> tuple[float, dict[str, np.ndarray]]:
    """`grad` of a padded batch: the loss over each item's real steps, and its gradient
    (`train`: with the layers' dropout, as `grad`'s)."""
    parts, totals = padded_parts(graph, inputs, targets, lengths, mask, steps, where, plans)
    value, grads = 0.0, None
    if train is True:  # one generator for every part: each part's items get their own masks
        train = Dropout(0)
    for part in parts:
        options = dict(dtype=dtype, workspace=workspace, totals=totals, active=part.active)
        options["train"] = train
        part_value, part_grads = grad(*_arrays(part, params, loss), bptt, **options)
        value += part_value
        if grads is None:
            grads = part_grads
        else:
            for key, array in part_grads.items():
                grads[key] += array
    return value, grads


def evaluate_padded(
    graph: nx.MultiDiGraph,
    params: Arrays,
    inputs: Arrays,
    targets,
    lengths: Mapping[str, object],
    loss: str | Mapping[str, str] = "mse",
    mask=None,
    steps: int | None = None,
    *,
    dtype: str | None = None,
    workspace: Workspace | None = None,
    where: str = "lengths",
    plans: dict | None = None,
) -> float:
    """The loss `grad_padded` would report, without the backward pass."""
    parts, totals = padded_parts(graph, inputs, targets, lengths, mask, steps, where, plans)
    options = dict(dtype=dtype, workspace=workspace, totals=totals)
    return sum(
        evaluate(*_arrays(part, params, loss), active=part.active, **options) for part in parts
    )


def _arrays(part: Part, params: Arrays, loss) -> tuple:
    """A part's leading arguments of `grad` and `evaluate`."""
    return part.plan, params, part.inputs, part.targets, loss, part.masks
