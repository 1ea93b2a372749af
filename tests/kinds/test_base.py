"""Cells and activations: one contract table over every cell kind, stability at +-1e4."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from composer.graph.folded import GATES
from composer.kinds.base import (
    ACTIVATIONS,
    CELLS,
    arrange_gates,
    dense_step,
    prepare_columns,
    sigmoid,
    softmax,
)
from tests import oracles

B, F, H = 3, 5, 4
DTYPES = [np.float32, np.float64]
# inputs as +-1e4 at most, as the spec asks; subnormals would underflow any scaling
_FINITE = st.floats(-1e4, 1e4, allow_subnormal=False)


def _weights(kind: str, dtype, seed: int = 0) -> dict:
    """PyTorch-order weights for one layer of `kind`, DESIGN keys without the layer name."""
    rng = np.random.default_rng(seed)
    G = CELLS[kind].gates
    draw = lambda *shape: rng.normal(0, 0.5, shape).astype(dtype)  # noqa: E731
    out = {"Wx": draw(F, G * H), "Ws": draw(H, G * H), "b": draw(G * H)}
    if kind == "gru":
        out = {"Wx": out["Wx"], "Ws": out["Ws"], "bx": draw(G * H), "bs": draw(G * H)}
    return out


def _run_step(kind: str, w: dict, x, h_prev, c_prev, dtype):
    """One step through `CELLS[kind]`, the way the executor arranges its operands."""
    cell = CELLS[kind]
    arranged = {k: arrange_gates(cell, v, H) for k, v in w.items()}
    work = cell.workspace(B, H, dtype)
    h = np.full((B, H), np.nan, dtype)
    if kind == "elman":
        xw = x @ arranged["Wx"] + arranged["b"]
        return cell.step(xw, h_prev, arranged["Ws"], h), None
    if kind == "lstm":
        xw = np.matmul(x, arranged["Wx"]) + arranged["b"]
        c = np.full((B, H), np.nan, dtype)
        cell.step(xw, h_prev, c_prev, arranged["Ws"], h, c, work)
        return h, c
    bias = arranged["bx"].copy()
    bias[:2] += arranged["bs"][:2]
    xw = np.matmul(x, arranged["Wx"]) + bias
    return cell.step(xw, h_prev, arranged["Ws"], arranged["bs"][2], h, work), None


def _oracle_step(kind: str, w: dict, x, h_prev, c_prev):
    p = {f"l.{k}": v.astype(np.float64) for k, v in w.items()}
    x, h_prev = x.astype(np.float64), h_prev.astype(np.float64)
    if kind == "elman":
        return oracles.elman(x @ p["l.Wx"], h_prev, p, "l"), None
    if kind == "lstm":
        return oracles.lstm(x @ p["l.Wx"], h_prev, c_prev.astype(np.float64), p, "l")
    return oracles.gru(x @ p["l.Wx"], h_prev, p, "l"), None


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", sorted(k for k in CELLS if k != "dense"))
def test_every_recurrent_cell_keeps_the_contract(kind, dtype):
    """Shape, dtype, no change to its inputs, and the equations (PyTorch's) on random data."""
    cell = CELLS[kind]
    assert cell.kind == kind and cell.gates == GATES[kind]
    assert sorted(cell.order) == list(range(cell.gates)) and cell.sigmoid_gates < cell.gates
    rng = np.random.default_rng(1)
    w = _weights(kind, dtype)
    x, h_prev, c_prev = (rng.normal(size=s).astype(dtype) for s in [(B, F), (B, H), (B, H)])
    before = {k: v.copy() for k, v in w.items()}, x.copy(), h_prev.copy(), c_prev.copy()
    h, c = _run_step(kind, w, x, h_prev, c_prev, dtype)
    expected_h, expected_c = _oracle_step(kind, w, x, h_prev, c_prev)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert h.shape == (B, H) and h.dtype == dtype
    np.testing.assert_allclose(h, expected_h, atol=tolerance)
    if kind == "lstm":
        assert c.dtype == dtype
        np.testing.assert_allclose(c, expected_c, atol=tolerance)
    assert all(np.array_equal(before[0][k], w[k]) for k in w)
    for old, new in zip(before[1:], (x, h_prev, c_prev)):
        assert np.array_equal(old, new)
    for array in cell.workspace(B, H, dtype)[:1]:
        assert array.dtype == dtype


def test_lstm_cell_updates_its_cell_state_in_place():
    w = _weights("lstm", np.float64)
    cell = CELLS["lstm"]
    arranged = {k: arrange_gates(cell, v, H) for k, v in w.items()}
    rng = np.random.default_rng(2)
    x, h_prev, c = rng.normal(size=(B, F)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    expected_h, expected_c = _oracle_step("lstm", w, x, h_prev, c)
    h = np.empty((B, H))
    xw = np.matmul(x, arranged["Wx"]) + arranged["b"]
    cell.step(xw, h_prev, c, arranged["Ws"], h, c, cell.workspace(B, H, np.float64))
    np.testing.assert_allclose(h, expected_h, atol=1e-12)
    np.testing.assert_allclose(c, expected_c, atol=1e-12)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_dense_step_applies_each_activation_in_place(activation, dtype):
    rng = np.random.default_rng(3)
    xw = rng.normal(size=(B, F)).astype(dtype)
    expected = oracles.ACT[activation](xw.astype(np.float64))
    out = dense_step(xw, ACTIVATIONS[activation])
    assert out is xw and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_dense_cell_is_registered_without_state():
    cell = CELLS["dense"]
    assert cell.gates == 1 and cell.carries == () and cell.workspace(2, 3, np.float32) == ()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_are_stable_at_plus_minus_1e4(name, dtype):
    x = np.array([[-1e4, -1.0, 0.0, 1.0, 1e4], [1e4, 1e4, -1e4, 3.0, -1e4]], dtype=dtype)
    with np.errstate(all="raise"):
        out = ACTIVATIONS[name](x)
        in_place = ACTIVATIONS[name](x.copy(), out=np.empty_like(x))
    assert out.dtype == dtype and np.isfinite(out).all()
    np.testing.assert_array_equal(out, in_place)


def test_sigmoid_and_softmax_saturate_exactly():
    with np.errstate(all="raise"):
        for dtype in DTYPES:
            x = np.array([-1e4, 0.0, 1e4], dtype=dtype)
            np.testing.assert_array_equal(sigmoid(x), [0.0, 0.5, 1.0])
            np.testing.assert_allclose(softmax(x), [0.0, 0.0, 1.0], atol=1e-18)
            rows = softmax(np.array([[1e4, 1e4, -1e4]], dtype=dtype))
            np.testing.assert_allclose(rows, [[0.5, 0.5, 0.0]], atol=1e-18)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 8), elements=_FINITE))
def test_sigmoid_matches_the_textbook_formula_and_stays_in_range(x):
    with np.errstate(all="raise"):
        y = sigmoid(x)
    assert ((y >= 0) & (y <= 1)).all()
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-x))
    # through tanh, sigmoid is exact to an absolute (not relative) 1e-16 far below 0
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (2, 5), elements=_FINITE))
def test_softmax_rows_are_distributions_close_to_the_textbook_formula(x):
    with np.errstate(all="raise"):
        y = softmax(x)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    with np.errstate(under="ignore"):
        expected = oracles.softmax(x)
    np.testing.assert_allclose(y, expected, atol=1e-150)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_arranged_gates_are_the_prepared_columns_stacked(kind):
    cell = CELLS[kind]
    w = np.random.default_rng(4).normal(size=(F, cell.gates * H))
    stacked, columns = arrange_gates(cell, w, H), prepare_columns(cell, w, H)
    assert stacked.shape == (cell.gates, F, H)
    np.testing.assert_array_equal(np.concatenate(list(stacked), axis=-1), columns)
    bias = arrange_gates(cell, w[0], H)
    assert bias.shape == (cell.gates, 1, H)


def test_one_gate_weights_are_left_as_they_are():
    w = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(arrange_gates(CELLS["elman"], w, 3), w)
    np.testing.assert_array_equal(prepare_columns(CELLS["dense"], w, 3), w)
