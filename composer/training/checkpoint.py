"""Checkpoints: everything a training run needs to go on as if it had never stopped.

`train(checkpoint=DIR)` writes `DIR/checkpoint.npz` after epoch 0 and every
`checkpoint_every` epochs (and after the last), atomically: one file, replaced whole, so
a run stopped at any moment (Ctrl-C, SIGTERM, a crash) leaves the previous checkpoint or
the new one, never a mixture. It holds the weights being trained and the best ones, the
optimizer's state (steps, rate, SGD's momentum buffers or Adam's moments), the
schedule's and the early-stopping monitor's state, the epoch, the random generators'
states (shuffling and dropout), the history, the run's options and a fingerprint of the
network. `train(resume=DIR)` restores all of it and goes on from the next epoch: the
same weights, bit for bit, as the run that did not stop (same machine, same engine).

A checkpoint of another network, or one made with other options (batch size, seed,
optimizer, losses, ...), is refused in one line (exit 4); more epochs may be given.

Examples
--------
>>> sorted(option_record(dict(batch_size=8, seed=0)))
['batch_size', 'seed']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from composer.arrays import read_arrays, write_arrays
from composer.errors import DataError

__all__ = [
    "CHECKPOINT",
    "fingerprint",
    "option_record",
    "save",
    "load",
    "check_same",
    "saved_history",
    "snapshot",
    "restore",
]

#: the file inside a checkpoint directory
CHECKPOINT = "checkpoint.npz"
_FORMAT = 1


def fingerprint(graph, params: Mapping[str, np.ndarray]) -> str:
    """A digest of the network a checkpoint belongs to: its vectors (name, role, kind,
    activation, size) and its weights' names and shapes."""
    nodes = sorted(
        (str(n), *(str(d.get(k)) for k in ("role", "kind", "activation", "size")))
        for n, d in graph.nodes(data=True)
    )
    weights = sorted((k, tuple(np.shape(v))) for k, v in params.items())
    return hashlib.sha256(repr((nodes, weights)).encode()).hexdigest()[:16]


def option_record(options: Mapping) -> dict:
    """The options a resumed run must share with the checkpoint's, as JSON values."""
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
            for k, v in sorted(options.items())}  # fmt: skip


def _encode(value):
    """JSON of the state (floats such as inf kept as Python's JSON writes them)."""
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def save(directory: Path, state: Mapping, arrays: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Write the checkpoint atomically: `state` (plain data) and groups of arrays by name
    (`weights`, `best`, the optimizer's moments...)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{directory}: cannot make the checkpoint folder ({err.strerror})") from err
    flat = {"state": _encode({"format": _FORMAT, **state})}
    for group, members in arrays.items():
        flat |= {f"{group}/{key}": value for key, value in members.items()}
    write_arrays(directory / CHECKPOINT, flat)


def load(directory: Path) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """(state, arrays by group) of a checkpoint directory, its format checked."""
    path = Path(directory) / CHECKPOINT
    if not path.is_file():
        raise DataError(f"{directory}: holds no checkpoint ({CHECKPOINT})")
    flat = read_arrays(path)
    try:
        state = json.loads(bytes(flat.pop("state")).decode())
    except (KeyError, ValueError) as err:
        raise DataError(f"{path}: not a training checkpoint (no readable state)") from err
    if state.get("format") != _FORMAT:
        raise DataError(f"{path}: checkpoint format {state.get('format')!r}, expected {_FORMAT}")
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name, value in flat.items():
        group, _, key = name.partition("/")
        groups.setdefault(group, {})[key] = value
    return state, groups


def check_same(directory: Path, state: Mapping, mark: str, options: Mapping) -> None:
    """Refuse a checkpoint of another network, or made with other options."""
    if state["fingerprint"] != mark:
        raise DataError(
            f"{directory}: the checkpoint belongs to another network (its vectors or "
            "weights differ from this spec's); resume it with the spec it was made with"
        )
    theirs, ours = state["options"], option_record(options)
    for key in sorted(set(theirs) | set(ours)):
        if theirs.get(key) != ours.get(key):
            raise DataError(
                f"{directory}: the checkpoint was made with {key} = {theirs.get(key)!r}, "
                f"this run gives {ours.get(key)!r}; resume with the same options"
            )


def saved_history(directory: Path) -> list[dict]:
    """The epochs a checkpoint holds, as dicts of `Epoch`'s fields (for a history file
    that goes on)."""
    return list(load(directory)[0]["history"])


def _optimizer_arrays(opt) -> dict[str, dict[str, np.ndarray]]:
    groups = {}
    for name in ("buffers", "first", "second"):  # SGD's momentum; Adam's moments
        if hasattr(opt, name):
            groups[f"opt.{name}"] = dict(getattr(opt, name))
    return groups


def snapshot(directory, *, mark, options, epoch, weights, best, best_epoch, opt, rng,
             dropout, rates, watch, history) -> None:  # fmt: skip
    """Write the state of a run after `epoch` (see the module's docstring)."""
    state = {
        "fingerprint": mark,
        "options": option_record(options),
        "epoch": epoch,
        "best_epoch": best_epoch,
        "optimizer": {"steps": opt.steps, "lr": opt.lr},
        "shuffle": rng.bit_generator.state,
        "dropout": dropout.rng.bit_generator.state,
        "schedule": rates.state(),
        "monitor": watch.state(),
        "history": [dict(vars(record), metrics=dict(record.metrics)) for record in history],
    }
    groups = {"weights": weights, "best": best, **_optimizer_arrays(opt)}
    save(directory, state, groups)


def restore(directory, *, mark, options, weights, opt, rng, dropout, rates, watch, make_epoch):
    """Load a checkpoint into a run's objects; (epoch, best weights, best epoch, history)."""
    state, groups = load(directory)
    check_same(directory, state, mark, options)
    saved = groups.get("weights", {})
    if sorted(saved) != sorted(weights):
        raise DataError(f"{directory}: the checkpoint's weights are not this network's")
    for key, value in saved.items():
        weights[key][...] = value
    opt.steps, opt.lr = state["optimizer"]["steps"], state["optimizer"]["lr"]
    for name in ("buffers", "first", "second"):
        if hasattr(opt, name):
            getattr(opt, name).update(
                {k: v.astype(weights[k].dtype) for k, v in groups.get(f"opt.{name}", {}).items()}
            )
    rng.bit_generator.state = state["shuffle"]
    dropout.rng.bit_generator.state = state["dropout"]
    rates.restore(state["schedule"])
    watch.restore(state["monitor"])
    history = [make_epoch(**record) for record in state["history"]]
    best = {k: v.astype(weights[k].dtype) for k, v in groups["best"].items()}
    return state["epoch"], best, state["best_epoch"], history
