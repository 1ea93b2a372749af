"""Fused steps: compiled kernels that run a layer's whole time loop in one call, used when
the optional `[fast]` extra (numba) is installed and a run is long enough to pay for it.

Why: at small batches a NumPy step is about ten calls whose overhead outweighs their
arithmetic (an LSTM step at B = 1, H = 64 does 16,000 multiply-adds in about 25 us, most
of it call overhead). A kernel that runs every step of a chunk in compiled code, the
recurrent product, the gates and the cell update fused, takes about 4 us per step.

Training: the tape's LSTM step leaves the gates' derivative factors besides the gates and
the cell, about sixteen NumPy passes a step forward and six backward; two kernels do each
side's passes in one call (the matrix products stay with BLAS), at any size, which takes
about an eighth off a float32 training step (docs/performance.md).

When: loading numba and the cached kernels costs about half a second and 100 MB of memory
per process (0.12 s importing numba, 0.36 s loading the cached kernels, 2 vCPUs), so a run
asks for the kernels (`prepare`) with an estimate of its work, and they are loaded only
when the process's work adds up to much (`LOAD_AT` item-steps: one long run, generation or
training, or many short runs one after another, as a server or a notebook makes), or they
are loaded already (`prepare(force=True)`). Then every float32 forward of a kind that has
a kernel, at sizes where it wins (`SMALL`), and every float32 training step of one, uses
them; float64 keeps NumPy's exact functions (the kernels' tanh is a rational
approximation, within 4e-7 of the true value, as oneDNN's and Eigen's float32 kernels use).

`RNN_COMPOSER_FUSED=0` in the environment turns the kernels off.
"""

from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

__all__ = ["prepare", "compiled", "kernels", "flat", "installed", "LOAD_AT", "SMALL"]

#: item-steps (batch items x steps) of a run worth loading the kernels for: a CLI `run` of
#: an LSTM (B = 1, H = 32) took 3.0 s either way at 40,000 steps (the load eats the gain),
#: 3.4 s against 7.4 s at 200,000
LOAD_AT = 200_000
#: the largest batch x state size at which a fused float32 step beats NumPy's (measured
#: at T = 512: 3.3x faster at B = 1, H = 64; 2x at B = 1, H = 128 and B = 2, H = 64; 1.3x
#: at B = 4, H = 64; even at B = 4, H = 128, where NumPy's products start to pay;
#: docs/performance.md)
SMALL = 256

_loaded = None  # the kernels module once loaded
_failed = False  # loading them failed once: not tried again
_asked = 0  # item-steps asked for so far by runs of kinds that have a kernel
load_seconds = 0.0  # what loading them cost this process
_flat: list = []  # (weights, their flat_gates layout), most recent first


def _turned_off() -> bool:
    return os.environ.get("RNN_COMPOSER_FUSED", "1") == "0"


def installed() -> bool:
    """Whether numba is importable and the kernels are not turned off."""
    if _turned_off():
        return False
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        return False


def prepare(item_steps: int = 0, force: bool = False, kinds=None) -> bool:
    """Load the kernels if installed and worth it (the `item_steps` of this run of `kinds`,
    one of which has a fused step, added to those of the process's earlier runs, reach
    `LOAD_AT`; or `force`); whether they are loaded."""
    global _loaded, load_seconds, _failed, _asked
    if kinds is None or any(k.fused_step for k in kinds):
        _asked += item_steps
    wanted = force or _asked >= LOAD_AT
    if _loaded is None and not _failed and wanted and installed():
        started = time.perf_counter()
        try:
            from composer.kinds import fused_kernels

            fused_kernels.warm()
        except (ImportError, MemoryError, OSError, RuntimeError):
            # an optimisation only: a numba that cannot load (a memory limit, a broken
            # install, a cache it cannot write) leaves the NumPy path, which gives the same
            # results to float32 rounding
            _failed = True
            return False
        _loaded = fused_kernels
        load_seconds = time.perf_counter() - started
    return _loaded is not None


def compiled(dtype):
    """The kernels module if it is loaded, on, and `dtype` is float32, else None."""
    if _loaded is None or np.dtype(dtype) != np.float32 or _turned_off():
        return None
    return _loaded


def kernels(dtype, batch: int, size: int):
    """The kernels module if a forward in `dtype` of `batch` rows of `size` should use it
    (a whole fused step, product included: small sizes only), else None."""
    return compiled(dtype) if batch * size <= SMALL else None


def flat(Ws: np.ndarray) -> np.ndarray:
    """`fused_kernels.flat_gates(Ws)`, made once per weight array and kept (the last few,
    by identity), not again at every call: a stepper calls a kernel at every step."""
    for held, made in _flat:
        if held is Ws:
            return made
    made = _loaded.flat_gates(Ws)
    _flat.insert(0, (Ws, made))
    del _flat[8:]  # a few layers' worth; older weights are let go
    return made
