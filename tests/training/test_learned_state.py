"""`initial_state: learn`: a trained initial state `<layer>.s0`, its gradient against finite
differences and PyTorch (h0), the same start when run, stepped or padded."""

from __future__ import annotations

import numpy as np
import pytest

from composer.errors import SpecError
from composer.network import Network


def _net(kind: str, **layer) -> Network:
    return Network.from_spec({
        "inputs": [{"name": "x", "size": 3}],
        "layers": [{"name": "rnn", "kind": kind, "input": "x", "state_size": 4,
                    "initial_state": "learn", "output": {"size": 2}, **layer}],
        "outputs": [{"name": "y", "from": "rnn"}],
    })  # fmt: skip


def _params(net):
    params = net.init_params(0, "float64")
    assert not params["rnn.s0"].any()  # starts at zeros, as a plain layer does
    params["rnn.s0"] = np.random.default_rng(1).normal(size=4)
    return params


RNG = np.random.default_rng(0)
X, Y = RNG.normal(size=(2, 5, 3)), RNG.normal(size=(2, 5, 2))


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_learned_initial_state_gradient_matches_finite_differences(kind):
    net = _net(kind)
    params = _params(net)
    _, grads = net.grad(params, {"x": X}, {"y": Y})
    numeric, eps = np.zeros(4), 1e-6
    for i in range(4):
        values = []
        for sign in (1, -1):
            moved = dict(params, **{"rnn.s0": params["rnn.s0"].copy()})
            moved["rnn.s0"][i] += sign * eps
            values.append(net.grad(moved, {"x": X}, {"y": Y})[0])
        numeric[i] = (values[0] - values[1]) / (2 * eps)
    assert np.allclose(grads["rnn.s0"], numeric, atol=1e-8)


def test_learned_initial_state_matches_pytorch_h0():
    torch = pytest.importorskip("torch")
    net = _net("gru")
    params = _params(net)
    value, grads = net.grad(params, {"x": X}, {"y": Y})
    gru = torch.nn.GRU(3, 4, batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.tensor(params["rnn.Wx"].T))
        gru.weight_hh_l0.copy_(torch.tensor(params["rnn.Ws"].T))
        gru.bias_ih_l0.copy_(torch.tensor(params["rnn.bx"]))
        gru.bias_hh_l0.copy_(torch.tensor(params["rnn.bs"]))
    s0 = torch.tensor(params["rnn.s0"], requires_grad=True)
    states, _ = gru(torch.tensor(X), s0.expand(1, 2, 4).contiguous())
    out = states @ torch.tensor(params["rnn.Wy"]) + torch.tensor(params["rnn.by"])
    loss = torch.nn.functional.mse_loss(out, torch.tensor(Y))
    loss.backward()
    assert abs(loss.item() - value) < 1e-12
    assert np.allclose(grads["rnn.s0"], s0.grad.numpy(), atol=1e-10)


def test_run_stepper_and_padded_batch_start_from_it():
    net = _net("lstm")
    params = _params(net)
    whole = net.run(params, X, dtype="float64")["y"]
    stepper = net.stepper(params, "float64")
    stepped = np.stack([stepper.step({"x": X[:, t]})["y"] for t in range(5)], axis=1)
    assert np.allclose(whole, stepped, atol=1e-13)
    padded = net.run(params, {"x": X}, dtype="float64", lengths={"x": [5, 3]})["y"]
    alone = net.run(params, X[1, :3], dtype="float64")["y"]
    assert np.allclose(padded[1, :3], alone, atol=1e-13)
    assert not np.allclose(whole, net.run({**params, "rnn.s0": np.zeros(4)}, X)["y"])


def test_summary_lists_it_and_a_layer_named_learn_is_refused():
    assert net_keys(_net("gru"))[-3:] == ["rnn.s0", "rnn.Wy", "rnn.by"]
    with pytest.raises(SpecError, match="a layer is named `learn`"):
        Network.from_spec({
            "inputs": [{"name": "x", "size": 3}],
            "layers": [{"name": "learn", "kind": "gru", "input": "x", "state_size": 4},
                       {"name": "b", "kind": "gru", "input": "learn", "state_size": 4,
                        "initial_state": "learn"}],
            "outputs": [{"name": "y", "from": "b"}],
        })  # fmt: skip


def net_keys(net) -> list[str]:
    return list(net.init_params(0))
