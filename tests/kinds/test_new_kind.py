"""Adding a layer kind is its spec model plus one module (`tests/kinds/minimal.py`): the
made-up `minimal` unit then validates, counts its weights, runs, draws, trains and passes
the finite-difference gradient check, with no other change to the package."""

from __future__ import annotations

import numpy as np
import pytest

from composer.draw.folded_picture import folded_dot
from composer.draw.unfolded_picture import unfolded_dot
from composer.engine.batches import run
from composer.engine.pipeline import plan_for_steps
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params, param_table
from composer.kinds import KINDS
from composer.training.backprop import grad
from composer.training.loop import train
from tests.kinds.minimal import MINIMAL, MinimalSpec


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(KINDS, "minimal", MINIMAL)


def _spec(**layer) -> MinimalSpec:
    first = {"name": "m", "kind": "minimal", "input": "x", "state_size": 4} | layer
    return MinimalSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": 3}],
            "layers": [
                first,
                {
                    "name": "top",
                    "kind": "minimal",
                    "input": "m",
                    "state_size": 3,
                    "output": {"size": 2},
                },
            ],
            "outputs": [{"name": "y", "from": "top"}],
            "steps": 5,
        }
    )


SPECS = {
    "plain": _spec(),
    "dilated": _spec(delay=2),
    "bidirectional": _spec(bidirectional=True),
    "backward": _spec(direction="backward"),
}


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _oracle_layer(x, Wx, Ws, b, lag):
    """The minimal unit's equations, step by step, in the file's layout (z block first)."""
    B, T, _ = x.shape
    H = Ws.shape[0]
    h = np.zeros((B, T, H))
    steps = range(T) if lag > 0 else range(T - 1, -1, -1)
    for t in steps:
        back = t - lag
        h_prev = h[:, back] if 0 <= back < T else np.zeros((B, H))
        a = x[:, t] @ Wx + h_prev @ Ws + b
        z, n = _sigmoid(a[:, :H]), np.tanh(a[:, H:])
        h[:, t] = h_prev + z * (n - h_prev)
    return h


def _oracle(spec, params, x):
    first = spec.layers[0]
    copies = [("", first.delay if first.direction == "forward" else -first.delay)]
    if first.bidirectional:
        copies.append(("_rev", -1))
    states = [
        _oracle_layer(x, params[f"m.Wx{s}"], params[f"m.Ws{s}"], params[f"m.b{s}"], lag)
        for s, lag in copies
    ]
    m = np.concatenate(states, axis=-1)
    top = _oracle_layer(m, params["top.Wx"], params["top.Ws"], params["top.b"], 1)
    return top @ params["top.Wy"] + params["top.by"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_new_kind_runs_as_its_equations_say(name):
    spec = SPECS[name]
    graph = build(spec)
    params = init_params(graph, seed=1, dtype="float64")
    x = np.random.default_rng(2).normal(size=(2, 5, 3))
    got = run(graph, params, {"x": x}, dtype="float64")["y"]
    np.testing.assert_allclose(got, _oracle(spec, params, x), atol=1e-12)


def test_a_new_kind_counts_its_weights_from_its_own_table():
    rows = {info.key: info for info in param_table(build(SPECS["plain"]))}
    assert rows["m.Wx"].shape == (3, 8) and rows["m.Wx"].formula == "in*2*H"
    assert rows["m.Ws"].shape == (4, 8) and rows["m.b"].shape == (8,)
    assert rows["top.Wx"].shape == (4, 6) and rows["top.Wy"].shape == (3, 2)


def test_a_new_kind_is_drawn_with_its_own_picture():
    graph = build(SPECS["bidirectional"])
    folded = folded_dot(graph)
    assert "MIN h (4)" in folded and 'shape="octagon"' in folded and "#e0f2fe" in folded
    unfolded = unfolded_dot(unroll(graph, 5))
    assert unfolded.count('shape="octagon"') >= 2 * 5  # both copies at every step


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_new_kind_passes_the_finite_difference_gradient_check(name):
    graph = build(SPECS[name])
    params = init_params(graph, seed=3, dtype="float64")
    rng = np.random.default_rng(4)
    x, target = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 2))
    plan = plan_for_steps(graph, 5)
    _, grads = grad(plan, params, {"x": x}, {"y": target}, dtype="float64")
    eps = 1e-6
    for key, value in params.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = dict(params, **{key: value.copy()})
                moved[key][index] += sign * eps
                loss, _ = grad(plan, moved, {"x": x}, {"y": target}, dtype="float64")
                numeric[index] += sign * loss / (2 * eps)
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-5, atol=1e-8, err_msg=key)


def test_a_new_kind_learns():
    spec = SPECS["plain"]
    graph = build(spec)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(64, 5, 3))
    data = {"x": x, "y": np.cumsum(x[..., :2], axis=1) / 3}
    result = train(graph, init_params(graph, seed=0), data, epochs=15, batch_size=16, lr=0.02)
    first, last = result.history[0].val_loss, result.best_loss
    assert last < 0.6 * first


def test_a_kind_whose_steps_ignore_the_recurrent_mask_refuses_recurrent_dropout():
    """A new kind takes `recurrent_dropout` only once its steps read `recurrent_mask`
    (`Kind.takes_recurrent_dropout`); until then the spec says which kinds take it."""
    from composer.errors import SpecError

    with pytest.raises(SpecError) as caught:
        build(_spec(recurrent_dropout=0.5))
    assert caught.value.dotted_path == "layers[0].recurrent_dropout"
    assert "not supported by minimal layers; the kinds that take it: elman, gru, lstm" in str(
        caught.value
    )
    assert build(_spec(dropout=0.5, bias=False))  # input dropout and bias: any kind
