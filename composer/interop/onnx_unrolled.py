"""Any network in ONNX at a fixed T: the unrolled graph written out, one group of nodes per
(vector, step) that the outputs need, in the order the executor's plan computes them.

Weights are initializers stored once and read by every step, so the file grows with T by
nodes only. A state's step is its kind's one `step`, on the builder's nodes; a readout or
dense layer is `MatMul` + `Add` + its activation; a source absent at a step (outside its
window, or before step 0) adds nothing, and a recurrence that reaches outside its layer's
steps reads the initial state: zeros, a trained or given one, or the last state another
layer hands over.
"""

from __future__ import annotations

from composer.engine.merge import merge_values
from composer.engine.plan import Plan, compile_plan
from composer.engine.walk import Walk, start_values
from composer.graph.unrolled import unroll
from composer.interop.onnx_graph import Builder
from composer.interop.onnx_plain import encoded, input_info, sorted_nodes
from composer.kinds import KINDS

__all__ = ["write_unrolled"]


def write_unrolled(g: Builder, folded, params, steps: int):
    """Fill `g` with the network unrolled to `steps`; its graph inputs and outputs."""
    plan = compile_plan(unroll(folded, steps))
    return _Writer(g, plan, params).write()


class _Writer(Walk):
    """The values of one unrolled graph: `values[(vector, t)]` are the names of what
    the vector carries at step t (its value first), written in the plan's order
    (`Walk`, the schedule the executor and the training tape follow)."""

    def __init__(self, g: Builder, plan: Plan, params):
        super().__init__(
            plan, {name: [(f, None) for f in v.feeds] for name, v in plan.vectors.items()}
        )
        self.g, self.params = g, params
        self.outputs: list = []
        self.values: dict[tuple[str, int], tuple[str, ...]] = {}
        self.batch = None
        self.sources: dict[str, str] = {}  # each input as (B, T_in, size) vectors

    def write(self):
        g, plan, folded = self.g, self.plan, self.plan.folded
        inputs = []
        for name in sorted_nodes(folded, "input"):
            inputs.append(input_info(g, folded, name, plan.steps))
            self.sources[name] = encoded(g, folded, self.params, name)
            if self.batch is None:
                self.batch = g.dim(name, 0)
        self.forward(0, plan.steps)
        return inputs, self.outputs

    # -- the walk's hooks: every vector at its steps, in order ----------------------------

    def read_input(self, v, start: int, stop: int) -> None:
        self.loop([v], start, stop)

    def feedforward(self, v, start: int, stop: int) -> None:
        self.loop([v], start, stop)

    def scan(self, v, start: int, stop: int, direction: int) -> None:
        for t in range(start, stop) if direction > 0 else range(stop - 1, start - 1, -1):
            if v.present[t]:
                self.values[(v.name, t)] = self.compute(v, t)

    def loop(self, vectors, start: int, stop: int) -> None:
        for t in range(start, stop):
            for v in vectors:
                if v.present[t]:
                    self.values[(v.name, t)] = self.compute(v, t)

    def available(self, name: str, step: int) -> bool:
        vector = self.plan.vectors.get(name)
        return vector is not None and 0 <= step < self.plan.steps and bool(vector.present[step])

    def weight(self, key: str, rows: tuple[int, int]) -> str:
        array = self.params[key]
        if rows == (0, len(array)):
            return self.g.weight(key, array)
        return self.g.weight(f"{key}[{rows[0]}:{rows[1]}]", array[rows[0] : rows[1]])

    def compute(self, v, t: int) -> tuple[str, ...]:
        g = self.g
        if v.role == "input":
            offset = self.plan.window(v.name).start
            source = self.sources[v.name]
            return (g.op("Gather", [source, g.const(t - offset)], axis=1, hint=f"{v.name}@{t}"),)
        if v.role == "merge":  # a bidirectional layer's two directions, mean or product
            forward, backward = (self.values[(feed.source, t)][0] for feed in v.feeds)
            return (merge_values(self.plan.folded.nodes[v.name]["merge"], forward, backward, g),)
        total = None
        for feed in v.feeds:
            if self.available(feed.source, t - feed.lag):
                source = self.values[(feed.source, t - feed.lag)][0]
                product = g.matmul(source, self.weight(feed.weight, feed.rows))
                total = product if total is None else g.add(total, product)
        biases = tuple(g.weight(key, self.params[key]) for key in v.biases)
        if v.role != "state":
            pre = total if total is not None else g.zeros(self.batch, v.size)
            return (g.activation(v.activation, g.add(pre, *biases)),)
        kind = KINDS[v.kind]
        recurrence = v.recurrence
        recurrent = self.weight(recurrence.weight, (0, v.size))
        prev = self.previous(v, kind, t - recurrence.lag)
        return tuple(kind.step(g, total, prev, kind.step_weights(recurrent, biases), v.activation))

    def previous(self, v, kind, step: int) -> tuple[str, ...]:
        """What a state's recurrence reads at `step`: its value there, or its initial state."""
        if step not in v.initial:
            return self.values[(v.name, step)]

        def learned():  # a trained initial state: h from `<layer>.s0`, repeated per item
            s0 = self.g.weight(v.learned, self.params[v.learned])
            return self.g.initial(s0, self.batch, v.size)

        given = lambda: v.given  # noqa: E731  (each item's own start state h, a graph input)
        given = start_values(v, kind.carries, self.final, learned, given, self.g)
        return tuple(  # h has the state's size, the other carries one number per unit
            given[name]
            if name in given
            else self.g.zeros(self.batch, v.size if name == "h" else v.units)
            for name in kind.carries
        )

    def final(self, origin: str, step: int) -> dict:
        """{carry: value} of a state at `step`: the final values it hands over."""
        names = KINDS[self.plan.vectors[origin].kind].carries
        return dict(zip(names, self.values[(origin, step)]))

    def emit(self, v, start: int = 0, stop: int = 0) -> None:
        """An output's steps, each the concatenation of its sources, stacked on axis 1."""
        g, window = self.g, self.plan.window(v.name)
        feeds = sorted(v.feeds, key=lambda feed: feed.rows)
        steps = []
        for t in window:
            parts: dict = {}  # by rows: the two directions of `merge: sum` share theirs
            for feed in feeds:
                parts[feed.rows] = g.add(parts.get(feed.rows), self.values[(feed.source, t)][0])
            steps.append(g.unsqueeze(g.concat(list(parts.values()), axis=-1), [1]))
        g.name_as(g.concat(steps, axis=1), v.name)
        self.outputs.append(g.value_info(v.name, ["B", len(window), v.size]))
