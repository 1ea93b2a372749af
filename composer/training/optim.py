"""Optimisers: SGD with momentum and Adam with PyTorch's update rules, in place on arrays.

Both follow `torch.optim.SGD` and `torch.optim.Adam` step for step (same order of
operations, so float32 results agree with PyTorch's to rounding), including the optional
L2 weight decay, which is added to the gradient before the update as PyTorch does.

Examples
--------
>>> import numpy as np
>>> params = {"w": np.array([1.0, -2.0])}
>>> opt = SGD(params, lr=0.1, momentum=0.9)
>>> opt.step({"w": np.array([1.0, 1.0])})
>>> params["w"].tolist()
[0.9, -2.1]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping

import numpy as np

from composer.errors import DataError

__all__ = ["Optimizer", "SGD", "Adam", "OPTIMIZERS", "make_optimizer", "clip_grad_norm"]


class Optimizer:
    """Updates a dict of float arrays in place from gradients with the same keys."""

    def __init__(self, params: MutableMapping[str, np.ndarray], lr: float, weight_decay: float):
        for key, value in params.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                raise DataError(f"parameter {key!r}: expected a float array to update in place")
        if not lr > 0 or not math.isfinite(lr):
            raise DataError(f"learning rate must be a finite number > 0, got {lr!r}")
        if weight_decay < 0:
            raise DataError(f"weight decay must be >= 0, got {weight_decay!r}")
        self.params, self.lr, self.weight_decay = params, float(lr), float(weight_decay)
        self.steps = 0

    def _decayed(self, key: str, grad: np.ndarray) -> np.ndarray:
        grad = np.asarray(grad, dtype=self.params[key].dtype)
        if self.weight_decay:
            return grad + self.weight_decay * self.params[key]
        return grad

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter that has a gradient."""
        self.steps += 1
        for key, grad in grads.items():
            self._update(key, self._decayed(key, grad))

    def _update(self, key: str, grad: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum: buf = m * buf + g (g on the first step),
    then p -= lr * buf (Nesterov: p -= lr * (g + m * buf)), as `torch.optim.SGD`."""

    def __init__(
        self,
        params: MutableMapping[str, np.ndarray],
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        nesterov: bool = False,
    ):
        super().__init__(params, lr, weight_decay)
        if not 0 <= momentum < 1:
            raise DataError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), nesterov
        self.buffers: dict[str, np.ndarray] = {}

    def _update(self, key: str, grad: np.ndarray) -> None:
        if self.momentum:
            buf = self.buffers.get(key)
            if buf is None:
                buf = self.buffers[key] = grad.copy()
            else:
                buf *= self.momentum
                buf += grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        self.params[key] -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba), with `torch.optim.Adam`'s bias corrections and epsilon placement:
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    def __init__(
        self,
        params: MutableMapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr, weight_decay)
        if not all(0 <= b < 1 for b in betas) or not eps > 0:
            raise DataError(f"Adam needs betas in [0, 1) and eps > 0, got {betas!r}, {eps!r}")
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)
        self.first: dict[str, np.ndarray] = {}
        self.second: dict[str, np.ndarray] = {}

    def _update(self, key: str, grad: np.ndarray) -> None:
        beta1, beta2 = self.betas
        m = self.first.setdefault(key, np.zeros_like(self.params[key]))
        v = self.second.setdefault(key, np.zeros_like(self.params[key]))
        m += (1 - beta1) * (grad - m)  # PyTorch's lerp: m + (1 - b1) (g - m)
        v *= beta2
        v += (1 - beta2) * grad * grad
        step_size = self.lr / (1 - beta1**self.steps)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**self.steps)
        denom += self.eps
        self.params[key] -= step_size * (m / denom)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(
    name: str,
    params: MutableMapping[str, np.ndarray],
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> Optimizer:
    """`sgd` (momentum 0.9 unless given, Nesterov's if asked) or `adam` (PyTorch's
    defaults) over `params`."""
    if name == "sgd":
        if nesterov and not momentum > 0:
            raise DataError("Nesterov momentum needs a momentum > 0")
        return SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    if nesterov:
        raise DataError(f"Nesterov momentum is for sgd, not {name}")
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=weight_decay)
    raise DataError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")


def clip_grad_norm(grads: MutableMapping[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most `max_norm`, as
    `torch.nn.utils.clip_grad_norm_` does; the norm before clipping."""
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for grad in grads.values():
            grad *= scale
    return total
