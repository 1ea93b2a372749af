"""Training: minibatch gradient descent over a data set, keeping the best weights.

Data is a dict of arrays, as read from a `.npz`: each input by its name, (B, T_in, F);
each output's targets by the output's name, (B, T_out, size) floats or, for
cross-entropy, (B, T_out) integer class ids; optionally `<output>.mask`, (B, T_out), the
weight of each emitted step in the loss (0 for padding). T is what the inputs' lengths
imply through their windows.

A seeded split holds out a `validation` fraction of the sequences; every epoch shuffles
the rest (seeded), steps through them in minibatches, and measures the held-out loss.
The best weights by that loss (by the training loss without a validation set) are the
result, the untrained weights included as epoch 0. Ctrl-C stops cleanly between two
updates and returns the best weights so far, flagged `interrupted`.

Examples
--------
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.folded import build
>>> from composer.graph.weights import init_params
>>> spec = NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 1}],
...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4,
...                 "output": {"size": 1}}],
...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"})
>>> x = np.random.default_rng(0).uniform(-1, 1, (64, 5, 1))
>>> data = {"x": x, "o": x.sum(axis=1, keepdims=True)}
>>> result = train(spec, init_params(build(spec)), data, epochs=20, batch_size=16,
...                lr=0.02, optimizer="adam", loss="mse", seed=0)
>>> result.history[-1].val_loss < result.history[0].val_loss
True
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from composer.dtypes import check_dtype
from composer.engine.inputs import (
    check_inputs,
    infer_steps,
    input_sizes,
    is_given,
    split_lengths,
)
from composer.engine.lengths import check_lengths, item_steps, named_lengths
from composer.engine.pipeline import folded_graph, plan_for_steps
from composer.engine.plan import Plan
from composer.engine.tokens import padding_lengths
from composer.errors import DataError, key_mismatch
from composer.finite import check_representable
from composer.graph.weights import check_params
from composer.kinds import KINDS, fused
from composer.spec.model import NetworkSpec
from composer.training.backprop import Workspace, evaluate, grad
from composer.training.checkpoint import fingerprint, restore, snapshot
from composer.training.dropout import Dropout
from composer.training.losses import check_target_sums, check_targets, loss_kinds
from composer.training.metrics import declared_metrics, measure_metrics
from composer.training.optim import clip_grad_norm, make_optimizer
from composer.training.padded import evaluate_padded, grad_padded
from composer.training.schedules import Schedule, parse_schedule
from composer.training.stopping import Monitor, diverging, loss_of

__all__ = [
    "plan_for",
    "Epoch",
    "TrainResult",
    "train",
    "check_data",
    "split_data",
    "SPLITS",
    "UnnormalisedTargets",
]

Arrays = Mapping[str, np.ndarray]
SPLITS = ("random", "time")


class UnnormalisedTargets(UserWarning):
    """Cross-entropy targets that do not sum to 1, trained on as asked."""


@dataclass(frozen=True)
class Epoch:
    """One epoch's record: losses (training: the mean over its minibatches, as they were
    computed during the epoch; epoch 0: the untrained weights'), time, updates so far."""

    epoch: int
    train_loss: float
    val_loss: float | None
    seconds: float
    updates: int
    lr: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    batches: int = 0


@dataclass(frozen=True)
class TrainResult:
    """What `train` returns: the best weights and how training went. `stopped` says why
    a run ended before its last epoch: `early` (patience ran out), `diverged` (see
    `composer.training.stopping`), `callback` (a callback returned a value), else None."""

    params: dict[str, np.ndarray]
    history: tuple[Epoch, ...]
    best_epoch: int
    best_loss: float
    steps_per_second: float
    interrupted: bool = False
    diverged: bool = False
    stopped: str | None = None


def check_data(
    plan: Plan,
    data: Arrays,
    kinds: Mapping[str, str],
    where: str = "data",
    allow_unnormalised: bool = False,
) -> tuple[dict, dict, dict, int]:
    """(inputs, targets, masks, B) of a data dict, every key and shape checked against the
    plan; errors name `where` (the file), the key, and expected against received.
    Cross-entropy targets that do not sum to 1 are refused, or with `allow_unnormalised`
    warned about (`UnnormalisedTargets`)."""
    names = [*plan.inputs, *plan.given]  # the sequences, and any start states (B, H)
    expected = [*names, *plan.outputs]
    optional = {f"{name}.mask" for name in plan.outputs}
    mismatch = key_mismatch(expected, [key for key in data if key not in optional])
    if mismatch:
        raise DataError(
            f"{where}: {mismatch}; expected the inputs ({', '.join(names)}), a target "
            f"per output ({', '.join(plan.outputs)}) and optional `<output>.mask` arrays"
        )
    inputs = {name: np.asarray(data[name]) for name in names}
    try:
        batch = check_inputs(plan, inputs)
    except DataError as err:
        raise DataError(f"{where}: {err}") from err
    for name, array in inputs.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DataError(f"{where}: key {name!r}: holds NaN or Inf")
    targets = {name: np.asarray(data[name]) for name in plan.outputs}
    masks = {n: np.asarray(data[f"{n}.mask"]) for n in plan.outputs if f"{n}.mask" in data}
    check_targets(plan, targets, masks, kinds, batch, where)
    for line in check_target_sums(targets, masks, kinds, where, allow_unnormalised):
        warnings.warn(line, UnnormalisedTargets, stacklevel=3)
    if masks and len(masks) == len(plan.outputs) and not any(m.any() for m in masks.values()):
        raise DataError(
            f"{where}: every mask is 0 everywhere ({', '.join(map(repr, _mask_keys(masks)))}), "
            "so no step counts toward the loss and nothing can be learned"
        )
    return inputs, targets, masks, batch


def _mask_keys(masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{name}.mask": mask for name, mask in masks.items()}


def split_data(
    batch: int, validation: float, seed: int, split: str = "random"
) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indexes: `validation` is the held-out fraction, drawn at
    random (seeded) with `split="random"`, or the last sequences in file order with
    `split="time"` (windows of one series, in time order: nothing of the held-out
    stretch is seen in training)."""
    if not 0 <= validation < 1:
        raise DataError(f"validation must be a fraction in [0, 1), got {validation!r}")
    if split not in SPLITS:
        raise DataError(f"validation split {split!r}: expected one of {', '.join(SPLITS)}")
    held = int(round(batch * validation))
    if validation and batch >= 2:
        held = min(max(held, 1), batch - 1)
    if split == "time":
        return np.arange(batch - held), np.arange(batch - held, batch)
    order = np.random.default_rng(seed).permutation(batch)
    return np.sort(order[held:]), np.sort(order[:held])


def plan_for(
    graph_or_spec, data: Arrays, where: str = "data", *, max_memory: int | None = None
) -> Plan:
    """The plan a data set trains: T from its inputs' lengths and the windows."""
    graph = folded_graph(graph_or_spec)
    present = {name: np.asarray(data[name]) for name in input_sizes(graph) if name in data}
    for name, array in present.items():
        token, size = graph.nodes[name].get("vocab"), graph.nodes[name]["size"]
        rank, shape = (2, "(B, T_in) ids") if token else (3, "(B, T_in, F)")
        if is_given(graph, name):
            rank, shape = 2, f"a start state (B, {size}), no time axis"
        if array.ndim != rank:
            raise DataError(f"{where}: key {name!r}: expected {shape}, got {array.shape}")
    try:
        steps = infer_steps(graph, present)
    except DataError as err:
        raise DataError(f"{where}: {err}") from err
    return plan_for_steps(graph, steps, max_memory=max_memory)


def train(
    graph_or_spec: NetworkSpec | nx.MultiDiGraph,
    params: Arrays,
    data: Arrays,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    optimizer: str = "adam",
    loss: str | Mapping[str, str] = "mse",
    seed: int = 0,
    bptt: int | None = None,
    clip: float | None = None,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    schedule: str | Schedule = "constant",
    validation: float | Arrays = 0.1,
    split: str = "random",
    patience: int | None = None,
    min_delta: float = 0.0,
    monitor: str | None = None,
    metrics: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    allow_unnormalised: bool = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[Callable[[Epoch], object]] = (),
    on_epoch: Callable[[Epoch], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    dtype: str = "float32",
    where: str = "data",
    validation_where: str = "validation data",
    lengths: Mapping[str, object] | None = None,
    engine: Callable | None = None,
) -> TrainResult:
    """Train a network's weights on a data set; the best weights and the history.

    A padded data set gives each input's (B,) real lengths as `<input>.lengths` in `data`
    or in `lengths`: the loss then covers each sequence's real steps only
    (`composer.training.padded`). `params` are the starting weights (not changed).
    `optimizer` is `sgd` (with `momentum`, 0.9 by default, and `nesterov`) or `adam`;
    `schedule` sets each epoch's rate (`composer.training.schedules`); `clip` scales each
    minibatch's
    gradients to at most that global norm; `bptt` truncates backpropagation through time
    (see `composer.training.backprop`).

    `validation` is the held-out fraction of `data` (`split`: `random`, seeded, or
    `time`, the last sequences in file order), or a data dict of its own, checked as
    `data` is (its errors name `validation_where`). `patience` stops the run after that
    many epochs without an improvement of more than `min_delta` in `monitor` (default:
    the validation loss, the training loss without a validation set); the best weights by
    `monitor` are the result. A run whose loss becomes NaN or infinite, or rises far
    above the untrained one (`composer.training.stopping`), stops and keeps the best.

    `metrics` (`["accuracy", "o:mae"]`, or `{output: [names]}`) are measured after every
    epoch on the validation set (the training set without one) and kept in each
    `Epoch.metrics` under `<output>.<metric>` (`composer.training.metrics`).

    `checkpoint` is a folder where the run's whole state is saved after epoch 0, every
    `checkpoint_every` epochs and at the end; `resume` a folder to go on from, as if the
    run had never stopped (`composer.training.checkpoint`; the same options are needed,
    more epochs may be given; `on_epoch` is then called first with the last saved epoch).

    Cross-entropy targets that do not sum to 1 at a step that counts are refused;
    `allow_unnormalised=True` trains on them with a warning (`UnnormalisedTargets`).

    `on_epoch` and each of `callbacks` are called with each `Epoch` (epoch 0: the
    untrained losses); a callback that returns a value other than None or False stops the
    run after that epoch (`stopped="callback"`). `on_step` is called with the update
    count and the minibatch's loss. `where` names the data in error messages. `engine`,
    when given, computes each minibatch's loss and gradients instead of the NumPy passes:
    called as `engine(weights, inputs, targets, masks, lengths, kinds, bptt, backward,
    dropout=)`, it returns the loss, and with `backward` also the gradients by key (the
    PyTorch engine, `composer.interop.torch_engine.TorchEngine`); `dropout` is the
    update's `Dropout`, whose masks the engine applies (None when nothing drops).
    """
    if checkpoint_every < 1:
        raise DataError(f"checkpoint every must be >= 1 epoch, got {checkpoint_every!r}")
    if epochs < 0 or batch_size < 1:
        raise DataError(f"epochs must be >= 0 and batch size >= 1, got {epochs}, {batch_size}")
    if clip is not None and not clip > 0:
        raise DataError(f"clip must be > 0, got {clip!r}")
    prepared = dict(dtype=dtype, engine=engine, allow_unnormalised=allow_unnormalised)
    kinds, train_set = _prepare(graph_or_spec, params, data, loss, lengths, where, **prepared)
    plan, inputs, targets, masks, given, batch = train_set
    held_set = None
    if isinstance(validation, Mapping):
        val_where = validation_where
        held_set = _prepare(plan.folded, params, validation, kinds, None, val_where, **prepared)[1]
        fit, held = np.arange(batch), np.arange(held_set[-1])
    else:
        fit, held = split_data(batch, validation, seed, split)
    check_representable(params, dtype, "weights")
    weights = {key: np.array(value, dtype=check_dtype(dtype)) for key, value in params.items()}
    run = _Run(plan, weights, (inputs, targets, masks, given), kinds, dtype, batch_size, bptt, clip)
    if held_set is not None:
        run.held_plan, run.held_sets = held_set[0], held_set[1:5]
    if engine is None:  # a long run of our passes loads the compiled steps, if installed
        layer_kinds = {KINDS[v.kind] for v in plan.vectors.values() if v.role == "state"}
        fused.prepare(batch * plan.steps * (epochs + 1), kinds=layer_kinds)
    run.engine = engine
    run.dropout = Dropout(seed + 2)  # the layers' dropout, in updates only
    run.opt = make_optimizer(optimizer, weights, lr, weight_decay, momentum, nesterov)
    rates = parse_schedule(schedule)
    rates.start(lr, epochs)
    watch = Monitor(monitor, patience, min_delta)
    pairs = declared_metrics(plan, kinds, metrics)
    watch.check([f"{output}.{metric}" for output, metric in pairs], bool(len(held)))
    course = _Course(run, rates, watch, np.random.default_rng(seed + 1), pairs, fit, held)
    same = dict(  # what a resumed run must share with its checkpoint
        batch_size=batch_size, lr=lr, optimizer=optimizer, loss=repr(sorted(kinds.items())),
        seed=seed, bptt=bptt, clip=clip, weight_decay=weight_decay, momentum=momentum,
        nesterov=nesterov, schedule=rates.text, monitor=watch.name, patience=patience,
        min_delta=min_delta, validation=len(held), sequences=batch, dtype=dtype,
        split=split if held_set is None else "file", metrics=repr(pairs),
        engine=type(engine).__name__,
    )  # fmt: skip
    keep = dict(mark=fingerprint(plan.folded, weights), options=same, opt=run.opt,
                rng=course.rng, dropout=run.dropout, rates=rates, watch=watch)  # fmt: skip
    if resume is not None:
        course.resume(resume, keep)
        if on_epoch:
            on_epoch(course.history[-1])
    interrupted = False
    try:
        for epoch in range(course.first, epochs + 1):
            if (record := course.epoch(epoch, on_step)) is None:
                break
            if on_epoch:
                on_epoch(record)
            if any(_stops(callback(record)) for callback in callbacks):
                course.stopped = "callback"
            elif watch.exhausted():
                course.stopped = "early"
            due = epoch % checkpoint_every == 0 or epoch == epochs or course.stopped
            if checkpoint is not None and due:
                course.save(checkpoint, epoch, keep)
            if course.stopped:
                break
    except KeyboardInterrupt:
        interrupted = True
    return course.result(interrupted)


class _Course:
    """A run's epochs: the shuffling, the schedule, the monitor, the history and the best
    weights so far; what a checkpoint saves and a resumed run restores."""

    def __init__(self, run, rates, watch, rng, pairs, fit, held):
        self.run, self.rates, self.watch, self.rng = run, rates, watch, rng
        self.pairs, self.fit, self.held = pairs, fit, held
        self.history: list[Epoch] = []
        self.best = None  # (weights, epoch)
        self.stopped = None  # why the run ended early: early, diverged, callback
        self.first, self.started = 0, time.perf_counter()

    def resume(self, folder, keep: dict) -> None:
        """Go on from a checkpoint: its state in every object of the run."""
        weights = self.run.weights
        last, best, best_epoch, self.history = restore(
            folder, weights=weights, make_epoch=Epoch, **keep
        )
        self.best, self.first = (best, best_epoch), last + 1
        self.started -= self.history[-1].seconds

    def epoch(self, epoch: int, on_step) -> Epoch | None:
        """Train one epoch (epoch 0: measure the start) and record it; None when the run
        diverged (`stopped` says so)."""
        run = self.run
        if epoch == 0:  # the untrained weights: the baseline, and a candidate
            mean = run.measure(self.fit)
        else:
            run.opt.lr = self.rates.rate(epoch)
            if (mean := run.epoch(self.rng.permutation(self.fit), on_step)) is None:
                self.stopped = "diverged"
                return None
        seconds = time.perf_counter() - self.started
        record = run.record(epoch, mean, self.fit, self.held, self.pairs, seconds)
        self.history.append(record)
        if epoch and diverging(record, self.history[0]):
            self.stopped = "diverged"
            return None
        if epoch:
            self.rates.after(epoch, loss_of(record))
        if self.watch.improved(record) or self.best is None:
            self.best = (self._copy(), epoch)
        return record

    def _copy(self) -> dict[str, np.ndarray]:
        return {key: array.copy() for key, array in self.run.weights.items()}

    def save(self, folder, epoch: int, keep: dict) -> None:
        """Write the checkpoint of the run after `epoch`."""
        snapshot(folder, epoch=epoch, weights=self.run.weights, best=self.best[0],
                 best_epoch=self.best[1], history=self.history, **keep)  # fmt: skip

    def result(self, interrupted: bool) -> TrainResult:
        """The best weights and the history, however the run ended."""
        if self.best is None:  # stopped before even the untrained loss was known
            seconds = time.perf_counter() - self.started
            self.history.append(Epoch(0, math.nan, None, seconds, 0))
            self.best = (self._copy(), 0)
        run = self.run
        rate = run.opt.steps / run.busy if run.busy > 0 else 0.0
        params, epoch = self.best
        value = loss_of(self.history[epoch]) if epoch < len(self.history) else math.nan
        diverged = self.stopped == "diverged"
        return TrainResult(
            params, tuple(self.history), epoch, value, rate, interrupted, diverged, self.stopped
        )


def _stops(answer: object) -> bool:
    """Whether a callback's answer stops the run: any value but None and False."""
    return answer is not None and answer is not False


def _prepare(
    graph_or_spec, params, data, loss, lengths, where, *, dtype, engine, allow_unnormalised
):
    """The loss kinds and (plan, inputs, targets, masks, lengths, B) of one data set,
    every key, shape and length checked."""
    data, given = split_lengths(data)
    if lengths is not None and given:
        raise DataError(f"{where}: holds lengths, and lengths were passed too; give them once")
    plan = plan_for(graph_or_spec, data, where)
    given = named_lengths(plan.folded, lengths, where) if lengths is not None else dict(given)
    check_params(plan.folded, dict(params))
    kinds = loss_kinds(plan, loss)
    inputs, targets, masks, batch = check_data(plan, data, kinds, where, allow_unnormalised)
    given = given or padding_lengths(plan.folded, inputs)  # `padding_id` gives them too
    if given:  # refused now, not at the first minibatch
        given = check_lengths(plan.folded, inputs, given, where)
        item_steps(plan.folded, inputs, given)
    if engine is not None and hasattr(engine, "check_data"):  # ... and what it cannot train
        engine.check_data(padded=bool(given))
    check_representable({**inputs, **targets, **_mask_keys(masks)}, dtype, where)
    return kinds, (plan, inputs, targets, masks, given, batch)


class _Run:
    """The state of one training run: the plan, the weights being updated, the data."""

    def __init__(self, plan, weights, sets, kinds, dtype, batch_size, bptt, clip):
        self.plan, self.weights, self.sets, self.kinds = plan, weights, sets, kinds
        self.dtype, self.batch_size, self.bptt, self.clip = dtype, batch_size, bptt, clip
        self.busy = 0.0  # seconds spent in updates, for the rate
        self.opt = None
        self.engine = None  # another engine's loss and gradients (see `train`)
        self.workspace = Workspace()  # arrays reused from minibatch to minibatch
        self.plans = {}  # a padded data set's plans by T, made once
        self.dropout = None  # the masks of the layers' dropout: new ones for each update
        self.held_plan, self.held_sets = None, None  # a validation data set of its own

    def _batch(self, index: np.ndarray, sets=None) -> tuple[dict, dict, dict, dict]:
        return tuple({k: v[index] for k, v in arrays.items()} for arrays in sets or self.sets)

    def _loss(self, inputs, targets, masks, lengths, backward: bool, plan=None):
        """The loss of a minibatch (and its gradients when `backward`, with dropout),
        padded or not."""
        drop = {}
        if backward and self.dropout is not None:
            self.dropout.renew()
            drop = {"train": self.dropout}
        if self.engine is not None:  # the same masks, drawn from the same generator
            return self.engine(
                self.weights, inputs, targets, masks, lengths, self.kinds, self.bptt, backward,
                dropout=drop.get("train"),
            )  # fmt: skip
        common = dict(dtype=self.dtype, workspace=self.workspace)
        if lengths:
            graph, common = self.plan.folded, dict(common, plans=self.plans)
            if backward:
                return grad_padded(
                    graph, self.weights, inputs, targets, lengths, self.kinds, masks,
                    self.bptt, **common, **drop,
                )  # fmt: skip
            return evaluate_padded(
                graph, self.weights, inputs, targets, lengths, self.kinds, masks, **common
            )
        if backward:
            return grad(
                self.plan, self.weights, inputs, targets, self.kinds, masks, self.bptt,
                **common, **drop,
            )  # fmt: skip
        plan = plan or self.plan
        return evaluate(plan, self.weights, inputs, targets, self.kinds, masks, **common)

    def measure(self, index: np.ndarray, held: bool = False) -> float:
        """The loss over the sequences `index` (of the validation data set when `held`),
        in chunks, weighted by chunk size."""
        total, chunk = 0.0, max(self.batch_size, 256)
        sets, plan = (self.held_sets, self.held_plan) if held else (self.sets, self.plan)
        for start in range(0, len(index), chunk):
            part = index[start : start + chunk]
            value = self._loss(*self._batch(part, sets), backward=False, plan=plan)
            total += value * len(part)
        return total / len(index)

    def record(self, epoch: int, mean: float, fit, held, pairs, seconds: float) -> Epoch:
        """An epoch's record: `mean`, the training loss, and the validation loss and the
        metrics measured now (the metrics on the training set without a validation set)."""
        external = self.held_sets is not None
        val = self.measure(held, held=external) if len(held) else None
        scores = self.metrics(held if len(held) else fit, pairs, external)
        batches = -(-len(fit) // self.batch_size)
        opt = self.opt
        return Epoch(epoch, mean, val, seconds, opt.steps, opt.lr, scores, batches)

    def metrics(self, index: np.ndarray, pairs, held: bool = False) -> dict[str, float]:
        """The declared metrics over the sequences `index` (of the validation data set
        when `held`)."""
        if not pairs:
            return {}
        sets, plan = (self.held_sets, self.held_plan) if held else (self.sets, self.plan)
        chunk = max(self.batch_size, 256)
        return measure_metrics(plan, self.weights, sets, index, pairs, self.dtype, chunk)

    def epoch(self, order: np.ndarray, on_step) -> float | None:
        """One pass of updates over `order` in minibatches; their mean loss (None: a NaN or
        infinite loss, or weights that overflowed)."""
        losses, tick = [], time.perf_counter()
        try:
            for start in range(0, len(order), self.batch_size):
                part = order[start : start + self.batch_size]
                value, grads = self._loss(*self._batch(part), backward=True)
                if not math.isfinite(value):
                    return None
                if self.clip is not None:
                    clip_grad_norm(grads, self.clip)
                with np.errstate(over="ignore", invalid="ignore"):
                    self.opt.step(grads)
                if not all(np.isfinite(w).all() for w in self.weights.values()):
                    return None  # diverged to Inf (a huge rate or decay): as a NaN loss
                losses.append((value, len(part)))
                if on_step:
                    on_step(self.opt.steps, value)
        finally:
            self.busy += time.perf_counter() - tick
        return sum(v * n for v, n in losses) / sum(n for _, n in losses)
