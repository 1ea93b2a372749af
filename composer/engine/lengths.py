"""Sequences of different lengths in one padded batch: the lengths, checked, and each item's T.

A padded batch holds, for each input, a (B, T_in, F) array whose item b has only
`lengths[b]` real steps, the rest padding. Item b means exactly what its arrays cut to
their lengths mean alone: its own number of steps T_b, inferred through the windows as
for a single run (`infer_steps`), its windows resolved against T_b.

Examples
--------
>>> import numpy as np
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.folded import build
>>> graph = build(NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 1}],
...     "layers": [{"name": "rnn", "kind": "gru", "input": "x", "state_size": 2}],
...     "outputs": [{"name": "o", "from": "rnn"}],
...     "alignment": {"preset": "many-to-many", "delay": 2}}))
>>> x = np.zeros((3, 10, 1))
>>> item_steps(graph, {"x": x}, check_lengths(graph, {"x": x}, {"x": [10, 7, 4]}))
array([12,  9,  6])
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from composer.engine.inputs import (
    LENGTHS_SUFFIX,
    input_sizes,
    is_given,
    sequence_names,
    split_lengths,
    steps_for_lengths,
    time_steps,
)
from composer.errors import DataError, SpecError
from composer.spec.windows import parse_window

__all__ = [
    "LENGTHS_SUFFIX",
    "split_lengths",
    "named_lengths",
    "check_lengths",
    "item_steps",
    "parse_lengths",
]


def parse_lengths(text: str) -> np.ndarray:
    """`"10,7,4"` as lengths; refused (DataError) unless whole numbers separated by commas.

    Examples
    --------
    >>> parse_lengths("10, 7,4").tolist()
    [10, 7, 4]
    """
    try:
        return np.array([int(part) for part in text.split(",")], dtype=np.int64)
    except ValueError:
        raise DataError(
            f"--lengths: expected whole numbers separated by commas, such as 10,7,4, or a "
            f".npy file, got {text!r}"
        ) from None


def named_lengths(graph: nx.MultiDiGraph, lengths, where: str = "lengths") -> dict:
    """Lengths by input name: a dict as given, or one input's lengths alone (an array or a
    list, as `Network.run(x)` takes x alone) for a network with one stepped input."""
    if isinstance(lengths, Mapping):
        return dict(lengths)
    stepped = [name for name in input_sizes(graph) if not is_given(graph, name)]
    if len(stepped) != 1:
        raise DataError(
            f"{where}: this network has the inputs {', '.join(stepped)}; give the lengths "
            "as a dict by input name"
        )
    return {stepped[0]: lengths}


def check_lengths(
    graph: nx.MultiDiGraph,
    arrays: Mapping[str, np.ndarray],
    lengths: Mapping[str, object] | object,
    where: str = "lengths",
) -> dict[str, np.ndarray]:
    """Each input's lengths as int64 (B,), checked against its (B, T_in, F) array; a
    network with one stepped input also takes its lengths alone (an array or a list).

    Inputs without lengths are whole. Refused, naming the key and the item: an unknown
    input, numbers that are not integers, a shape other than (B,), a length below 1 or
    longer than the array.
    """
    names = list(input_sizes(graph))
    lengths = named_lengths(graph, lengths, where)
    checked = {}
    for name, given in lengths.items():
        label = name + LENGTHS_SUFFIX
        key = f"{where}: key {label!r}" if where != "lengths" else f"{name} lengths"
        if name not in names:
            raise DataError(f"{key}: `{name}` is not an input; inputs: {', '.join(names)}")
        if is_given(graph, name):
            raise DataError(
                f"{key}: `{name}` gives a start state, which has no steps and so no lengths"
            )
        values = np.asarray(given)
        if values.dtype.kind not in "iu":
            raise DataError(f"{key}: expected integers, got {_describe(values)}")
        array = np.asarray(arrays[name])
        batch, steps = array.shape[0], time_steps(graph, name, array)
        if values.shape != (batch,):
            raise DataError(
                f"{key}: expected one length per batch item, shape ({batch},), got {values.shape}"
            )
        for item, length in enumerate(values.tolist()):
            if length < 1:
                raise DataError(f"{key}: item {item} has length {length}; a length is >= 1")
            if length > steps:
                raise DataError(
                    f"{key}: item {item} has length {length}, longer than the array's {steps} steps"
                )
        checked[name] = values.astype(np.int64)
    return checked


def _check_windows(graph: nx.MultiDiGraph, steps: int) -> None:
    """Refuse a T at which some window holds no step (SpecError, located in the spec), as
    unrolling to it would: checked for every item's T without unrolling to each."""
    if graph.graph["preset"] == "one-to-one" and steps != 1:
        raise SpecError(f"a one-to-one network has exactly 1 step, got T = {steps}", ("alignment",))
    for node, data in graph.nodes(data=True):
        if len(parse_window(data["window"], steps)) == 0:
            raise SpecError(
                f"window `{data['window']}` of `{node}` selects no step of 0..{steps - 1} "
                f"(T = {steps})",
                data["window_path"],
            )


def _describe(values: np.ndarray) -> str:
    if values.dtype.kind == "b":
        return "booleans"
    return f"dtype {values.dtype}"


def item_steps(
    graph: nx.MultiDiGraph,
    arrays: Mapping[str, np.ndarray],
    lengths: Mapping[str, np.ndarray],
    steps: int | None = None,
) -> np.ndarray:
    """Each batch item's own T, (B,) int64: what its inputs' lengths imply through their
    windows, as for a single run (`steps`, or the spec's, where the lengths fit several T).

    Refused (DataError, naming the item and the inputs) when no T fits an item's lengths,
    or its inputs imply different T.
    """
    names = [name for name in sequence_names(graph) if name in arrays]
    if not names:  # only start states: no time axis to tell T from
        batch = len(np.asarray(next(iter(arrays.values()))))
        return np.full(batch, steps or graph.graph["steps"], dtype=np.int64)
    batch = np.asarray(arrays[names[0]]).shape[0]
    per_input = {
        name: lengths.get(name, np.full(batch, time_steps(graph, name, arrays[name])))
        for name in names
    }
    table = np.stack([per_input[name] for name in names], axis=1)
    unique, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    found = np.empty(len(unique), dtype=np.int64)
    for row in np.argsort(first).tolist():  # in batch order: an error names the first bad item
        item = int(first[row])
        try:
            found[row] = steps_for_lengths(graph, dict(zip(names, unique[row].tolist())), steps)
            _check_windows(graph, int(found[row]))
        except (DataError, SpecError) as err:
            raise DataError(f"batch item {item}: {err}") from None
    return found[inverse.ravel()]
