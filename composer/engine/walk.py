"""The walk over a plan, written once: the forward pass of the executor and of training.

Both passes visit the plan's groups in order and do the same things with them: read an
input, emit an output, project and activate a feedforward vector, run a recurrent layer's
time loop, and step a feedback loop through time vector by vector, with the feeds from
inside the loop added step by step and those from outside projected ahead. `Walk` holds
that schedule; a pass supplies how it stores values (the hooks below): the executor in
sliding chunks of steps, the training tape whole, with what its backward pass needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from composer.engine.merge import merge_values
from composer.engine.plan import Feed, Group, Plan, Vector
from composer.kinds.ops import NUMPY, Ops

__all__ = ["Walk", "Weighted", "handed_carries", "handed_values", "start_values"]

#: a feed and the weight rows it multiplies its source by
Weighted = tuple[Feed, np.ndarray]


def handed_carries(target: Sequence[str], origin: Sequence[str]) -> list[str]:
    """The carried arrays an `initial_state` hand-over passes: h always, and each other
    array both kinds carry (an LSTM's c between two LSTMs); the rest start at zero."""
    return [name for name in target if name == "h" or name in origin]


def handed_values(v: Vector, carries: Sequence[str], values, ops: Ops = NUMPY) -> dict:
    """`{carry: value}` a state `v` with `carries` starts from: its hand-over's final
    carried values (`values(state, step)` -> {carry: value}), a bidirectional source's two
    directions merged by its `merge` (in the operations `ops`); the carries not handed
    over are left out (zeros)."""
    given = values(*v.handover)
    names = handed_carries(carries, list(given))
    if v.handover_rev is None:
        return {name: given[name] for name in names}
    other = values(*v.handover_rev)
    return {name: merge_values(v.merge, given[name], other[name], ops) for name in names}


def start_values(v: Vector, carries: Sequence[str], final, learned=None, given=None,
                 ops: Ops = NUMPY) -> dict:  # fmt: skip
    """The start-state rule, written once for every pass: `{carry: value}` a state `v`
    (with `carries`) starts from at its first steps, by its `initial_state`: h given with
    the data (`given()`, each item's), h learned (`learned()`, its s0), or a hand-over's
    final carried values (`final(state, step)`; a bidirectional source's two directions
    merged in `ops`); none: zeros. The carries left out start at zero (an LSTM's c, unless
    an LSTM hands it over). `learned` and `given` are called only when the state has one."""
    if v.given:
        return {"h": given()}
    if v.learned:
        return {"h": learned()}
    if v.handover is not None:
        return handed_values(v, carries, final, ops)
    return {}


class Walk:
    """A forward pass over a plan's groups, in plan order; subclasses store the values.

    `feeds[name]` are a vector's weighted feeds (every in-edge but its own recurrence).
    """

    def __init__(self, plan: Plan, feeds: Mapping[str, Sequence[Weighted]]):
        self.plan, self.feeds, self.steps = plan, feeds, plan.steps
        self.groups = []  # each group with its vectors and the steps any of them is at
        for group in plan.groups:
            vectors = [plan.vectors[name] for name in group.vectors]
            span = min(v.span[0] for v in vectors), max(v.span[1] for v in vectors)
            self.groups.append((group, vectors, span))

    def forward(self, start: int, stop: int) -> None:
        """Every group over the steps start..stop-1 (each within its own span)."""
        for group, vectors, span in self.groups:
            a, b = max(start, span[0]), min(stop, span[1])
            if a < b:
                self.visit(group, vectors, a, b)

    def visit(self, group: Group, vectors: list[Vector], start: int, stop: int) -> None:
        """One group over steps start..stop-1, by its kind."""
        v = vectors[0]
        if group.kind == "input":
            self.read_input(v, start, stop)
        elif group.kind == "output":
            self.emit(v, start, stop)
        elif group.kind == "feedforward":
            self.feedforward(v, start, stop)
        elif group.kind == "scan":
            self.scan(v, start, stop, group.direction)
        else:
            self.loop(vectors, start, stop)

    def split(self, vectors: list[Vector]) -> tuple[dict, dict]:
        """Each vector's feeds from inside its group, and from outside it."""
        members = {v.name for v in vectors}
        inside, outside = {}, {}
        for v in vectors:
            feeds = self.feeds[v.name]
            inside[v.name] = [(f, w) for f, w in feeds if f.source in members]
            outside[v.name] = [(f, w) for f, w in feeds if f.source not in members]
        return inside, outside

    def computed(self, name: str, step: int) -> bool:
        """Whether vector `name` is computed at `step` (so a feed may read it there)."""
        return 0 <= step < self.steps and bool(self.plan.vectors[name].present[step])

    def loop(self, vectors: list[Vector], start: int, stop: int) -> None:
        """Vectors that feed each other across time: step by step, in within-step order."""
        inside, outside = self.split(vectors)
        for v in vectors:
            self.project(v, start, stop, outside[v.name])
            if v.role == "state":
                self.start_state(v, start, stop, 1)
        for step in range(start, stop):
            for v in vectors:
                if not v.present[step]:
                    continue
                x_t = self.preactivation(v, step, start)
                for feed, weight in inside[v.name]:
                    if self.computed(feed.source, step - feed.lag):
                        self.add_product(x_t, feed, step, weight)
                self.step(v, x_t, step)

    # -- what a pass supplies -------------------------------------------------------------

    def read_input(self, v: Vector, start: int, stop: int) -> None:
        raise NotImplementedError

    def emit(self, v: Vector, start: int, stop: int) -> None:
        raise NotImplementedError

    def feedforward(self, v: Vector, start: int, stop: int) -> None:
        raise NotImplementedError

    def scan(self, v: Vector, start: int, stop: int, direction: int) -> None:
        raise NotImplementedError

    def project(self, v: Vector, start: int, stop: int, feeds: Sequence[Weighted]) -> None:
        """A loop member's pre-activation over start..stop-1 from `feeds` (outside ones)."""
        raise NotImplementedError

    def start_state(self, v: Vector, start: int, stop: int, direction: int) -> None:
        """A state's initial values (zeros or a handed-over state), before it starts."""
        raise NotImplementedError

    def preactivation(self, v: Vector, step: int, start: int) -> np.ndarray:
        """A loop member's pre-activation at `step`, (B, columns), to add to in place."""
        raise NotImplementedError

    def add_product(self, x_t: np.ndarray, feed: Feed, step: int, weight: np.ndarray) -> None:
        """x_t += (the feed's source at step `step` - its lag) @ weight."""
        raise NotImplementedError

    def step(self, v: Vector, x_t: np.ndarray, step: int) -> None:
        """Compute a loop member at `step` from its summed pre-activation `x_t`."""
        raise NotImplementedError
