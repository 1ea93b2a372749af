"""Windows: the steps of 0..T-1 that an input, an output or a layer covers, as slice strings."""

from __future__ import annotations

import functools
import re

__all__ = ["MAX_STEPS", "WINDOW_PATTERN", "window_bounds", "parse_window", "fitting_steps"]

#: the largest unroll depth T a spec or a command may ask for
MAX_STEPS = 10_000_000
WINDOW_PATTERN = r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$"


@functools.lru_cache(maxsize=4096)  # a run asks the same few windows thousands of times
def window_bounds(window: str) -> tuple[int | None, int | None]:
    """A window's (start, stop) as written, None where left out.

    Examples
    --------
    >>> window_bounds("-1:"), window_bounds(" 5 : 8 ")
    ((-1, None), (5, 8))
    """
    match = re.match(WINDOW_PATTERN, window)
    if match is None:
        raise ValueError(f"not a window {window!r}; expected `start:stop` such as `0:5` or `-1:`")
    start, stop = (int(g) if g is not None else None for g in match.groups())
    return start, stop


def parse_window(window: str, steps: int) -> range:
    """The steps a window string selects out of 0..steps-1.

    Examples
    --------
    >>> parse_window("-1:", 5)
    range(4, 5)
    >>> parse_window(":-2", 5)
    range(0, 3)
    """
    return range(steps)[slice(*window_bounds(window))]


def _raw_length(start: int | None, stop: int | None, steps: int) -> int:
    """stop - start of a step-1 slice over range(steps), before flooring at 0."""

    def bound(value: int) -> int:
        value = value + steps if value < 0 else value
        return min(max(value, 0), steps)

    return (steps if stop is None else bound(stop)) - (0 if start is None else bound(start))


def fitting_steps(window: str, length: int, limit: int = MAX_STEPS) -> list[range]:
    """Every T in 1..limit at which `window` selects exactly `length` steps, as ranges.

    The selected count is piecewise linear in T, with kinks where a bound stops being
    clipped, so each piece is solved exactly.

    Examples
    --------
    >>> fitting_steps(":-3", 5)
    [range(8, 9)]
    >>> fitting_steps("0:1", 1)
    [range(1, 10000001)]
    """
    start, stop = window_bounds(window)
    cuts = {1, limit + 1} | {min(abs(v), limit + 1) for v in (start, stop) if v}
    cuts = sorted(c for c in cuts if c >= 1)
    found = []
    for lo, hi in zip(cuts, cuts[1:]):
        first = _raw_length(start, stop, lo)
        slope = _raw_length(start, stop, lo + 1) - first if lo + 1 < hi else 0
        if slope == 0:
            if first == length:
                found.append(range(lo, hi))
        elif (length - first) % slope == 0 and lo <= lo + (length - first) // slope < hi:
            steps = lo + (length - first) // slope
            found.append(range(steps, steps + 1))
    return found
