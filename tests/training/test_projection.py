"""LSTM `proj_size: P` (PyTorch's projection) through the forward pass and the gradients:
the state h = (o * tanh(c)) Wp has P numbers, the cell c keeps H.

Gradients are checked in float64 against central finite differences, with dropout masks
held fixed; the forward pass against a hand-written loop (`tests.oracles`); PyTorch's
own `nn.LSTM(proj_size=P)` parity lives in tests/interop/test_torch_projection.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.executor import execute
from composer.graph.folded import build
from composer.graph.weights import init_params, param_table
from composer.network import Network
from composer.training.backprop import Dropout, grad
from tests import oracles
from tests.builders import connection, input_, layer, output, readout, spec
from tests.training import test_layer_options as layer_options

P = {"proj_size": 2}
STRUCTURES = {
    "stacked": spec(
        [layer("a", "lstm", size=5, **P), layer("b", "lstm", "a", 4, proj_size=3)],
        outputs=[output("o", "b")],
        steps=5,
    ),
    "bidirectional-readout": spec(
        [layer("a", "lstm", size=4, bidirectional=True, output=readout(2), **P)], steps=4
    ),
    "backward-dilated-no-bias": spec(
        [layer("a", "lstm", size=4, direction="backward", delay=2, bias=False, **P)], steps=6
    ),
    "jordan": spec(
        [layer("a", "lstm", size=4, output=readout(2), **P)],
        connections=[connection("a", "a")],
        steps=5,
    ),
    "connection-from-a-projected-state": spec(
        [layer("a", "lstm", size=4, **P), layer("b", "elman", "x", 3)],
        connections=[connection("a", "b")],
        outputs=[output("o", "b")],
        steps=5,
    ),
    "handover": spec(
        [
            layer("e", "lstm", size=4, active="0:3", **P),
            layer("d", "lstm", "x", size=4, active="3:6", initial_state="e", **P),
        ],
        inputs=[input_("x", 3, window="0:3")],
        outputs=[output("o", "d", window="3:6")],
        alignment={"inputs": "0:3", "outputs": "3:6"},
        steps=6,
    ),
    "learned-initial-state": spec(
        [layer("a", "lstm", size=4, initial_state="learn", output=readout(2), **P)], steps=4
    ),
    "dropout": spec(
        [
            layer(
                "a",
                "lstm",
                size=5,
                output=readout(2),
                dropout=0.3,
                recurrent_dropout=0.4,
                output_dropout=0.25,
                **P,
            )
        ],
        steps=5,
    ),  # fmt: skip
}


def _setup(network, batch=3, seed=0):
    return layer_options._setup(network, batch, seed, offset=0.1)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_gradient_matches_finite_differences(name):
    plan, params, inputs, targets = _setup(STRUCTURES[name])
    plain = grad(plan, params, inputs, targets)[0]  # no dropout: the executor's loss
    outputs = execute(plan, params, inputs, "float64")
    expected = sum(np.mean((outputs[k] - targets[k]) ** 2) for k in outputs)
    assert plain == pytest.approx(expected, rel=1e-12)
    masks = Dropout(seed=7)
    _, grads = grad(plan, params, inputs, targets, train=masks)

    def reached(key):
        if ".Wp" in key:  # the projection is reached
            assert np.abs(grads[key]).sum() > 0, key

    layer_options.assert_directional_derivatives(
        plan, params, inputs, targets, masks, grads, reached
    )


def test_forward_is_the_hand_written_loop():
    network = STRUCTURES["stacked"]
    plan, params, inputs, _ = _setup(network)
    x = inputs["x"]
    ours = execute(plan, params, inputs, "float64")["o"]
    B = x.shape[0]
    ha, ca, hb, cb = np.zeros((B, 2)), np.zeros((B, 5)), np.zeros((B, 3)), np.zeros((B, 4))
    for t in range(x.shape[1]):
        ha, ca = oracles.lstm_proj(x[:, t] @ params["a.Wx"], ha, ca, params, "a")
        hb, cb = oracles.lstm_proj(ha @ params["b.Wx"], hb, cb, params, "b")
        np.testing.assert_allclose(ours[:, t], hb, atol=1e-12)
    assert ours.shape == (3, 5, 3)
    float32 = Network.from_spec(network).run(params, inputs)["o"]
    np.testing.assert_allclose(float32, ours, atol=1e-5)


def test_the_table_has_the_projection_and_its_formulas():
    table = {info.key: info for info in param_table(build(STRUCTURES["bidirectional-readout"]))}
    assert table["a.Ws"].shape == (2, 16) and table["a.Ws"].formula == "P*4*H"
    assert table["a.Wp"].shape == (4, 2) and table["a.Wp"].numbers == "4*2"
    assert table["a.Wp_rev"].shape == (4, 2)
    assert table["a.Wy"].shape == (4, 2) and table["a.Wy"].formula == "2*P*out"
    assert table["a.Wp"].bound == pytest.approx(1 / 2)  # PyTorch's U(-1/sqrt(H), 1/sqrt(H))
    learned = {i.key: i for i in param_table(build(STRUCTURES["learned-initial-state"]))}
    assert learned["a.s0"].shape == (2,) and learned["a.s0"].formula == "P"


def test_a_padded_batch_runs_each_item_as_if_alone():
    network = STRUCTURES["bidirectional-readout"]
    net = Network.from_spec(network)
    params = net.init_params(3, "float64")
    x = np.random.default_rng(2).normal(size=(3, 4, 3))
    lengths = [4, 2, 3]
    padded = net.run(params, {"x": x}, dtype="float64", lengths={"x": lengths})["y"]
    for item, n in enumerate(lengths):
        alone = net.run(params, {"x": x[item : item + 1, :n]}, dtype="float64")["y"]
        np.testing.assert_allclose(padded[item, :n], alone[0], atol=1e-12)
        assert not padded[item, n:].any()


def test_init_schemes_reach_the_projection():
    network = spec(
        [layer("a", "lstm", size=8, proj_size=2, init={"Wp": "orthogonal", "Ws": "orthogonal"})]
    )
    params = init_params(build(network), seed=3, dtype="float64")
    wp, ws = params["a.Wp"], params["a.Ws"]
    assert wp.shape == (8, 2)
    np.testing.assert_allclose(wp.T @ wp, np.eye(2), atol=1e-12)  # one block: orthonormal
    for k in range(4):  # Ws (P, 4H): each gate's block has orthonormal rows
        block = ws[:, k * 8 : (k + 1) * 8]
        np.testing.assert_allclose(block @ block.T, np.eye(2), atol=1e-12)
    default = init_params(build(spec([layer("a", "lstm", size=8, proj_size=2)])), 0, "float64")
    assert np.abs(default["a.Wp"]).max() <= 1 / np.sqrt(8)


def test_stepping_carries_h_of_size_p_and_c_of_size_h():
    from composer.engine.stepper import run_stepped

    network = STRUCTURES["stacked"]
    plan, params, inputs, _ = _setup(network)
    graph = plan.folded
    whole = execute(plan, params, inputs, "float64")["o"]
    outputs, state = run_stepped(graph, params, inputs, dtype="float64")
    np.testing.assert_allclose(outputs["o"], whole, atol=1e-12)
    assert state["a.h"].shape == (3, 2) and state["a.c"].shape == (3, 5)
    assert state["b.h"].shape == (3, 3) and state["b.c"].shape == (3, 4)
    first, carried = run_stepped(graph, params, {"x": inputs["x"][:, :2]}, dtype="float64")
    rest, _ = run_stepped(graph, params, {"x": inputs["x"][:, 2:]}, carried, dtype="float64")
    np.testing.assert_allclose(np.concatenate([first["o"], rest["o"]], 1), whole, atol=1e-12)


def test_trace_shows_the_state_the_cell_and_the_gates_with_their_sizes():
    network = STRUCTURES["stacked"]
    plan, params, inputs, _ = _setup(network)
    found = Network.from_spec(network).trace(params, inputs, dtype="float64")
    assert found["a.s"].shape == (3, 5, 2)
    cells = [k for k in found if k.startswith("a.") and k.endswith("c")]
    assert cells and all(found[k].shape == (3, 5, 5) for k in cells)
    gates = [k for k in found if k.startswith("a.") and "gates" in k]
    assert len(gates) == 4 and all(found[k].shape == (3, 5, 5) for k in gates)
    np.testing.assert_allclose(found["b.s"], execute(plan, params, inputs, "float64")["o"])


def test_the_graph_gives_readers_p_numbers_and_the_cells_h():
    from composer.errors import SpecError

    graph = build(STRUCTURES["bidirectional-readout"])
    state = graph.nodes["a.s"]
    assert (state["kind"], state["size"], state["units"]) == ("lstm_proj", 2, 4)
    assert graph.edges["a.s", "a.s", "a.Ws"]["shape"] == (2, 16)
    assert graph.nodes["a.s_rev"]["units"] == 4
    plain = build(spec([layer("a", "lstm", size=4)]))
    assert "units" not in plain.nodes["a.s"] and plain.nodes["a.s"]["kind"] == "lstm"
    stacked = build(STRUCTURES["stacked"])
    assert stacked.edges["a.s", "b.s", "b.Wx[0]"]["shape"] == (2, 16)  # b reads P = 2
    mismatched = spec(
        [
            layer("e", "lstm", size=4, active="0:3", proj_size=2),
            layer("d", "lstm", "x", size=4, active="3:6", initial_state="e", proj_size=3),
        ],
        steps=6,
    )
    with pytest.raises(SpecError, match="a state of size 2 but `d` has one of size 3"):
        build(mismatched)


@pytest.mark.parametrize("name", ["dropout", "bidirectional-readout"])
def test_padded_gradients_match_finite_differences(name):
    """The packed training track (each step for the items still running)."""
    network = STRUCTURES[name]
    net = Network.from_spec(network)
    params = init_params(build(network), 0, "float64")
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(3, network.steps, 3)), rng.normal(size=(3, network.steps, 2))
    lengths = {"x": [network.steps, 2, 3]}
    masks = Dropout(seed=1)

    def loss(p):
        return net.grad(p, {"x": x}, {"y": y}, lengths=lengths, train=masks)

    _, grads = loss(params)
    eps = 1e-6
    for key in params:
        direction = rng.normal(size=params[key].shape)
        up = loss(dict(params, **{key: params[key] + eps * direction}))[0]
        down = loss(dict(params, **{key: params[key] - eps * direction}))[0]
        assert float(np.sum(grads[key] * direction)) == pytest.approx(
            (up - down) / (2 * eps), rel=1e-6, abs=1e-9
        ), key
