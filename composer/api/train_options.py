"""A training run's options in one frozen value, instead of `composer.train`'s keyword
arguments: `Network.train(params, data, TrainOptions(epochs=20, lr=1e-2))`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from composer.training.loop import Epoch
from composer.training.schedules import Schedule

__all__ = ["TrainOptions"]


@dataclass(frozen=True)
class TrainOptions:
    """Every option of `composer.train` (docs/training.md), with its defaults; `lengths`
    for a padded data set, `engine` for another engine's forward pass."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    loss: str | Mapping[str, str] = "mse"
    seed: int = 0
    bptt: int | None = None
    clip: float | None = None
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str | Schedule = "constant"
    validation: float | Mapping[str, np.ndarray] = 0.1
    split: str = "random"
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str | None = None
    metrics: Sequence[str] | Mapping[str, Sequence[str]] | None = None
    allow_unnormalised: bool = False
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int = 1
    resume: str | os.PathLike | None = None
    callbacks: Sequence[Callable[[Epoch], object]] = ()
    on_epoch: Callable[[Epoch], None] | None = None
    on_step: Callable[[int, float], None] | None = None
    dtype: str = "float32"
    where: str = "data"
    validation_where: str = "validation data"
    lengths: Mapping[str, object] | None = None
    engine: Callable | None = None

    def keywords(self) -> dict:
        """The options as `composer.train`'s keyword arguments (values not copied)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def but(self, **changes) -> TrainOptions:
        """These options with some changed (`dataclasses.replace`)."""
        return replace(self, **changes)
