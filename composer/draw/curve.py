"""A loss curve drawn as SVG by hand (training and validation loss per epoch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol
from xml.sax.saxutils import escape

__all__ = ["EpochLosses", "loss_curve_svg"]


class EpochLosses(Protocol):
    """What the curve reads of an epoch's record (`composer.training.loop.Epoch`)."""

    epoch: int
    train_loss: float
    val_loss: float | None


def _nice(span: float, count: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `count` ticks."""
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _value_ticks(low: float, high: float, log: bool) -> list[float]:
    """Tick values for the loss axis: round numbers within [low, high]."""
    if log:
        ticks = [
            m * 10.0**k
            for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in (1, 2, 5)
        ]
        return [t for t in ticks if low <= t <= high]
    step = _nice(high - low, 5)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


class _Chart:
    """The geometry of the loss chart: where an epoch and a loss value are drawn."""

    width, height, left, right, top, bottom = 640, 400, 70, 20, 40, 50

    def __init__(self, values: list[float], last_epoch: int):
        low, high = (min(values), max(values)) if values else (1e-3, 1.0)
        self.log = high / low > 20  # losses falling by decades read better on a log axis
        if self.log:
            low, high = low / 1.2, high * 1.2
        else:
            pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
            low, high = max(low - pad, 0.0), high + pad
        self.low, self.high, self.last = low, high, max(last_epoch, 1)
        self.scale = math.log10 if self.log else float
        self.y0, self.y1 = self.scale(low), self.scale(high)
        self.floor = self.height - self.bottom

    def x(self, epoch: float) -> float:
        return self.left + (self.width - self.left - self.right) * epoch / self.last

    def y(self, value: float) -> float:
        clamped = min(max(value, self.low), self.high)
        fraction = (self.scale(clamped) - self.y0) / (self.y1 - self.y0)
        return self.top + (self.floor - self.top) * (1 - fraction)


def _frame(chart: _Chart, title: str) -> list[str]:
    """The canvas, the title, both axes and their labels."""
    w, h, mid_y = chart.width, chart.height, (chart.top + chart.floor) / 2
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(title or 'training')}: loss per epoch</text>",
        f'<line x1="{chart.left}" y1="{chart.floor}" x2="{w - chart.right}" '
        f'y2="{chart.floor}" stroke="black"/>',
        f'<line x1="{chart.left}" y1="{chart.top}" x2="{chart.left}" y2="{chart.floor}" '
        'stroke="black"/>',
        f'<text x="{(chart.left + w - chart.right) / 2}" y="{h - 12}" text-anchor="middle">'
        "epoch</text>",
        f'<text x="16" y="{mid_y}" text-anchor="middle" transform="rotate(-90 16 {mid_y})">'
        f"loss{' (log scale)' if chart.log else ''}</text>",
    ]


def _ticks(chart: _Chart) -> list[str]:
    """Round epochs under the x axis, round losses beside the y axis."""
    parts = []
    for epoch in range(0, chart.last + 1, max(1, round(_nice(chart.last, 8)))):
        x = chart.x(epoch)
        parts.append(
            f'<line x1="{x:.1f}" y1="{chart.floor}" x2="{x:.1f}" y2="{chart.floor + 5}" '
            f'stroke="black"/><text x="{x:.1f}" y="{chart.floor + 18}" '
            f'text-anchor="middle">{epoch}</text>'
        )
    for value in _value_ticks(chart.low, chart.high, chart.log):
        y = chart.y(value)
        parts.append(
            f'<line x1="{chart.left - 5}" y1="{y:.1f}" x2="{chart.left}" y2="{y:.1f}" '
            f'stroke="black"/><text x="{chart.left - 8}" y="{y + 4:.1f}" '
            f'text-anchor="end">{value:.3g}</text>'
        )
    return parts


def loss_curve_svg(history: Sequence[EpochLosses], title: str = "") -> str:
    """An SVG line chart of the training and validation losses per epoch: a polyline for
    each, axes with round ticks, a legend. The loss axis is logarithmic when the losses
    span more than a factor of 20."""
    series = {"training": [(e.epoch, e.train_loss) for e in history]}
    if any(e.val_loss is not None for e in history):
        series["validation"] = [(e.epoch, e.val_loss) for e in history if e.val_loss is not None]
    values = [v for points in series.values() for _, v in points if math.isfinite(v) and v > 0]
    chart = _Chart(values, history[-1].epoch)
    parts = _frame(chart, title) + _ticks(chart)
    colours = {"training": "#1f77b4", "validation": "#ff7f0e"}
    legend_x = chart.width - chart.right - 120
    for row, (name, points) in enumerate(series.items()):
        drawn = " ".join(
            f"{chart.x(e):.1f},{chart.y(v):.1f}" for e, v in points if math.isfinite(v)
        )
        colour, ly = colours[name], chart.top + 10 + 18 * row
        parts.append(
            f'<polyline points="{drawn}" fill="none" stroke="{colour}" stroke-width="2"/>'
            f'<line x1="{legend_x}" y1="{ly}" x2="{legend_x + 25}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/><text x="{legend_x + 30}" y="{ly + 4}">'
            f"{name}</text>"
        )
    return "\n".join(parts + ["</svg>\n"])
