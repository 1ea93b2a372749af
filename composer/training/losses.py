"""Losses: mean squared error and softmax cross-entropy, averaged over the emitted steps.

Both losses average over the (batch, step) pairs an output is emitted at, weighted by an
optional per-step mask of shape (B, T_out) (a padded sequence masks its padding out):

    loss = sum_bt mask_bt * l_bt / sum_bt mask_bt

- `mse`: l_bt = mean over features of (o_bt - y_bt)^2 (PyTorch's `MSELoss` when unmasked);
- `cross-entropy`: l_bt = -sum_c y_btc log softmax(a_bt)_c over the logits a of a softmax
  output (PyTorch's `CrossEntropyLoss` when unmasked). It is computed from the logits with
  log-sum-exp, so no log of zero is ever taken, and its gradient with respect to the
  logits is mask * (p * sum_c y_c - y) / sum(mask): p - y for one-hot targets.

Targets are (B, T_out, size) floats; for cross-entropy also (B, T_out) integer class ids.

Examples
--------
>>> import numpy as np
>>> value, grad = mse(np.array([[[1.0], [3.0]]]), np.array([[[0.0], [1.0]]]))
>>> value, grad.ravel().tolist()
(2.5, [1.0, 2.0])
>>> value, grad = cross_entropy(np.zeros((1, 1, 2)), np.array([[1]]))
>>> round(value, 4), grad.ravel().tolist()
(0.6931, [0.5, -0.5])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.errors import DataError, SpecError, key_mismatch

__all__ = [
    "LOSSES",
    "mse",
    "cross_entropy",
    "log_softmax",
    "one_hot",
    "loss_kinds",
    "softmax_source",
    "logit_source",
    "check_targets",
    "binary_cross_entropy",
    "check_target_sums",
    "LOGIT_LOSSES",
]

LOSSES = ("mse", "cross-entropy", "binary-cross-entropy")
#: the activation each loss computed from logits needs on the output's layer
LOGIT_LOSSES = {"cross-entropy": "softmax", "binary-cross-entropy": "sigmoid"}
#: how far a cross-entropy target's row may sum from 1 (or 0: a padded step)
SUM_TOLERANCE = 1e-3


def _weights(
    mask: np.ndarray | None, shape: tuple[int, int], dtype, total: float | None = None
) -> tuple[np.ndarray, float]:
    """The per-step weights (B, T_out, 1) and what the loss is divided by: their total, or
    `total` when given (a part of a larger batch divides by the whole batch's)."""
    weights = np.ones(shape, dtype) if mask is None else np.asarray(mask, dtype)
    return weights[..., np.newaxis], float(weights.sum()) if total is None else float(total)


def mse(
    outputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    total: float | None = None,
) -> tuple[float, np.ndarray]:
    """Mean squared error over emitted (and unmasked) steps, and its gradient w.r.t. outputs;
    `total` replaces the mask's sum as the divisor."""
    weights, total = _weights(mask, outputs.shape[:2], outputs.dtype, total)
    if total <= 0:
        return 0.0, np.zeros_like(outputs)
    error = outputs - targets
    size = outputs.shape[-1]
    value = float(np.sum(weights * error * error) / (total * size))
    return value, error * weights * (2.0 / (total * size))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis by log-sum-exp: finite for any finite logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def one_hot(ids: np.ndarray, classes: int, dtype=np.float64) -> np.ndarray:
    """(..., classes) one-hot rows of integer class ids."""
    return np.eye(classes, dtype=dtype)[np.asarray(ids, dtype=np.intp)]


def cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    total: float | None = None,
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy from logits (B, T_out, C) and its gradient w.r.t. the logits.

    `targets` are (B, T_out, C) probabilities (one-hot or soft) or (B, T_out) class ids;
    `total` replaces the mask's sum as the divisor.
    """
    if targets.ndim == logits.ndim - 1:
        targets = one_hot(targets, logits.shape[-1], logits.dtype)
    weights, total = _weights(mask, logits.shape[:2], logits.dtype, total)
    if total <= 0:
        return 0.0, np.zeros_like(logits)
    logp = log_softmax(logits)
    value = float(-np.sum(weights * targets * logp) / total)
    mass = targets.sum(axis=-1, keepdims=True)
    return value, (np.exp(logp) * mass - targets) * (weights / total)


def binary_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    total: float | None = None,
) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of a sigmoid output from its logits (B, T_out, size), averaged
    over features and weighted steps, and its gradient w.r.t. the logits.

    Each unit is a yes/no target y in [0, 1] (multi-label: several may be 1). The loss is
    the stable form of -y log s(a) - (1 - y) log(1 - s(a)), max(a, 0) - a y +
    log(1 + exp(-|a|)), finite for any finite logit (PyTorch's
    `binary_cross_entropy_with_logits`); its gradient is (s(a) - y) / size per step.
    """
    weights, total = _weights(mask, logits.shape[:2], logits.dtype, total)
    if total <= 0:
        return 0.0, np.zeros_like(logits)
    size = logits.shape[-1]
    per = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    value = float(np.sum(weights * per) / (total * size))
    probs = 0.5 * (1 + np.tanh(0.5 * logits))  # the sigmoid, without overflow
    return value, (probs - targets) * (weights / (total * size))


def logit_source(plan, output: str) -> str | None:
    """The softmax or sigmoid vector (a readout or a dense layer) an output emits, whose
    pre-activation a cross-entropy reads, or None."""
    feeds = plan.vectors[output].feeds
    if len(feeds) != 1:
        return None
    source = plan.vectors[feeds[0].source]
    dense = source.role in ("readout", "dense")
    return source.name if source.activation in ("softmax", "sigmoid") and dense else None


def softmax_source(plan, output: str) -> str | None:
    """The softmax vector (a readout or a dense layer) an output emits, or None."""
    feeds = plan.vectors[output].feeds
    if len(feeds) != 1:
        return None
    source = plan.vectors[feeds[0].source]
    dense = source.role in ("readout", "dense")
    return source.name if source.activation == "softmax" and dense else None


def loss_kinds(plan, loss: str | Mapping[str, str]) -> dict[str, str]:
    """`{output: loss}` for every output of a plan, checked: cross-entropy needs softmax.

    `loss` is one of LOSSES for every output, or a mapping by output name.
    """
    kinds = dict.fromkeys(plan.outputs, loss) if isinstance(loss, str) else dict(loss)
    mismatch = key_mismatch(plan.outputs, kinds)
    if mismatch:
        raise DataError(f"losses: expected one per output ({', '.join(plan.outputs)}); {mismatch}")
    for name, kind in kinds.items():
        if kind not in LOSSES:
            raise DataError(f"loss {kind!r} for output `{name}`: expected one of {LOSSES}")
        wanted = LOGIT_LOSSES.get(kind)
        source = logit_source(plan, name)
        if wanted and (source is None or plan.vectors[source].activation != wanted):
            layer = plan.folded.nodes[name]["layer"]
            raise SpecError(
                f"{kind} on output `{name}` needs a {wanted} readout: give layer "
                f"`{layer}` `output: {{activation: {wanted}}}` (or use --loss mse)",
                plan.folded.nodes[name]["path"],
            )
    return kinds


def _check_mask(where: str, mask, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf" or mask.shape != shape:
        raise DataError(
            f"{where}: expected a (B, T_out) = {shape} mask of numbers, "
            f"got {mask.dtype} {mask.shape}"
        )
    if mask.dtype.kind == "f" and not np.isfinite(mask).all() or (mask < 0).any():
        raise DataError(f"{where}: mask values must be finite and >= 0")
    return mask


def _check_target(where: str, target, kind: str, shape: tuple[int, int, int]) -> np.ndarray:
    target = np.asarray(target)
    classes = shape[2]
    if kind == "cross-entropy" and target.dtype.kind in "iu" and target.shape == shape[:2]:
        if target.size and (target.min() < 0 or target.max() >= classes):
            raise DataError(
                f"{where}: class ids must lie in 0..{classes - 1}, "
                f"got {target.min()}..{target.max()}"
            )
        return target
    ids = f" or (B, T_out) = {shape[:2]} integer class ids" if kind == "cross-entropy" else ""
    if target.dtype.kind != "f" or target.shape != shape:
        hint = ""
        if kind == "mse" and target.dtype.kind in "iu" and target.shape == shape[:2]:
            hint = "; integer class ids need the cross-entropy loss"
        raise DataError(
            f"{where}: expected (B, T_out, size) = {shape} floats{ids}, "
            f"got {target.dtype} {target.shape}{hint}"
        )
    if not np.isfinite(target).all():
        raise DataError(f"{where}: holds NaN or Inf")
    if kind == "binary-cross-entropy" and target.size and (target.min() < 0 or target.max() > 1):
        raise DataError(
            f"{where}: binary cross-entropy targets must lie in [0, 1], "
            f"got {target.min():g}..{target.max():g}"
        )
    return target


def check_targets(
    plan,
    targets: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray] | None,
    kinds: Mapping[str, str],
    batch: int,
    where: str = "targets",
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """`{output: (targets, mask or None)}`, each checked against the plan's output shapes."""
    masks = dict(masks or {})
    stray_masks = [name for name in masks if name not in plan.outputs]
    mismatch = key_mismatch(plan.outputs, [*targets, *stray_masks])
    if mismatch:
        raise DataError(
            f"{where}: {mismatch}; expected one target per output: {', '.join(plan.outputs)}"
        )
    checked = {}
    for name in plan.outputs:
        shape = (batch, len(plan.window(name)), plan.vectors[name].size)
        target = _check_target(f"{where}: key {name!r}", targets[name], kinds[name], shape)
        mask = masks.get(name)
        if mask is not None:
            mask = _check_mask(f"{where}: key '{name}.mask'", mask, shape[:2])
        checked[name] = (target, mask)
    return checked


def check_target_sums(
    targets: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    where: str,
    allow: bool = False,
) -> list[str]:
    """Refuse cross-entropy targets (floats) whose rows do not sum to 1, at the steps
    that count (a mask's zeros, and rows of zeros, such as padding, are left out): a
    multi-hot target on a softmax is a mistake the loss would not show. With `allow`,
    the problems come back as warning lines instead."""
    found = []
    for name, kind in kinds.items():
        target = np.asarray(targets[name])
        if kind != "cross-entropy" or target.dtype.kind != "f":
            continue
        sums = target.sum(axis=-1)
        counted = np.abs(sums) > SUM_TOLERANCE
        if name in masks:
            counted &= np.asarray(masks[name]) > 0
        wrong = counted & (np.abs(sums - 1) > SUM_TOLERANCE)
        if wrong.any():
            item, step = (int(i) for i in np.argwhere(wrong)[0])
            count = int(wrong.sum())
            steps = "1 step does not" if count == 1 else f"{count} steps do not"
            found.append(
                f"{where}: key {name!r}: cross-entropy targets must sum to 1 at each step "
                f"(a distribution over the classes), but {steps}, "
                f"first item {item}, step {step}: {sums[item, step]:g}; for multi-hot "
                "targets use a sigmoid output and binary-cross-entropy"
            )
    if found and not allow:
        raise DataError(found[0])
    return found
