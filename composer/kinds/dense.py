"""The dense layer, y = psi(x W + b) at every step, with no state.

A recurrent layer's readout, y = psi(s Wy + by), computes the same way; its weights are
the layer's (`Wy`, `by`), not a kind's.
"""

from __future__ import annotations

import math

from composer.kinds.base import Kind, WeightInfo

__all__ = ["DENSE"]


class _Dense(Kind):
    """Stateless: its pre-activation is its inputs' projection, activated in place."""

    name = spec_kind = "dense"
    stateful = False
    carries = ()
    input_weight = "W"
    biases = (("b", False),)

    def columns_formula(self) -> str:
        return "out"

    def weights(self, fan_in: int, size: int, bias: bool = True) -> list[WeightInfo]:
        """W and (unless `bias` is False) b, PyTorch's nn.Linear init: U(-k, k),
        k = 1/sqrt(fan_in)."""
        bound = 1 / math.sqrt(fan_in)
        rows = [WeightInfo("W", (fan_in, size), "in*out", bound)]
        return rows + ([WeightInfo("b", (size,), "out", bound)] if bias else [])


DENSE = _Dense()
