"""Numeric series as forecasting windows, as Keras' `timeseries_dataset_from_array`.

A series (one column of a CSV file, or a `.npy`) becomes windows: the inputs are W
consecutive values, (B, W, 1), and the targets the H values that follow, (B, 1, H): what
a many-to-one spec with a readout of size H forecasts. Windows start every `stride`
values. With a time split at fraction f, the series is cut at s = round(f N): the
training windows lie wholly before s, and the held-out windows' targets wholly after it
(their inputs may reach back over the last W values before s), so nothing the model is
scored on was seen in training.

Values are standardised, (v - mean) / std, with the mean and standard deviation of the
training stretch alone (the whole series without a split), which are kept so that
forecasts can be turned back into the series' units: v = z * std + mean.

Examples
--------
>>> x, y = windows(np.arange(6.0), window=3, horizon=2)
>>> x[:, :, 0].tolist(), y[:, 0].tolist()
([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], [[3.0, 4.0], [4.0, 5.0]])
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from composer.arrays import read_arrays
from composer.errors import DataError

__all__ = ["read_series", "windows", "series_data", "parse_split"]


def parse_split(text: str | None) -> float | None:
    """`time:F` as the fraction F in (0, 1); None for no split."""
    if text is None:
        return None
    kind, _, value = text.partition(":")
    try:
        fraction = float(value)
    except ValueError:
        fraction = math.nan
    if kind != "time" or not 0 < fraction < 1:
        raise DataError(
            f"--split: expected time:F with F in (0, 1), such as time:0.8, got {text!r}"
        )
    return fraction


def read_series(path: Path, column: str | None) -> np.ndarray:
    """One column of a CSV file (by header name or 0-based index; a first row that is
    not numbers is the header) or of a `.npy` (1-D, or 2-D with a column index), as
    finite float64 values."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _csv_column(path, column)
    array = read_arrays(path)["x"] if path.suffix.lower() == ".npy" else None
    if array is None:
        raise DataError(f"{path}: expected a .csv or .npy file")
    if array.ndim == 2:
        index = _index(path, column, array.shape[1])
        array = array[:, index]
    elif array.ndim != 1 or column not in (None, "0"):
        raise DataError(f"{path}: expected a 1-D series (or 2-D with --column), got {array.shape}")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected numbers, got dtype {array.dtype}")
    values = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(f"{path}: value {int(bad[0])} is {values[bad[0]]}; fill or drop it first")
    return values


def _index(path: Path, column: str | None, width: int) -> int:
    if column is None:
        if width == 1:
            return 0
        raise DataError(f"{path}: {width} columns; say which with --column")
    if not column.isdigit() or int(column) >= width:
        raise DataError(f"{path}: --column {column!r}: expected an index 0..{width - 1}")
    return int(column)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _csv_column(path: Path, column: str | None) -> np.ndarray:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read as UTF-8 CSV ({err})") from err
    if not lines:
        raise DataError(f"{path}: no rows")
    rows = [row for _, row in lines]
    header = None if all(_number(cell) is not None for cell in rows[0]) else rows[0]
    body = lines[1:] if header else lines
    if column is not None and header and column in header:
        index = header.index(column)
    elif column is not None and not column.isdigit():
        names = ", ".join(header or []) or "none (the first row is numbers)"
        raise DataError(f"{path}: no column {column!r}; the columns are {names}")
    else:
        index = _index(path, column, len(rows[0]))
    values = []
    for number, row in body:
        value = _number(row[index]) if index < len(row) else None
        if value is None or not math.isfinite(value):
            cell = row[index] if index < len(row) else ""
            raise DataError(
                f"{path}: line {number}, column {index}: {cell!r} is not a finite number"
            )
        values.append(value)
    return np.asarray(values, dtype=np.float64)


def windows(values: np.ndarray, window: int, horizon: int, stride: int = 1):
    """(inputs (B, W, 1), targets (B, 1, H)) of every window starting `stride` apart."""
    if window < 1 or horizon < 1 or stride < 1:
        raise DataError(
            f"window, horizon and stride must be >= 1, got {window}, {horizon}, {stride}"
        )
    count = (len(values) - window - horizon) // stride + 1
    if count < 1:
        raise DataError(
            f"the series has {len(values)} values, fewer than a window of {window} and a "
            f"horizon of {horizon} need ({window + horizon})"
        )
    starts = np.arange(count) * stride
    x = values[starts[:, None] + np.arange(window)][:, :, None]
    y = values[starts[:, None] + window + np.arange(horizon)][:, None, :]
    return x, y


def series_data(values, window, horizon, stride=1, split=None, names=("x", "y")):
    """(training arrays, held-out arrays or None, statistics): standardised windows of
    a series, split in time at `split` (a fraction) if given."""
    cut = len(values) if split is None else int(round(len(values) * split))
    fit = values[:cut]
    mean, std = float(fit.mean()), float(fit.std())
    scale = std if std > 0 else 1.0
    z = (values - mean) / scale
    x, y = windows(z[:cut], window, horizon, stride)
    held = None
    if split is not None:
        hx, hy = windows(z[cut - window :], window, horizon, stride)
        held = {names[0]: hx.astype(np.float32), names[1]: hy.astype(np.float32)}
    stats = {"mean": mean, "std": scale, "values": len(values), "split_at": cut}
    return {names[0]: x.astype(np.float32), names[1]: y.astype(np.float32)}, held, stats
