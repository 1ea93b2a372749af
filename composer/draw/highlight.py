"""A highlighted node, `NAME[t]`: read from text, made absolute, and what it depends on."""

from __future__ import annotations

import re

from composer.draw.view import (
    StepTemplate,
)
from composer.errors import ComposerError
from composer.graph.unrolled import Unrolled
from composer.readable import format_steps

__all__ = ["parse_highlight", "highlighted_node", "folded_cone"]

HIGHLIGHT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\[\s*(-?\d+)\s*\]\s*")


def parse_highlight(text: str) -> tuple[str, int]:
    """`"o[7]"` -> `("o", 7)`: a vector's name and a step (negative counts from T).

    Examples
    --------
    >>> parse_highlight("o[7]"), parse_highlight("y[-1]")
    (('o', 7), ('y', -1))
    """
    match = HIGHLIGHT.fullmatch(text)
    if match is None:
        raise ComposerError(
            f"cannot read the highlight {text!r}; expected NAME[t], such as `o[7]` or `y[-1]`"
        )
    return match.group(1), int(match.group(2))


def highlighted_node(unrolled: Unrolled, highlight: tuple[str, int]) -> tuple[str, int]:
    """The highlighted node with its step made absolute; an error says where it exists."""
    name, t = highlight
    folded = unrolled.folded
    step = t + unrolled.steps if t < 0 else t
    if name in folded and 0 <= step < unrolled.steps and unrolled.present[name][step]:
        return name, step
    outputs = sorted(n for n, role in folded.nodes(data="role") if role == "output")
    where = ""
    if name in folded:
        steps = format_steps(unrolled.steps_of(name), limit=3) or "none"
        where = f"; `{name}` is computed at steps {steps}"
    raise ComposerError(
        f"cannot highlight {name}[{t}]: not a node of the network unrolled to "
        f"T = {unrolled.steps}{where} (outputs: {', '.join(outputs)})"
    )


def folded_cone(unrolled: Unrolled, highlight: tuple[str, int]) -> set[tuple[str, int]]:
    """The unrolled nodes a highlighted node depends on, itself included (for `folded_dot`)."""
    return StepTemplate(unrolled).cone(highlighted_node(unrolled, highlight))
