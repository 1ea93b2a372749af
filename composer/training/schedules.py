"""Learning-rate schedules, one rate per epoch, as `torch.optim.lr_scheduler` steps them.

A schedule is written as a string (`train --schedule`, `train(schedule=...)`):

    constant                    the rate as given (the default)
    step:EVERY:FACTOR           times FACTOR every EVERY epochs (StepLR(EVERY, FACTOR))
    cosine[:MIN]                from the rate down to MIN (default 0) along a half cosine
                                over the run's epochs (CosineAnnealingLR(T_max=epochs, MIN))
    plateau:PATIENCE:FACTOR     times FACTOR when the monitored loss has not improved for
                                more than PATIENCE epochs (ReduceLROnPlateau(mode="min",
                                factor=FACTOR, patience=PATIENCE), its 1e-4 relative threshold)
    warmup:N[,SCHEDULE]         rising linearly over the first N epochs, rate * e / N at
                                epoch e, then SCHEDULE (default constant) over the rest
                                (SequentialLR of LinearLR(1/N, 1, N - 1) and SCHEDULE,
                                milestone N)

Epochs count from 1; the rate of epoch e is set before its first update, and a
schedule moves once per epoch (a scheduler's `step()` after each epoch, as in PyTorch's
examples). `Schedule.rate(e)` is that rate; `after(e, loss)` tells the schedule an epoch's
monitored loss (plateau reads it).

Examples
--------
>>> sched = parse_schedule("warmup:2,step:2:0.5")
>>> sched.start(0.1, epochs=6)
>>> [round(sched.rate(e), 4) for e in range(1, 7)]
[0.05, 0.1, 0.1, 0.1, 0.05, 0.05]
"""

from __future__ import annotations

import math

from composer.errors import DataError

__all__ = ["Schedule", "parse_schedule", "GRAMMAR"]

GRAMMAR = "constant, step:EVERY:FACTOR, cosine[:MIN], plateau:PATIENCE:FACTOR, warmup:N[,SCHEDULE]"


class Schedule:
    """A learning rate per epoch; the base rate and the run's epochs come with `start`."""

    def __init__(self, text: str):
        self.text, self.base, self.epochs = text, 0.0, 0

    def start(self, base: float, epochs: int) -> None:
        self.base, self.epochs = float(base), int(epochs)

    def rate(self, epoch: int) -> float:
        """The rate of epoch `epoch` (1, 2, ...)."""
        return self.base

    def after(self, epoch: int, loss: float) -> None:
        """The monitored loss of an epoch that ended."""

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        pass


class _Step(Schedule):
    def __init__(self, text: str, every: int, factor: float):
        super().__init__(text)
        self.every, self.factor = every, factor

    def rate(self, epoch: int) -> float:
        return self.base * self.factor ** ((epoch - 1) // self.every)


class _Cosine(Schedule):
    def __init__(self, text: str, low: float):
        super().__init__(text)
        self.low = low

    def rate(self, epoch: int) -> float:
        span = max(self.epochs, 1)
        turn = (1 + math.cos(math.pi * (epoch - 1) / span)) / 2
        return self.low + (self.base - self.low) * turn


class _Plateau(Schedule):
    """ReduceLROnPlateau(mode="min", threshold=1e-4 relative, cooldown 0, eps 1e-8)."""

    def __init__(self, text: str, patience: int, factor: float):
        super().__init__(text)
        self.patience, self.factor = patience, factor
        self.current, self.best, self.bad = 0.0, math.inf, 0

    def start(self, base: float, epochs: int) -> None:
        super().start(base, epochs)
        self.current, self.best, self.bad = self.base, math.inf, 0

    def rate(self, epoch: int) -> float:
        return self.current

    def after(self, epoch: int, loss: float) -> None:
        if loss < self.best * (1 - 1e-4):
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        if self.bad > self.patience:
            lower = self.current * self.factor
            if self.current - lower > 1e-8:
                self.current = lower
            self.bad = 0

    def state(self) -> dict:
        return {"current": self.current, "best": self.best, "bad": self.bad}

    def restore(self, state: dict) -> None:
        self.current, self.best, self.bad = state["current"], state["best"], state["bad"]


class _Warmup(Schedule):
    def __init__(self, text: str, steps: int, then: Schedule):
        super().__init__(text)
        self.steps, self.then = steps, then

    def start(self, base: float, epochs: int) -> None:
        super().start(base, epochs)
        self.then.start(base, max(epochs - self.steps, 1))

    def rate(self, epoch: int) -> float:
        if epoch <= self.steps:
            return self.base * epoch / self.steps
        return self.then.rate(epoch - self.steps)

    def after(self, epoch: int, loss: float) -> None:
        if epoch > self.steps:
            self.then.after(epoch - self.steps, loss)

    def state(self) -> dict:
        return self.then.state()

    def restore(self, state: dict) -> None:
        self.then.restore(state)


def _number(text: str, part: str, kind, what: str, low: float, high: float = math.inf):
    """`part` as an int or float in (low, high), or a one-line error naming `what`."""
    try:
        value = kind(part)
    except ValueError:
        value = None
    if value is None or not low < value < high:
        bounds = f"> {low:g}" if high == math.inf else f"in ({low:g}, {high:g})"
        raise DataError(
            f"schedule {text!r}: {what} must be a{'n int' if kind is int else ' number'} "
            f"{bounds}, got {part!r}; expected {GRAMMAR}"
        )
    return value


def parse_schedule(text: str | Schedule) -> Schedule:
    """A schedule from its string (see the module's grammar); errors in one line."""
    if isinstance(text, Schedule):
        return text
    head, comma, rest = str(text).strip().partition(",")
    name, *args = head.split(":")
    counts = {"constant": [0], "step": [2], "cosine": [0, 1], "plateau": [2], "warmup": [1]}
    if name not in counts or len(args) not in counts[name] or (comma and not rest):
        raise DataError(f"schedule {text!r} does not parse; expected {GRAMMAR}")
    if comma and name != "warmup":
        raise DataError(f"schedule {text!r} does not parse; expected {GRAMMAR}")
    if name == "constant":
        return Schedule(text)
    if name == "step":
        every = _number(text, args[0], int, "EVERY", 0)
        return _Step(text, every, _number(text, args[1], float, "FACTOR", 0))
    if name == "cosine":
        low = _number(text, args[0], float, "MIN", -math.inf) if args else 0.0
        if low < 0:
            raise DataError(f"schedule {text!r}: MIN must be >= 0, got {args[0]!r}")
        return _Cosine(text, low)
    if name == "plateau":
        patience = _number(text, args[0], int, "PATIENCE", -1)
        return _Plateau(text, patience, _number(text, args[1], float, "FACTOR", 0, 1))
    steps = _number(text, args[0], int, "N", 0)
    then = parse_schedule(rest) if rest else Schedule("constant")
    if isinstance(then, _Warmup):
        raise DataError(f"schedule {text!r}: one warm-up only; expected {GRAMMAR}")
    return _Warmup(text, steps, then)
