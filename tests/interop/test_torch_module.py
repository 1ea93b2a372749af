"""`Network.to_torch`: every example spec (tapped delays, merges, input-free layers and
two passes included) as an nn.Module gives `Network.run`'s outputs and
`Network.grad`'s gradients (float64), plain stacks through torch's own modules, lengths
packed or grouped, and PyTorch's parameter names."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.inputs import input_sizes
from composer.engine.pipeline import plan_for_steps
from composer.network import Network
from tests.builders import input_, layer, output, random_input, spec
from tests.conftest import SPECS
from tests.oracles import SCENARIOS

torch = pytest.importorskip("torch")

from composer.interop.torch_keys import grads_from_state  # noqa: E402
from composer.interop.torch_pass import TorchPass  # noqa: E402

pytestmark = pytest.mark.torch

#: the examples whose every layer runs through torch's own modules
NATIVE = {
    "bidirectional-tagger",
    "char-lm",
    "gru",
    "lecture-elman",
    "lecture-stack",
    "lstm",
    "reber",
    "running-sum",
    "sentiment",
    "sunspots",
    "tagging",
    "tdnn",  # dense layers only: each over all its steps at once
}


def _case(path, batch=3, seed=0):
    net = Network.from_file(path)
    params = net.init_params(seed=seed + 1, dtype="float64")
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in params.items()}
    plan = plan_for_steps(net.graph, net.graph.graph["steps"])
    inputs = {
        name: random_input(net.graph, name, batch, len(plan.window(name)), rng)
        for name in input_sizes(net.graph)
    }
    targets = {
        name: rng.normal(size=(batch, len(plan.window(name)), plan.vectors[name].size))
        for name in plan.outputs
    }
    return net, params, inputs, targets, plan


def _tensors(arrays):
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def _mse(outputs, targets):
    """composer's mse summed over outputs: the mean over (item, step), features."""
    return sum(((outputs[k] - torch.from_numpy(y)) ** 2).mean() for k, y in targets.items())


@pytest.fixture(scope="module", params=SPECS, ids=[p.stem for p in SPECS])
def case(request):
    return request.param.stem, *_case(request.param)


def test_runs_natively_exactly_the_plain_examples(case):
    name, net, params, _, _, plan = case
    assert TorchPass.all_native(net.to_torch(params, "float64"), plan) == (name in NATIVE)


def test_forward_matches_run(case):
    _, net, params, inputs, _, _ = case
    module = net.to_torch(params, dtype="float64")
    expected = net.run(params, inputs, dtype="float64")
    with torch.no_grad():
        got = module(_tensors(inputs))
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key].dtype == torch.float64
        np.testing.assert_allclose(got[key].numpy(), value, atol=1e-10, rtol=0, err_msg=key)


def test_gradients_match_grad(case):
    _, net, params, inputs, targets, _ = case
    module = net.to_torch(params, dtype="float64")
    _mse(module(_tensors(inputs)), targets).backward()
    got = grads_from_state(
        net.graph, {k: p.grad.numpy() for k, p in module.named_parameters() if p.grad is not None}
    )
    value, expected = net.grad(params, inputs, targets)
    assert sorted(got) == sorted(expected)
    for key, grad in expected.items():
        np.testing.assert_allclose(got[key], grad, atol=1e-8, rtol=1e-8, err_msg=key)


def test_parameters_come_back_exactly(case):
    _, net, params, _, _, _ = case
    back = net.to_torch(params, dtype="float64").params()
    assert sorted(back) == sorted(params)
    for key, value in params.items():  # exact: float64 copies
        np.testing.assert_array_equal(back[key], value)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_lengths_give_each_item_as_alone(path):
    net, params, inputs, _, plan = _case(path, batch=4, seed=3)
    single = {name for name in plan.inputs if len(plan.window(name)) == 1}
    if single:
        pytest.skip("one-step inputs: nothing to cut")
    longest = {name: array.shape[1] for name, array in inputs.items()}
    lengths = {name: np.array([n, max(1, n - 1), max(1, n - 2), n]) for name, n in longest.items()}
    try:
        expected = net.run(params, inputs, dtype="float64", lengths=lengths)
    except Exception as err:  # a spec whose windows fit no shorter T: refused alike
        with pytest.raises(type(err)):
            net.to_torch(params, "float64")(_tensors(inputs), lengths=lengths)
        return
    module = net.to_torch(params, dtype="float64")
    with torch.no_grad():
        got = module(_tensors(inputs), lengths=lengths)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(got[key]), value, atol=1e-10, rtol=0, err_msg=key)


def _stack(kind, bidirectional, alignment="many-to-many"):
    layers = [
        layer("l0", kind, "x", 5, bidirectional=bidirectional),
        layer("l1", kind, "l0", 4, output={"size": 2}),
    ]
    return Network.from_spec(
        spec(layers, inputs=[input_("x", 3)], outputs=[output("o", "l1")], alignment=alignment)
    )


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
@pytest.mark.parametrize("alignment", ["many-to-one", "many-to-many"])
def test_a_plain_stack_runs_packed_and_matches_grad_with_lengths(kind, alignment):
    net = _stack(kind, True, alignment)
    rng = np.random.default_rng(1)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}
    x = rng.normal(size=(5, 7, 3))
    lengths = {"x": np.array([7, 3, 5, 1, 6])}
    module = net.to_torch(params, dtype="float64")
    assert TorchPass.all_native(module, module._plan(7))
    calls = []
    rnn = module.l0.rnn
    hook = rnn.register_forward_hook(lambda mod, args, out: calls.append(type(args[0]).__name__))
    out = module(torch.from_numpy(x), lengths=lengths)
    hook.remove()
    assert calls == ["PackedSequence"]
    expected = net.run(params, {"x": x}, dtype="float64", lengths=lengths)
    np.testing.assert_allclose(out["o"].detach().numpy(), expected["o"], atol=1e-10, rtol=0)
    assert out["o.lengths"].tolist() == expected["o.lengths"].tolist()
    # the loss over real steps only, as Network.grad with lengths
    y = rng.normal(size=expected["o"].shape)
    counts = torch.as_tensor(expected["o.lengths"])
    weight = (torch.arange(y.shape[1])[None, :] < counts[:, None]).double()[..., None]
    value = (weight * (out["o"] - torch.from_numpy(y)) ** 2).sum() / (weight.sum() * 2)
    value.backward()
    got = grads_from_state(net.graph, {k: p.grad.numpy() for k, p in module.named_parameters()})
    ref_value, ref = net.grad(params, {"x": x}, {"o": y}, lengths=lengths)
    assert float(value.detach()) == pytest.approx(ref_value, abs=1e-12)
    for key, grad in ref.items():
        np.testing.assert_allclose(got[key], grad, atol=1e-8, rtol=1e-8, err_msg=key)


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_a_plain_layers_state_dict_is_exactly_torchs_module(kind):
    net = _stack(kind, True)
    module = net.to_torch()
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    plain = cls(3, 5, batch_first=True, bidirectional=True)
    own = {k.split(".", 2)[2]: v.shape for k, v in module.state_dict().items() if k[:6] == "l0.rnn"}
    assert own == {k: v.shape for k, v in plain.state_dict().items()}
    assert sorted(module.l1.readout.state_dict()) == ["bias", "weight"]


def test_our_bias_exports_as_bias_ih_with_a_zero_bias_hh():
    net = _stack("lstm", False)
    params = net.init_params(seed=4)
    state = net.to_torch(params).state_dict()  # exact below: copies
    np.testing.assert_array_equal(state["l0.rnn.bias_ih_l0"].numpy(), params["l0.b"])
    assert not state["l0.rnn.bias_hh_l0"].any()
    np.testing.assert_array_equal(state["l0.rnn.weight_ih_l0"].numpy(), params["l0.Wx"].T)


def test_one_tensor_for_one_sequence_gives_unbatched_outputs():
    net = _stack("gru", False)
    params = net.init_params(seed=2, dtype="float64")
    x = np.random.default_rng(0).normal(size=(6, 3))
    out = net.to_torch(params, "float64")(torch.from_numpy(x))
    np.testing.assert_allclose(out["o"].detach().numpy(), net.run(params, x, dtype="float64")["o"])


def test_a_layer_named_like_a_module_attribute_is_refused():
    from composer.errors import SpecError

    net = Network.from_spec(spec([layer("training", "gru", "x", 2)], inputs=[input_("x", 1)]))
    with pytest.raises(SpecError, match="`training`"):
        net.to_torch()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_runs_on_a_gpu():
    net = _stack("lstm", True)
    params = net.init_params(seed=2, dtype="float64")
    x = np.random.default_rng(0).normal(size=(4, 6, 3))
    module = net.to_torch(params, "float64").to("cuda")
    out = module(torch.from_numpy(x).cuda(), lengths={"x": [6, 2, 4, 5]})
    expected = net.run(params, {"x": x}, dtype="float64", lengths={"x": [6, 2, 4, 5]})
    np.testing.assert_allclose(out["o"].cpu().detach().numpy(), expected["o"], atol=1e-9)


MERGED = {
    "bidirectional-sum": SCENARIOS["bidirectional-sum"][:2],
    "bidirectional-mean-mul": SCENARIOS["bidirectional-mean-mul"][:2],
    "sum-read-natively": (
        spec(
            [
                layer("a", "gru", "x", 3, bidirectional=True, merge="sum"),
                layer("b", "lstm", "a", 2, bidirectional=True, merge="mul"),
            ],
            outputs=[output("o", "b")],
        ),
        6,
    ),
    **{name: SCENARIOS[name][:2] for name in SCENARIOS if name.startswith("bidirectional-enc")},
    "read-by-a-cell-loop": (
        spec(
            [
                layer("a", "elman", "x", 3, bidirectional=True, merge="mean"),
                layer("b", "gru", "a", 2, delay=2, output={"size": 2}),
            ],
            outputs=[output("o", "b")],
        ),
        6,
    ),
}


@pytest.mark.parametrize("name", sorted(MERGED))
def test_merged_directions_match_run_and_grad(name):
    """`merge: sum | mean | mul`: each reader and output of the module sees the directions
    merged as the engine merges them, natively and through the cell loop, with lengths."""
    network, steps = MERGED[name]
    net = Network.from_spec(network.model_copy(update={"steps": steps}))
    rng = np.random.default_rng(4)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}
    plan = plan_for_steps(net.graph, steps)
    x = {n: rng.normal(size=(3, len(plan.window(n)), plan.vectors[n].size)) for n in plan.inputs}
    module = net.to_torch(params, dtype="float64")
    native = "loop" not in name and "encoder" not in name  # a hand-over: the cell loop
    assert TorchPass.all_native(module, module._plan(steps)) == native
    out = module(_tensors(x))
    expected = net.run(params, x, dtype="float64")
    for key, value in expected.items():
        np.testing.assert_allclose(out[key].detach().numpy(), value, atol=1e-10, rtol=0)
    targets = {k: rng.normal(size=v.shape) for k, v in expected.items()}
    _mse(out, targets).backward()
    got = grads_from_state(net.graph, {k: p.grad.numpy() for k, p in module.named_parameters()})
    _, ref = net.grad(params, x, targets)
    assert sorted(got) == sorted(ref)
    for key, grad in ref.items():
        np.testing.assert_allclose(got[key], grad, atol=1e-8, rtol=1e-8, err_msg=key)
    if "encoder" in name:  # windows fixed to T = 7: every item has all its steps
        return
    lengths = {"x": np.array([steps, 2, steps - 1])}
    expected = net.run(params, x, dtype="float64", lengths=lengths)
    with torch.no_grad():
        got = module(_tensors(x), lengths=lengths)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(got[key]), value, atol=1e-10, rtol=0, err_msg=key)
