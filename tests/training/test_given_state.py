"""`initial_state: h0`, `h0` an input: each item's start state given with the data.

Checked against PyTorch's nn.RNN, nn.LSTM and nn.GRU called with h0 (float64), the weight
gradients against finite differences, padded batches against items run alone, and
running in pieces (stepper, state carried) against running whole.
"""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.stepper import run_stepped
from composer.errors import DataError, SpecError
from composer.network import Network
from tests.tolerances import assert_close, run_depth

KINDS = ["elman", "lstm", "gru"]
RNG = np.random.default_rng(0)
X, Y, H0 = RNG.normal(size=(3, 6, 3)), RNG.normal(size=(3, 6, 2)), RNG.normal(size=(3, 4))


def _spec(kind: str, **layer) -> dict:
    return {
        "inputs": [{"name": "x", "size": 3}, {"name": "h0", "size": 4}],
        "layers": [{"name": "rnn", "kind": kind, "input": "x", "state_size": 4,
                    "initial_state": "h0", "output": {"size": 2}, **layer}],
        "outputs": [{"name": "y", "from": "rnn"}],
    }  # fmt: skip


@pytest.fixture(scope="module", params=KINDS)
def case(request):
    net = Network.from_spec(_spec(request.param))
    return request.param, net, net.init_params(3, "float64")


def _torch_layer(kind: str, params: dict):
    torch = pytest.importorskip("torch")
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    module = cls(3, 4, batch_first=True).double()
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(params["rnn.Wx"].T))
        module.weight_hh_l0.copy_(torch.tensor(params["rnn.Ws"].T))
        if kind == "gru":
            module.bias_ih_l0.copy_(torch.tensor(params["rnn.bx"]))
            module.bias_hh_l0.copy_(torch.tensor(params["rnn.bs"]))
        else:  # our one bias is PyTorch's two summed
            module.bias_ih_l0.copy_(torch.tensor(params["rnn.b"]))
            module.bias_hh_l0.zero_()
    return torch, module


def test_run_and_gradients_match_pytorch_with_h0(case):
    kind, net, params = case
    torch, module = _torch_layer(kind, params)
    h0 = torch.tensor(H0)[None]
    start = (h0, torch.zeros_like(h0)) if kind == "lstm" else h0  # an LSTM's c starts at zero
    states, _ = module(torch.tensor(X), start)
    wy, by = (torch.tensor(params[k], requires_grad=True) for k in ("rnn.Wy", "rnn.by"))
    out = states @ wy + by
    ours = net.run(params, {"x": X, "h0": H0}, dtype="float64")["y"]
    assert np.abs(ours - out.detach().numpy()).max() < 1e-10
    loss = torch.nn.functional.mse_loss(out, torch.tensor(Y))
    loss.backward()
    value, grads = net.grad(params, {"x": X, "h0": H0}, {"y": Y})
    assert abs(value - loss.item()) < 1e-10
    assert np.abs(grads["rnn.Ws"] - module.weight_hh_l0.grad.numpy().T).max() < 1e-10
    assert np.abs(grads["rnn.Wx"] - module.weight_ih_l0.grad.numpy().T).max() < 1e-10
    assert np.abs(grads["rnn.Wy"] - wy.grad.numpy()).max() < 1e-10
    assert "h0" not in grads  # weights only: `grad` gives no input's gradient


def test_the_given_state_changes_the_outputs_and_zeros_give_a_plain_layer(case):
    kind, net, params = case
    given = net.run(params, {"x": X, "h0": H0}, dtype="float64")["y"]
    zeros = net.run(params, {"x": X, "h0": np.zeros_like(H0)}, dtype="float64")["y"]
    plain = _spec(kind)
    del plain["layers"][0]["initial_state"]
    plain["inputs"] = plain["inputs"][:1]
    alone = Network.from_spec(plain).run(params, X, dtype="float64")["y"]
    assert np.array_equal(zeros, alone)  # exact: the same products, zeros added exactly
    assert np.abs(given - zeros)[:, 0].min() > 1e-6  # every item's first step moved


def _numeric(net, params, inputs, key, lengths=None, eps=1e-6):
    numeric = np.zeros_like(params[key])
    for index in np.ndindex(params[key].shape):
        values = []
        for sign in (1, -1):
            moved = dict(params, **{key: params[key].copy()})
            moved[key][index] += sign * eps
            values.append(net.grad(moved, inputs, {"y": Y}, lengths=lengths)[0])
        numeric[index] = (values[0] - values[1]) / (2 * eps)
    return numeric


@pytest.mark.parametrize("lengths", [None, {"x": [6, 2, 4]}], ids=["whole", "padded"])
def test_recurrent_gradient_matches_finite_differences(case, lengths):
    _, net, params = case
    inputs = {"x": X, "h0": H0}
    _, grads = net.grad(params, inputs, {"y": Y}, lengths=lengths)
    numeric = _numeric(net, params, inputs, "rnn.Ws", lengths)
    assert np.abs(grads["rnn.Ws"] - numeric).max() < 1e-8


def test_padded_items_start_from_their_own_state(case):
    _, net, params = case
    padded = net.run(params, {"x": X, "h0": H0}, dtype="float64", lengths={"x": [6, 2, 4]})
    for item, n in enumerate([6, 2, 4]):
        alone = net.run(params, {"x": X[item, :n], "h0": H0[item]}, dtype="float64")["y"]
        assert np.abs(padded["y"][item, :n] - alone).max() < 1e-13


def test_stepper_takes_it_with_the_first_step_and_pieces_equal_the_whole(case):
    kind, net, params = case
    whole = net.run(params, {"x": X, "h0": H0}, dtype="float64")["y"]
    stepper = net.stepper(params, "float64")
    needs = r"the first step needs the start state 'h0', shape \(3, 4\)"
    with pytest.raises(DataError, match=needs):
        stepper.step({"x": X[:, 0]})
    steps = [stepper.step({"x": X[:, 0], "h0": H0})["y"]]
    with pytest.raises(DataError, match="read before the first step only"):
        stepper.step({"x": X[:, 1], "h0": H0})
    steps += [stepper.step({"x": X[:, t]})["y"] for t in range(1, 6)]
    stepped = np.stack(steps, axis=1)
    # one step's products (B rows) against the run's (B * T rows): float64 rounding apart
    assert_close(stepped, whole, np.float64, run_depth(6))
    first, state = run_stepped(net.graph, params, {"x": X[:, :2], "h0": H0}, None, "float64")
    rest, _ = run_stepped(net.graph, params, {"x": X[:, 2:]}, state, "float64")
    # exact: pieces run step by step, as the stepper did, the same products on the same shapes
    assert np.array_equal(np.concatenate([first["y"], rest["y"]], axis=1), stepped)


def test_dilated_layer_takes_it_at_each_of_its_first_steps():
    net = Network.from_spec(_spec("gru", delay=2))
    params = net.init_params(1, "float64")
    whole = net.run(params, {"x": X, "h0": H0}, dtype="float64")["y"]
    stepper = net.stepper(params, "float64")
    steps = [stepper.step({"x": X[:, 0], "h0": H0})["y"]]
    steps += [stepper.step({"x": X[:, t]})["y"] for t in range(1, 6)]
    assert np.abs(np.stack(steps, axis=1) - whole).max() < 1e-13
    # by hand: steps 0 and 1 both read h0 through Ws
    zero = net.run(params, {"x": X, "h0": 0 * H0}, dtype="float64")["y"]
    assert (np.abs(whole - zero)[:, :2].min(axis=-1) > 0).all()


def test_a_layer_driven_by_its_start_state_alone_needs_no_sequence():
    net = Network.from_spec({
        "inputs": [{"name": "z", "size": 4}],
        "layers": [{"name": "gen", "kind": "gru", "state_size": 4, "initial_state": "z",
                    "output": {"size": 2}}],
        "outputs": [{"name": "y", "from": "gen"}],
        "steps": 5,
    })  # fmt: skip
    params = net.init_params(0, "float64")
    out = net.run(params, {"z": H0}, dtype="float64")["y"]
    assert out.shape == (3, 5, 2)
    assert net.run(params, {"z": H0[0]}, dtype="float64")["y"].shape == (5, 2)
    longer = net.run(params, {"z": H0}, steps=7, dtype="float64")["y"]
    assert np.abs(longer[:, :5] - out).max() < 1e-13


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"inputs": [{"name": "x", "size": 3}, {"name": "h0", "size": 5}]},
            "input `h0` has size 5 but `rnn` has state_size 4",
        ),
        (
            {"inputs": [{"name": "x", "size": 3}, {"name": "h0", "size": 4, "window": "0:1"}]},
            "`h0` has a `window`, but a start state has no time axis",
        ),
        (
            {"inputs": [{"name": "x", "size": 3}, {"name": "h0", "vocab": 4}]},
            "`h0` is a token input",
        ),
        ({"layer": {"bidirectional": True}}, "a bidirectional layer cannot start from a given"),
        ({"layer": {"input": ["x", "h0"]}}, "`h0` is read as a sequence by `rnn`"),
        ({"layer": {"initial_state": "h00"}}, "unknown name `h00` .did you mean `h0`"),
    ],
)
def test_bad_specs_are_one_line_spec_errors_at_the_field(change, message):
    data = _spec("gru")
    if "inputs" in change:
        data["inputs"] = change["inputs"]
    data["layers"][0].update(change.get("layer", {}))
    with pytest.raises(SpecError, match=message) as info:
        Network.from_spec(data)
    assert info.value.dotted_path == "layers[0].initial_state"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("h0", "message"),
    [
        (
            H0[:, :3],
            r"input 'h0': a start state, expected shape \(B, 4\) \(no time axis\), "
            r"got \(3, 3\)",
        ),
        (H0[:, None], r"got \(3, 1, 4\)"),
        (H0[:2], "disagree on the batch size"),
        (np.where(H0 > 1, np.nan, H0), "NaN"),
    ],
)
def test_bad_arrays_are_one_line_data_errors(case, h0, message):
    _, net, params = case
    with pytest.raises(DataError, match=message):
        net.run(params, {"x": X, "h0": h0})


def test_it_has_no_steps_and_no_lengths(case):
    _, net, params = case
    no_lengths = "`h0` gives a start state, which has no steps and so no lengths"
    with pytest.raises(DataError, match=no_lengths):
        net.run(params, {"x": X, "h0": H0}, lengths={"h0": [1, 1, 1]})
    # T comes from the sequences alone, whatever B is
    assert net.run(params, {"x": X[:, :2], "h0": H0})["y"].shape == (3, 2, 2)


def test_dependencies_list_it_without_steps(case):
    _, net, _ = case
    deps = net.dependencies(3)
    assert deps["y"][2] == {"x": [0, 1, 2], "h0": []}


@pytest.mark.parametrize("start", ["h0", "learn"])
def test_a_backward_layer_in_a_padded_batch_starts_from_it_at_each_items_end(start):
    """Reproduced first: packed, a backward layer's shorter items started from zeros
    instead of their s0 (or h0), 0.23 off for `learn`."""
    data = _spec("gru", direction="backward", initial_state=start)
    net = Network.from_spec(data)
    params = net.init_params(2, "float64")
    if start == "learn":
        params["rnn.s0"] = np.random.default_rng(3).normal(size=4)
    lengths = [6, 2, 4]
    padded = net.run(params, {"x": X, "h0": H0}, dtype="float64", lengths={"x": lengths})["y"]
    for item, n in enumerate(lengths):
        alone = net.run(params, {"x": X[item, :n], "h0": H0[item]}, dtype="float64")["y"]
        assert np.abs(padded[item, :n] - alone).max() < 1e-13
    value, grads = net.grad(params, {"x": X, "h0": H0}, {"y": Y}, lengths={"x": lengths})
    assert np.abs(grads["rnn.Ws"] - _numeric(net, params, {"x": X, "h0": H0}, "rnn.Ws",
                                               {"x": lengths})).max() < 1e-8  # fmt: skip


def test_an_input_with_at_end_or_named_learn_is_refused():
    data = _spec("gru", initial_state={"from": "h0", "at": "end"})
    with pytest.raises(SpecError, match="a start state given with the data has no end") as info:
        Network.from_spec(data)
    assert info.value.dotted_path == "layers[0].initial_state.from"
    data = _spec("gru", initial_state="learn")
    data["inputs"][1]["name"] = "learn"
    with pytest.raises(SpecError, match="but an input is named `learn`; rename that input"):
        Network.from_spec(data)


def test_generation_starts_from_it():
    from composer.engine.batches import run
    from composer.engine.generation import beam_search, find_feedback, generate

    net = Network.from_spec({
        "inputs": [{"name": "c", "vocab": 6, "embed": 3}, {"name": "z", "size": 5}],
        "layers": [{"name": "g", "kind": "gru", "input": "c", "state_size": 5,
                    "initial_state": "z", "output": {"size": 6, "activation": "softmax"}}],
        "outputs": [{"name": "y", "from": "g"}],
    })  # fmt: skip
    params = net.init_params(4, "float64")
    stepper, feedback = net.stepper(params, "float64"), find_feedback(net.graph)
    texts = []
    for z in 3 * np.random.default_rng(5).normal(size=(2, 5)):
        greedy = generate(stepper, feedback, [1], 12, temperature=0, inputs={"z": z})[0].tolist()
        prefix = [1]
        for _ in range(12):
            probs = run(net.graph, params, {"c": np.array(prefix), "z": z}, dtype="float64")["y"]
            prefix.append(int(probs[-1].argmax()))
        assert greedy == prefix[1:]
        ((beam, _),) = beam_search(stepper, feedback, [1], 12, 1, inputs={"z": z})
        assert list(beam) == greedy
        texts.append(greedy)
    assert texts[0] != texts[1]  # the start state conditions the text


def test_validate_names_the_layer_it_starts_when_that_layer_is_unused():
    from composer.graph.unrolled import unroll
    from composer.graph.unused import _used_weights, unused_parts

    data = _spec("gru")
    data["layers"].append({"name": "other", "kind": "gru", "input": "x", "state_size": 4})
    data["outputs"] = [{"name": "y", "from": "other"}]
    found = {u.name: u.message for u in unused_parts(Network.from_spec(data).graph)}
    assert found["h0"] == (
        "input `h0` reaches no emitted output (read by `rnn`, at steps no output needs)"
    )
    # at T = 1 the recurrence reads the initial state only: h0 makes Ws count, zeros not
    given = unroll(Network.from_spec(_spec("gru")).graph, 1)
    assert "rnn.Ws" in _used_weights(given)
    plain = _spec("gru")
    plain["layers"][0].pop("initial_state")
    assert "rnn.Ws" not in _used_weights(unroll(Network.from_spec(plain).graph, 1))
