"""A run planned before any work: its steps (each item's, for a padded batch), its plan
within the memory limit, and what it needs; and which steps a padded run's outputs take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np

from composer.engine.batches import output_steps
from composer.engine.inputs import infer_steps
from composer.engine.lengths import check_lengths, item_steps
from composer.engine.memory import execute_bytes, params_bytes
from composer.engine.pipeline import plan_for_steps

__all__ = ["PlannedRun", "plan_run", "padded_output_steps"]


@dataclass(frozen=True)
class PlannedRun:
    """The plan, the checked lengths by input (empty unless padded), each item's steps
    (None unless padded), the batch size and the bytes the run needs."""

    plan: object
    lengths: dict
    item_steps: np.ndarray | None
    batch: int
    need: int


def plan_run(
    folded: nx.MultiDiGraph,
    arrays: Mapping[str, np.ndarray],
    lengths: Mapping[str, np.ndarray],
    steps: int | None,
    dtype: str,
    max_memory,
    where: str,
) -> PlannedRun:
    """Plan a run of batched `arrays` (with `lengths`, named `where` in messages, a padded
    batch) at `steps` (default: what the inputs imply); `SpecError` when the network
    cannot take them, `ResourceError` when the plan exceeds `max_memory`. `need` counts
    the run's workspace and a set of weights in `dtype`."""
    per_item = None
    if lengths:
        lengths = check_lengths(folded, arrays, lengths, where)
        per_item = item_steps(folded, arrays, lengths, steps)
        steps = int(per_item.max())
    plan = plan_for_steps(folded, steps or infer_steps(folded, arrays), max_memory=max_memory)
    batch = next(iter(arrays.values())).shape[0]
    need = execute_bytes(plan, batch, dtype) + params_bytes(folded, dtype)
    return PlannedRun(plan, dict(lengths), per_item, batch, need)


def padded_output_steps(folded: nx.MultiDiGraph, name: str, per_item, stepped: bool):
    """The steps each item's output `name` is taken at in a padded run; run step by step
    (with states carried over), every output is taken at every step."""
    return [range(t) for t in per_item] if stepped else output_steps(folded, name, per_item)
