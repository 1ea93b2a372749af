"""Gradients, losses and optimisers, checked against independent oracles.

Every structure the executor supports is checked in float64 against central finite
differences of the executor's own loss; stacked PyTorch RNN/LSTM/GRU layers (and a Jordan
network written out in torch) against autograd to 1e-8; truncated BPTT against torch
with the hidden state detached every K steps; the optimisers against torch.optim.
"""

from __future__ import annotations

import numpy as np
import pytest

from composer.errors import DataError, SpecError
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params
from composer.run.executor import execute
from composer.run.plan import compile_plan
from composer.spec.model import NetworkSpec
from composer.train.backprop import Workspace, evaluate, grad
from composer.train.losses import cross_entropy, mse, one_hot
from composer.train.optim import SGD, Adam, clip_grad_norm


def net(layers, inputs=(("x", 3),), outputs=(("o", None),), steps=6, **extra):
    """A spec dict: layers as dicts, inputs as (name, size[, window]), outputs as
    (name, from[, window]); `from` None means the last layer."""
    spec = {
        "inputs": [dict(zip(("name", "size", "window"), i)) for i in inputs],
        "layers": layers,
        "outputs": [
            dict(zip(("name", "from", "window"), (o[0], o[1] or layers[-1]["name"], *o[2:])))
            for o in outputs
        ],
        "steps": steps,
    }
    return {**spec, **extra}


def rnn(name, kind="elman", input="x", H=4, out=None, act=None, **extra):
    layer = {"name": name, "kind": kind, "input": input, "state_size": H, **extra}
    if out is not None:
        layer["output"] = {"size": out, "activation": act or "identity"}
    return layer


SOFT = "softmax"
STRUCTURES = {
    "elman-tanh": (net([rnn("r", out=2)]), "mse"),
    "elman-relu-sigmoid": (net([rnn("r", activation="relu", out=2, act="sigmoid")]), "mse"),
    "elman-sigmoid-tanh": (net([rnn("r", activation="sigmoid", out=2, act="tanh")]), "mse"),
    "elman-identity-ce": (net([rnn("r", activation="identity", out=3, act=SOFT)]), "ce"),
    "lstm-many-to-one": (net([rnn("r", "lstm", out=3, act=SOFT)], alignment="many-to-one"), "ce"),
    "gru": (net([rnn("r", "gru", out=2)]), "mse"),
    "dense-softmax-mse": (
        net(
            [
                rnn("r", "gru"),
                {"name": "d", "kind": "dense", "input": "r", "size": 3, "activation": SOFT},
            ]
        ),
        "mse",
    ),
    "stack-3-kinds": (
        net(
            [rnn("a", out=3, act="tanh"), rnn("b", "lstm", "a", out=2), rnn("c", "gru", "b", out=2)]
        ),
        "mse",
    ),
    "concatenated-inputs": (
        net(
            [rnn("a", "lstm", ["x", "z"], H=3), rnn("b", "gru", ["z", "a"], H=3, out=2)],
            inputs=(("x", 2), ("z", 3)),
        ),
        "mse",
    ),
    "windows-absent-inputs": (
        net(
            [rnn("r", "lstm", ["x", "z"], out=2)],
            inputs=(("x", 2, "0:3"), ("z", 2, "2:6")),
            outputs=(("o", None, "1:5"),),
        ),
        "mse",
    ),
    "encoder-decoder-gru": (
        net(
            [
                rnn("enc", "gru", "x", active="0:3"),
                rnn("dec", "gru", "p", active="3:6", initial_state="enc", out=3, act=SOFT),
            ],
            inputs=(("x", 2, "0:3"), ("p", 3, "3:6")),
            outputs=(("o", "dec", "3:6"),),
            alignment={"inputs": "0:3", "outputs": "3:6"},
        ),
        "ce",
    ),
    "handover-lstm-cell": (
        net(
            [
                rnn("enc", "lstm", active="0:3"),
                rnn("dec", "lstm", active="3:6", initial_state="enc", out=2),
            ],
            outputs=(("o", "dec", "3:6"),),
        ),
        "mse",
    ),
    "handover-to-backward": (
        net(
            [
                rnn("enc", "elman"),
                rnn("dec", "elman", "x", direction="backward", initial_state="enc", out=2),
            ]
        ),
        "mse",
    ),
    "backward-and-bidirectional": (
        net(
            [
                rnn("a", "elman", direction="backward", out=3),
                rnn("b", "gru", "a", bidirectional=True, out=2),
            ]
        ),
        "mse",
    ),
    "bidirectional-lstm-stack": (
        net(
            [
                rnn("a", "lstm", H=3, bidirectional=True),
                rnn("b", "lstm", "a", H=3, bidirectional=True),
            ]
        ),
        "mse",
    ),
    "dilated-many-to-one": (
        net(
            [rnn("a", delay=2), rnn("b", "lstm", "a", delay=3, out=2)],
            steps=7,
            alignment="many-to-one",
        ),
        "mse",
    ),
    "jordan-elman": (
        net([rnn("s", out=3, act="sigmoid")], connections=[{"from": "s", "to": "s"}]),
        "mse",
    ),
    "jordan-lstm-delay-2": (
        net(
            [rnn("s", "lstm", out=2, act="tanh")],
            connections=[{"from": "s", "to": "s", "delay": 2}],
        ),
        "mse",
    ),
    "generate-gru-softmax": (
        net(
            [rnn("g", "gru", out=3, act=SOFT)],
            connections=[{"from": "g", "to": "g"}],
            alignment="one-to-many",
        ),
        "ce",
    ),
    "skip-connection": (
        net(
            [rnn("a", out=3), rnn("b", "gru", "a", out=2)],
            connections=[{"from": "x", "to": "b", "delay": 2}, {"from": "a", "to": "b"}],
        ),
        "mse",
    ),
    "late-layer-read-before-it-starts": (
        net(
            [
                rnn("enc", "elman", active="0:3"),
                rnn("dec", "elman", active="3:6", initial_state="enc"),
                {"name": "head", "kind": "dense", "input": "dec", "size": 2, "active": "3:6"},
            ],
            outputs=(("o", "head", "3:6"),),
            connections=[{"from": "dec", "to": "head", "delay": 1}],
        ),
        "mse",
    ),
    "dense-with-feedback": (
        net(
            [
                rnn("a", "lstm", out=2),
                {"name": "d", "kind": "dense", "input": "a", "size": 2, "activation": "tanh"},
            ],
            connections=[{"from": "d", "to": "d", "delay": 1}],
        ),
        "mse",
    ),
    "two-outputs-masked": (
        net(
            [rnn("a", "gru", out=2), rnn("b", "elman", "a", out=3, act=SOFT)],
            outputs=(("o", "a"), ("p", "b", "2:")),
        ),
        {"o": "mse", "p": "cross-entropy"},
    ),
}


def _setup(spec_dict, loss, seed=0, batch=2):
    spec = NetworkSpec.model_validate(spec_dict)
    graph = build(spec)
    plan = compile_plan(unroll(graph, spec.steps))
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
    """The loss from the executor's outputs, computed here independently of composer.train.backprop."""
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
    spec_dict, loss = STRUCTURES[name]
    plan, params, inputs, targets, kinds, masks = _setup(spec_dict, loss)
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
    assert fresh[0] == again[0]
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
    assert evaluate(plan, params, inputs, targets, kinds) == value
    _, truncated = grad(plan, params, inputs, targets, kinds, bptt=plan.steps)
    for key in full:
        np.testing.assert_array_equal(full[key], truncated[key])


def test_backward_layer_truncation_mirrors_the_forward_one():
    """A backward layer on x is a forward layer on x reversed; so are their TBPTT blocks."""
    forward = net([rnn("r", "lstm", out=2)], steps=7)
    backward = net([rnn("r", "lstm", out=2, direction="backward")], steps=7)
    plan, params, inputs, targets, kinds, _ = _setup(forward, "mse")
    back_plan = compile_plan(unroll(build(NetworkSpec.model_validate(backward)), 7))
    flipped = {k: v[:, ::-1] for k, v in inputs.items()}
    flipped_targets = {k: v[:, ::-1] for k, v in targets.items()}
    for bptt in (None, 2, 3):
        _, a = grad(plan, params, inputs, targets, kinds, bptt=bptt)
        _, b = grad(back_plan, params, flipped, flipped_targets, kinds, bptt=bptt)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-14)


# -- losses ---------------------------------------------------------------------------


def test_cross_entropy_is_stable_and_its_gradient_is_p_minus_y():
    logits = np.array([[[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]])
    ids = np.array([[1, 2]])
    value, d = cross_entropy(logits, ids)
    assert np.isfinite(value) and value == pytest.approx((2e4 + np.log(3)) / 2)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(d, (p - one_hot(ids, 3)) / 2)
    assert cross_entropy(logits, one_hot(ids, 3))[0] == value


def test_losses_average_over_unmasked_steps_only():
    out, y = np.zeros((1, 3, 2)), np.ones((1, 3, 2))
    y[0, 2] = 100.0
    value, d = mse(out, y, np.array([[1, 1, 0]]))
    assert value == 1.0 and not d[0, 2].any()
    assert mse(out, y, np.zeros((1, 3)))[0] == 0.0


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


def _from_torch(rnn, linear, kind):
    """Our weights from PyTorch's (DESIGN section 4); `l0`, `l1` are our layer names."""
    params = {}
    for layer in range(2):
        for torch_suffix, ours in (("", ""), ("_reverse", "_rev")):
            name = f"weight_ih_l{layer}{torch_suffix}"
            if not hasattr(rnn, name):
                continue
            get = {
                n: getattr(rnn, f"{n}_l{layer}{torch_suffix}").detach().numpy().copy()
                for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            params[f"l{layer}.Wx{ours}"] = get["weight_ih"].T.copy()
            params[f"l{layer}.Ws{ours}"] = get["weight_hh"].T.copy()
            if kind == "gru":
                params[f"l{layer}.bx{ours}"] = get["bias_ih"]
                params[f"l{layer}.bs{ours}"] = get["bias_hh"]
            else:
                params[f"l{layer}.b{ours}"] = get["bias_ih"] + get["bias_hh"]
    params["l1.Wy"] = linear.weight.detach().numpy().T.copy()
    params["l1.by"] = linear.bias.detach().numpy().copy()
    return params


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
    first = {"name": "l0", "kind": kind, "input": "x", "state_size": H, **extra}
    second = {**first, "name": "l1", "input": "l0", "output": {"size": C, "activation": act}}
    spec = NetworkSpec.model_validate(net([first, second], inputs=(("x", F),), steps=T))
    plan = compile_plan(unroll(build(spec), T))
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
    ours, grads = grad(plan, _from_torch(rnn, linear, kind), {"x": x}, {"o": y}, loss)
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
    layer = cls(F, H, batch_first=True, dtype=torch.float64)
    linear = torch.nn.Linear(H, C, dtype=torch.float64)
    x, y = np.random.default_rng(2).normal(size=(2, B, T, max(F, C)))
    x, y = x[..., :F], y[..., :C]
    state, outs = None, []
    for start in range(0, T, K):
        out, state = layer(torch.from_numpy(x[:, start : start + K]), state)
        state = tuple(s.detach() for s in state) if kind == "lstm" else state.detach()
        outs.append(out)
    torch.nn.functional.mse_loss(linear(torch.cat(outs, 1)), torch.from_numpy(y)).backward()
    spec = NetworkSpec.model_validate(net([rnn("l0", kind, H=H, out=C)], inputs=(("x", F),)))
    plan = compile_plan(unroll(build(spec), T))
    weights = {f"weight_{k}_l0": getattr(layer, f"weight_{k}_l0") for k in ("ih", "hh")}
    params = {
        "l0.Wx": weights["weight_ih_l0"].detach().numpy().T.copy(),
        "l0.Ws": weights["weight_hh_l0"].detach().numpy().T.copy(),
        "l0.Wy": linear.weight.detach().numpy().T.copy(),
        "l0.by": linear.bias.detach().numpy().copy(),
    }
    bias_ih, bias_hh = layer.bias_ih_l0.detach().numpy(), layer.bias_hh_l0.detach().numpy()
    if kind == "gru":
        params.update({"l0.bx": bias_ih.copy(), "l0.bs": bias_hh.copy()})
    else:
        params["l0.b"] = bias_ih + bias_hh
    _, grads = grad(plan, params, {"x": x}, {"o": y}, bptt=K)
    np.testing.assert_allclose(grads["l0.Ws"], layer.weight_hh_l0.grad.numpy().T, rtol=1e-8)
    np.testing.assert_allclose(grads["l0.Wx"], layer.weight_ih_l0.grad.numpy().T, rtol=1e-8)
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


# -- optimisers -----------------------------------------------------------------------


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
