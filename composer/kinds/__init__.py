"""Layer kinds: one module each, registered by the spec's `kind` name.

Every stage asks `KINDS[name]` what it needs (`composer.kinds.base.Kind`) instead of
branching on the name; adding a kind is writing its spec model and one module here.
"""

from __future__ import annotations

from composer.kinds.activations import ACTIVATIONS
from composer.kinds.base import (
    Kind,
    Picture,
    WeightInfo,
    exports_onnx,
    gate_stack,
    prepare,
    unprepare,
)
from composer.kinds.dense import DENSE
from composer.kinds.elman import ELMAN
from composer.kinds.gru import GRU
from composer.kinds.lstm import LSTM

__all__ = [
    "KINDS",
    "Kind",
    "Picture",
    "WeightInfo",
    "ACTIVATIONS",
    "prepare",
    "gate_stack",
    "unprepare",
    "exports_onnx",
]

#: every layer kind by the spec's `kind` name.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (ELMAN, LSTM, GRU, DENSE)}
