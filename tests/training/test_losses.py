"""Losses: stable cross-entropy with the p - y gradient, means over unmasked steps only."""

from __future__ import annotations

import numpy as np
import pytest

from composer.training.losses import cross_entropy, mse, one_hot


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
