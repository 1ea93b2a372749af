"""The spec's model: window strings."""

from __future__ import annotations

from composer.spec.windows import parse_window


def test_window_strings_are_python_slices():
    assert parse_window(":", 4) == range(4)
    assert parse_window("-2:", 4) == range(2, 4)
    assert parse_window("1:-1", 4) == range(1, 3)
