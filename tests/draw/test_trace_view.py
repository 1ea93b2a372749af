"""The trace's heatmaps: a colour scale that fits the values, one panel per distinct
vector, a time axis with every step marked, and cells large enough to read."""

from __future__ import annotations

import re

import numpy as np

from composer.draw.heatmap import CELL, cell_size, trace_dot
from composer.graph.folded import build
from composer.spec.reader import load_spec
from tests.conftest import ROOT

LECTURE = build(load_spec(ROOT / "specs/lecture-elman.yaml"))


def lecture_trace(steps: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=steps)
    return {
        "x": rng.normal(size=(steps, 4)),
        "s.s": np.tanh(rng.normal(size=(steps, 8))),
        "s.y": probabilities,
        "y": probabilities.copy(),
    }


def panel(text: str, title: str) -> str:
    """The DOT text of the node whose panel is titled `title`."""
    (line,) = [line for line in text.splitlines() if f"<B>{title}</B>" in line]
    return line


def test_non_negative_values_get_a_sequential_scale():
    text = trace_dot("n", LECTURE, lecture_trace())
    fills = re.findall(r'BGCOLOR="#(\w{6})"', panel(text, "y"))
    assert len(fills) == 4 * 3
    # white to brown: red above green above blue, never a blue-dominant (negative) cell
    for fill in fills:
        r, g, b = (int(fill[i : i + 2], 16) for i in (0, 2, 4))
        assert r >= g >= b
    assert "never negative" in panel(text, "y")
    signed = re.findall(r'BGCOLOR="#(\w{6})"', panel(text, "s"))
    assert any(f.endswith("ff") and not f.startswith("ff") for f in signed)  # blue: negative


def test_equal_vectors_share_one_panel():
    text = trace_dot("n", LECTURE, lecture_trace())
    assert text.count("<B>") == 1 + 3  # the title, then x, s and y: s.y is y's panel
    assert "= s.y" in panel(text, "y")


def test_every_step_is_marked_on_a_short_time_axis():
    text = trace_dot("n", LECTURE, lecture_trace(4))
    ticks = re.findall(r'<TD COLSPAN="1" ALIGN="LEFT"><FONT[^>]*>(\d+)</FONT>', panel(text, "x"))
    assert ticks == ["0", "1", "2", "3"]
    long = trace_dot("n", LECTURE, lecture_trace(60))
    ticks = re.findall(r'<TD COLSPAN="\d+" ALIGN="LEFT"><FONT[^>]*>(\d+)</FONT>', panel(long, "x"))
    assert ticks == [str(t) for t in range(0, 60, 5)]


def test_cells_are_large_for_a_short_trace():
    assert cell_size(4) == 22 and cell_size(100) == CELL
    assert 'WIDTH="22" HEIGHT="22"' in trace_dot("n", LECTURE, lecture_trace(4))
