"""The suite's rule for comparing floats that cannot be equal bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tolerances import ROUNDINGS_PER_STEP, assert_close, run_depth, shows, tolerance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tolerance_is_depth_roundings_of_the_dtype(dtype):
    eps = np.finfo(dtype).eps
    assert tolerance(dtype, 1) == eps and tolerance(dtype, 40) == 40 * eps
    assert run_depth(40, 2) == 40 * 2 * ROUNDINGS_PER_STEP
    with pytest.raises(ValueError, match="depth must be at least 1"):
        tolerance(dtype, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_differences_within_the_depth_pass_and_beyond_it_fail(dtype):
    expected = np.array([0.5, -0.25, 1e-9], dtype)
    eps = np.finfo(dtype).eps
    assert_close(expected + dtype(2 * eps), expected, dtype, 2)
    with pytest.raises(AssertionError):
        assert_close(expected + dtype(8 * eps), expected, dtype, 2)
    with pytest.raises(AssertionError):
        assert_close(expected[:2], expected, dtype, 2)


def test_the_tolerance_is_relative_to_the_largest_magnitude():
    """A product's rounding is relative to its terms, so a value near zero beside large
    ones may be off by the large ones' ulps; NaN and inf are left out of the scale."""
    expected = np.array([1000.0, 1e-3, np.nan])
    moved = expected + np.array([0.0, 500 * np.finfo(np.float64).eps, 0.0])
    assert_close(moved, expected, np.float64, 1)
    with pytest.raises(AssertionError):  # without the large value, 1e-3 sets the scale: 1
        assert_close(moved[1:], expected[1:], np.float64, 1)


@pytest.mark.parametrize(
    ("shown", "printed", "same"),
    [
        ("epoch 16  loss 0.1352  val 0.2893", "epoch 16  loss 0.1352  val 0.2893", True),
        ("epoch 16  loss 0.1352  val 0.2893", "epoch 16  loss 0.1353  val 0.2892", True),
        ("epoch 16  loss 0.1352", "epoch 17  loss 0.1352", False),  # integers are exact
        ("loss 0.1352", "loss 0.1362", False),  # ten units of the last place
        ("loss 1.5e-05", "loss 1.6e-05", True),  # within two units of the place shown
        ("loss 1.5e-05", "loss 1.9e-05", False),
        ("wrote w.npz: 3,311 bytes", "wrote w.npz: 3,312 bytes", False),
        ("best 0.2893 at epoch 16", "best at epoch 16", False),  # the words must agree
    ],
)
def test_a_documented_line_is_shown_to_its_printed_precision(shown, printed, same):
    assert shows(shown, printed) is same
