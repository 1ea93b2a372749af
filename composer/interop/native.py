"""Which `torch.nn` module and which ONNX operator compute a kind whole: facts of the
converters, not of the kinds, in two registries keyed by the kind's registered name
(`Kind.name`), as PyTorch's own ONNX exporter keeps ONNX's gate order.

A kind in neither (a layer-normalised LSTM, a new kind) still leaves: the PyTorch module
holds its weights by their keys and runs its one step (`Kind.step`) in a cell loop, and
the ONNX export writes that step as nodes. A registered kind runs whole where the layer
allows it (see `composer.interop.torch_module` and `composer.interop.onnx_plain`).

Examples
--------
>>> TORCH_MODULES["lstm"].module, ONNX_OPERATORS["gru"].gates
('LSTM', (1, 0, 2))
>>> "lstm_layer_norm" in TORCH_MODULES, "lstm_proj" in ONNX_OPERATORS
(False, False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TorchModule", "OnnxOperator", "TORCH_MODULES", "ONNX_OPERATORS"]


def _always(activation: str | None) -> dict:
    return {}


def _unsized(units: int, size: int) -> dict:
    return {}


@dataclass(frozen=True)
class TorchModule:
    """The `torch.nn` module (`module`: `RNN`, `LSTM`, `GRU`) holding a kind's weights.

    `biases`: each bias suffix with the PyTorch biases it stands for (two names: PyTorch's
    two biases summed, exported as bias_ih = b, bias_hh = 0); `extras`: each of the kind's
    `extras` with the PyTorch matrix it is, transposed (`Wp`: `weight_hr`); `options(
    activation)`: the module's keyword options for a layer, or None when the module cannot
    compute it (it then only holds the weights, and a cell loop runs the kind's step);
    `sizes(units, size)`: its size options beyond the hidden size (`proj_size`).
    """

    module: str
    biases: tuple[tuple[str, tuple[str, ...]], ...] = (("b", ("bias_ih", "bias_hh")),)
    extras: tuple[tuple[str, str], ...] = ()
    options: Callable[[str | None], dict | None] = _always
    sizes: Callable[[int, int], dict] = _unsized


#: our activations as ONNX's RNN names them
_ONNX_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "identity": "Affine"}


def _rnn_attributes(activation: str | None, directions: int) -> dict:
    # ONNX's RNN has no identity: Affine with alpha 1 and beta 0 is one
    name = _ONNX_ACTIVATIONS[activation or "tanh"]
    attributes = {"activations": [name] * directions}
    if name == "Affine":
        attributes["activation_alpha"] = [1.0] * directions
        attributes["activation_beta"] = [0.0] * directions
    return attributes


@dataclass(frozen=True)
class OnnxOperator:
    """The ONNX operator (`RNN`, `LSTM`, `GRU`) that runs a kind's layer whole.

    `gates`: our gate blocks in the operator's order (indexes into ours); `attributes(
    activation, directions)`: its attributes beyond hidden_size and direction; `apart`:
    the kind's two biases are the operator's Wb and Rb (a GRU's bx and bs), else our one
    bias (PyTorch's two summed) is Wb and Rb is zero.
    """

    operator: str
    gates: tuple[int, ...]
    attributes: Callable[[str | None, int], dict] = field(default=lambda a, d: {})
    apart: bool = False

    def biases(self, biases: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """ONNX's (Wb, Rb) from our biases in the kind's `biases` order, our gate order."""
        if self.apart:
            return biases[0], biases[1]
        return biases[0], np.zeros_like(biases[0])


def _gru_module(reset_after: bool) -> TorchModule:
    # nn.GRU resets after its recurrent product: the other GRU keeps its weights there only
    options = _always if reset_after else (lambda activation: None)
    return TorchModule("GRU", (("bx", ("bias_ih",)), ("bs", ("bias_hh",))), options=options)


#: the `torch.nn` module of each kind that has one
TORCH_MODULES: dict[str, TorchModule] = {
    # nn.RNN knows tanh and relu; sigmoid and identity run in the cell loop
    "elman": TorchModule(
        "RNN", options=lambda a: {"nonlinearity": a} if a in ("tanh", "relu") else None
    ),
    "lstm": TorchModule("LSTM"),
    "lstm_proj": TorchModule(
        "LSTM", extras=(("Wp", "weight_hr"),), sizes=lambda units, size: {"proj_size": size}
    ),
    "gru": _gru_module(reset_after=True),
    "gru_reset_before": _gru_module(reset_after=False),
}

#: the ONNX operator of each kind one computes (ONNX's LSTM has no projection, no
#: operator normalises: those kinds are written as their steps)
ONNX_OPERATORS: dict[str, OnnxOperator] = {
    "elman": OnnxOperator("RNN", (0,), _rnn_attributes),
    "lstm": OnnxOperator("LSTM", (0, 3, 1, 2)),  # ONNX's i, o, f, c from our i, f, g, o
    # ONNX's z, r, h from our r, z, n; linear_before_reset=1: r multiplies (h Ws_n + bs_n),
    # as PyTorch's GRU and ours do; 0 (ONNX's default) multiplies h_prev before the product
    "gru": OnnxOperator("GRU", (1, 0, 2), lambda a, d: {"linear_before_reset": 1}, True),
    "gru_reset_before": OnnxOperator(
        "GRU", (1, 0, 2), lambda a, d: {"linear_before_reset": 0}, True
    ),
}
