"""Each kind's equations exist once, as its `step` (`composer.kinds.ops`); the NumPy fast
paths are optimisations of it. For every kind and variant (and the test kind): the
executor's gate-major steps (and the numba kernels, float32) against the step run on
NumPy arrays, and the training tape's hand-written backward against the step's
gradients, by autograd on torch tensors. The step on torch tensors and on NumPy arrays
also agree, so the PyTorch module and the ONNX exports compute what `run` does."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.batches import run
from composer.engine.pipeline import plan_for_steps
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.kinds import KINDS, fused
from composer.kinds.base import Kind
from composer.kinds.ops import NUMPY
from composer.spec.model import NetworkSpec
from composer.training.backprop import grad
from tests.kinds.minimal import MINIMAL, MinimalSpec

B, T, F = 3, 6, 4

#: (kind, layer fields): every kind and variant the registry holds, and the test kind
LAYERS = {
    "elman tanh": ("elman", {}),
    "elman relu": ("elman", {"activation": "relu"}),
    "elman sigmoid, no bias": ("elman", {"activation": "sigmoid", "bias": False}),
    "elman identity": ("elman", {"activation": "identity"}),
    "lstm": ("lstm", {}),
    "lstm, no bias": ("lstm", {"bias": False}),
    "lstm layer_norm": ("lstm", {"layer_norm": True}),
    "lstm proj_size": ("lstm", {"proj_size": 3}),
    "lstm proj_size, no bias": ("lstm", {"proj_size": 2, "bias": False}),
    "gru": ("gru", {}),
    "gru, no bias": ("gru", {"bias": False}),
    "gru reset before": ("gru", {"reset_after": False}),
    "gru layer_norm": ("gru", {"layer_norm": True}),
    "minimal": ("minimal", {}),
}


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(KINDS, "minimal", MINIMAL)


def _graph(name: str):
    kind, fields = LAYERS[name]
    model = MinimalSpec if kind == "minimal" else NetworkSpec
    layer = {"name": "a", "kind": kind, "input": "x", "state_size": 5, **fields}
    layer["output"] = {"size": 2}
    return build(
        model.model_validate(
            {
                "inputs": [{"name": "x", "size": F}],
                "layers": [layer],
                "outputs": [{"name": "y", "from": "a"}],
                "steps": T,
            }
        )
    )


def _vector(graph):
    plan = plan_for_steps(graph, T)
    (state,) = [v for v in plan.vectors.values() if v.role == "state"]
    return plan, state, KINDS[state.kind]


def _loop(ops, kind: Kind, state, params, x, zeros):
    """The layer by its one step, then its readout: y (B, T, 2)."""
    weights = kind.step_weights(params["a.Ws"], [params[key] for key in state.biases])
    prev = tuple(zeros(state.size if c == "h" else state.units) for c in kind.carries)
    out = []
    for t in range(T):
        prev = kind.step(ops, x[:, t] @ params["a.Wx"], prev, weights, state.activation)
        out.append(prev[0] @ params["a.Wy"] + params["a.by"])
    return out


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_the_executor_computes_the_kinds_step(name):
    graph = _graph(name)
    _, state, kind = _vector(graph)
    assert type(kind).step is not Kind.step  # written by the kind, once
    params = init_params(graph, seed=1, dtype="float64")
    x = np.random.default_rng(2).normal(size=(B, T, F))
    expected = np.stack(_loop(NUMPY, kind, state, params, x, lambda n: np.zeros((B, n))), 1)
    got = run(graph, params, {"x": x}, dtype="float64")["y"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_the_fused_kernels_compute_the_lstm_step(monkeypatch):
    """float32 with the numba kernels (their tanh within 4e-7 of the true one)."""
    pytest.importorskip("numba")
    monkeypatch.delenv("RNN_COMPOSER_FUSED", raising=False)
    before = fused._loaded
    try:
        assert fused.prepare(force=True)
        graph = _graph("lstm")
        _, state, kind = _vector(graph)
        params = init_params(graph, seed=1, dtype="float32")
        x = np.random.default_rng(2).normal(size=(1, T, F)).astype(np.float32)
        zeros = lambda n: np.zeros((1, n))  # noqa: E731
        wide = {k: v.astype(np.float64) for k, v in params.items()}
        expected = np.stack(_loop(NUMPY, kind, state, wide, x.astype(np.float64), zeros), 1)
        got = run(graph, params, {"x": x}, dtype="float32")["y"]
        assert np.abs(got - expected).max() < 2e-6
        monkeypatch.setenv("RNN_COMPOSER_FUSED", "0")
        assert not np.array_equal(got, run(graph, params, {"x": x}, dtype="float32")["y"])
    finally:
        fused._loaded = before


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_the_hand_written_backward_is_the_steps_gradient(name):
    torch = pytest.importorskip("torch")
    from composer.interop.torch_ops import TORCH

    graph = _graph(name)
    plan, state, kind = _vector(graph)
    params = init_params(graph, seed=3, dtype="float64")
    rng = np.random.default_rng(4)
    x, target = rng.normal(size=(B, T, F)), rng.normal(size=(B, T, 2))
    loss, grads = grad(plan, params, {"x": x}, {"y": target}, dtype="float64")
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    zeros = lambda n: torch.zeros((B, n), dtype=torch.float64)  # noqa: E731
    y = torch.stack(_loop(TORCH, kind, state, tensors, torch.from_numpy(x), zeros), 1)
    theirs = ((y - torch.from_numpy(target)) ** 2).mean()
    scale = loss / theirs.item()  # the loss's own normalisation, a constant
    (theirs * scale).backward()
    assert loss == pytest.approx(theirs.item() * scale)
    assert scale == pytest.approx(round(scale))
    for key, value in grads.items():
        np.testing.assert_allclose(
            value, tensors[key].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=key
        )
