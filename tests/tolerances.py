"""How close two float results must be when they cannot be compared bit for bit.

The rule the suite follows:

- Exact equality (`assert_array_equal`, `==`) only where both sides run the same
  operations on the same shapes in the same order: a repeat with the same seed, a copy or
  round trip of stored numbers, a change that leaves every operation as it was (padding
  never read, a start state given as zeros). A comment beside each such assertion says why.
- Everywhere else, `assert_close`, with a tolerance from the dtype and the depth of the
  computation. Two runs that differ in shapes or order round differently, and by how much
  depends on the machine: a BLAS kernel blocks a product by its sizes and by the CPU (the
  input projection of a chunk of 7 steps and of 40 steps may add a row's terms in another
  order), and NumPy picks its exp, log and tanh loops by the CPU's features (AVX-512 or
  not). A result that is equal on one machine may then differ by an ulp on another.

`tolerance(dtype, depth)` is `depth * eps`, eps = `np.finfo(dtype).eps`: each rounding
moves a value by at most about eps relative to the magnitudes it was made of (half of it
when correctly rounded; NumPy's SIMD exp and tanh are within a few ulps, and a product's
terms added in another order within a few eps of the sum of their magnitudes), and
`depth` roundings add up to at most `depth` of those. Through tanh and sigmoid, whose
slopes are at most 1, errors do not grow, so over a run they add up step by step:
`run_depth(steps, layers)` counts `ROUNDINGS_PER_STEP` for each step of each layer (its
product and the few operations of its gates). `assert_close` takes the tolerance relative
to the largest magnitude expected (at least 1), since a product's rounding is relative to
its terms, not to its result, which may be near zero.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["ROUNDINGS_PER_STEP", "tolerance", "run_depth", "assert_close", "shows", "printed_in"]

#: the roundings counted for one step of one layer: its product's sum and its gates' few
#: elementwise operations, with room for the product's terms added in another order
ROUNDINGS_PER_STEP = 8


def tolerance(dtype, depth: int) -> float:
    """The relative difference `depth` roundings in `dtype` can add up to: depth * eps."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth!r}")
    return depth * float(np.finfo(dtype).eps)


def run_depth(steps: int, layers: int = 1) -> int:
    """The depth of a network run of `steps` steps through `layers` stacked layers."""
    return max(1, steps) * max(1, layers) * ROUNDINGS_PER_STEP


def assert_close(actual, expected, dtype, depth: int, err_msg: str = "") -> None:
    """`actual` equals `expected` to `tolerance(dtype, depth)`, relative to the largest
    magnitude expected (or 1, if all are smaller); shapes must agree."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape, err_msg)
    finite = expected[np.isfinite(expected)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    atol = tolerance(dtype, depth) * scale
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=err_msg)


#: a number as the tool prints it: an integer, a decimal, perhaps with an exponent
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def shows(shown: str, printed: str) -> bool:
    """Whether a printed line says what a documented one shows, read as output copied from
    another machine: the same words and integers (counts, epochs, steps), and decimals
    equal to within two units of the last place shown or 1e-3 relative. A documented
    training run (float32, many updates) drifts by a few ulps a step on another CPU's
    kernels, which its printed figures may show in their last digit."""
    shown, printed = shown.rstrip(), printed.rstrip()
    if shown == printed:
        return True
    if _NUMBER.split(shown) != _NUMBER.split(printed):
        return False
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(printed)):
        if a == b:
            continue
        if not any(c in a for c in ".e") or not any(c in b for c in ".e"):
            return False
        places = len(a.split("e")[0].partition(".")[2])
        unit = 10.0 ** (-places) * (10.0 ** int(a.split("e")[1]) if "e" in a else 1.0)
        if not math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=2 * unit):
            return False
    return True


def printed_in(shown: str, printed: list[str]) -> bool:
    """Whether any printed line `shows` the documented line."""
    return any(shows(shown, line) for line in printed)
