"""Input arrays: reading `.npy`, `.npz` and `.csv` files, checking shapes, inferring T.

Arrays hold only the steps an input is present at (its window): an input with window
`:-3` unrolled to T = 8 steps has 5 steps of data. Batched arrays are (B, T_in, F); a
network with one input may also take (T_in, F).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from composer.arrays import MAX_ARRAY_BYTES, declared_bytes, read_arrays
from composer.engine.tokens import check_ids, padding_lengths, token_vocab
from composer.errors import DataError, key_mismatch
from composer.graph.unused import needed_inputs
from composer.spec.windows import MAX_STEPS, fitting_steps

__all__ = [
    "read_inputs",
    "batched",
    "read_csv",
    "csv_shape",
    "csv_bytes",
    "input_bytes",
    "check_inputs",
    "infer_steps",
    "input_sizes",
    "unread",
    "steps_for_lengths",
    "split_lengths",
    "LENGTHS_SUFFIX",
    "time_steps",
    "is_given",
    "sequence_names",
    "check_given",
]

_NPY_MAGIC = b"\x93NUMPY"
#: an inputs or data file's key `<input>.lengths` holds a padded batch's lengths
LENGTHS_SUFFIX = ".lengths"
_CHUNK_BYTES = 1 << 20  # the first pass holds a few of these: keep it under small limits


def is_given(graph: nx.MultiDiGraph, name: str) -> bool:
    """Whether input `name` gives a layer's start state: (B, H), no time axis."""
    return bool(graph.nodes[name].get("given_state"))


def sequence_names(graph: nx.MultiDiGraph) -> list[str]:
    """The inputs a run needs that are sequences (not start states), in spec order."""
    return [name for name in needed_inputs(graph) if not is_given(graph, name)]


def time_steps(graph: nx.MultiDiGraph, name: str, array) -> int:
    """The number of steps of input `name`'s batched array: (B, T_in, F), or (B, T_in) ids."""
    shape = np.shape(array)
    return int(shape[-1] if graph.nodes[name].get("vocab") else shape[-2])


def _rank(graph: nx.MultiDiGraph, name: str) -> int:
    """The rank of input `name`'s batched arrays: 3, or 2 for token ids and start states."""
    return 2 if graph.nodes[name].get("vocab") or is_given(graph, name) else 3


def input_sizes(graph: nx.MultiDiGraph) -> dict[str, int]:
    """`{input name: feature size}` in spec order, of the inputs a run needs: an input
    from which no emitted output can be reached is left out (`validate` warns of it)."""
    return {name: graph.nodes[name]["size"] for name in needed_inputs(graph)}


def unread(graph: nx.MultiDiGraph, arrays: Mapping) -> dict:
    """`arrays` without those of inputs that nothing reads: given or not, they are ignored."""
    ignored = {n for n, role in graph.nodes(data="role") if role == "input"}
    ignored -= set(needed_inputs(graph))
    return {key: value for key, value in arrays.items() if key not in ignored}


def read_inputs(
    path: str | os.PathLike,
    graph: nx.MultiDiGraph,
    *,
    allow_nonfinite: bool = False,
    without_starts: str | None = None,
) -> tuple[dict[str, np.ndarray], bool, dict[str, np.ndarray]]:
    """The input arrays in a file, as (B, T_in, F), whether the file held 2-D arrays, and
    the lengths it holds for a padded batch (`<input>.lengths`, unchecked).

    `.npy`: one array, for a network with one input. `.npz`: one array per input name.
    `.csv`: rows are steps, columns features, for a network with one input. Keys, ranks,
    feature sizes and batch sizes are checked; T_in is checked against T later.
    An input that gives a start state is (B, H) or (H,). `without_starts` (the option that
    gives the start states instead, such as `--state-in`) leaves those out: the file must
    not hold them.
    """
    path = Path(path)
    sizes = input_sizes(graph)
    if without_starts is not None:
        sizes = {name: size for name, size in sizes.items() if not is_given(graph, name)}
    names = list(sizes)
    if path.suffix.lower() == ".csv":
        _one_input(path, names, ".csv")
        arrays = {names[0]: read_csv(path)}
    else:
        arrays = read_arrays(path, default_key=names[0])
        if _is_npy(path):
            _one_input(path, names, ".npy")
    arrays, lengths = split_lengths(unread(graph, arrays))
    starts = [key for key in arrays if key not in sizes and key in graph and is_given(graph, key)]
    if starts:
        raise DataError(
            f"{path}: key {starts[0]!r} is a start state, but {without_starts} gives every "
            f"layer's start state; leave {starts[0]!r} out of the inputs (or the option out)"
        )
    mismatch = key_mismatch(names, arrays)
    if mismatch:
        raise DataError(f"{path}: {mismatch}; expected one array per input: {', '.join(names)}")
    for key in names:
        if is_given(graph, key) and arrays[key].ndim not in (1, 2):
            size = sizes[key]
            raise DataError(
                f"{path}: key {key!r}: a start state, expected shape (B, {size}) or ({size},) "
                f"(no time axis), got {arrays[key].shape}"
            )
    flat = {key: _rank(graph, key) - arrays[key].ndim for key in names}
    if set(flat.values()) - {0, 1} or len(set(flat.values())) > 1:
        shown = ", ".join(f"{k!r} {arrays[k].shape}" for k in names)
        raise DataError(
            f"{path}: expected every input as (B, T_in, F) or every one as (T_in, F) "
            f"(token ids: (B, T_in) or (T_in,); start states: (B, H) or (H,)), got {shown}"
        )
    was_2d = flat[names[0]] == 1
    batched = {k: arrays[k][np.newaxis] if was_2d else arrays[k] for k in names}
    vocab = token_vocab(graph)
    for key in names:
        where = f"{path}: key {key!r}"
        if key in vocab:
            _check_ids_shape(where, batched[key])
            check_ids(where, batched[key], vocab[key])
        elif is_given(graph, key):
            check_given(where, batched[key], sizes[key])
        else:
            _check_array(where, batched[key], sizes[key], allow_nonfinite)
    _check_batch(str(path), batched)
    return batched, was_2d, lengths or padding_lengths(graph, batched)


def split_lengths(arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(the arrays, `{input: lengths}`) of a file's keys: `x.lengths` gives x's lengths."""
    plain, lengths = {}, {}
    for key, value in arrays.items():
        if key.endswith(LENGTHS_SUFFIX):
            lengths[key[: -len(LENGTHS_SUFFIX)]] = value
        else:
            plain[key] = value
    return plain, lengths


def batched(
    graph: nx.MultiDiGraph, inputs: Mapping[str, np.ndarray] | np.ndarray
) -> tuple[dict[str, np.ndarray], bool]:
    """Inputs as `{name: (B, T_in, F) array}`, and whether they came as (T_in, F) arrays.

    A network with one input also takes its bare array; 2-D arrays get a batch axis of 1.
    """
    names = list(input_sizes(graph))
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise DataError(f"this network has inputs {', '.join(names)}; pass a dict by name")
        inputs = {names[0]: inputs}
    arrays = {name: np.asarray(array) for name, array in unread(graph, inputs).items()}
    flat = {
        name: name in graph and _rank(graph, name) - array.ndim == 1
        for name, array in arrays.items()
    }
    if flat and all(flat.values()):
        return {name: array[np.newaxis] for name, array in arrays.items()}, True
    if any(flat.values()):
        raise DataError("inputs mix (T_in, F) and (B, T_in, F) arrays; give all of one rank")
    return arrays, False


def _is_npy(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(6) == _NPY_MAGIC


def _one_input(path: Path, names: list[str], what: str) -> None:
    if len(names) != 1:
        raise DataError(
            f"{path}: a {what} file holds one input, but this network has {len(names)}: "
            f"{', '.join(names)}; save them with numpy.savez as a .npz keyed by input name"
        )


def read_csv(path: str | os.PathLike) -> np.ndarray:
    """A `.csv` of numbers as a (T_in, F) float64 array: one row per step, one column per
    feature, no header. Errors name the row and column.

    The rows are parsed one at a time into an array sized from a first pass over the bytes
    (`csv_shape`), so the memory is the result and one row, as `csv_bytes` estimates.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size > MAX_ARRAY_BYTES:
        raise DataError(f"{path}: over the {MAX_ARRAY_BYTES >> 30} GiB limit")
    lines, _, _ = csv_shape(path)
    out, count, width, first = None, 0, None, None
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for cells in reader:
                if not cells or all(not c.strip() for c in cells):
                    continue  # blank lines carry no step
                row = reader.line_num
                values = _csv_row(path, row, cells, header=first is None)
                if width is None:
                    width, first = len(values), row
                    out = np.empty((lines, width), dtype=np.float64)
                elif len(values) != width:
                    raise DataError(
                        f"{path}: row {row} has {len(values)} columns, expected {width} "
                        f"like row {first}"
                    )
                out[count] = values
                count += 1
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: not a text .csv file ({err})") from err
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from err
    if width is None:
        raise DataError(f"{path}: empty; expected rows of numbers, one row per step")
    return out[:count]


def csv_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """(lines, cells, longest line in bytes) of a text file, counted in 1 MiB chunks:
    an upper bound on a CSV's rows, on its numbers, and on the text one row holds."""
    lines = cells = longest = 0
    run = 0  # bytes of the line that runs over the chunk boundary
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                data = np.frombuffer(chunk, dtype=np.uint8)
                ends = np.flatnonzero(data == 10)
                cells += int(np.count_nonzero(data == 44))
                if len(ends):
                    longest = max(longest, run + int(ends[0]) + 1)
                    if len(ends) > 1:
                        longest = max(longest, int(np.diff(ends).max()))
                    run = len(data) - int(ends[-1]) - 1
                else:
                    run += len(data)
                lines += len(ends)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from err
    longest = max(longest, run)
    lines += run > 0
    return lines, cells + lines, longest


def input_bytes(path: str | os.PathLike) -> int:
    """The memory reading an input file takes: `csv_bytes` for a `.csv`, else the arrays
    its headers declare (`composer.arrays.declared_bytes`)."""
    if Path(path).suffix.lower() == ".csv":
        return csv_bytes(path)
    return declared_bytes(path)


def csv_bytes(path: str | os.PathLike) -> int:
    """The memory `read_csv` needs: the float64 result and the Python objects of its
    longest row (a string, a float and two list slots per number: about 120 bytes for
    the shortest number `0,`), and the first pass's chunk."""
    lines, cells, longest = csv_shape(path)
    return 8 * cells + 60 * longest + 16 * _CHUNK_BYTES  # the chunk, its masks, line ends


def _csv_row(path: Path, row: int, cells: list[str], header: bool) -> list[float]:
    values = []
    for column, cell in enumerate(cells, 1):
        try:
            value = float(cell)
        except ValueError:
            hint = "; a header line is not supported, remove it" if header else ""
            raise DataError(
                f"{path}: row {row}, column {column}: {cell.strip()!r} is not a number{hint}"
            ) from None
        if not math.isfinite(value):
            raise DataError(f"{path}: row {row}, column {column}: {cell.strip()!r} is not finite")
        values.append(value)
    return values


def _check_array(where: str, array: np.ndarray, size: int, allow_nonfinite: bool = False) -> None:
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where}: expected numbers, got dtype {array.dtype}")
    if array.ndim != 3:
        raise DataError(f"{where}: expected shape (B, T_in, {size}), got {array.shape}")
    if array.shape[2] != size:
        raise DataError(
            f"{where}: expected {size} features (shape (B, T_in, {size})), "
            f"got {array.shape[2]} (shape {array.shape})"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{where}: empty array of shape {array.shape}")
    if not allow_nonfinite and array.dtype.kind == "f" and not np.isfinite(array).all():
        where_bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise DataError(
            f"{where}: holds NaN or Inf (first at index {where_bad}); "
            "pass --allow-nonfinite to run it anyway"
        )


def check_given(where: str, array: np.ndarray, size: int, batch: int | None = None) -> None:
    """A start state's array: numbers, finite, shape (B, H) (B = `batch` when given)."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where}: expected numbers, got dtype {array.dtype}")
    rows = "B" if batch is None else batch
    if array.ndim != 2 or array.shape[1] != size or not len(array) or rows not in ("B", len(array)):
        raise DataError(
            f"{where}: a start state, expected shape ({rows}, {size}) (no time axis), "
            f"got {array.shape}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise DataError(f"{where}: holds NaN or Inf (first at index {bad})")


def _check_ids_shape(where: str, array: np.ndarray) -> None:
    if array.ndim != 2:
        raise DataError(f"{where}: expected token ids of shape (B, T_in), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{where}: empty array of shape {array.shape}")


def _check_batch(where: str, arrays: Mapping[str, np.ndarray]) -> None:
    batches = {key: a.shape[0] for key, a in arrays.items()}
    if len(set(batches.values())) > 1:
        shown = ", ".join(f"{k!r} {b}" for k, b in batches.items())
        raise DataError(f"{where}: inputs disagree on the batch size B: {shown}")


def check_inputs(plan, arrays: Mapping[str, np.ndarray]) -> int:
    """Check arrays against a plan (names, (B, T_in, F) shapes, one B); return B.

    `plan` is a `composer.engine.plan.Plan`; T_in must be the number of steps of the input's
    window at the plan's T.
    """
    names = list(plan.inputs) + list(plan.given)
    mismatch = key_mismatch(names, unread(plan.folded, arrays))
    if mismatch:
        raise DataError(f"inputs: {mismatch}; expected {', '.join(names)}")
    arrays = {name: np.asarray(arrays[name]) for name in names}
    vocab = token_vocab(plan.folded)
    for name in plan.given:
        check_given(f"input {name!r}", arrays[name], plan.folded.nodes[name]["size"])
    for name in plan.inputs:
        array, size = arrays[name], plan.folded.nodes[name]["size"]
        window = plan.window(name)
        if name in vocab:
            if array.ndim != 2 or array.shape != (array.shape[0], len(window)) or not len(array):
                raise DataError(
                    f"input {name!r}: expected token ids of shape (B, {len(window)}) (its "
                    f"window `{plan.folded.nodes[name]['window']}` holds {len(window)} of "
                    f"T = {plan.steps} steps), got {array.shape}"
                )
            check_ids(f"input {name!r}", array, vocab[name])
            continue
        expected = (len(window), size)
        if array.dtype.kind not in "biuf":
            raise DataError(f"input {name!r}: expected numbers, got dtype {array.dtype}")
        if array.ndim != 3 or array.shape[1:] != expected or array.shape[0] == 0:
            raise DataError(
                f"input {name!r}: expected shape (B, {expected[0]}, {size}) (its window "
                f"`{plan.folded.nodes[name]['window']}` holds {expected[0]} of T = "
                f"{plan.steps} steps), got {array.shape}"
            )
    _check_batch("inputs", arrays)
    return int(arrays[names[0]].shape[0])


def _intersect(a: Iterable[range], b: Iterable[range]) -> list[range]:
    out = []
    for x in a:
        for y in b:
            lo, hi = max(x.start, y.start), min(x.stop, y.stop)
            if lo < hi:
                out.append(range(lo, hi))
    return out


def infer_steps(graph: nx.MultiDiGraph, arrays: Mapping[str, np.ndarray]) -> int:
    """The unroll depth T that the inputs' lengths imply through their windows.

    The time axis is the second to last. When the lengths fit several T (a window such
    as `0:1` holds one step whatever T is), the spec's `steps` is used if it fits.

    Examples
    --------
    With window `:-3`, an input of 5 steps means T = 8.
    """
    names = [name for name in sequence_names(graph) if name in arrays]
    lengths = {name: time_steps(graph, name, arrays[name]) for name in names}
    return steps_for_lengths(graph, lengths)


def steps_for_lengths(
    graph: nx.MultiDiGraph, lengths: Mapping[str, int], steps: int | None = None
) -> int:
    """The T at which each input's window holds `lengths[input]` steps: `steps` if given
    and it fits, else the only T that fits, else the spec's steps if it fits."""
    default = graph.graph["steps"]
    candidates, shown = [range(1, MAX_STEPS + 1)], []
    for name, length in lengths.items():
        window = graph.nodes[name]["window"]
        shown.append(f"{name!r} has {length} steps in window `{window}`")
        fits = fitting_steps(window, length)
        if not fits:
            raise DataError(f"input {shown[-1]}: no number of steps T gives that")
        candidates = _intersect(candidates, fits)
    if not candidates:
        raise DataError(f"inputs disagree on the number of steps T: {'; '.join(shown)}")
    if steps is not None:
        if any(steps in r for r in candidates):
            return steps
        raise DataError(f"at T = {steps}: {'; '.join(shown)}, which T = {steps} does not give")
    if len(candidates) == 1 and len(candidates[0]) == 1:
        return candidates[0].start
    if any(default in r for r in candidates):
        return default
    options = ", ".join(
        f"{r.start}..{r.stop - 1}" if len(r) > 1 else str(r.start) for r in candidates
    )
    raise DataError(
        f"cannot tell T from the inputs ({'; '.join(shown)}): T may be {options}, and the "
        f"spec's steps {default} is not among them; give the steps explicitly"
    )
