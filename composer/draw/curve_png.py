"""The loss curve as a PNG, drawn by Matplotlib (the optional extra `plot`): a slide needs
a raster picture, and a plotting library draws one better than a converter of the
hand-drawn SVG would. Without Matplotlib, `.png` is refused before training starts."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from composer.draw.curve import EpochLosses
from composer.errors import ComposerError

__all__ = ["PNG_HINT", "require_matplotlib", "loss_curve_png", "best_point"]

PNG_HINT = "pip install 'rnn-composer[plot]'"


def require_matplotlib():
    """Matplotlib's pyplot on the Agg backend (no display); a ComposerError naming the
    extra when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError as err:
        raise ComposerError(
            f"a .png loss curve is drawn by Matplotlib, which is not installed ({PNG_HINT}); "
            "or give a file ending in .svg"
        ) from err
    return pyplot


def loss_curve_png(history: Sequence[EpochLosses], title: str = "", dpi: int = 150) -> bytes:
    """PNG bytes: training and validation loss per epoch, the best epoch marked (the one
    whose weights are kept: lowest validation loss, else lowest training loss); a log
    axis when the losses span more than a factor of 20, as in the SVG."""
    pyplot = require_matplotlib()
    figure, axes = pyplot.subplots(figsize=(6.4, 4.0), dpi=dpi)
    try:
        series = {"training": [(e.epoch, e.train_loss) for e in history]}
        val = [(e.epoch, e.val_loss) for e in history if e.val_loss is not None]
        if val:
            series["validation"] = val
        for name, points in series.items():
            kept = [(x, y) for x, y in points if math.isfinite(y)]
            axes.plot([x for x, _ in kept], [y for _, y in kept], label=name, linewidth=2)
        best_epoch, best = best_point(history)
        axes.axvline(best_epoch, color="#6b7280", linestyle=":", linewidth=1)
        axes.plot([best_epoch], [best], "o", color="#b91c1c",
                  label=f"best: epoch {best_epoch}, {best:.4g}")  # fmt: skip
        values = [y for points in series.values() for _, y in points if math.isfinite(y) and y > 0]
        if values and max(values) / min(values) > 20:
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel("loss")
        axes.set_title(f"{title or 'training'}: loss per epoch")
        axes.grid(True, alpha=0.3)
        axes.legend()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()
    finally:
        pyplot.close(figure)


def best_point(history: Sequence[EpochLosses]) -> tuple[int, float]:
    """(epoch, loss) of the weights training keeps: the lowest validation loss, or the
    lowest training loss without validation data; the earliest on a tie."""
    val = [(e.epoch, e.val_loss) for e in history if e.val_loss is not None]
    return min(val or [(e.epoch, e.train_loss) for e in history], key=_loss)


def _loss(point: tuple[int, float]) -> float:
    return point[1] if math.isfinite(point[1]) else math.inf
