"""Values a precision cannot hold: 1e300 is finite in float64 and Inf in float32.

The finite checks on inputs, weights and data run on the arrays as read; these run on
what the computation will see, after the cast, and name the file and key.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.errors import DataError

__all__ = ["check_representable"]


def check_representable(arrays: Mapping[str, np.ndarray], dtype: str, where: str) -> None:
    """Refuse finite values that `dtype` cannot hold (they would become Inf when cast).

    Examples
    --------
    >>> check_representable({"x": np.array([1e300])}, "float64", "x.npy")
    >>> try:
    ...     check_representable({"x": np.array([1e300])}, "float32", "x.npy")
    ... except DataError as err:
    ...     print(str(err)[:56])
    x.npy: key 'x': 1e+300 at index (0,) is beyond float32's
    """
    limit = float(np.finfo(dtype).max)
    for key, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind != "f" or array.size == 0:  # any int64 fits float32's range
            continue
        if float(np.finfo(array.dtype).max) <= limit:  # a float32 scalar would overflow
            continue
        with np.errstate(invalid="ignore"):
            beyond = np.isfinite(array) & (np.abs(array) > limit)
        if beyond.any():
            index = tuple(int(i) for i in np.argwhere(beyond)[0])
            raise DataError(
                f"{where}: key {key!r}: {float(array[index]):g} at index {index} is beyond "
                f"{dtype}'s range (about {limit:.2g}); use --dtype float64 or rescale the data"
            )
