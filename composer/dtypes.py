"""The float dtypes the tool computes in, by name: one place for `float32` and `float64`."""

from __future__ import annotations

import numpy as np

from composer.errors import DataError

__all__ = ["DTYPES", "check_dtype"]

#: the names of the dtypes a run or a training can compute in, the default first.
DTYPES = ("float32", "float64")


def check_dtype(dtype) -> str:
    """The name of a float dtype the tool computes in, `float32` or `float64`, else refused.

    Examples
    --------
    >>> check_dtype(np.float64), check_dtype("float32")
    ('float64', 'float32')
    """
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise DataError(f"dtype must be float32 or float64, got {dtype!r}")
    return name
