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
    gate_stack,
    prepare,
    unprepare,
    writes_step,
)
from composer.kinds.dense import DENSE
from composer.kinds.elman import ELMAN
from composer.kinds.gru import GRU, GRU_RESET_BEFORE
from composer.kinds.layer_norm import GRU_LAYER_NORM, LSTM_LAYER_NORM
from composer.kinds.lstm import LSTM
from composer.kinds.lstm_proj import LSTM_PROJ

__all__ = [
    "KINDS",
    "Kind",
    "Picture",
    "WeightInfo",
    "ACTIVATIONS",
    "prepare",
    "gate_stack",
    "unprepare",
    "writes_step",
]

#: every layer kind by its name: the spec's `kind`, and the variants an option selects
#: (`Kind.variant`; their `spec_kind` is the spec's name).
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        ELMAN,
        LSTM,
        LSTM_LAYER_NORM,
        LSTM_PROJ,
        GRU,
        GRU_RESET_BEFORE,
        GRU_LAYER_NORM,
        DENSE,
    )
}
