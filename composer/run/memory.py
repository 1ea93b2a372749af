"""Resource limits: the memory a command would need, estimated before anything is allocated."""

from __future__ import annotations

import re
from fractions import Fraction

import networkx as nx
import numpy as np

from composer.errors import ResourceError
from composer.graph.unrolled import Unrolled

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "parse_size",
    "human_size",
    "graph_bytes",
    "deps_bytes",
    "check_memory",
]

DEFAULT_MAX_MEMORY = 4 << 30
# What networkx spends per node and per edge of an unrolled graph, measured on CPython 3.11
# (dicts of attributes included), rounded up.
_NODE_BYTES, _EDGE_BYTES = 700, 500
_INITIAL_BYTES = 48  # an int in a tuple, and the list it was made from
_MAX_SIZE = 1 << 60  # 1 EiB: more than any machine, and safe in every integer type
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from a size such as `512M`, `4G`, `2.5GiB` or `1000000`."""
    match = re.fullmatch(
        r"\s*(\d{1,30}(?:\.\d{1,30})?)\s*(?:([kmgt])(?:i?b)?|(b))?\s*", text.lower()
    )
    if match is None:
        raise ValueError(f"not a size: {text[:40]!r}; expected a number with K, M or G, like 4G")
    size = int(Fraction(match.group(1)) * _UNITS[match.group(2) or ""])
    if size > _MAX_SIZE:
        raise ValueError(f"size {text!r} is over the largest limit, {human_size(_MAX_SIZE)}")
    return size


def human_size(size: float) -> str:
    """`1536` -> `1.5 KiB`."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _edge_count(unrolled: Unrolled) -> int:
    counts = {node: int(mask.sum()) for node, mask in unrolled.present.items()}
    return sum(counts[target] for _, target in unrolled.folded.edges())


def unroll_bytes(folded: nx.MultiDiGraph, steps: int) -> int:
    """The memory `unroll` needs: a few boolean masks over the steps for every vector, and
    the initial-state steps a delay-k recurrence reads (up to k Python ints in a tuple)."""
    lags = (abs(lag or 0) for _, lag in folded.nodes(data="lag"))
    initial = sum(min(lag, steps) for lag in lags)
    return 4 * (len(folded) + 1) * steps + _INITIAL_BYTES * initial


def graph_bytes(unrolled: Unrolled) -> int:
    """The memory a materialised unrolled networkx graph would take."""
    return unrolled.node_count() * _NODE_BYTES + _edge_count(unrolled) * _EDGE_BYTES


def deps_bytes(unrolled: Unrolled) -> int:
    """The memory of the dependency answer: one list entry per (output step, input step)."""
    outputs = inputs = 0
    for node, role in unrolled.folded.nodes(data="role"):
        if role == "output":
            outputs += int(unrolled.present[node].sum())
        elif role == "input":
            inputs += int(unrolled.present[node].sum())
    # a Python int in a list costs about 36 bytes; bit sets cost steps/8 per frontier node
    return graph_bytes(unrolled) + outputs * inputs * 36 + int(np.ceil(inputs / 8)) * outputs


def check_memory(estimate: int, limit: int, what: str) -> None:
    """Refuse `what` when its estimate is over `limit`, saying both."""
    if estimate > limit:
        raise ResourceError(
            f"{what} would need about {human_size(estimate)}, over the limit of "
            f"{human_size(limit)}; use fewer steps or raise --max-memory"
        )
