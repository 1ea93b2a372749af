"""The Network object: the Python API in one place, shown as its diagram in a notebook."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from composer import Network
from tests.builders import lecture


def test_network_runs_and_counts():
    net = Network.from_spec(lecture())
    assert net.param_count == 42
    out = net.run(net.init_params(1, "float64"), np.ones((5, 3)), dtype="float64")
    assert out["y"].shape == (5, 2) and out["y"].dtype == np.float64
    assert net.dependencies(3)["y"][1] == {"x": [0, 1]}


@pytest.mark.dot
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_network_shows_itself_as_its_folded_diagram():
    picture = Network.from_spec(lecture())._repr_svg_()
    assert picture.lstrip().startswith("<?xml") and "<svg" in picture and "Ws" in picture


def test_network_trains_and_takes_gradients():
    net = Network.from_spec(lecture(alignment="many-to-one"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3))
    y = np.eye(2)[(x[:, :, 0].sum(axis=1) > 0).astype(int)][:, None, :]
    params = net.init_params(0, "float64")
    value, grads = net.grad(params, {"x": x}, {"y": y}, loss="cross-entropy")
    assert value > 0 and set(grads) == set(params)
    result = net.train(
        params,
        {"x": x, "y": y},
        epochs=30,
        lr=0.05,
        loss="cross-entropy",
        batch_size=8,
        validation=0.25,
        dtype="float64",
    )
    assert result.best_loss < value


def test_network_runs_grads_and_trains_a_padded_batch():
    net = Network.from_file("specs/sentiment.yaml")
    params = net.init_params(seed=0, dtype="float64")
    x = np.random.default_rng(0).normal(size=(3, 10, 50))
    lengths = {"x": [10, 7, 4]}
    out = net.run(params, x, lengths=lengths, dtype="float64")
    alone = net.run(params, x[2, :4], dtype="float64")["o"]
    np.testing.assert_allclose(out["o"][2], alone, atol=1e-12)
    assert out["o.lengths"].tolist() == [1, 1, 1]
    ids = np.array([[0], [1], [2]])
    value, grads = net.grad(params, x, {"o": ids}, lengths=lengths, loss="cross-entropy")
    single, _ = net.grad(params, x[2:, :4], {"o": ids[2:]}, loss="cross-entropy")
    assert np.isfinite(value) and set(grads) == set(params) and np.isfinite(single)
    data = {"x": x, "o": ids, "x.lengths": np.array(lengths["x"])}
    result = net.train(params, data, epochs=1, batch_size=2, loss="cross-entropy")
    assert len(result.history) == 2
