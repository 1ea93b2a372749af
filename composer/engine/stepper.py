"""A network stepped one step at a time, its state kept between steps: streaming, generation.

`Stepper.step(inputs)` computes one step of every vector from the inputs of that step and
what earlier steps left behind: each recurrent layer's last states (h, and c for an LSTM;
the last k of them for a delay of k) and the last values of any vector a connection reads
back in time (a generator's own output fed back). The cost of a step does not depend on how
many steps came before: nothing is re-run.

The step is the executor's own within-step order (`composer.engine.walk.Walk.loop` over
the plan of one step), with the weights bound once. It applies to causal networks: every
layer forward and present at every step, no hand-over of `initial_state`; an input left
out of a step is absent there (it adds nothing), as outside its window, and every output
is computed at every step (a many-to-one network's output is the one of its last step).

Examples
--------
>>> import numpy as np
>>> from composer.graph.folded import build
>>> from composer.graph.weights import init_params
>>> from composer.spec.model import NetworkSpec
>>> from composer.engine.batches import run
>>> graph = build(NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 2}],
...     "layers": [{"name": "rnn", "kind": "gru", "input": "x", "state_size": 3}],
...     "outputs": [{"name": "o", "from": "rnn"}]}))
>>> params, x = init_params(graph, 0, "float64"), np.random.default_rng(0).normal(size=(5, 2))
>>> stepper = Stepper(graph, params, "float64")
>>> stepped = np.stack([stepper.step({"x": x_t[np.newaxis]})["o"][0] for x_t in x])
>>> bool(np.allclose(stepped, run(graph, params, x, dtype="float64")["o"]))
True
>>> sorted(stepper.state)
['rnn.h']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np

from composer.dtypes import check_dtype
from composer.engine.inputs import check_given, is_given
from composer.engine.pipeline import plan_for_steps
from composer.engine.plan import Plan, Vector, bind_params, carry_sizes, preactivation_shape
from composer.engine.tokens import check_ids, one_hot_ids, token_vocab
from composer.engine.walk import Walk, start_values
from composer.errors import DataError, SpecError
from composer.finite import check_values
from composer.graph.features import refuse_extended
from composer.kinds import ACTIVATIONS, KINDS, fused
from composer.spec.windows import window_bounds

__all__ = ["Stepper", "state_keys", "check_steppable", "step_plan", "run_stepped"]


def check_steppable(graph: nx.MultiDiGraph) -> None:
    """Refuse (SpecError) a network that cannot run one step at a time: a backward or
    bidirectional layer, a layer present at some steps only, a hand-over of a state, or a
    tapped delay line (whose past inputs a step would have to carry)."""
    refuse_extended(graph, "stepping one step at a time")
    for _, data in graph.nodes(data=True):
        if data["role"] in ("input", "output"):
            continue
        path = data.get("path", ())
        if data.get("lag", 1) < 0:
            raise SpecError(
                f"`{data['layer']}` runs backward in time, so it cannot be stepped one step "
                "at a time",
                path,
            )
        if window_bounds(data["window"]) != (None, None):
            raise SpecError(
                f"`{data['layer']}` exists at steps `{data['window']}` only; a network "
                "stepped one step at a time has every layer at every step",
                path + ("active",),
            )
        if data.get("initial_state") is not None:
            raise SpecError(
                f"`{data['layer']}` starts from another layer's last state; a network "
                "stepped one step at a time carries its own states instead",
                path + ("initial_state",),
            )


def step_plan(graph: nx.MultiDiGraph) -> tuple[nx.MultiDiGraph, Plan]:
    """(the graph as stepped, the plan of its one step): every input and output present at
    every step (the caller says which it gives); a network that cannot step refused."""
    check_steppable(graph)
    graph = graph.copy()
    for name, role in graph.nodes(data="role"):
        if role in ("input", "output"):
            graph.nodes[name]["window"] = ":"
    return graph, plan_for_steps(graph, 1)


def _carries(v: Vector) -> tuple[str, ...]:
    return KINDS[v.kind].carries if v.role == "state" else ("h",)


def state_keys(v: Vector) -> list[str]:
    """The state keys of a vector: `<layer>.h` (and `<layer>.c`) for a recurrent state,
    its own id (`gen.y`) for a value read back in time."""
    if v.role != "state":
        return [v.name]
    layer = v.name.rsplit(".", 1)[0]
    return [f"{layer}.{carry}" for carry in _carries(v)]


class Stepper:
    """A network's state and one step at a time (`step`); `state` by key, settable.

    `state[key]` is (B, size) for a value read one step back, (B, k, size) when read up
    to k steps back (oldest first). Steps before the first read as zeros.
    """

    def __init__(self, graph: nx.MultiDiGraph, params: Mapping[str, np.ndarray], dtype="float32"):
        self._walk = _OneStep(graph, params, dtype)

    def step(
        self, inputs: Mapping[str, np.ndarray], batch: int | None = None
    ) -> dict[str, np.ndarray]:
        """One step: `{output: (B, size)}` from `{input: (B, F)}` (or (B,) ids for a token
        input); an input left out is absent at this step. `batch` gives B when no input
        does (a generator's later steps)."""
        return self._walk.advance(inputs, batch)

    def expect(self, item_steps: int) -> None:
        """Say how many item-steps (batch items x steps) are coming: enough of them load
        the optional compiled steps (`composer.kinds.fused`), as a long `run` does."""
        plan = self._walk.plan
        kinds = {KINDS[v.kind] for v in plan.vectors.values() if v.role == "state"}
        fused.prepare(item_steps, kinds=kinds)

    def select(self, rows: Sequence[int] | np.ndarray) -> None:
        """Keep the batch items `rows` of the state, in that order (repeats allowed): beam
        search continues each kept beam from its parent's state."""
        walk = self._walk
        rows = np.asarray(rows, dtype=np.intp)
        for name, held in walk.past.items():
            walk.past[name] = type(held)(([c[rows] for c in step] for step in held), held.maxlen)
        walk._start_work(len(rows))

    def replace_last(self, name: str, value: np.ndarray) -> None:
        """Put `value` (B, size) in place of vector `name`'s last step, as the next step
        will read it: a generator feeds back the token it chose, not its probabilities."""
        held = self._walk.past.get(name)
        if not held:
            raise DataError(f"no step of `{name}` yet to replace")
        held[-1] = [np.asarray(value, dtype=self._walk.dtype)]

    @property
    def state(self) -> dict[str, np.ndarray]:
        """What the next step reads of the past, by key (zeros before the first step)."""
        return self._walk.state()

    @state.setter
    def state(self, given: Mapping[str, np.ndarray]) -> None:
        self._walk.load_state(given)

    def load_state(self, given: Mapping[str, np.ndarray], where: str = "state") -> None:
        """Start from a state (`state`'s keys and shapes); refused in one line if any key
        is missing, unknown or mis-shaped."""
        self._walk.load_state(given, where)

    def reset(self) -> None:
        """Forget every step: the next starts from zeros."""
        self._walk.reset()

    @property
    def batch(self) -> int | None:
        """The batch size B the state holds (None before the first step or state)."""
        return self._walk.batch

    @property
    def steps(self) -> int:
        """How many steps were taken since the start (or the state was set)."""
        return self._walk.steps_done

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output names, in spec order."""
        return self._walk.plan.outputs


class _OneStep(Walk):
    """The walk over the plan of one step, with the past of the vectors read back."""

    def __init__(self, graph: nx.MultiDiGraph, params: Mapping[str, np.ndarray], dtype="float32"):
        graph, plan = step_plan(graph)
        self.graph, self.dtype = graph, np.dtype(check_dtype(dtype))
        self.bound = bind_params(graph, params, dtype)
        weights = {n: self.bound.weights(v) for n, v in plan.vectors.items() if v.kind}
        super().__init__(plan, {n: w.feeds for n, w in weights.items()})
        self.weights = weights
        self.depth = {}  # how many past steps of each vector the next step may read
        for name, v in plan.vectors.items():
            lag = v.recurrence.lag if v.recurrence else 0
            if max(v.history, lag) > 0:
                self.depth[name] = max(v.history, lag)
        self.vocab = token_vocab(graph)
        self.batch = None
        self.past: dict[str, deque] = {}
        self.now: dict[str, list[np.ndarray]] = {}
        self.pre: dict[str, np.ndarray] = {}
        self.work: dict[str, tuple] = {}
        self.steps_done = 0
        self.starts: dict[str, np.ndarray] = {}  # start states given with the first step

    # -- the state -----------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for name, depth in self.depth.items():
            v = self.plan.vectors[name]
            held = self._held(name)
            for k, key in enumerate(state_keys(v)):
                values = np.stack([step[k] for step in held], axis=1)  # (B, depth, size)
                out[key] = values[:, 0] if depth == 1 else values
        return out

    def load_state(self, given: Mapping[str, np.ndarray], where: str = "state") -> None:
        expected = {}
        for name, depth in self.depth.items():
            v = self.plan.vectors[name]
            for key in state_keys(v):
                expected[key] = (v, depth)
        missing = [k for k in expected if k not in given]
        extra = [k for k in given if k not in expected]
        if missing or extra:
            parts = [f"missing {', '.join(missing)}"] if missing else []
            parts += [f"unknown {', '.join(extra)}"] if extra else []
            raise DataError(f"{where}: {'; '.join(parts)}; expected keys {', '.join(expected)}")
        check_values({k: given[k] for k in expected}, self.dtype.name, where)
        batches = {np.shape(given[k])[0] for k in expected if np.ndim(given[k])}
        if len(batches) != 1:
            raise DataError(f"{where}: the arrays disagree on the batch size B")
        (batch,) = batches
        self._start(batch)
        for name, depth in self.depth.items():
            v = self.plan.vectors[name]
            carried = []
            for key, size in zip(state_keys(v), carry_sizes(v, _carries(v))):
                value = np.asarray(given[key])
                shape = (batch, size) if depth == 1 else (batch, depth, size)
                if value.shape != shape or value.dtype.kind not in "iuf":
                    raise DataError(
                        f"{where}: key {key!r}: expected {shape} numbers, got {value.dtype} "
                        f"{value.shape}"
                    )
                carried.append(value.reshape(batch, depth, size).astype(self.dtype))
            self.past[name] = deque(
                ([c[:, k].copy() for c in carried] for k in range(depth)), maxlen=depth
            )

    def reset(self) -> None:
        self.batch, self.past, self.steps_done = None, {}, 0

    def _start(self, batch: int) -> None:
        self.past, self.steps_done = {}, 0
        self._start_work(batch)

    def _start_work(self, batch: int) -> None:
        self.batch = batch
        for name, v in self.plan.vectors.items():
            if v.role == "state":
                self.work[name] = KINDS[v.kind].workspace(batch, v.units, self.dtype)

    def _held(self, name: str) -> list[list[np.ndarray]]:
        """The vector's last `depth` steps, oldest first, zeros where not yet computed."""
        v, depth = self.plan.vectors[name], self.depth[name]
        held = list(self.past.get(name, ()))
        zero = [np.zeros((self.batch or 1, n), self.dtype) for n in carry_sizes(v, _carries(v))]
        return [zero] * (depth - len(held)) + held

    def _back(self, name: str, lag: int) -> list[np.ndarray] | None:
        """The values of `name` `lag` steps back (0: this step), None where absent."""
        if lag == 0:
            return self.now.get(name)
        held = self.past.get(name, ())
        return held[-lag] if lag <= len(held) else None

    # -- one step ------------------------------------------------------------------------

    def advance(self, inputs: Mapping[str, np.ndarray], batch: int | None = None) -> dict:
        inputs = dict(inputs)
        names = self.plan.inputs + self.plan.given
        unknown = [name for name in inputs if name not in names]
        if unknown:
            raise DataError(f"step: unknown input {', '.join(unknown)}; inputs: {', '.join(names)}")
        starts = {name: inputs.pop(name) for name in self.plan.given if name in inputs}
        for name, value in inputs.items():  # one item's step, (F,): a batch of one
            if name not in self.vocab and np.ndim(value) == 1:
                value, size = np.asarray(value), self.graph.nodes[name]["size"]
                if len(value) != size:
                    raise DataError(
                        f"input {name!r}: expected a step of shape ({size},) for one item or "
                        f"(B, {size}), got {value.dtype} {value.shape}"
                    )
                inputs[name] = value[np.newaxis]
        batches = {np.shape(a)[0] for a in [*inputs.values(), *starts.values()] if np.ndim(a)}
        batches |= {batch} if batch is not None else set()
        batch = batches.pop() if len(batches) == 1 else self.batch
        if batches or batch is None:
            raise DataError("step: give the inputs of one batch, (B, F) arrays or (B,) ids")
        first = self.batch is None
        if first:
            self._start(batch)
        elif batch != self.batch:
            raise DataError(f"step: batch of {batch} items, but the state holds {self.batch}")
        try:
            self._take_starts(starts)
            self.given, self.now, self.outputs = inputs, {}, {}
            self.forward(0, 1)
        except DataError:
            if first:  # a refused first step leaves the stepper as it was: unstarted
                self.reset()
            raise
        for name, depth in self.depth.items():
            self.past.setdefault(name, deque(maxlen=depth)).append(self.now[name])
        self.steps_done += 1
        return self.outputs

    def _take_starts(self, starts: Mapping[str, np.ndarray]) -> None:
        """The start states given with the first step (`initial_state: h0`), checked; kept
        for a dilated layer's first k steps. Refused when missing at the first step, or
        given at a later one (the state is then the layers' own)."""
        fresh = self.steps_done == 0 and not self.past
        if not fresh:
            if starts:
                raise DataError(
                    f"step: {', '.join(map(repr, starts))} gives a start state, read before the "
                    "first step only; this stepper has already stepped (or was given a state)"
                )
            return
        missing = [name for name in self.plan.given if name not in starts]
        if missing:
            name = missing[0]
            raise DataError(
                f"step: the first step needs the start state {name!r}, shape "
                f"({self.batch}, {self.graph.nodes[name]['size']}), with the inputs"
            )
        self.starts = {}
        for name, value in starts.items():
            value = np.asarray(value)
            check_given(f"input {name!r}", value, self.graph.nodes[name]["size"], self.batch)
            self.starts[name] = value.astype(self.dtype)

    def visit(self, group, vectors, start: int, stop: int) -> None:
        if group.kind == "input":
            self.read_input(vectors[0], 0, 1)
        elif group.kind == "output":
            self.emit(vectors[0], 0, 1)
        else:  # every group one step, vector by vector in within-step order
            self.loop(vectors, 0, 1)

    def read_input(self, v: Vector, start: int, stop: int) -> None:
        given = self.given.get(v.name)
        if given is None:
            self.now[v.name] = [np.zeros((self.batch, v.size), self.dtype)]
            return
        given = np.asarray(given)
        if v.name in self.vocab:
            ids = check_ids(f"input {v.name!r}", given.reshape(self.batch, 1), self.vocab[v.name])
            table = self.bound.arrays.get(f"{v.name}.E")
            value = table[ids[:, 0]] if table is not None else None
            if value is None:
                value = one_hot_ids(ids[:, 0], self.vocab[v.name], self.dtype)
        else:
            if given.shape != (self.batch, v.size) or given.dtype.kind not in "biuf":
                raise DataError(
                    f"input {v.name!r}: expected a step of shape ({self.batch}, {v.size}), "
                    f"got {given.dtype} {given.shape}"
                )
            value = given.astype(self.dtype)
        self.now[v.name] = [value]

    def emit(self, v: Vector, start: int, stop: int) -> None:
        out = np.zeros((self.batch, v.size), self.dtype)
        for feed in v.feeds:
            out[:, feed.rows[0] : feed.rows[1]] = self.now[feed.source][0]
        self.outputs[v.name] = out

    def project(self, v: Vector, start: int, stop: int, feeds) -> None:
        pre = np.zeros(preactivation_shape(v, self.batch), self.dtype)
        bias = self.weights[v.name].bias
        if bias is not None:
            pre += bias
        for feed, weight in feeds:
            values = self._back(feed.source, feed.lag)
            if values is not None:
                pre += values[0] @ weight
        self.pre[v.name] = pre

    def start_state(self, v: Vector, start: int, stop: int, direction: int) -> None:
        pass  # the past holds the state

    def computed(self, name: str, step: int) -> bool:
        return self._back(name, -step) is not None

    def preactivation(self, v: Vector, step: int, start: int) -> np.ndarray:
        return self.pre[v.name]

    def add_product(self, x_t: np.ndarray, feed, step: int, weight: np.ndarray) -> None:
        x_t += self._back(feed.source, feed.lag - step)[0] @ weight

    def step(self, v: Vector, x_t: np.ndarray, step: int) -> None:
        out = [np.empty((self.batch, n), self.dtype) for n in carry_sizes(v, _carries(v))]
        if v.role != "state":
            ACTIVATIONS[v.activation](x_t, out=out[0])
        else:
            prev = self._back(v.name, v.recurrence.lag)
            if prev is None:  # before its first step: the start-state rule (no hand-over here)
                learned = lambda: self.weights[v.name].initial  # noqa: E731
                given = lambda: self.starts[v.given]  # noqa: E731
                found = start_values(v, _carries(v), None, learned, given)
                prev = [np.zeros_like(o) for o in out]
                for k, name in enumerate(_carries(v)):
                    if name in found:
                        prev[k][...] = found[name]
            bound = self.weights[v.name]
            KINDS[v.kind].forward(
                x_t[np.newaxis],
                [p[np.newaxis] for p in prev],
                [o[np.newaxis] for o in out],
                bound.recurrent,
                bound.extra,
                self.work[v.name],
                v.activation,
            )
        self.now[v.name] = out


def run_stepped(
    graph: nx.MultiDiGraph,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray] | None = None,
    dtype: str = "float32",
    where: str = "state",
    item_steps: Sequence[int] | np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(outputs, final state) of (B, T, ...) inputs run step by step from `state` (zeros
    when None): every input and output at every step, so running a sequence in pieces,
    each starting from the state the last one ended with, gives what running it whole
    does. Outputs are (B, T, size). A start state given with the data (`initial_state: h0`,
    a (B, H) array among the inputs) goes in with the first step; with `state` it must not
    be given (the state holds every layer's start).

    `item_steps`, (B,) ints >= 1, are a padded batch's steps per item: each item's final
    state is the one after its own last step, its outputs are zeros past it, and the
    outputs also hold `<output>.lengths`, as each item run alone gives them."""
    stepper = Stepper(graph, params, dtype)
    if state is not None:
        stepper.load_state(state, where)
    starts = {n: a for n, a in inputs.items() if n in graph and is_given(graph, n)}
    inputs = {n: a for n, a in inputs.items() if n not in starts}
    lengths = {np.shape(a)[1] for a in inputs.values()}
    if len(lengths) != 1:
        raise DataError("inputs: every input needs the same number of steps to run step by step")
    (steps,) = lengths
    batch = {np.shape(a)[0] for a in [*inputs.values(), *starts.values()]}
    if stepper.batch is not None and batch != {stepper.batch}:
        raise DataError(
            f"{where}: holds the state of {stepper.batch} items, but the inputs are a batch "
            f"of {', '.join(map(str, sorted(batch)))}; give a state of the same batch"
        )
    ends = None if item_steps is None else np.asarray(item_steps, dtype=np.int64)
    if ends is not None:
        if ends.shape != (next(iter(batch)),) or ends.min() < 1 or ends.max() > steps:
            raise DataError(f"lengths: expected {batch} items of 1..{steps} steps, got {ends}")
        steps = int(ends.max())
    vocab = token_vocab(graph)
    out: dict[str, list] = {}
    final: dict[str, np.ndarray] = {}
    for t in range(steps):
        step = {n: a[:, t] if n in vocab else a[:, t, :] for n, a in inputs.items()}
        step.update(starts if t == 0 else {})
        for name, value in stepper.step(step).items():
            out.setdefault(name, []).append(value)
        if ends is not None:
            _keep_finished(final, stepper.state, np.flatnonzero(ends == t + 1))
    outputs = {name: np.stack(values, axis=1) for name, values in out.items()}
    if ends is None:
        return outputs, stepper.state
    past_end = np.arange(steps)[np.newaxis, :] >= ends[:, np.newaxis]
    for name in list(outputs):
        outputs[name][past_end] = 0
        outputs[f"{name}.lengths"] = ends.copy()
    return outputs, final


def _keep_finished(final: dict, state: Mapping[str, np.ndarray], rows: np.ndarray) -> None:
    """Copy the state of the items that have just taken their last step."""
    if not len(rows):
        return
    for key, value in state.items():
        final.setdefault(key, np.zeros_like(value))[rows] = value[rows]
