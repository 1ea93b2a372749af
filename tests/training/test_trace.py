"""Traces and gradient norms: the trace is what the executor computes, the gates are the
textbook's, and the per-step gradient norms are PyTorch autograd's."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.executor import execute
from composer.engine.plan import compile_plan
from composer.engine.tokens import encode_tokens
from composer.errors import DataError
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params
from composer.network import Network
from composer.spec.reader import load_spec
from composer.training.trace import gradient_norms, trace, trace_keys
from tests import oracles
from tests.builders import input_, layer, output, random_input, readout, spec
from tests.conftest import SPECS


def _inputs(plan, rng, batch=2):
    return {n: random_input(plan.folded, n, batch, len(plan.window(n)), rng) for n in plan.inputs}


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_the_trace_equals_the_executors_outputs(spec_path):
    network = load_spec(spec_path)
    graph = build(network)
    plan = compile_plan(unroll(graph, network.steps))
    params = init_params(graph, 0, "float64")
    inputs = _inputs(plan, np.random.default_rng(0))
    found = trace(plan, params, inputs)
    assert list(found) == trace_keys(plan)
    for name, values in execute(plan, params, inputs, "float64").items():
        start, stop = plan.vectors[name].window
        np.testing.assert_allclose(found[name][:, start:stop], values, rtol=1e-12, atol=1e-14)
        assert np.isnan(found[name][:, :start]).all() and np.isnan(found[name][:, stop:]).all()
    read = encode_tokens(graph, inputs, params, np.float64)  # token ids: the vectors read
    for name in plan.inputs:
        start, stop = plan.vectors[name].window
        # the steps something reads (a tapped input's last steps may be read by nothing)
        present = plan.vectors[name].present[start:stop]
        np.testing.assert_array_equal(  # exact: the inputs as read, copied
            found[name][:, start:stop][:, present], read[name][:, present]
        )
        assert np.isnan(found[name][:, start:stop][:, ~present]).all()


def test_lstm_gates_and_cell_state_are_the_textbooks():
    network = spec([layer("l", "lstm", size=5, output=readout(2))], steps=6)
    net = Network.from_spec(network)
    params = net.init_params(1, "float64")
    x = np.random.default_rng(1).normal(size=(3, 6, 3))
    found = net.trace(params, {"x": x})
    h, c = np.zeros((3, 5)), np.zeros((3, 5))
    for t in range(6):
        z = x[:, t] @ params["l.Wx"] + h @ params["l.Ws"] + params["l.b"]
        i, f, g, o = np.split(z, 4, axis=-1)
        i, f, g, o = oracles.sigmoid(i), oracles.sigmoid(f), np.tanh(g), oracles.sigmoid(o)
        c = f * c + i * g
        h = o * np.tanh(c)
        for key, want in {"i": i, "f": f, "g": g, "o": o}.items():
            np.testing.assert_allclose(found[f"l.gates.{key}"][:, t], want, rtol=1e-12)
        np.testing.assert_allclose(found["l.c"][:, t], c, rtol=1e-12)
        np.testing.assert_allclose(found["l.s"][:, t], h, rtol=1e-12)


def test_gru_gates_are_the_textbooks_and_a_flat_input_gives_flat_arrays():
    net = Network.from_spec(spec([layer("g", "gru", size=4)], steps=5))
    params = net.init_params(2, "float64")
    x = np.random.default_rng(2).normal(size=(5, 3))
    found = net.trace(params, x)
    assert found["g.gates.r"].shape == (5, 4) and "g.c" not in found
    h = np.zeros(4)
    for t in range(5):
        gx = x[t] @ params["g.Wx"] + params["g.bx"]
        gh = h @ params["g.Ws"] + params["g.bs"]
        r = oracles.sigmoid(gx[:4] + gh[:4])
        z = oracles.sigmoid(gx[4:8] + gh[4:8])
        n = np.tanh(gx[8:] + r * gh[8:])
        h = (1 - z) * n + z * h
        for key, want in {"r": r, "z": z, "n": n}.items():
            np.testing.assert_allclose(found[f"g.gates.{key}"][t], want, rtol=1e-12)
        np.testing.assert_allclose(found["g.s"][t], h, rtol=1e-12)


# -- gradient norms against autograd ----------------------------------------------------


def _torch_stack(torch, kind, F, H, C):
    cell = {"elman": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    cells = [cell(F, H, dtype=torch.float64), cell(H, H, dtype=torch.float64)]
    return cells, torch.nn.Linear(H, C, dtype=torch.float64)


def _our_params(cells, linear, kind):
    params = {}
    for index, cell in enumerate(cells):
        get = {n: getattr(cell, n).detach().numpy().copy() for n in
               ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}  # fmt: skip
        params[f"l{index}.Wx"] = get["weight_ih"].T.copy()
        params[f"l{index}.Ws"] = get["weight_hh"].T.copy()
        if kind == "gru":
            params[f"l{index}.bx"], params[f"l{index}.bs"] = get["bias_ih"], get["bias_hh"]
        else:
            params[f"l{index}.b"] = get["bias_ih"] + get["bias_hh"]
    params["l1.Wy"] = linear.weight.detach().numpy().T.copy()
    params["l1.by"] = linear.bias.detach().numpy().copy()
    return params


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
@pytest.mark.parametrize("at", [None, 3, 7])
def test_gradient_norms_match_autograd(kind, at):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    B, T, F, H, C = 3, 8, 4, 5, 2
    cells, linear = _torch_stack(torch, kind, F, H, C)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, T, C))
    states = {"l0.s": [], "l1.s": []} | ({"l0.c": [], "l1.c": []} if kind == "lstm" else {})
    carry = [None, None]
    outs = []
    for t in range(T):
        value = torch.from_numpy(x[:, t])
        for index, cell in enumerate(cells):
            carry[index] = cell(value) if carry[index] is None else cell(value, carry[index])
            h = carry[index][0] if kind == "lstm" else carry[index]
            h.retain_grad()
            states[f"l{index}.s"].append(h)
            if kind == "lstm":  # the cell state c: the LSTM's own carried array
                carry[index][1].retain_grad()
                states[f"l{index}.c"].append(carry[index][1])
            value = h
        outs.append(linear(value))
    out = torch.stack(outs, dim=1)
    target = torch.from_numpy(y)
    if at is None:
        loss = torch.nn.functional.mse_loss(out, target)
    else:
        loss = torch.nn.functional.mse_loss(out[:, at], target[:, at])
    loss.backward()
    network = spec(
        [layer("l0", kind, "x", H), layer("l1", kind, "l0", H, output=readout(C))],
        inputs=[input_("x", F)],
        outputs=[output("o")],
        steps=T,
    )
    net = Network.from_spec(network)
    norms = net.gradient_norms(
        _our_params(cells, linear, kind), {"x": x}, {"o": y}, at=None if at is None else ("o", at)
    )
    assert set(norms) == set(states)
    for name, steps in states.items():
        want = [float(s.grad.norm()) if s.grad is not None else 0.0 for s in steps]
        np.testing.assert_allclose(norms[name], want, rtol=1e-9, atol=1e-14, err_msg=name)
    if at is not None:
        assert (norms["l1.s"][at + 1 :] == 0).all() and norms["l1.s"][at] > 0


def test_gradient_norms_are_nan_where_a_state_is_not_computed():
    network = spec(
        [layer("enc", input="x", active=":3"), layer("dec", input="x", active="3:",
                                                     initial_state="enc", output=readout(2))],
        inputs=[input_("x", 3)],
        alignment={"inputs": ":", "outputs": "3:"},
        steps=5,
    )  # fmt: skip
    graph = build(network)
    plan = compile_plan(unroll(graph, 5))
    rng = np.random.default_rng(0)
    inputs = _inputs(plan, rng)
    targets = {"y": rng.normal(size=(2, 2, 2))}
    _, norms = gradient_norms(plan, init_params(graph, 0, "float64"), inputs, targets)
    assert np.isnan(norms["enc.s"][3:]).all() and (norms["enc.s"][:3] > 0).all()
    assert np.isnan(norms["dec.s"][:3]).all() and (norms["dec.s"][3:] > 0).all()


@pytest.mark.parametrize(("at", "message"), [(("z", 1), "no output 'z'"), (("y", 1), "not at 1")])
def test_a_step_that_is_not_emitted_is_a_data_error(at, message):
    network = spec([layer("s", output=readout(2))], alignment="many-to-one", steps=4)
    graph = build(network)
    plan = compile_plan(unroll(graph, 4))
    inputs = _inputs(plan, np.random.default_rng(0))
    with pytest.raises(DataError, match=message):
        gradient_norms(plan, init_params(graph, 0, "float64"), inputs, {"y": np.zeros((2, 1, 2))},
                       at=at)  # fmt: skip
