"""A tensor of a state_dict file as its header declares it: read only when asked for.

`import-weights` looks at every key's name, shape and dtype first, and reads the values
of the keys the spec uses only (an unused 3 GiB tensor costs nothing), after their shapes
were checked against the spec's and the memory they take was estimated from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from composer.finite import check_values

__all__ = ["Declared"]

_HINT = "the weights are float32 unless every tensor used is float64; rescale them"


@dataclass(frozen=True)
class Declared:
    """One tensor: `dtype` is what it reads as (float16 and bfloat16 read as float32),
    `stored` the file's own name for its dtype, `read` gives its values. With `target`
    set, reading refuses NaN, Inf and values beyond that dtype, naming `where` and the key.

    Examples
    --------
    >>> t = Declared("w", (2,), np.dtype("float64"), "F64", lambda: np.array([1.0, 1e300]))
    >>> t.nbytes, np.asarray(t)[1]
    (16, np.float64(1e+300))
    >>> from dataclasses import replace
    >>> try:
    ...     np.asarray(replace(t, target="float32", where="w.safetensors"))
    ... except ValueError as err:
    ...     print(str(err)[:44])
    w.safetensors: key 'w': 1e+300 at index (1,)
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    stored: str
    read: Callable[[], np.ndarray]
    target: str | None = None
    where: str = "state_dict"

    @property
    def nbytes(self) -> int:
        """The bytes its values take once read."""
        return math.prod(self.shape) * self.dtype.itemsize

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        value = np.asarray(self.read()).reshape(self.shape)
        if self.target is not None:
            check_values({self.name: value}, self.target, self.where, hint=_HINT)
        return value if dtype is None else value.astype(dtype)
