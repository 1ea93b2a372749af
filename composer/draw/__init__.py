"""Diagrams: the folded and the unfolded network as DOT text and files, and loss curves."""

from composer.draw.curve import loss_curve_svg
from composer.draw.diagrams import (
    FORMATS,
    folded_dot,
    parse_highlight,
    svg,
    unfolded_dot,
    write_diagram,
)

__all__ = [
    "folded_dot",
    "unfolded_dot",
    "write_diagram",
    "svg",
    "parse_highlight",
    "FORMATS",
    "loss_curve_svg",
]
