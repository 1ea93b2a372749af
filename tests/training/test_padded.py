"""Training on padded batches: the loss and its gradients cover each item's real steps,
equal the share-weighted sum of each item alone, and match PyTorch's autograd through
packed sequences."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.batches import output_steps
from composer.engine.inputs import input_sizes
from composer.engine.lengths import check_lengths, item_steps
from composer.engine.pipeline import plan_for_steps
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.spec.reader import load_spec
from composer.training.loop import train
from composer.training.padded import evaluate_padded, grad_padded, padded_parts
from tests.builders import input_, layer, output, random_input, readout, spec
from tests.conftest import SPECS
from tests.training.test_backprop import (
    TORCH_CASES,
    _from_torch,
    _our_key,
    _torch_grads,
    _torch_net,
)


def _padded_batch(graph, batch: int, seed: int):
    """Random inputs padded with large values, lengths per input, targets per output."""
    rng = np.random.default_rng(seed)
    steps = rng.choice(_valid_steps(graph), size=batch)
    longest = plan_for_steps(graph, int(steps.max()))
    inputs, lengths = {}, {}
    for name in input_sizes(graph):
        window = graph.nodes[name]["window"]
        counts = [len(output_steps_of(window, t)) for t in steps]
        width = len(longest.window(name))
        x = random_input(graph, name, batch, width, rng, 1e3)  # padding: any leak shows
        for b, n in enumerate(counts):
            x[b, :n] = random_input(graph, name, 1, n, rng)[0]
        inputs[name], lengths[name] = x, np.array(counts)
    per_item = item_steps(graph, inputs, check_lengths(graph, inputs, lengths))
    targets = {}
    for name in longest.outputs:
        width = max(len(r) for r in output_steps(graph, name, per_item))
        targets[name] = rng.normal(size=(batch, width, graph.nodes[name]["size"]))
    return inputs, lengths, targets


def _valid_steps(graph) -> list[int]:
    """The T up to the spec's at which every window holds a step."""
    from composer.errors import SpecError
    from composer.graph.unrolled import unroll

    found = []
    for steps in range(1, graph.graph["steps"] + 1):
        try:
            unroll(graph, steps)
        except SpecError:
            continue
        found.append(steps)
    return found


def output_steps_of(window: str, steps: int) -> range:
    from composer.spec.windows import parse_window

    return parse_window(window, int(steps))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_the_gradient_is_the_share_weighted_sum_of_each_item_alone(path):
    graph = build(load_spec(path))
    params = init_params(graph, seed=2, dtype="float64")
    inputs, lengths, targets = _padded_batch(graph, 3, seed=3)
    value, grads = grad_padded(graph, params, inputs, targets, lengths, dtype="float64")
    per_item = item_steps(graph, inputs, check_lengths(graph, inputs, lengths))
    outputs = list(targets)
    counts = {o: [len(r) for r in output_steps(graph, o, per_item)] for o in outputs}
    expected_value, expected = 0.0, {k: np.zeros_like(v) for k, v in grads.items()}
    for b in range(3):
        alone = {n: x[b : b + 1, : lengths[n][b]] for n, x in inputs.items()}
        for o in outputs:  # each output's loss alone, weighted by its share of real steps
            share = counts[o][b] / sum(counts[o])
            goal = {p: t[b : b + 1, : counts[p][b]] for p, t in targets.items()}
            masks = {p: np.full((1, counts[p][b]), 1.0 if p == o else 0.0) for p in outputs}
            v, g = grad_padded(graph, params, alone, goal, {}, mask=masks, dtype="float64")
            expected_value += share * v
            for key in g:
                expected[key] += share * g[key]
    assert value == pytest.approx(expected_value, rel=1e-12)
    for key in grads:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert evaluate_padded(graph, params, inputs, targets, lengths) == pytest.approx(value)


@pytest.mark.torch
@pytest.mark.parametrize("alignment", ["many-to-many", "many-to-one"])
@pytest.mark.parametrize(("kind", "nonlinearity", "bidirectional"), TORCH_CASES)
def test_gradients_match_pytorch_autograd_through_packed_sequences(
    kind, nonlinearity, bidirectional, alignment
):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(1)
    B, T, F, H, C = 4, 7, 3, 5, 2
    rnn, linear = _torch_net(torch, kind, nonlinearity, bidirectional, F, H, C)
    extra = {"bidirectional": True} if bidirectional else {}
    if kind == "elman":
        extra["activation"] = nonlinearity
    network = spec(
        [
            layer("l0", kind, "x", H, **extra),
            layer("l1", kind, "l0", H, output=readout(C), **extra),
        ],
        inputs=[input_("x", F)],
        outputs=[output("o")],
        alignment=alignment,
        steps=T,
    )
    rng = np.random.default_rng(2)
    lengths = np.array([7, 3, 5, 1])
    x = rng.normal(size=(B, T, F)) * 1e3
    for b, n in enumerate(lengths):
        x[b, :n] = rng.normal(size=(n, F))
    packed = pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    out = linear(pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=T)[0])
    if alignment == "many-to-many":
        y = rng.normal(size=(B, T, C))
        real = torch.from_numpy((np.arange(T)[None] < lengths[:, None]).astype(np.float64))
        per_step = ((out - torch.from_numpy(y)) ** 2).mean(-1)
        value = (per_step * real).sum() / real.sum()
    else:
        y = rng.normal(size=(B, 1, C))
        last = out[torch.arange(B), torch.from_numpy(lengths - 1)]
        value = ((last - torch.from_numpy(y[:, 0])) ** 2).mean()
    value.backward()
    graph = build(network)
    ours, grads = grad_padded(
        graph, _from_torch(rnn, linear, graph), {"x": x}, {"o": y}, {"x": lengths}
    )
    assert ours == pytest.approx(value.item(), rel=1e-12)
    expected = _torch_grads(rnn, linear)
    for name, g in expected.items():
        if name.startswith("weight") and name != "weight":
            key = _our_key(name, "Wx" if "_ih_" in name else "Ws")
            np.testing.assert_allclose(grads[key], g.T, rtol=1e-8, atol=1e-10, err_msg=name)
        elif name.startswith("bias_"):
            which = ("bx" if "_ih_" in name else "bs") if kind == "gru" else "b"
            np.testing.assert_allclose(grads[_our_key(name, which)], g, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(grads["l1.Wy"], expected["weight"].T, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_match_finite_differences(bidirectional):
    extra = {"bidirectional": True} if bidirectional else {}
    network = spec(
        [
            layer("a", "lstm", "x", 3, **extra),
            layer("b", "gru", "a", 3, output=readout(2), **extra),
        ],
        inputs=[input_("x", 2)],
        alignment="many-to-one",
        steps=5,
    )
    graph = build(network)
    params = init_params(graph, seed=4, dtype="float64")
    inputs, lengths, targets = _padded_batch(graph, 3, seed=5)
    _, grads = grad_padded(graph, params, inputs, targets, lengths, dtype="float64")
    eps = 1e-6
    for key, value in params.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = dict(params, **{key: value.copy()})
                moved[key][index] += sign * eps
                numeric[index] += (
                    sign * evaluate_padded(graph, moved, inputs, targets, lengths) / (2 * eps)
                )
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-6, atol=1e-9, err_msg=key)


def test_a_network_running_forward_is_one_pass_and_a_backward_one_is_grouped():
    forward = build(spec([layer("a", "lstm", "x", 3, output=readout(2))], steps=6))
    backward = build(spec([layer("a", "lstm", "x", 3, direction="backward")], steps=6))
    inputs, lengths = {"x": np.ones((3, 6, 3))}, {"x": np.array([6, 4, 2])}
    for graph, parts in ((forward, 1), (backward, 3)):
        (name,) = [n for n, role in graph.nodes(data="role") if role == "output"]
        targets = {name: np.zeros((3, 6, graph.nodes[name]["size"]))}
        assert len(padded_parts(graph, inputs, targets, lengths)[0]) == parts


def test_training_with_lengths_equals_training_with_the_equivalent_mask():
    """Lengths leave out the same steps a mask of the real steps does, in a network whose
    layers run forward: the same losses, the same weights."""
    network = spec([layer("a", "gru", "x", 4, output=readout(2))], inputs=[input_("x", 3)], steps=6)
    graph = build(network)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40, 6, 3)), rng.normal(size=(40, 6, 2))
    lengths = rng.integers(1, 7, size=40)
    mask = (np.arange(6)[None] < lengths[:, None]).astype(np.float64)
    options = dict(epochs=3, batch_size=8, lr=0.01, dtype="float64")
    start = init_params(graph, seed=0, dtype="float64")
    with_lengths = train(graph, start, {"x": x, "y": y, "x.lengths": lengths}, **options)
    with_mask = train(graph, start, {"x": x, "y": y, "y.mask": mask}, **options)
    assert [e.val_loss for e in with_lengths.history] == pytest.approx(
        [e.val_loss for e in with_mask.history], rel=1e-12
    )
    for key in start:
        np.testing.assert_allclose(with_lengths.params[key], with_mask.params[key], rtol=1e-10)
