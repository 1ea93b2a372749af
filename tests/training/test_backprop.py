"""Gradients, checked against independent oracles, and the tape's memory estimate.

Every structure the executor supports is checked in float64 against central finite
differences of the executor's own loss; stacked PyTorch RNN/LSTM/GRU layers (and a Jordan
network written out in torch) against autograd to 1e-8; truncated BPTT against torch
with the hidden state detached every K steps. The losses and optimisers have their own
modules (`test_losses.py`, `test_optim.py`).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from composer.engine.executor import execute
from composer.engine.memory import tape_bytes
from composer.engine.plan import compile_plan
from composer.errors import DataError, SpecError
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params
from composer.training.backprop import Workspace, evaluate, grad
from composer.training.loop import plan_for
from tests.builders import connection, input_, layer, output, readout, spec
from tests.oracles import SCENARIOS

SOFT = "softmax"
STRUCTURES = {
    "elman-tanh": (
        spec([layer("r", output=readout(2))], outputs=[output("o")], steps=6),
        "mse",
    ),
    "elman-relu-sigmoid": (
        spec(
            [layer("r", activation="relu", output=readout(2, "sigmoid"))],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "elman-sigmoid-tanh": (
        spec(
            [layer("r", activation="sigmoid", output=readout(2, "tanh"))],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "elman-identity-ce": (
        spec(
            [layer("r", activation="identity", output=readout(3, SOFT))],
            outputs=[output("o")],
            steps=6,
        ),
        "ce",
    ),
    "lstm-many-to-one": (
        spec(
            [layer("r", "lstm", output=readout(3, SOFT))],
            outputs=[output("o")],
            steps=6,
            alignment="many-to-one",
        ),
        "ce",
    ),
    "gru": (
        spec([layer("r", "gru", output=readout(2))], outputs=[output("o")], steps=6),
        "mse",
    ),
    "dense-softmax-mse": (
        spec(
            [layer("r", "gru"), layer("d", "dense", "r", 3, activation=SOFT)],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "stack-3-kinds": (
        spec(
            [
                layer("a", output=readout(3, "tanh")),
                layer("b", "lstm", "a", output=readout(2)),
                layer("c", "gru", "b", output=readout(2)),
            ],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "concatenated-inputs": (
        spec(
            [
                layer("a", "lstm", ["x", "z"], 3),
                layer("b", "gru", ["z", "a"], 3, output=readout(2)),
            ],
            inputs=[input_("x", 2), input_("z", 3)],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "windows-absent-inputs": (
        spec(
            [layer("r", "lstm", ["x", "z"], output=readout(2))],
            inputs=[input_("x", 2, "0:3"), input_("z", 2, "2:6")],
            outputs=[output("o", window="1:5")],
            steps=6,
        ),
        "mse",
    ),
    "encoder-decoder-gru": (
        spec(
            [
                layer("enc", "gru", "x", active="0:3"),
                layer(
                    "dec", "gru", "p", active="3:6", initial_state="enc", output=readout(3, SOFT)
                ),
            ],
            inputs=[input_("x", 2, "0:3"), input_("p", 3, "3:6")],
            outputs=[output("o", "dec", "3:6")],
            steps=6,
            alignment={"inputs": "0:3", "outputs": "3:6"},
        ),
        "ce",
    ),
    "handover-lstm-cell": (
        spec(
            [
                layer("enc", "lstm", active="0:3"),
                layer("dec", "lstm", active="3:6", initial_state="enc", output=readout(2)),
            ],
            outputs=[output("o", "dec", "3:6")],
            steps=6,
        ),
        "mse",
    ),
    "handover-to-backward": (
        spec(
            [
                layer("enc", "elman"),
                layer(
                    "dec",
                    "elman",
                    "x",
                    direction="backward",
                    initial_state="enc",
                    output=readout(2),
                ),
            ],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "backward-and-bidirectional": (
        spec(
            [
                layer("a", "elman", direction="backward", output=readout(3)),
                layer("b", "gru", "a", bidirectional=True, output=readout(2)),
            ],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "bidirectional-lstm-stack": (
        spec(
            [
                layer("a", "lstm", size=3, bidirectional=True),
                layer("b", "lstm", "a", 3, bidirectional=True),
            ],
            outputs=[output("o")],
            steps=6,
        ),
        "mse",
    ),
    "dilated-many-to-one": (
        spec(
            [layer("a", delay=2), layer("b", "lstm", "a", delay=3, output=readout(2))],
            outputs=[output("o")],
            steps=7,
            alignment="many-to-one",
        ),
        "mse",
    ),
    "jordan-elman": (
        spec(
            [layer("s", output=readout(3, "sigmoid"))],
            outputs=[output("o")],
            steps=6,
            connections=[connection("s", "s")],
        ),
        "mse",
    ),
    "jordan-lstm-delay-2": (
        spec(
            [layer("s", "lstm", output=readout(2, "tanh"))],
            outputs=[output("o")],
            steps=6,
            connections=[connection("s", "s", 2)],
        ),
        "mse",
    ),
    "generate-gru-softmax": (
        spec(
            [layer("g", "gru", output=readout(3, SOFT))],
            outputs=[output("o")],
            steps=6,
            connections=[connection("g", "g")],
            alignment="one-to-many",
        ),
        "ce",
    ),
    "skip-connection": (
        spec(
            [layer("a", output=readout(3)), layer("b", "gru", "a", output=readout(2))],
            outputs=[output("o")],
            steps=6,
            connections=[connection("x", "b", 2), connection("a", "b")],
        ),
        "mse",
    ),
    "late-layer-read-before-it-starts": (
        spec(
            [
                layer("enc", "elman", active="0:3"),
                layer("dec", "elman", active="3:6", initial_state="enc"),
                layer("head", "dense", "dec", 2, active="3:6"),
            ],
            outputs=[output("o", "head", "3:6")],
            steps=6,
            connections=[connection("dec", "head", 1)],
        ),
        "mse",
    ),
    "dense-with-feedback": (
        spec(
            [
                layer("a", "lstm", output=readout(2)),
                layer("d", "dense", "a", 2, activation="tanh"),
            ],
            outputs=[output("o")],
            steps=6,
            connections=[connection("d", "d", 1)],
        ),
        "mse",
    ),
    "two-outputs-masked": (
        spec(
            [
                layer("a", "gru", output=readout(2)),
                layer("b", "elman", "a", output=readout(3, SOFT)),
            ],
            outputs=[output("o", "a"), output("p", "b", "2:")],
            steps=6,
        ),
        {"o": "mse", "p": "cross-entropy"},
    ),
    # tapped delay lines (past and future context) and a layer without an input
    **{
        f"scenario:{name}": (SCENARIOS[name][0].model_copy(update={"steps": steps}), "mse")
        for name, steps in (
            ("narx", 6),
            ("tdnn", 5),
            ("backward-taps", 5),
            ("two-pass", 5),
            ("bidirectional-sum", 5),
            ("bidirectional-mean-mul", 5),
            ("bidirectional-encoder-concat-lstm-lstm", 7),
            ("bidirectional-encoder-sum-gru-elman", 7),
            ("bidirectional-encoder-mean-lstm-lstm", 7),
            ("bidirectional-encoder-mul-lstm-gru", 7),
        )
    },
    "scenario:inputless-decoder": (
        SCENARIOS["inputless-decoder"][0].model_copy(update={"steps": 7}),
        "ce",
    ),
}


def _setup(network, loss, seed=0, batch=2):
    graph = build(network)
    plan = compile_plan(unroll(graph, network.steps))
    rng = np.random.default_rng(seed)
    params = init_params(graph, seed, "float64")
    params = {k: v * 1.5 for k, v in params.items()}  # away from the linear regime
    inputs = {
        n: rng.normal(size=(batch, len(plan.window(n)), plan.vectors[n].size)) for n in plan.inputs
    }
    kinds = loss if isinstance(loss, dict) else dict.fromkeys(plan.outputs, _LOSS[loss])
    targets, masks = {}, {}
    for name in plan.outputs:
        shape = (batch, len(plan.window(name)))
        size = plan.vectors[name].size
        if kinds[name] == "cross-entropy":
            targets[name] = rng.integers(0, size, shape)
        else:
            targets[name] = rng.normal(size=(*shape, size))
        masks[name] = rng.uniform(0.2, 1.0, shape) if len(plan.outputs) > 1 else None
    masks = {k: v for k, v in masks.items() if v is not None}
    return plan, params, inputs, targets, kinds, masks


_LOSS = {"mse": "mse", "ce": "cross-entropy"}


def oracle_loss(plan, params, inputs, targets, kinds, masks) -> float:
    """The loss from the executor's outputs, computed independently of `composer.training`."""
    outputs = execute(plan, params, inputs, "float64")
    total = 0.0
    for name, out in outputs.items():
        weights = masks.get(name, np.ones(out.shape[:2]))[..., np.newaxis]
        y = targets[name]
        if kinds[name] == "mse":
            total += np.sum(weights * (out - y) ** 2) / (weights.sum() * out.shape[-1])
        else:
            y = np.eye(out.shape[-1])[y] if y.ndim == 2 else y
            total += -np.sum(weights * y * np.log(out)) / weights.sum()
    return float(total)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_gradient_matches_finite_differences(name):
    network, loss = STRUCTURES[name]
    plan, params, inputs, targets, kinds, masks = _setup(network, loss)
    value, grads = grad(plan, params, inputs, targets, kinds, masks)
    assert value == pytest.approx(
        oracle_loss(plan, params, inputs, targets, kinds, masks), rel=1e-12
    )
    rng, eps = np.random.default_rng(1), 1e-5
    for key in params:
        assert grads[key].shape == params[key].shape
        for _ in range(2):
            direction = rng.normal(size=params[key].shape)
            up = dict(params, **{key: params[key] + eps * direction})
            down = dict(params, **{key: params[key] - eps * direction})
            numeric = (
                oracle_loss(plan, up, inputs, targets, kinds, masks)
                - oracle_loss(plan, down, inputs, targets, kinds, masks)
            ) / (2 * eps)
            analytic = float(np.sum(grads[key] * direction))
            assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_a_reused_workspace_changes_nothing(name):
    plan, params, inputs, targets, kinds, masks = _setup(*STRUCTURES[name])
    workspace = Workspace()
    other = _setup(*STRUCTURES[name], seed=5)
    _, params2, inputs2, targets2, _, masks2 = other  # same shapes, other values
    grad(plan, params2, inputs2, targets2, kinds, masks2, bptt=2, workspace=workspace)
    fresh = grad(plan, params, inputs, targets, kinds, masks)
    again = grad(plan, params, inputs, targets, kinds, masks, workspace=workspace)
    assert fresh[0] == again[0]  # exact: the same products on the same shapes, other buffers
    for key in fresh[1]:
        np.testing.assert_array_equal(fresh[1][key], again[1][key])


def test_float32_gradients_agree_with_float64():
    plan, params, inputs, targets, kinds, masks = _setup(*STRUCTURES["stack-3-kinds"])
    _, wide = grad(plan, params, inputs, targets, kinds)
    narrow_params = {k: v.astype(np.float32) for k, v in params.items()}
    _, narrow = grad(plan, narrow_params, inputs, targets, kinds)
    for key in wide:
        assert narrow[key].dtype == np.float32
        np.testing.assert_allclose(narrow[key], wide[key], rtol=1e-3, atol=1e-5)


def test_evaluate_is_the_loss_of_grad_and_bptt_beyond_t_changes_nothing():
    plan, params, inputs, targets, kinds, masks = _setup(*STRUCTURES["jordan-lstm-delay-2"])
    value, full = grad(plan, params, inputs, targets, kinds)
    assert evaluate(plan, params, inputs, targets, kinds) == value  # exact: grad's forward
    _, truncated = grad(plan, params, inputs, targets, kinds, bptt=plan.steps)
    for key in full:  # exact: a cut at T cuts nothing, the same products run
        np.testing.assert_array_equal(full[key], truncated[key])


def test_backward_layer_truncation_mirrors_the_forward_one():
    """A backward layer on x is a forward layer on x reversed; so are their TBPTT blocks."""
    forward = spec([layer("r", "lstm", output=readout(2))], outputs=[output("o")], steps=7)
    backward = spec(
        [layer("r", "lstm", output=readout(2), direction="backward")],
        outputs=[output("o")],
        steps=7,
    )
    plan, params, inputs, targets, kinds, _ = _setup(forward, "mse")
    back_plan = compile_plan(unroll(build(backward), 7))
    flipped = {k: v[:, ::-1] for k, v in inputs.items()}
    flipped_targets = {k: v[:, ::-1] for k, v in targets.items()}
    for bptt in (None, 2, 3):
        _, a = grad(plan, params, inputs, targets, kinds, bptt=bptt)
        _, b = grad(back_plan, params, flipped, flipped_targets, kinds, bptt=bptt)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-14)


# -- errors ---------------------------------------------------------------------------


def test_cross_entropy_needs_a_softmax_output():
    plan, params, inputs, targets, kinds, _ = _setup(*STRUCTURES["gru"])
    with pytest.raises(SpecError, match="softmax"):
        grad(plan, params, inputs, {"o": np.zeros((2, 6), int)}, "cross-entropy")


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"o": np.zeros((2, 5, 2))}, r"key 'o': expected \(B, T_out, size\) = \(2, 6, 2\)"),
        ({"q": np.zeros((2, 6, 2))}, "missing 'o'"),
        ({"o": np.full((2, 6, 2), np.nan)}, "NaN"),
    ],
)
def test_bad_targets_are_data_errors(targets, message):
    plan, params, inputs, _, _, _ = _setup(*STRUCTURES["gru"])
    with pytest.raises(DataError, match=message):
        grad(plan, params, inputs, targets)


# -- PyTorch as the oracle ------------------------------------------------------------

TORCH_CASES = [
    ("elman", "tanh", False),
    ("elman", "relu", False),
    ("lstm", None, False),
    ("gru", None, False),
    ("elman", "tanh", True),
    ("lstm", None, True),
    ("gru", None, True),
]


def _torch_net(torch, kind, nonlinearity, bidirectional, F, H, C):
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    extra = {"nonlinearity": nonlinearity} if kind == "elman" else {}
    rnn = cls(
        F,
        H,
        num_layers=2,
        batch_first=True,
        bidirectional=bidirectional,
        dtype=torch.float64,
        **extra,
    )
    linear = torch.nn.Linear(H * (2 if bidirectional else 1), C, dtype=torch.float64)
    return rnn, linear


def _from_torch(rnn, linear, graph):
    """Our weights from PyTorch's, through the package's importer (`import-weights --map`);
    `l0`, `l1` are our layer names, layers 0 and 1 of the torch module."""
    from composer.interop.torch_keys import remap

    state = {f"rnn.{k}": v.detach().numpy() for k, v in rnn.state_dict().items()}
    state |= {f"fc.{k}": v.detach().numpy() for k, v in linear.state_dict().items()}
    return remap(graph, state, ["l0=rnn:0", "l1=rnn:1", "l1.readout=fc"])


def _torch_grads(rnn, linear):
    grads = {}
    for name, tensor in [*rnn.named_parameters(), *linear.named_parameters()]:
        grads[name] = tensor.grad.numpy()
    return grads


@pytest.mark.torch
@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
@pytest.mark.parametrize(("kind", "nonlinearity", "bidirectional"), TORCH_CASES)
def test_matches_pytorch_autograd(kind, nonlinearity, bidirectional, loss):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    B, T, F, H, C = 3, 7, 4, 5, 3
    rnn, linear = _torch_net(torch, kind, nonlinearity, bidirectional, F, H, C)
    extra = {"bidirectional": True} if bidirectional else {}
    if kind == "elman":
        extra["activation"] = nonlinearity
    act = "softmax" if loss == "cross-entropy" else "identity"
    network = spec(
        [
            layer("l0", kind, "x", H, **extra),
            layer("l1", kind, "l0", H, output=readout(C, act), **extra),
        ],
        inputs=[input_("x", F)],
        outputs=[output("o")],
        steps=T,
    )
    plan = compile_plan(unroll(build(network), T))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F))
    out = linear(rnn(torch.from_numpy(x))[0])
    if loss == "mse":
        y = rng.normal(size=(B, T, C))
        value = torch.nn.functional.mse_loss(out, torch.from_numpy(y))
    else:
        y = rng.integers(0, C, (B, T))
        value = torch.nn.functional.cross_entropy(out.reshape(-1, C), torch.from_numpy(y).ravel())
    value.backward()
    ours, grads = grad(plan, _from_torch(rnn, linear, plan.folded), {"x": x}, {"o": y}, loss)
    assert ours == pytest.approx(value.item(), rel=1e-12)
    expected = _torch_grads(rnn, linear)
    for name, g in expected.items():
        if name.startswith("weight") and name != "weight":
            key = _our_key(name, "Wx" if "_ih_" in name else "Ws")
            np.testing.assert_allclose(grads[key], g.T, rtol=1e-8, atol=1e-10, err_msg=name)
        elif name.startswith("bias_"):
            which = ("bx" if "_ih_" in name else "bs") if kind == "gru" else "b"
            key = _our_key(name, which)
            np.testing.assert_allclose(grads[key], g, rtol=1e-8, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(grads["l1.Wy"], expected["weight"].T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(grads["l1.by"], expected["bias"], rtol=1e-8, atol=1e-10)


def _our_key(torch_name: str, param: str) -> str:
    layer = torch_name.split("_l")[1][0]
    return f"l{layer}.{param}{'_rev' if torch_name.endswith('_reverse') else ''}"


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_truncated_bptt_matches_pytorch_detaching_every_k_steps(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    B, T, F, H, C, K = 2, 10, 3, 4, 2, 4
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    torch_rnn = cls(F, H, batch_first=True, dtype=torch.float64)
    linear = torch.nn.Linear(H, C, dtype=torch.float64)
    x, y = np.random.default_rng(2).normal(size=(2, B, T, max(F, C)))
    x, y = x[..., :F], y[..., :C]
    state, outs = None, []
    for start in range(0, T, K):
        out, state = torch_rnn(torch.from_numpy(x[:, start : start + K]), state)
        state = tuple(s.detach() for s in state) if kind == "lstm" else state.detach()
        outs.append(out)
    torch.nn.functional.mse_loss(linear(torch.cat(outs, 1)), torch.from_numpy(y)).backward()
    network = spec(
        [layer("l0", kind, size=H, output=readout(C))],
        inputs=[input_("x", F)],
        outputs=[output("o")],
        steps=6,
    )
    plan = compile_plan(unroll(build(network), T))
    weights = {f"weight_{k}_l0": getattr(torch_rnn, f"weight_{k}_l0") for k in ("ih", "hh")}
    params = {
        "l0.Wx": weights["weight_ih_l0"].detach().numpy().T.copy(),
        "l0.Ws": weights["weight_hh_l0"].detach().numpy().T.copy(),
        "l0.Wy": linear.weight.detach().numpy().T.copy(),
        "l0.by": linear.bias.detach().numpy().copy(),
    }
    bias_ih, bias_hh = torch_rnn.bias_ih_l0.detach().numpy(), torch_rnn.bias_hh_l0.detach().numpy()
    if kind == "gru":
        params.update({"l0.bx": bias_ih.copy(), "l0.bs": bias_hh.copy()})
    else:
        params["l0.b"] = bias_ih + bias_hh
    _, grads = grad(plan, params, {"x": x}, {"o": y}, bptt=K)
    np.testing.assert_allclose(grads["l0.Ws"], torch_rnn.weight_hh_l0.grad.numpy().T, rtol=1e-8)
    np.testing.assert_allclose(grads["l0.Wx"], torch_rnn.weight_ih_l0.grad.numpy().T, rtol=1e-8)
    _, full = grad(plan, params, {"x": x}, {"o": y})
    assert not np.allclose(full["l0.Ws"], grads["l0.Ws"])  # the cut made a difference


@pytest.mark.torch
@pytest.mark.parametrize("bptt", [None, 3])
def test_jordan_feedback_matches_a_torch_loop(bptt):
    """s_t = tanh(x_t Wx + s_(t-1) Ws + y_(t-1) W_s + b), y_t = sigmoid(s_t Wy + by)."""
    torch = pytest.importorskip("torch")
    plan, params, inputs, targets, kinds, _ = _setup(*STRUCTURES["jordan-elman"])
    value, grads = grad(plan, params, inputs, targets, kinds, bptt=bptt)
    w = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.from_numpy(inputs["x"])
    s, y, outs = torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(plan.steps):
        if bptt and t % bptt == 0:
            s, y = s.detach(), y.detach()
        s = torch.tanh(x[:, t] @ w["s.Wx"] + s @ w["s.Ws"] + y @ w["s.W_s"] + w["s.b"])
        y = torch.sigmoid(s @ w["s.Wy"] + w["s.by"])
        outs.append(y)
    loss = torch.nn.functional.mse_loss(torch.stack(outs, 1), torch.from_numpy(targets["o"]))
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    for key, tensor in w.items():
        np.testing.assert_allclose(grads[key], tensor.grad.numpy(), rtol=1e-8, atol=1e-12)


# -- memory ---------------------------------------------------------------------------


def test_tape_estimate_is_close_to_what_a_gradient_pass_allocates():
    for kind in ("lstm", "gru", "elman"):
        network = spec(
            [layer("r", kind, size=32, output=readout(4))],
            inputs=[input_("x", 8)],
            outputs=[output("o")],
        )
        graph = build(network)
        x = np.random.default_rng(0).normal(size=(16, 100, 8)).astype("float32")
        plan = plan_for(graph, {"x": x})
        tracemalloc.start()
        grad(plan, init_params(graph), {"x": x}, {"o": np.zeros((16, 100, 4), "float32")})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert 0.6 < tape_bytes(plan, 16) / peak < 1.6, kind
