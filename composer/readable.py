"""Words for people: step lists as readable ranges and sizes in bytes, shared by reports
and messages."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["format_steps", "human_size"]


def format_steps(steps: Iterable[int], limit: int | None = None) -> str:
    """Steps as readable ranges: `[0, 1, 2, 5]` -> `0..2, 5`; with `limit`, at most that
    many ranges and then the count.

    Examples
    --------
    >>> format_steps([0, 1, 2, 5]), format_steps(range(0, 20, 2), limit=3)
    ('0..2, 5', '0, 2, 4, ... (10 steps)')
    """
    steps = [int(t) for t in steps]
    runs, start = [], None
    for i, t in enumerate(steps):
        if start is None:
            start = t
        if i + 1 == len(steps) or steps[i + 1] != t + 1:
            runs.append(str(start) if start == t else f"{start}..{t}")
            start = None
    if limit is not None and len(runs) > limit:
        return ", ".join(runs[:limit]) + f", ... ({len(steps)} steps)"
    return ", ".join(runs)


def human_size(size: float) -> str:
    """`1536` -> `1.5 KiB`."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
