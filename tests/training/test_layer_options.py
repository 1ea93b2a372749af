"""Layer options through the forward pass and the gradients: `bias: false`, the GRU that
resets before its recurrent product, and dropout with the masks a pass used.

Gradients are checked in float64 against central finite differences; the forward passes
against hand-written loops (`tests.oracles`) and PyTorch (`bias=False`).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.engine.executor import execute
from composer.engine.plan import compile_plan
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params, param_table
from composer.network import Network
from composer.training.backprop import Dropout, grad
from composer.training.loop import train
from tests import oracles
from tests.builders import connection, input_, layer, output, readout, spec

DROP = {"dropout": 0.3, "recurrent_dropout": 0.4, "output_dropout": 0.25}
STRUCTURES = {
    "elman-no-bias": spec([layer("a", output=readout(2), bias=False)], steps=5),
    "lstm-no-bias": spec([layer("a", "lstm", output=readout(2), bias=False)], steps=5),
    "gru-no-bias": spec([layer("a", "gru", output=readout(2), bias=False)], steps=5),
    "dense-no-bias": spec(
        [layer("a"), layer("d", "dense", "a", 3, bias=False)], outputs=[output("o", "d")]
    ),
    "gru-reset-before": spec(
        [layer("a", "gru", reset_after=False), layer("b", "gru", "a", reset_after=False)],
        outputs=[output("o", "b")],
        steps=5,
    ),
    "gru-reset-before-no-bias": spec(
        [layer("a", "gru", reset_after=False, bias=False, output=readout(2))], steps=5
    ),
    "gru-reset-before-backward-dilated": spec(
        [layer("a", "gru", reset_after=False, direction="backward", delay=2)], steps=6
    ),
    "gru-reset-before-bidirectional": spec(
        [layer("a", "gru", reset_after=False, bidirectional=True, output=readout(2))], steps=5
    ),
    "gru-reset-before-jordan": spec(
        [layer("a", "gru", reset_after=False, output=readout(2))],
        connections=[connection("a", "a")],
        steps=5,
    ),
    "lstm-layer-norm": spec(
        [layer("a", "lstm", layer_norm=True), layer("b", "lstm", "a", 3, layer_norm=True)],
        outputs=[output("o", "b")],
        steps=5,
    ),
    "lstm-layer-norm-bidirectional": spec(
        [layer("a", "lstm", layer_norm=True, bidirectional=True, output=readout(2))], steps=4
    ),
    "lstm-layer-norm-backward-dilated": spec(
        [layer("a", "lstm", layer_norm=True, direction="backward", delay=2)], steps=6
    ),
    "lstm-layer-norm-jordan": spec(
        [layer("a", "lstm", layer_norm=True, output=readout(2))],
        connections=[connection("a", "a")],
        steps=5,
    ),
    "lstm-layer-norm-handover": spec(
        [
            layer("e", "lstm", layer_norm=True, active="0:3"),
            layer("d", "lstm", "x", layer_norm=True, active="3:6", initial_state="e"),
        ],
        inputs=[input_("x", 3, window="0:3")],
        outputs=[output("o", "d", window="3:6")],
        alignment={"inputs": "0:3", "outputs": "3:6"},
        steps=6,
    ),
    "gru-layer-norm": spec(
        [layer("a", "gru", layer_norm=True), layer("b", "gru", "a", 3, layer_norm=True)],
        outputs=[output("o", "b")],
        steps=5,
    ),
    "gru-layer-norm-bidirectional-backward": spec(
        [
            layer("a", "gru", layer_norm=True, bidirectional=True),
            layer("b", "gru", "a", 3, layer_norm=True, direction="backward", delay=2),
        ],
        outputs=[output("o", "b")],
        steps=5,
    ),
    "gru-layer-norm-jordan-dropout": spec(
        [layer("a", "gru", layer_norm=True, output=readout(2), **DROP)],
        connections=[connection("a", "a")],
        steps=5,
    ),
    "lstm-layer-norm-dropout": spec(
        [layer("a", "lstm", output=readout(2), layer_norm=True, **DROP)], steps=5
    ),
    **{
        f"{kind}-dropout": spec([layer("a", kind, output=readout(2), **DROP)], steps=5)
        for kind in ("elman", "lstm", "gru")
    },
    "gru-reset-before-dropout": spec(
        [layer("a", "gru", output=readout(2), reset_after=False, **DROP)], steps=5
    ),
    "dropout-bidirectional-backward": spec(
        [
            layer("a", "lstm", bidirectional=True, output=readout(3), **DROP),
            layer("b", "gru", "a", direction="backward", recurrent_dropout=0.5),
        ],
        outputs=[output("o", "b")],
        steps=5,
    ),
    "dropout-in-a-feedback-loop": spec(
        [layer("a", output=readout(2), **DROP), layer("d", "dense", "a", 2, dropout=0.2)],
        connections=[connection("a", "a", delay=1)],
        outputs=[output("o", "d")],
        steps=5,
    ),
    "dropout-concatenated-inputs": spec(
        [layer("a", "lstm", ["x", "z"], dropout=0.5)],
        inputs=[input_("x", 2), input_("z", 3)],
        steps=4,
    ),
}


def _setup(network, batch=3, seed=0, offset=0.0):
    """The plan, float64 params (scaled by 1.5, plus `offset`), random inputs and targets."""
    graph = build(network)
    plan = compile_plan(unroll(graph, network.steps))
    rng = np.random.default_rng(seed)
    params = {k: v * 1.5 + offset for k, v in init_params(graph, seed, "float64").items()}
    inputs = {
        n: rng.normal(size=(batch, len(plan.window(n)), plan.vectors[n].size)) for n in plan.inputs
    }
    targets = {
        n: rng.normal(size=(batch, len(plan.window(n)), plan.vectors[n].size)) for n in plan.outputs
    }
    return plan, params, inputs, targets


def assert_directional_derivatives(plan, params, inputs, targets, masks, grads, check=None):
    """Each weight's gradient along two random directions equals the loss's central
    difference (eps 1e-6, the same dropout masks); `check(key)` runs first for each."""
    rng, eps = np.random.default_rng(1), 1e-6
    for key in params:
        if check is not None:
            check(key)
        for _ in range(2):
            direction = rng.normal(size=params[key].shape)
            up = dict(params, **{key: params[key] + eps * direction})
            down = dict(params, **{key: params[key] - eps * direction})
            numeric = (
                grad(plan, up, inputs, targets, train=masks)[0]
                - grad(plan, down, inputs, targets, train=masks)[0]
            ) / (2 * eps)
            analytic = float(np.sum(grads[key] * direction))
            assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_gradient_matches_finite_differences_with_the_masks_used(name):
    plan, params, inputs, targets = _setup(STRUCTURES[name])
    plain = grad(plan, params, inputs, targets)[0]  # no dropout: the executor's loss
    outputs = execute(plan, params, inputs, "float64")
    expected = sum(np.mean((outputs[k] - targets[k]) ** 2) for k in outputs)
    assert plain == pytest.approx(expected, rel=1e-12)
    masks = Dropout(seed=7)  # one set of masks for every call below
    value, grads = grad(plan, params, inputs, targets, train=masks)
    assert_directional_derivatives(plan, params, inputs, targets, masks, grads)
    if any(k in name for k in ("dropout",)):
        assert masks.masks, "the pass drew its masks"
        assert value != pytest.approx(plain, rel=1e-6)


def test_dropout_loss_is_the_hand_written_loop_with_the_same_masks():
    """An Elman layer with all three dropouts, written out: the masks multiply x before
    Wx (fresh per step), s_{t-1} before Ws (one per sequence) and s before Wy."""
    network = STRUCTURES["elman-dropout"]
    plan, params, inputs, targets = _setup(network)
    masks = Dropout(seed=3)
    value, _ = grad(plan, params, inputs, targets, train=masks)
    by_shape = {m.shape: m for m in masks.masks.values()}
    x, T = inputs["x"], network.steps
    B = x.shape[0]
    m_in, m_rec, m_out = by_shape[(T, B, 3)], by_shape[(B, 4)], by_shape[(T, B, 4)]
    assert set(np.unique(m_in)) <= {0.0, 1 / 0.7} and set(np.unique(m_rec)) <= {0.0, 1 / 0.6}
    s, loss = np.zeros((B, 4)), 0.0
    for t in range(T):
        pre = (x[:, t] * m_in[t]) @ params["a.Wx"]
        s = oracles.elman(pre, s * m_rec, params, "a")
        y = (s * m_out[t]) @ params["a.Wy"] + params["a.by"]
        loss += np.sum((y - targets["y"][:, t]) ** 2)
    assert value == pytest.approx(loss / (B * T * 2), rel=1e-12)


def test_recurrent_masks_are_one_per_sequence_and_renewed_per_batch():
    plan, params, inputs, targets = _setup(STRUCTURES["lstm-dropout"], batch=64)
    masks = Dropout(seed=0)
    grad(plan, params, inputs, targets, train=masks)
    recurrent = [m for m in masks.masks.values() if m.ndim == 2]
    assert [m.shape for m in recurrent] == [(64, 4)]
    kept = (recurrent[0] > 0).mean()
    assert 0.45 < kept < 0.75  # p = 0.4
    first = recurrent[0].copy()
    masks.renew()
    grad(plan, params, inputs, targets, train=masks)
    assert not np.array_equal(first, [m for m in masks.masks.values() if m.ndim == 2][0])


def test_without_train_dropout_is_off_and_run_ignores_it():
    with_dropout = STRUCTURES["gru-dropout"]
    plain = spec([layer("a", "gru", output=readout(2))], steps=5)
    plan, params, inputs, targets = _setup(with_dropout)
    plain_plan = compile_plan(unroll(build(plain), 5))
    # exact: dropout off, the two specs run the same products on the same shapes
    assert grad(plan, params, inputs, targets)[0] == grad(plain_plan, params, inputs, targets)[0]
    a = execute(plan, params, inputs, "float64")["y"]
    np.testing.assert_array_equal(a, execute(plain_plan, params, inputs, "float64")["y"])
    trained = grad(plan, params, inputs, targets, train=True)[0]
    assert trained == grad(plan, params, inputs, targets, train=True)[0]  # seeded
    assert Network.from_spec(with_dropout).grad(params, inputs, targets, train=True)[0] == trained


def test_training_with_dropout_is_seeded_and_differs_from_training_without():
    with_dropout = STRUCTURES["lstm-dropout"]
    plain = spec([layer("a", "lstm", output=readout(2))], steps=5)
    plan, params, inputs, targets = _setup(with_dropout, batch=16)
    data = {**inputs, **targets}
    options = dict(epochs=3, batch_size=4, lr=0.01, seed=5, dtype="float64")
    first = train(with_dropout, params, data, **options)
    again = train(with_dropout, params, data, **options)
    without = train(plain, params, data, **options)
    # exact: the same seeded runs; epoch 0's validation has no dropout, as the plain spec
    assert [e.train_loss for e in first.history] == [e.train_loss for e in again.history]
    assert first.history[0] == without.history[0] or (
        first.history[0].val_loss == without.history[0].val_loss  # epoch 0: no dropout
    )
    assert first.history[-1].train_loss != without.history[-1].train_loss


def test_bias_false_drops_the_keys_and_matches_its_oracle():
    network = STRUCTURES["gru-no-bias"]
    graph = build(network)
    params = init_params(graph, 0, "float64")
    assert sorted(params) == ["a.Ws", "a.Wx", "a.Wy", "a.by"]
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    ours = Network.from_spec(network).run(params, {"x": x}, dtype="float64")["y"]
    p = dict(params, **{"a.bx": np.zeros(12), "a.bs": np.zeros(12)})
    h = np.zeros((2, 4))
    for t in range(5):
        h = oracles.gru(x[:, t] @ p["a.Wx"], h, p, "a")
        np.testing.assert_allclose(ours[:, t], oracles.readout(h, p, "a", "identity"), atol=1e-12)


def test_reset_before_matches_its_hand_written_loop():
    network = STRUCTURES["gru-reset-before"]
    graph = build(network)
    params = init_params(graph, 1, "float64")
    x = np.random.default_rng(2).normal(size=(3, 5, 3))
    ours = Network.from_spec(network).run(params, {"x": x}, dtype="float64")["o"]
    ha, hb = np.zeros((3, 4)), np.zeros((3, 4))
    for t in range(5):
        ha = oracles.gru_reset_before(x[:, t] @ params["a.Wx"], ha, params, "a")
        hb = oracles.gru_reset_before(ha @ params["b.Wx"], hb, params, "b")
        np.testing.assert_allclose(ours[:, t], hb, atol=1e-12)
    float32 = Network.from_spec(network).run(params, {"x": x})["o"]
    np.testing.assert_allclose(float32, ours, atol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_bias_false_matches_pytorch_forward_and_gradients(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    B, T, F, H, C = 3, 6, 4, 5, 2
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    rnn = cls(F, H, batch_first=True, bias=False, dtype=torch.float64)
    linear = torch.nn.Linear(H, C, dtype=torch.float64)
    x = torch.randn(B, T, F, dtype=torch.float64)
    y = torch.randn(B, T, C, dtype=torch.float64)
    out = linear(rnn(x)[0])
    torch.nn.functional.mse_loss(out, y).backward()
    network = spec(
        [layer("l", kind, size=H, output=readout(C), bias=False)],
        inputs=[input_("x", F)],
        steps=T,
    )
    params = {
        "l.Wx": rnn.weight_ih_l0.detach().numpy().T.copy(),
        "l.Ws": rnn.weight_hh_l0.detach().numpy().T.copy(),
        "l.Wy": linear.weight.detach().numpy().T.copy(),
        "l.by": linear.bias.detach().numpy().copy(),
    }
    net = Network.from_spec(network)
    ours = net.run(params, {"x": x.numpy()}, dtype="float64")["y"]
    np.testing.assert_allclose(ours, out.detach().numpy(), atol=1e-12)
    value, grads = net.grad(params, {"x": x.numpy()}, {"y": y.numpy()})
    assert value == pytest.approx(torch.nn.functional.mse_loss(out, y).item(), rel=1e-12)
    np.testing.assert_allclose(grads["l.Wx"], rnn.weight_ih_l0.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(grads["l.Ws"], rnn.weight_hh_l0.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(grads["l.Wy"], linear.weight.grad.numpy().T, atol=1e-10)


@pytest.mark.parametrize(
    "name", ["gru-reset-before", "gru-reset-before-bidirectional", "lstm-layer-norm-bidirectional"]
)
def test_a_padded_batch_runs_each_item_as_if_alone(name):
    """The packed executor path (each step for the items still running) of the variant."""
    network = STRUCTURES[name]
    net = Network.from_spec(network)
    params = init_params(build(network), 0, "float64")
    x = np.random.default_rng(4).normal(size=(3, 5, 3))
    lengths = [5, 2, 4]
    padded = net.run(params, {"x": x}, dtype="float64", lengths={"x": lengths})
    out = next(k for k in padded if not k.endswith(".lengths"))
    for item, n in enumerate(lengths):
        alone = net.run(params, {"x": x[item : item + 1, :n]}, dtype="float64", steps=n)[out]
        np.testing.assert_allclose(padded[out][item, :n], alone[0], atol=1e-12)


def test_padded_gradients_with_dropout_match_finite_differences():
    network = STRUCTURES["gru-reset-before-dropout"]
    net = Network.from_spec(network)
    params = init_params(build(network), 0, "float64")
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 5, 2))
    lengths = {"x": [5, 3, 4]}
    masks = Dropout(seed=1)

    def loss(p):
        return net.grad(p, {"x": x}, {"y": y}, lengths=lengths, train=masks)

    _, grads = loss(params)
    eps = 1e-6
    for key in ("a.Ws", "a.Wx", "a.bs", "a.Wy"):
        direction = rng.normal(size=params[key].shape)
        up = loss(dict(params, **{key: params[key] + eps * direction}))[0]
        down = loss(dict(params, **{key: params[key] - eps * direction}))[0]
        assert float(np.sum(grads[key] * direction)) == pytest.approx(
            (up - down) / (2 * eps), rel=1e-6, abs=1e-9
        )


@settings(max_examples=25, deadline=None)
@given(
    p=st.floats(0.0, 0.95, exclude_max=True),
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6)),
)
def test_masks_are_inverted_dropout_seeded_and_held_until_renewed(p, seed, shape):
    masks = Dropout(seed)
    first = masks.mask("k", shape, p, np.float64)
    assert set(np.unique(first)) <= {0.0, 1 / (1 - p)}
    assert masks.mask("k", shape, p, np.float64) is first
    np.testing.assert_array_equal(Dropout(seed).mask("k", shape, p, np.float64), first)  # seeded
    masks.renew()
    assert masks.mask("k", shape, p, np.float64) is not first


def test_layer_norm_lstm_matches_its_hand_written_loop():
    network = STRUCTURES["lstm-layer-norm"]
    graph = build(network)
    params = {k: v * 1.5 for k, v in init_params(graph, 2, "float64").items()}
    params["a.gx"] = params["a.gx"] * np.linspace(0.5, 1.5, 16)  # gains away from 1
    params["b.bc"] = params["b.bc"] + 0.3
    x = np.random.default_rng(3).normal(size=(3, 5, 3)) * 4
    ours = Network.from_spec(network).run(params, {"x": x}, dtype="float64")["o"]
    ha, ca, hb, cb = np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 3)), np.zeros((3, 3))
    for t in range(5):
        ha, ca = oracles.lstm_layer_norm(x[:, t] @ params["a.Wx"], ha, ca, params, "a")
        hb, cb = oracles.lstm_layer_norm(ha @ params["b.Wx"], hb, cb, params, "b")
        np.testing.assert_allclose(ours[:, t], hb, atol=1e-12)
    float32 = Network.from_spec(network).run(params, {"x": x})["o"]
    np.testing.assert_allclose(float32, ours, atol=1e-5)
    scaled = Network.from_spec(network).run(params, {"x": x * 100}, dtype="float64")["o"]
    np.testing.assert_allclose(scaled, ours, atol=1e-4)  # LN(x Wx): scale-free, but for eps


def test_layer_norm_adds_its_gains_to_the_table():
    graph = build(STRUCTURES["lstm-layer-norm"])
    table = {info.key: info for info in param_table(graph)}
    assert [table[f"a.{k}"].shape for k in ("gx", "gs", "gc", "bc")] == [(16,), (16,), (4,), (4,)]
    params = init_params(graph, 0)
    assert (params["a.gx"] == 1).all() and (params["a.gc"] == 1).all() and not params["a.bc"].any()


def test_layer_norm_gru_matches_its_hand_written_loop():
    network = STRUCTURES["gru-layer-norm"]
    graph = build(network)
    params = {k: v * 1.5 for k, v in init_params(graph, 2, "float64").items()}
    params["a.gs"] = params["a.gs"] * np.linspace(0.5, 1.5, 12)
    x = np.random.default_rng(3).normal(size=(3, 5, 3))
    ours = Network.from_spec(network).run(params, {"x": x}, dtype="float64")["o"]
    ha, hb = np.zeros((3, 4)), np.zeros((3, 3))
    for t in range(5):
        ha = oracles.gru_layer_norm(x[:, t] @ params["a.Wx"], ha, params, "a")
        hb = oracles.gru_layer_norm(ha @ params["b.Wx"], hb, params, "b")
        np.testing.assert_allclose(ours[:, t], hb, atol=1e-12)
