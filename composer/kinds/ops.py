"""The operations a kind's step is written in, and their NumPy implementation.

Each kind writes its step once, `Kind.step(ops, xw, prev, w)`, against an `Ops` object;
the engines run that one step on their own values: NumPy arrays (`NUMPY`), torch tensors
(`composer.interop.torch_ops.TORCH`) and ONNX nodes (`composer.interop.onnx_graph.Builder`
is an `Ops` whose values are the names of ONNX values).

The vocabulary, on (B, columns) values in the file's weight layout (PyTorch's gate
order, no halved columns):

- `add(*terms)`, `sub(a, b)`, `mul(a, b)`, `matmul(a, b)`, `scale(x, number)`;
- the activations `sigmoid`, `tanh`, `relu`, `identity`, `softmax` (over the last axis),
  and `activation(name, x)` for the spec's choice;
- `split(x, parts)` into equal blocks of the last axis (a layer's gates), `concat(values)`
  along it;
- `layer_norm(x)`: (x - mean) / sqrt(var + 1e-5) over the last axis, as PyTorch's
  `nn.LayerNorm` without its gain and shift.

None is an absent term, zero: `add` skips it, and `mul`, `matmul`, `split` and
`layer_norm` of None give None. A layer with no input (`xw` None) or no biases
(`bias: false`) runs the same equations.

An implementation defines the primitives `plus`, `times`, `sub`, `matmul`, `scale`, `sigmoid`,
`tanh`, `relu`, `softmax`, `chunks`, `concat` and `normalise`.

Examples
--------
>>> x = np.array([[1.0, -1.0, 2.0, 0.0]])
>>> [part.tolist() for part in NUMPY.split(x, 2)]
[[[1.0, -1.0]], [[2.0, 0.0]]]
>>> NUMPY.add(x, None, 1.0).tolist(), NUMPY.mul(None, x)
([[2.0, 0.0, 3.0, 1.0]], None)
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from composer.kinds import activations

__all__ = ["Ops", "NumpyOps", "NUMPY", "LAYER_NORM_EPS"]

#: added to a variance before its square root, as PyTorch's nn.LayerNorm
LAYER_NORM_EPS = 1e-5


class Ops:
    """The vocabulary's rules on absent terms, over an implementation's primitives."""

    def add(self, *terms):
        """The sum of the terms that are not None (None if none is)."""
        present = [term for term in terms if term is not None]
        return reduce(self.plus, present) if present else None

    def mul(self, a, b):
        return None if a is None or b is None else self.times(a, b)

    def split(self, x, parts: int) -> list:
        return [None] * parts if x is None else list(self.chunks(x, parts))

    def layer_norm(self, x):
        return None if x is None else self.normalise(x)

    def identity(self, x):
        return x

    def activation(self, name: str | None, x):
        """One of the spec's activations (`composer.kinds.ACTIVATIONS`) by its name."""
        return getattr(self, name or "identity")(x)


class NumpyOps(Ops):
    """The vocabulary on NumPy arrays: the reference the fast paths are tested against."""

    def plus(self, a, b):
        return np.add(a, b)

    def times(self, a, b):
        return np.multiply(a, b)

    def sub(self, a, b):
        return np.subtract(a, b)

    def matmul(self, a, b):
        return None if a is None else np.matmul(a, b)

    def scale(self, x, number: float):
        return x * number

    def sigmoid(self, x):
        return activations.sigmoid(x)

    def tanh(self, x):
        return np.tanh(x)

    def relu(self, x):
        return np.maximum(x, 0)

    def softmax(self, x):
        return activations.softmax(np.asarray(x))

    def chunks(self, x, parts: int):
        return np.split(x, parts, axis=-1)

    def concat(self, values):
        return np.concatenate(values, axis=-1)

    def normalise(self, x):
        centred = x - x.mean(axis=-1, keepdims=True)
        return centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + LAYER_NORM_EPS)


NUMPY = NumpyOps()
