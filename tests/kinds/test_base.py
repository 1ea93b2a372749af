"""Kinds and activations: one contract table over every layer kind, stability at +-1e4."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from composer.kinds import ACTIVATIONS, KINDS, gate_stack, prepare
from composer.kinds.activations import sigmoid, softmax
from composer.kinds.lstm import lstm_step
from tests import oracles

B, F, H = 3, 5, 4


def _width(kind: str) -> int:
    """The state's size: H, or P = 2 for a kind that projects it (`proj_size`)."""
    return 2 if KINDS[kind].extras else H


DTYPES = [np.float32, np.float64]
# inputs as +-1e4 at most, as the spec asks; subnormals would underflow any scaling
_FINITE = st.floats(-1e4, 1e4, allow_subnormal=False)


def _weights(kind: str, dtype, seed: int = 0) -> dict:
    """PyTorch-order weights for one layer of `kind`, keys without the layer name."""
    rng = np.random.default_rng(seed)
    G = KINDS[kind].gates
    draw = lambda *shape: rng.normal(0, 0.5, shape).astype(dtype)  # noqa: E731
    projected = {"width": _width(kind)} if KINDS[kind].extras else {}
    sizes = {w.suffix: w.shape for w in KINDS[kind].weights(F, H, **projected)}
    out = {"Wx": draw(F, G * H), "Ws": draw(*sizes["Ws"])}
    own = [suffix for suffix, _ in KINDS[kind].biases] + list(KINDS[kind].extras)
    return out | {suffix: draw(*sizes[suffix]) for suffix in own}


def _arranged(kind, w: dict) -> dict:
    """Weights as the executor holds them: prepared, stacked per gate."""
    return {k: gate_stack(kind, prepare(kind, v, H), H) for k, v in w.items()}


def _run_step(name: str, w: dict, x, h_prev, c_prev, dtype):
    """One step through `KINDS[name].forward`, the way the executor arranges its operands."""
    kind = KINDS[name]
    arranged = _arranged(kind, w)
    own = [suffix for suffix, _ in kind.biases] + list(kind.extras)
    bias, extra = kind.fold_biases([arranged[suffix] for suffix in own])
    xw = np.matmul(x, arranged[kind.input_weight]) + (0 if bias is None else bias)
    prev = (h_prev, c_prev)[: len(kind.carries)]
    out = tuple(
        np.full((B, h_prev.shape[1] if n == "h" else H), np.nan, dtype) for n in kind.carries
    )
    work = kind.workspace(B, H, dtype)
    activation = "tanh" if name == "elman" else None
    kind.forward(
        xw[np.newaxis],
        [p[np.newaxis] for p in prev],
        [o[np.newaxis] for o in out],
        arranged["Ws"],
        extra,
        work,
        activation,
    )
    return out[0], (out[1] if len(out) > 1 else None)


def _oracle_step(kind: str, w: dict, x, h_prev, c_prev):
    p = {f"l.{k}": v.astype(np.float64) for k, v in w.items()}
    x, h_prev = x.astype(np.float64), h_prev.astype(np.float64)
    if kind == "elman":
        return oracles.elman(x @ p["l.Wx"], h_prev, p, "l"), None
    if kind == "lstm":
        return oracles.lstm(x @ p["l.Wx"], h_prev, c_prev.astype(np.float64), p, "l")
    if kind == "lstm_proj":
        return oracles.lstm_proj(x @ p["l.Wx"], h_prev, c_prev.astype(np.float64), p, "l")
    if kind == "lstm_layer_norm":
        c = c_prev.astype(np.float64)
        return oracles.lstm_layer_norm(x @ p["l.Wx"], h_prev, c, p, "l")
    step = {"gru_reset_before": oracles.gru_reset_before, "gru_layer_norm": oracles.gru_layer_norm}
    step = step.get(kind, oracles.gru)
    return step(x @ p["l.Wx"], h_prev, p, "l"), None


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", sorted(k for k in KINDS if KINDS[k].stateful))
def test_every_recurrent_kind_keeps_the_contract(kind, dtype):
    """Shape, dtype, no change to its inputs, and the equations (PyTorch's) on random data."""
    cell = KINDS[kind]
    assert cell.name == kind and cell.carries[0] == "h"
    assert sorted(cell.order) == list(range(cell.gates)) and cell.sigmoid_gates < cell.gates
    rng = np.random.default_rng(1)
    w = _weights(kind, dtype)
    shapes = [(B, F), (B, _width(kind)), (B, H)]
    x, h_prev, c_prev = (rng.normal(size=s).astype(dtype) for s in shapes)
    before = {k: v.copy() for k, v in w.items()}, x.copy(), h_prev.copy(), c_prev.copy()
    h, c = _run_step(kind, w, x, h_prev, c_prev, dtype)
    expected_h, expected_c = _oracle_step(kind, w, x, h_prev, c_prev)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert h.shape == (B, _width(kind)) and h.dtype == dtype
    np.testing.assert_allclose(h, expected_h, atol=tolerance)
    if kind.startswith("lstm"):
        assert c.dtype == dtype
        np.testing.assert_allclose(c, expected_c, atol=tolerance)
    assert all(np.array_equal(before[0][k], w[k]) for k in w)  # exact: inputs left unchanged
    for old, new in zip(before[1:], (x, h_prev, c_prev)):
        assert np.array_equal(old, new)
    for array in cell.workspace(B, H, dtype)[:1]:
        assert array.dtype == dtype


def test_lstm_step_updates_its_cell_state_in_place():
    w = _weights("lstm", np.float64)
    cell = KINDS["lstm"]
    arranged = _arranged(cell, w)
    rng = np.random.default_rng(2)
    x, h_prev, c = rng.normal(size=(B, F)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    expected_h, expected_c = _oracle_step("lstm", w, x, h_prev, c)
    h = np.empty((B, H))
    xw = np.matmul(x, arranged["Wx"]) + arranged["b"]
    lstm_step(xw, h_prev, c, arranged["Ws"], h, c, cell.workspace(B, H, np.float64))
    np.testing.assert_allclose(h, expected_h, atol=1e-12)
    np.testing.assert_allclose(c, expected_c, atol=1e-12)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_each_activation_works_in_place(activation, dtype):
    rng = np.random.default_rng(3)
    xw = rng.normal(size=(B, F)).astype(dtype)
    expected = oracles.ACT[activation](xw.astype(np.float64))
    out = ACTIVATIONS[activation](xw, out=xw)
    assert out is xw and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_dense_kind_is_registered_without_state():
    cell = KINDS["dense"]
    assert not cell.stateful and cell.gates == 1 and cell.carries == ()
    assert cell.workspace(2, 3, np.float32) == () and cell.input_weight == "W"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_are_stable_at_plus_minus_1e4(name, dtype):
    x = np.array([[-1e4, -1.0, 0.0, 1.0, 1e4], [1e4, 1e4, -1e4, 3.0, -1e4]], dtype=dtype)
    with np.errstate(all="raise"):
        out = ACTIVATIONS[name](x)
        in_place = ACTIVATIONS[name](x.copy(), out=np.empty_like(x))
    assert out.dtype == dtype and np.isfinite(out).all()
    np.testing.assert_array_equal(out, in_place)  # exact: the same ufuncs on the same shapes


def test_sigmoid_and_softmax_saturate_exactly():
    with np.errstate(all="raise"):
        for dtype in DTYPES:
            x = np.array([-1e4, 0.0, 1e4], dtype=dtype)
            # exact: tanh saturates to exactly +-1 with any libm; sigmoid(0) = 0.5 exactly
            np.testing.assert_array_equal(sigmoid(x), [0.0, 0.5, 1.0])
            np.testing.assert_allclose(softmax(x), [0.0, 0.0, 1.0], atol=1e-18)
            rows = softmax(np.array([[1e4, 1e4, -1e4]], dtype=dtype))
            np.testing.assert_allclose(rows, [[0.5, 0.5, 0.0]], atol=1e-18)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 8), elements=_FINITE))
def test_sigmoid_matches_the_textbook_formula_and_stays_in_range(x):
    # no overflow, no NaN; halving a number near 1e-308 underflows gradually, as it should
    with np.errstate(all="raise", under="ignore"):
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
def test_gate_stacks_are_the_prepared_columns_stacked(kind):
    cell = KINDS[kind]
    w = np.random.default_rng(4).normal(size=(F, cell.gates * H))
    columns = prepare(cell, w, H)
    stacked = gate_stack(cell, columns, H)
    assert stacked.shape == (cell.gates, F, H)
    # exact: columns moved, and halved (a power of two scales without rounding)
    np.testing.assert_array_equal(np.concatenate(list(stacked), axis=-1), columns)
    # prepared: PyTorch's blocks in the kind's order, the sigmoid ones halved
    for position, block in enumerate(cell.order):
        scale = 0.5 if position < cell.sigmoid_gates else 1.0
        np.testing.assert_array_equal(stacked[position], w[:, block * H : (block + 1) * H] * scale)
    bias = gate_stack(cell, prepare(cell, w[0], H), H)
    assert bias.shape == (cell.gates, 1, H)


def test_one_gate_weights_are_left_as_they_are():
    w = np.arange(6.0).reshape(2, 3)  # exact below: copies, no arithmetic
    np.testing.assert_array_equal(gate_stack(KINDS["elman"], prepare(KINDS["elman"], w, 3), 3), w)
    np.testing.assert_array_equal(prepare(KINDS["dense"], w, 3), w)
