"""The per-epoch history as a file: `.csv` (a header, then a row per epoch) or `.jsonl`
(a JSON object per line), rewritten atomically after every epoch so that a run stopped
at any moment leaves a whole file.

Examples
--------
>>> from composer.training.loop import Epoch
>>> rows = [history_row(Epoch(0, 1.0, 2.0, 0.1, 0, 0.01, {"o.mae": 0.5}))]
>>> print(history_text(rows, ".csv"), end="")
epoch,train_loss,val_loss,o.mae,lr,seconds,updates
0,1.0,2.0,0.5,0.01,0.1,0
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from composer.arrays import atomic_write
from composer.errors import DataError
from composer.training.summary import history_row

__all__ = ["HISTORY_SUFFIXES", "history_text", "HistoryFile", "history_row", "check_suffix"]

HISTORY_SUFFIXES = (".csv", ".jsonl")


def check_suffix(path: Path) -> None:
    """Refuse a history file name whose format is not known by its suffix."""
    if path.suffix.lower() not in HISTORY_SUFFIXES:
        raise DataError(
            f"{path}: the history is written as .csv or .jsonl; give a file ending in one"
        )


def history_text(rows: Sequence[dict], suffix: str) -> str:
    """The rows as CSV (columns of the first row, then any new ones) or JSON lines."""
    if suffix.lower() == ".jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


class HistoryFile:
    """The history file of a run: `add(record)` after each epoch rewrites it whole."""

    def __init__(self, path: Path, overwrite: bool, rows: Sequence[dict] = ()):
        check_suffix(path)
        self.path, self.overwrite, self.rows = path, overwrite, list(rows)

    def add(self, record) -> None:
        self.rows.append(history_row(record))
        text = history_text(self.rows, self.path.suffix).encode()
        atomic_write(self.path, lambda handle: handle.write(text), overwrite=self.overwrite)
        self.overwrite = True  # ours from now on
