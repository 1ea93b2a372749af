"""Optimisers and gradient clipping, against `torch.optim` and `clip_grad_norm_`."""

from __future__ import annotations

import numpy as np
import pytest

from composer.training.optim import SGD, Adam, clip_grad_norm


@pytest.mark.torch
@pytest.mark.parametrize(
    ("ours", "theirs", "options"),
    [
        (SGD, "SGD", {"lr": 0.1, "momentum": 0.9}),
        (SGD, "SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True}),
        (Adam, "Adam", {"lr": 0.01}),
        (Adam, "Adam", {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ],
)
def test_optimisers_match_torch_optim(ours, theirs, options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    tensors = [torch.tensor(v, requires_grad=True) for v in params.values()]
    reference = getattr(torch.optim, theirs)(tensors, **options)
    optimizer = ours(params, **options)
    for _ in range(5):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        for tensor, g in zip(tensors, grads.values()):
            tensor.grad = torch.from_numpy(g.copy())
        reference.step()
        optimizer.step(grads)
    for value, tensor in zip(params.values(), tensors):
        np.testing.assert_allclose(value, tensor.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.torch
def test_clipping_matches_torch():
    torch = pytest.importorskip("torch")
    grads = {"a": np.arange(6.0).reshape(2, 3), "b": np.array([3.0, -4.0])}
    tensors = [
        torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in grads.values()
    ]
    for tensor, g in zip(tensors, grads.values()):
        tensor.grad = torch.from_numpy(g.copy())
    expected = torch.nn.utils.clip_grad_norm_(tensors, 2.0).item()
    assert clip_grad_norm(grads, 2.0) == pytest.approx(expected)
    for g, tensor in zip(grads.values(), tensors):
        np.testing.assert_allclose(g, tensor.grad.numpy())
