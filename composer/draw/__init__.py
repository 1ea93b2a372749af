"""Diagrams: the folded and the unfolded network as DOT text and files, and loss curves."""

from composer.draw.curve import loss_curve_svg
from composer.draw.folded_picture import folded_dot
from composer.draw.graphviz import FORMATS, svg, write_diagram
from composer.draw.highlight import parse_highlight
from composer.draw.unfolded_picture import unfolded_dot

__all__ = [
    "folded_dot",
    "unfolded_dot",
    "write_diagram",
    "svg",
    "parse_highlight",
    "FORMATS",
    "loss_curve_svg",
]
