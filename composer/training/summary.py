"""A training run in words and rows: one line per epoch, the history's rows, and the
final summary as plain data (`train --history`, `train --json`)."""

from __future__ import annotations

import math

__all__ = ["epoch_row", "history_row"]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def history_row(record) -> dict[str, float | int | None]:
    """One epoch as a flat row: epoch, losses, each metric, the rate, time, updates."""
    row = {
        "epoch": record.epoch,
        "train_loss": record.train_loss,
        "val_loss": record.val_loss,
        **dict(record.metrics),
        "lr": record.lr,
        "seconds": round(record.seconds, 6),
        "updates": record.updates,
    }
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def epoch_row(record) -> str:
    """`epoch 3  loss 0.26  val 0.258  o.accuracy 0.892  lr 0.01`."""
    parts = [f"epoch {record.epoch}", f"loss {_fmt(record.train_loss)}"]
    if record.val_loss is not None:
        parts.append(f"val {_fmt(record.val_loss)}")
    parts += [f"{name} {_fmt(value)}" for name, value in record.metrics.items()]
    if record.lr is not None:
        parts.append(f"lr {record.lr:.3g}")
    return "  ".join(parts)
