"""Values a computation cannot take: NaN, Inf, and finite values beyond its precision
(1e300 is finite in float64 and Inf in float32).

`check_values` is the one check every file of numbers goes through where it enters: the
weights `.npz`, an imported state_dict, a `--state-in` file, `generate --start`, inputs
and training data. It runs on the arrays as read, before any cast, and names the file,
the key and the first bad index.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.errors import DataError

__all__ = ["check_values", "check_representable"]


def check_values(
    arrays: Mapping[str, np.ndarray],
    dtype: str,
    where: str,
    *,
    allow_nonfinite: bool = False,
    hint: str = "use --dtype float64 or rescale the data",
) -> None:
    """Refuse NaN and Inf (unless `allow_nonfinite`) and finite values that `dtype`
    cannot hold (they would become Inf when cast); integers pass.

    Examples
    --------
    >>> check_values({"x": np.array([1e300])}, "float64", "x.npy")
    >>> def said(arrays, dtype="float32"):
    ...     try:
    ...         check_values(arrays, dtype, "x.npy")
    ...     except DataError as err:
    ...         return str(err)[:57]
    >>> said({"x": np.array([1e300])})
    "x.npy: key 'x': 1e+300 at index (0,) is beyond float32's "
    >>> said({"x": np.array([[1.0, np.nan]])})
    "x.npy: key 'x': holds NaN or Inf (nan at index (0, 1)); a"
    """
    limit = float(np.finfo(dtype).max)
    for key, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind != "f" or array.size == 0:  # any int64 fits float32's range
            continue
        if not allow_nonfinite:
            finite = np.isfinite(array)
            if not finite.all():
                index = _first(~finite)
                raise DataError(
                    f"{where}: key {key!r}: holds NaN or Inf ({float(array[index])} at index "
                    f"{index}); a network computes with finite numbers only"
                )
        if float(np.finfo(array.dtype).max) <= limit:  # a float32 scalar would overflow
            continue
        with np.errstate(invalid="ignore"):
            beyond = np.isfinite(array) & (np.abs(array) > limit)
        if beyond.any():
            index = _first(beyond)
            raise DataError(
                f"{where}: key {key!r}: {float(array[index]):g} at index {index} is beyond "
                f"{dtype}'s range (about {limit:.2g}); {hint}"
            )


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_representable(arrays: Mapping[str, np.ndarray], dtype: str, where: str) -> None:
    """`check_values` for files that may hold NaN or Inf on purpose (`--allow-nonfinite`):
    only the values `dtype` cannot hold are refused.

    Examples
    --------
    >>> check_representable({"x": np.array([np.inf])}, "float32", "x.npy")
    """
    check_values(arrays, dtype, where, allow_nonfinite=True)
