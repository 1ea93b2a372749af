"""Work that must grow linearly: drawing long chains, summaries, huge delays.

Issue 18, items 15-17. Each compares the time of a size with the time of four times that
size in the same run (a ratio, never an absolute time): quadratic work takes 16 times as
long, linear work 4. The threshold, 9, leaves room for a busy machine.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from composer.cli.report import summary_data
from composer.draw.diagrams import unfolded_dot
from composer.draw.layout import Grid
from composer.draw.view import display_names, unfolded_view
from composer.graph.folded import build
from composer.graph.unrolled import _close_recurrence, unroll
from tests.builders import lecture


def _chain(count: int) -> dict:
    layers, previous = [], "x"
    for i in range(count):
        layers.append({"name": f"l{i}", "kind": "elman", "input": previous, "state_size": 2})
        previous = f"l{i}"
    return {
        "inputs": [{"name": "x", "size": 2}],
        "layers": layers,
        "outputs": [{"name": "y", "from": previous}],
        "alignment": "many-to-many",
    }


def _seconds(work, *args) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        work(*args)
        best = min(best, time.process_time() - start)
    return max(best, 1e-4)


def _ratio(work, small: int, large: int) -> float:
    prepared = {n: _prepare(n) for n in (small, large)}
    return _seconds(work, *prepared[large]) / _seconds(work, *prepared[small])


def _prepare(count: int):
    spec = lecture(**_chain(count))
    return spec, unroll(build(spec), 3)


def test_drawing_a_long_chain_is_linear():
    assert _ratio(lambda spec, unrolled: unfolded_dot(unrolled), 60, 240) < 9


def test_a_summary_of_a_long_chain_is_linear():
    assert _ratio(summary_data, 150, 600) < 9


def test_the_crossing_check_agrees_with_comparing_every_pair():
    for count in (1, 3, 8):
        _, unrolled = _prepare(count)
        view = unfolded_view(unrolled, 12)
        lags = dict(unrolled.folded.nodes(data="lag"))
        grid = Grid(view, display_names(unrolled.folded), lags, 4)
        assert grid.crossing() == _crossing_by_pairs(grid)


def _crossing_by_pairs(grid: Grid) -> bool:
    for edge in grid.view.edges:
        ends = (edge.tail.vector, edge.tail.column), (edge.head.vector, edge.head.column)
        (x0, y0), (x1, y1) = grid.where[ends[0]], grid.where[ends[1]]
        for k in range(1, 24):
            px, py = x0 + (x1 - x0) * k / 24, y0 + (y1 - y0) * k / 24
            for n in grid.view.nodes:
                (x, y), half = grid.where[n.vector, n.column], grid.width(n) / 2
                if abs(px - x) < half and abs(py - y) < 0.2 and (n.vector, n.column) not in ends:
                    return True
    return False


@pytest.mark.parametrize("lag", [1, 3, 1000, 10**6, -7, -(10**6)])
def test_close_recurrence_does_every_residue_at_once(lag):
    rng = np.random.default_rng(abs(lag))
    steps = 2 * abs(lag) + 5
    need, exists = rng.random(steps) < 0.01, rng.random(steps) < 0.9
    start = time.process_time()
    closed = _close_recurrence(need, exists, lag)
    assert time.process_time() - start < 1.0  # a Python loop per residue took seconds
    for t in np.flatnonzero(need)[:20]:  # every step of a needed step's chain, toward t=0
        chain = range(t, -1, -abs(lag)) if lag > 0 else range(t, steps, abs(lag))
        assert all(closed[s] == exists[s] for s in chain)
