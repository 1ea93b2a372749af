"""Metrics: what a modeller reads besides the loss, per output, masked like the loss.

Each metric is declared for an output (`o:accuracy`) or for every output it fits
(`accuracy`), and is reported under `<output>.<metric>`:

- `accuracy`: the share of emitted steps whose most likely class (argmax of a softmax
  output) is the target's (a class id, or the argmax of one-hot targets);
- `top-K` (`top-3`): the share of steps whose target class is among the K most likely;
- `set-accuracy`: for multi-hot targets, the share of steps whose predicted set equals
  the target set exactly: outputs > 0.5 for a sigmoid output, the n most likely
  classes of a softmax output whose target holds n ones;
- `mae`, `rmse`: mean absolute error, and the square root of the mean squared error,
  over the steps and the features of an output trained with mse (or a sigmoid one);
- `perplexity`: exp of the mean cross-entropy per step, in nats; `bits-per-char`: the
  mean cross-entropy in bits (a character-level model's usual figure).

A step counts with its weight in the loss: its mask value (`<output>.mask`), 0 past an
item's real steps when the inputs have lengths. Each metric sums over a data set in
chunks and divides once (so chunking changes nothing but rounding).

Examples
--------
>>> probs = np.array([[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]])  # (B, T_out, C)
>>> ids = np.array([[0, 1]])
>>> totals = step_sums("accuracy", probs, ids, np.ones((1, 2)))
>>> finish("accuracy", *totals)
0.5
>>> finish("top-2", *step_sums("top-2", probs, ids, np.ones((1, 2))))
1.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from composer.errors import DataError

__all__ = [
    "METRICS",
    "declared_metrics",
    "step_sums",
    "finish",
    "readout_activation",
    "measure_metrics",
]

METRICS = ("accuracy", "top-K", "set-accuracy", "mae", "rmse", "perplexity", "bits-per-char")
_CLASSES = ("accuracy", "perplexity", "bits-per-char")
_TOP = re.compile(r"top-([1-9][0-9]*)$")


def readout_activation(plan, output: str) -> str | None:
    """The activation of the vector an output emits (a readout or a dense layer's)."""
    feeds = plan.vectors[output].feeds
    if len(feeds) != 1:
        return None
    return plan.vectors[feeds[0].source].activation


def _fits(metric: str, kind: str, activation: str | None, size: int) -> str | None:
    """Why `metric` does not fit an output (None: it fits)."""
    top = _TOP.match(metric)
    if metric in _CLASSES or top:
        if kind != "cross-entropy":
            return "it needs class scores: a softmax output trained with cross-entropy"
        if top and int(top.group(1)) >= size:
            return f"K must be below the output's {size} classes"
        return None
    if metric == "set-accuracy":
        if activation not in ("sigmoid", "softmax") or size < 2:
            return "it needs a sigmoid or softmax output of 2 or more units (multi-hot targets)"
        return None
    if metric in ("mae", "rmse"):
        if kind == "cross-entropy":
            return "it compares values: use accuracy, top-K or perplexity on class scores"
        return None
    raise DataError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


def declared_metrics(
    plan, kinds: Mapping[str, str], declared: Sequence[str] | Mapping[str, Sequence[str]] | None
) -> list[tuple[str, str]]:
    """`[(output, metric), ...]` of the declarations, checked against the outputs:
    `["accuracy", "o:mae"]` (a bare name: every output it fits) or `{output: [names]}`."""
    if not declared:
        return []
    if isinstance(declared, str):
        declared = [declared]
    if isinstance(declared, Mapping):
        declared = [f"{out}:{name}" for out, names in declared.items() for name in names]
    found: list[tuple[str, str]] = []
    for text in declared:
        output, _, metric = str(text).rpartition(":")
        outputs = [output] if output else list(plan.outputs)
        if output and output not in plan.outputs:
            raise DataError(
                f"metric {text!r}: no output {output!r}; the outputs are {', '.join(plan.outputs)}"
            )
        reasons = {}
        for name in outputs:
            size = plan.vectors[name].size
            reasons[name] = _fits(metric, kinds[name], readout_activation(plan, name), size)
        fitting = [name for name in outputs if reasons[name] is None]
        if not fitting:
            name = outputs[0]
            raise DataError(
                f"metric {metric!r} does not fit output `{name}` ({kinds[name]} loss, "
                f"{readout_activation(plan, name) or 'no'} activation): {reasons[name]}"
            )
        found += [(name, metric) for name in fitting if (name, metric) not in found]
    return found


def _step_weights(weights: np.ndarray, steps: int) -> np.ndarray:
    return np.asarray(weights, np.float64)[:, :steps]


def step_sums(
    metric: str,
    outputs: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    softmax: bool = True,
) -> tuple[float, float]:
    """(weighted sum, total weight) of a metric over a chunk: `outputs` (B, T_out, size)
    as `run` gives them (probabilities for a softmax), `targets` as in the data, and
    `weights` (B, T_out) each step's weight; `softmax` says the output is one (set
    accuracy then takes the most likely classes, else the outputs over 0.5)."""
    out = np.asarray(outputs, np.float64)
    steps = out.shape[1]
    weight = _step_weights(weights, steps)
    target = np.asarray(targets)[:, :steps]
    classes = out.shape[-1]
    ids = target if target.ndim == 2 else None
    if metric in _CLASSES or _TOP.match(metric):
        if ids is None:
            ids = target.argmax(axis=-1)
        ids = ids.astype(np.intp)
        if metric == "accuracy":
            hit = out.argmax(axis=-1) == ids
        elif top := _TOP.match(metric):
            k = int(top.group(1))
            chosen = out[np.arange(out.shape[0])[:, None], np.arange(steps)[None, :], ids]
            hit = (out > chosen[..., None]).sum(axis=-1) < k  # ties go the target's way
        else:
            chosen = np.take_along_axis(out, ids[..., None], axis=-1)[..., 0]
            nll = -np.log(np.maximum(chosen, np.finfo(np.float64).tiny))
            return float((weight * nll).sum()), float(weight.sum())
        return float((weight * hit).sum()), float(weight.sum())
    if metric == "set-accuracy":
        if ids is not None:
            target = np.eye(classes)[ids.astype(np.intp)]
        wanted = target > 0.5
        if softmax:
            order = np.argsort(-out, axis=-1, kind="stable")
            rank = np.argsort(order, axis=-1, kind="stable")
            chosen = rank < wanted.sum(axis=-1, keepdims=True)
        else:
            chosen = out > 0.5
        hit = (chosen == wanted).all(axis=-1)
        return float((weight * hit).sum()), float(weight.sum())
    error = out - np.asarray(target, np.float64)
    per_step = np.abs(error) if metric == "mae" else error * error
    return float((weight[..., None] * per_step).sum()), float(weight.sum() * classes)


def finish(metric: str, total: float, weight: float) -> float:
    """A metric's value from its sums over a data set (NaN where nothing counted)."""
    if weight <= 0:
        return math.nan
    mean = total / weight
    if metric == "rmse":
        return math.sqrt(mean)
    if metric == "perplexity":
        return math.exp(mean)
    if metric == "bits-per-char":
        return mean / math.log(2)
    return mean


def _readable(plan, name: str, array: np.ndarray, dtype: str) -> np.ndarray:
    """An input as the executor reads it: token ids as they are, numbers as `dtype`
    (a padded run does not cast one-hot uint8 features itself)."""
    if plan.folded.nodes[name].get("vocab") or array.dtype.kind == "f":
        return array
    return array.astype(dtype)


def measure_metrics(plan, params, sets, index, pairs, dtype: str, chunk: int) -> dict[str, float]:
    """`{"<output>.<metric>": value}` over the sequences `index` of `sets` (inputs,
    targets, masks, lengths), run through the NumPy executor in chunks."""
    from composer.engine.batches import run  # the executor, only when metrics are asked

    sums = {pair: [0.0, 0.0] for pair in pairs}
    inputs, targets, masks, lengths = sets
    for start in range(0, len(index), chunk):
        part = index[start : start + chunk]
        given = {k: np.asarray(v)[part] for k, v in lengths.items()} or None
        arrays = {k: _readable(plan, k, v[part], dtype) for k, v in inputs.items()}
        outs = run(plan.folded, params, arrays, None, dtype, lengths=given)
        for output, metric in pairs:
            out = outs[output]
            weight = np.ones(out.shape[:2])
            if output in masks:
                weight = weight * np.asarray(masks[output][part], np.float64)[:, : out.shape[1]]
            if f"{output}.lengths" in outs:
                counts = outs[f"{output}.lengths"]
                weight = weight * (np.arange(out.shape[1])[None, :] < counts[:, None])
            softmax = readout_activation(plan, output) == "softmax"
            value, total = step_sums(metric, out, targets[output][part], weight, softmax)
            sums[(output, metric)][0] += value
            sums[(output, metric)][1] += total
    return {f"{o}.{m}": finish(m, *sums[(o, m)]) for o, m in pairs}
