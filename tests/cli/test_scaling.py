"""Work that must grow linearly: drawing long chains, summaries, huge delays.

Issue 18, items 15-17. Each compares the work done for a size with the work for four times
that size: quadratic work grows 16 times, linear work 4, and the threshold is 9. Work is
counted, not timed (a busy machine changes times, never counts): every Python function
entered, generator resumed and C function called while the work runs (`sys.setprofile`).
"""

from __future__ import annotations

import numpy as np
import pytest

from composer.cli.report import summary_data
from composer.draw.layout import Grid
from composer.draw.unfolded_picture import unfolded_dot
from composer.draw.view import display_names, unfolded_view
from composer.graph.folded import build
from composer.graph.unrolled import _close_recurrence, unroll
from tests.builders import lecture
from tests.conftest import operations


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


def _ratio(work, small: int, large: int) -> float:
    prepared = {n: _prepare(n) for n in (small, large)}
    return operations(work, *prepared[large]) / operations(work, *prepared[small])


def test_the_count_tells_quadratic_work_from_linear():
    def quadratic(n):
        return sum(1 for i in range(n) for j in (k for k in range(n)))

    def linear(n):
        return sum(1 for i in range(n) for j in (k for k in range(3)))

    assert operations(quadratic, 240) / operations(quadratic, 60) > 12
    assert operations(linear, 240) / operations(linear, 60) < 5


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
    closed = _close_recurrence(need, exists, lag)
    # a few NumPy calls whatever the lag: a Python loop per residue made `lag` of them
    assert operations(_close_recurrence, need, exists, lag) < 100
    for t in np.flatnonzero(need)[:20]:  # every step of a needed step's chain, toward t=0
        chain = range(t, -1, -abs(lag)) if lag > 0 else range(t, steps, abs(lag))
        assert all(closed[s] == exists[s] for s in chain)
