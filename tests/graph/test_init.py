"""Per-layer initialisers (`init:`): each scheme's draw, the forget bias, the default kept,
and the spec errors for values a weight cannot take."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import SpecError
from composer.graph.folded import build
from composer.graph.weights import init_params, param_table
from composer.spec.reader import load_spec
from tests.builders import layer, readout, spec, write_spec


def _params(init: dict, kind="lstm", seed=0, **fields):
    network = spec([layer("a", kind, size=6, output=readout(2), init=init, **fields)])
    return init_params(build(network), seed, "float64")


def test_no_init_is_pytorchs_default_and_default_names_it():
    plain = init_params(build(spec([layer("a", "lstm", size=6, output=readout(2))])), 3)
    named = _params({"Wx": "default", "Ws": "default", "b": "default", "Wy": "default"}, seed=3)
    assert plain.keys() == named.keys()
    for key in plain:  # exact: the same seeded draws, in float64, rounded to float32
        np.testing.assert_array_equal(plain[key], named[key].astype(np.float32))
    assert np.abs(plain["a.Ws"]).max() <= 1 / np.sqrt(6)
    assert np.abs(plain["a.b"]).max() <= 2 / np.sqrt(6)  # bias_ih + bias_hh


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_orthogonal_gives_one_orthogonal_block_per_gate(kind):
    params = _params({"Ws": "orthogonal", "Wx": "orthogonal"}, kind)
    Ws, H = params["a.Ws"], 6
    for k in range(Ws.shape[1] // H):
        block = Ws[:, k * H : (k + 1) * H]
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-12)
    Wx = params["a.Wx"]  # (3, G*H): each (3, 6) block has orthonormal rows
    for k in range(Wx.shape[1] // H):
        block = Wx[:, k * H : (k + 1) * H]
        np.testing.assert_allclose(block @ block.T, np.eye(3), atol=1e-12)


def test_xavier_glorot_zeros_uniform_and_normal():
    params = _params(
        {"Wx": "xavier", "Ws": "glorot", "b": "zeros", "Wy": {"uniform": 0.01}, "by": {"normal": 2}}
    )
    limit_x = np.sqrt(6 / (3 + 24))
    assert np.abs(params["a.Wx"]).max() <= limit_x and np.abs(params["a.Wx"]).max() > limit_x / 2
    assert np.abs(params["a.Ws"]).max() <= np.sqrt(6 / (6 + 24))
    assert not params["a.b"].any()
    assert np.abs(params["a.Wy"]).max() <= 0.01
    many = init_params(
        build(spec([layer("a", size=200, init={"Ws": {"normal": 0.5}})])), 0, "float64"
    )
    assert many["a.Ws"].std() == pytest.approx(0.5, rel=0.02)
    assert many["a.Ws"].mean() == pytest.approx(0.0, abs=0.01)


def test_forget_bias_sets_the_forget_block_after_the_bias_scheme():
    params = _params({"b": "zeros", "forget_bias": 1.0})
    b, H = params["a.b"], 6
    np.testing.assert_array_equal(b[H : 2 * H], 1.0)  # PyTorch's order i, f, g, o
    assert not b[:H].any() and not b[2 * H :].any()
    default = _params({"forget_bias": 2.5}, bidirectional=True)
    for key in ("a.b", "a.b_rev"):
        np.testing.assert_array_equal(default[key][H : 2 * H], 2.5)
        assert np.abs(default[key][:H]).max() <= 2 / np.sqrt(6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.integers(1, 9))
def test_every_scheme_is_seeded_and_shapes_agree_with_the_table(seed, size):
    init = {"Wx": "orthogonal", "Ws": "xavier", "bx": {"uniform": 0.5}, "bs": "zeros"}
    network = spec([layer("a", "gru", size=size, init=init, output=readout(2))])
    graph = build(network)
    first, again = init_params(graph, seed), init_params(graph, seed)
    for info in param_table(graph):
        assert first[info.key].shape == info.shape
        np.testing.assert_array_equal(first[info.key], again[info.key])  # exact: the same seed


def test_dense_layers_take_w_and_b():
    network = spec([layer("a"), layer("d", "dense", "a", 5, init={"W": "zeros", "b": "zeros"})])
    params = init_params(build(network), 0)
    assert not params["d.W"].any() and not params["d.b"].any()


@pytest.mark.parametrize(
    ("init", "kind", "path", "message"),
    [
        ({"b": "orthogonal"}, "lstm", "layers[0].init.b", "`orthogonal` is not one of"),
        ({"forget_bias": 1.0}, "gru", "layers[0].init", "unknown field `forget_bias`"),
        ({"Ws": "he"}, "elman", "layers[0].init.Ws", "not one of"),
        ({"Ws": {"uniform": -1}}, "elman", "layers[0].init.Ws.uniform", "must be > 0"),
        ({"W": "zeros"}, "lstm", "layers[0].init", "unknown field `W`"),
    ],
)
def test_bad_init_values_are_located_spec_errors(tmp_path, init, kind, path, message):
    data = {
        "inputs": [{"name": "x", "size": 3}],
        "layers": [{"name": "a", "kind": kind, "input": "x", "state_size": 4, "init": init}],
        "outputs": [{"name": "y", "from": "a"}],
    }
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(tmp_path, json.dumps(data), "net.json"))
    assert path in str(caught.value) and message in str(caught.value)
