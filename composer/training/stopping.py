"""When a run stops early, and which epoch's weights are the best.

`Monitor` follows one figure of each epoch: `loss` (the validation loss, or the training
loss without a validation set; the default), `val_loss`, `train_loss`, or a metric by its
column name (`o.accuracy`; `composer.training.metrics`). Lower is better for losses and
error metrics, higher for accuracies. An epoch improves on the best so far when it beats
it by more than `min_delta`; with `patience` N, N epochs in a row without an improvement
end the run, as Keras' `EarlyStopping(patience=N, min_delta=...)` does.

`diverging` says a run has gone wrong: its training loss rose above `DIVERGED` times the
untrained one (a loss of 228 after one epoch where the untrained weights gave 0.5). A
NaN or infinite loss, or weights that overflow, stop the run in the loop itself. Either
way the run ends with the best weights so far and a warning.

Examples
--------
>>> from composer.training.loop import Epoch
>>> watch = Monitor(None, patience=2, min_delta=0.0)
>>> [watch.improved(Epoch(e, v, None, 0.0, e)) for e, v in enumerate([1.0, 0.5, 0.6, 0.5])]
[True, True, False, False]
>>> watch.exhausted()
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from composer.errors import DataError

__all__ = ["Monitor", "diverging", "loss_of", "stopped_warning", "DIVERGED", "HIGHER_IS_BETTER"]

#: a training loss this many times the untrained one is a diverging run
DIVERGED = 100.0

#: the metrics (by name, without the output) that grow as a model improves
HIGHER_IS_BETTER = ("accuracy", "set-accuracy")


def loss_of(record) -> float:
    """The loss that picks the best weights by default: validation's, else training's."""
    return record.val_loss if record.val_loss is not None else record.train_loss


def diverging(record, untrained) -> bool:
    """Whether an epoch's training loss is far above the untrained one (`DIVERGED` times)."""
    start = untrained.train_loss
    return math.isfinite(start) and start > 0 and record.train_loss > DIVERGED * start


class Monitor:
    """Follows one figure per epoch: the best value, and the epochs since it improved."""

    def __init__(self, name: str | None, patience: int | None = None, min_delta: float = 0.0):
        if patience is not None and patience < 1:
            raise DataError(f"patience must be >= 1 epoch, got {patience!r}")
        if not min_delta >= 0:
            raise DataError(f"min delta must be >= 0, got {min_delta!r}")
        self.name = name or "loss"
        metric = self.name.rsplit(".", 1)[-1]
        self.sign = -1.0 if metric in HIGHER_IS_BETTER or metric.startswith("top-") else 1.0
        self.patience, self.min_delta = patience, float(min_delta)
        self.best, self.waited = math.inf, 0

    def check(self, metrics, validation: bool) -> None:
        """Refuse, before training, a figure the run will not have: `metrics` are the
        declared `<output>.<metric>` names."""
        known = ["loss", "train_loss", *(["val_loss"] if validation else []), *metrics]
        if self.name not in known:
            if self.name == "val_loss":
                raise DataError("monitor val_loss: there is no validation set")
            raise DataError(f"monitor {self.name!r}: expected one of {', '.join(known)}")

    def value(self, record) -> float:
        """The monitored figure of an epoch record."""
        if self.name == "loss":
            return loss_of(record)
        if self.name in ("val_loss", "train_loss"):
            value = getattr(record, self.name)
            if value is None:
                raise DataError("monitor val_loss: there is no validation set")
            return value
        metrics: Mapping[str, float] = record.metrics
        if self.name not in metrics:
            known = ", ".join(["loss", "val_loss", "train_loss", *metrics])
            raise DataError(f"monitor {self.name!r}: expected one of {known}")
        return metrics[self.name]

    def improved(self, record) -> bool:
        """Take an epoch: whether it is the best so far (by more than min_delta after the
        first)."""
        value = self.sign * self.value(record)
        if not math.isfinite(value):
            self.waited += 1
            return False
        if value < self.best - (self.min_delta if math.isfinite(self.best) else 0.0):
            self.best, self.waited = value, 0
            return True
        self.waited += 1
        return False

    def exhausted(self) -> bool:
        """Whether patience has run out."""
        return self.patience is not None and self.waited >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "waited": self.waited}

    def restore(self, state: Mapping) -> None:
        self.best, self.waited = float(state["best"]), int(state["waited"])


def stopped_warning(result) -> str | None:
    """The line that says why a run ended early (None: it ran all its epochs)."""
    last = result.history[-1]
    if result.stopped == "diverged":
        if last.epoch and diverging(last, result.history[0]):
            why = (
                f"the training loss rose to {last.train_loss:.4g} at epoch {last.epoch}, over "
                f"{DIVERGED:g} times the untrained {result.history[0].train_loss:.4g}"
            )
        else:
            why = "the loss or the weights became NaN or infinite"
        return (
            f"warning: training diverged ({why}); stopped, keeping the best weights "
            f"(epoch {result.best_epoch}); try a lower --lr or --clip"
        )
    if result.stopped == "early":
        return f"stopped early at epoch {last.epoch}: no improvement for the --patience epochs"
    if result.stopped == "callback":
        return f"stopped at epoch {last.epoch} by a callback"
    return None
