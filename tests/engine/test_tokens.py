"""Token inputs: one-hot equivalence, embedding gradients against finite differences and
PyTorch's nn.Embedding, padding ids as lengths, bad ids refused."""

from __future__ import annotations

import re

import numpy as np
import pytest

from composer.errors import DataError, SpecError
from composer.network import Network
from composer.spec.model import NetworkSpec

LAYERS = [
    {"name": "rnn", "kind": "gru", "input": "x", "state_size": 4,
     "output": {"size": 5, "activation": "softmax"}},
]  # fmt: skip
OUTPUTS = [{"name": "y", "from": "rnn"}]


def _net(**token) -> Network:
    return Network.from_spec({"inputs": [{"name": "x", **token}], "layers": LAYERS,
                              "outputs": OUTPUTS})  # fmt: skip


@pytest.fixture(scope="module")
def ids():
    rng = np.random.default_rng(0)
    return rng.integers(0, 5, (3, 6)), rng.integers(0, 5, (3, 6))


def test_ids_behave_exactly_as_one_hot_arrays(ids):
    x, y = ids
    tokens, vectors = _net(vocab=5), _net(size=5)
    params = tokens.init_params(0, "float64")
    one_hot = np.eye(5)[x]
    # exact: ids are read as these very one-hot rows, then the same products run
    assert np.array_equal(
        tokens.run(params, {"x": x}, dtype="float64")["y"],
        vectors.run(params, {"x": one_hot}, dtype="float64")["y"],
    )
    assert np.array_equal(tokens.run(params, x[0])["y"], vectors.run(params, one_hot[0])["y"])
    a, ga = tokens.grad(params, {"x": x}, {"y": y}, loss="cross-entropy")
    b, gb = vectors.grad(params, {"x": one_hot}, {"y": y}, loss="cross-entropy")
    assert a == b and sorted(ga) == sorted(gb)
    assert all(np.array_equal(ga[k], gb[k]) for k in ga)


def test_embedding_gradient_matches_finite_differences(ids):
    x, y = ids
    net = _net(vocab=5, embed=3)
    params = net.init_params(0, "float64")
    _, grads = net.grad(params, {"x": x}, {"y": y}, loss="cross-entropy")
    numeric, eps = np.zeros((5, 3)), 1e-6
    for index in np.ndindex(5, 3):
        values = []
        for sign in (1, -1):
            moved = dict(params, **{"x.E": params["x.E"].copy()})
            moved["x.E"][index] += sign * eps
            values.append(net.grad(moved, {"x": x}, {"y": y}, loss="cross-entropy")[0])
        numeric[index] = (values[0] - values[1]) / (2 * eps)
    assert np.allclose(grads["x.E"], numeric, atol=1e-8)


def test_embedding_matches_pytorch(ids):
    torch = pytest.importorskip("torch")
    x, y = ids
    net = _net(vocab=5, embed=3)
    params = net.init_params(1, "float64")
    value, grads = net.grad(params, {"x": x}, {"y": y}, loss="cross-entropy")
    embedding = torch.nn.Embedding(5, 3).double()
    gru = torch.nn.GRU(3, 4, batch_first=True).double()
    with torch.no_grad():
        embedding.weight.copy_(torch.tensor(params["x.E"]))
        gru.weight_ih_l0.copy_(torch.tensor(params["rnn.Wx"].T))
        gru.weight_hh_l0.copy_(torch.tensor(params["rnn.Ws"].T))
        gru.bias_ih_l0.copy_(torch.tensor(params["rnn.bx"]))
        gru.bias_hh_l0.copy_(torch.tensor(params["rnn.bs"]))
    states, _ = gru(embedding(torch.tensor(x)))
    logits = states @ torch.tensor(params["rnn.Wy"]) + torch.tensor(params["rnn.by"])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), torch.tensor(y).reshape(-1))
    loss.backward()
    assert abs(loss.item() - value) < 1e-10
    assert np.allclose(grads["x.E"], embedding.weight.grad.numpy(), atol=1e-8)


def test_embedding_is_a_weight_of_the_summary_table():
    net = _net(vocab=7, embed=3)
    params = net.init_params(0)
    assert params["x.E"].shape == (7, 3) and net.param_count == 7 * 3 + 3 * 12 + 4 * 12 + 24 + 25


def test_padding_id_gives_each_item_its_length():
    net = _net(vocab=5, padding_id=0)
    params = net.init_params(0, "float64")
    x = np.array([[1, 2, 3, 4], [3, 4, 0, 0]])
    out = net.run(params, {"x": x}, dtype="float64")
    assert out["y.lengths"].tolist() == [4, 2]
    alone = net.run(params, {"x": x[1:, :2]}, dtype="float64")["y"]
    assert np.allclose(out["y"][1, :2], alone[0]) and not out["y"][1, 2:].any()


@pytest.mark.parametrize(
    "x, message",
    [
        (np.array([[1, 2], [3, 9]]), "item 1, step 1: id 9 is outside the vocabulary 0..4"),
        (np.array([[1.0, 2.0]]), "expected integer token ids"),
        (np.zeros((1, 2, 5), dtype=int), "expected token ids of shape (B, 2)"),
    ],
)
def test_bad_ids_are_refused_in_one_line(x, message):
    net = _net(vocab=5)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        net.run(net.init_params(0), {"x": x}, steps=2)


@pytest.mark.parametrize(
    "token, message",
    [
        ({"size": 3, "vocab": 4}, "a `size` (features) or a `vocab`"),
        ({"size": 3, "embed": 4}, "belong to a token input"),
        ({"vocab": 4, "padding_id": 4}, "is not an id of a vocab of 4"),
    ],
)
def test_bad_token_fields_are_spec_errors(token, message):
    with pytest.raises((SpecError, ValueError), match=re.escape(message)):
        NetworkSpec.model_validate(
            {"inputs": [{"name": "x", **token}], "layers": LAYERS, "outputs": OUTPUTS}
        )
