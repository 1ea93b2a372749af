"""The step vocabulary (`composer.kinds.ops`) on torch tensors, with autograd: the PyTorch
module's cell loop runs each kind's one `step` through `TORCH`."""

from __future__ import annotations

from composer.interop import need
from composer.kinds.ops import LAYER_NORM_EPS, Ops

torch = need("torch")

__all__ = ["TorchOps", "TORCH"]


class TorchOps(Ops):
    """Tensors through their methods, and `torch.cat` and `layer_norm`."""

    def plus(self, a, b):
        return a + b

    def times(self, a, b):
        return a * b

    def sub(self, a, b):
        return a - b

    def matmul(self, a, b):
        return None if a is None else a @ b

    def scale(self, x, number: float):
        return x * number

    def sigmoid(self, x):
        return x.sigmoid()

    def tanh(self, x):
        return x.tanh()

    def relu(self, x):
        return x.relu()

    def softmax(self, x):
        return x.softmax(-1)

    def chunks(self, x, parts: int):
        return x.chunk(parts, -1)

    def concat(self, values):
        return torch.cat(list(values), -1)

    def normalise(self, x):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], eps=LAYER_NORM_EPS)


TORCH = TorchOps()
