"""Dropout masks for training passes: seeded, drawn once per batch, kept for the backward.

Three places drop values, each set on a layer in the spec (`docs/training.md`):

- `dropout: p` on a layer's input feeds: a fresh mask at every step;
- `output_dropout: p` on the readout's input (the state before Wy): fresh at every step;
- `recurrent_dropout: p` on the state the recurrence reads (s_{t-k} before Ws): one mask
  per sequence, the same at every step (variational dropout, Gal & Ghahramani 2016).

A mask holds 0 for a dropped value and 1 / (1 - p) for a kept one ("inverted" dropout,
as PyTorch's), so nothing changes when a network runs without dropout: `run` and the
validation loss never drop anything.

Examples
--------
>>> masks = Dropout(seed=0)
>>> m = masks.mask("rnn.s", (2, 3), 0.5, np.float64)
>>> sorted(set(m.ravel().tolist())) == [0.0, 2.0] or set(m.ravel().tolist()) <= {0.0, 2.0}
True
>>> masks.mask("rnn.s", (2, 3), 0.5, np.float64) is m  # the same pass: the same mask
True
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

__all__ = ["Dropout", "pass_masks"]


class Dropout:
    """The masks of a training run: one generator, a mask per key until `renew`.

    A pass asks for each mask by a key (the vector and feed it belongs to); asking again
    with the same key and shape gives the same mask, so a gradient and its finite
    differences see the same masks. A training loop calls `renew` before each batch.
    """

    def __init__(self, seed: int | None = 0):
        self.rng = np.random.default_rng(seed)
        self.masks: dict[Hashable, np.ndarray] = {}

    def renew(self) -> None:
        """Forget the masks: the next pass draws new ones."""
        self.masks.clear()

    def mask(self, key: Hashable, shape: tuple[int, ...], p: float, dtype) -> np.ndarray:
        """The mask for `key`: 0 with probability p, else 1 / (1 - p)."""
        held = self.masks.get(key)
        if held is not None and held.shape == tuple(shape):
            return held.astype(dtype, copy=False)
        kept = self.rng.random(shape) >= p
        mask = kept.astype(dtype) / np.asarray(1 - p, dtype)
        self.masks[key] = mask
        return mask


def pass_masks(plan, dropout: Dropout, batch: int, dtype) -> tuple[dict, dict]:
    """A pass's masks, drawn in plan order (any engine that draws them here from the same
    `Dropout` gets the same masks): `{feed: (T, B, rows)}` for each feed that drops its
    source, indexed by the reading step, and `{state: (B, H)}` for each state with
    recurrent dropout, the same at every step."""
    feeds, recurrent = {}, {}
    for name, v in plan.vectors.items():
        if v.role == "state" and v.recurrent_dropout:
            shape = (batch, v.size)
            recurrent[name] = dropout.mask((name, shape), shape, v.recurrent_dropout, dtype)
        for feed in v.feeds:
            if feed.dropout:
                shape = (plan.steps, batch, feed.rows[1] - feed.rows[0])
                feeds[feed] = dropout.mask((feed, shape), shape, feed.dropout, dtype)
    return feeds, recurrent
