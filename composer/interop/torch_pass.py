"""One forward pass of the PyTorch module over a plan: a recurrent layer through its
`torch.nn` module where it can (`native_layer`), else step by step, each step the kind's
one `step` on tensors (`composer.interop.torch_ops`)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from composer.engine.batches import input_steps
from composer.engine.merge import merge_values
from composer.engine.plan import Plan, Vector
from composer.engine.walk import Walk, start_values
from composer.interop import need
from composer.interop.native import TORCH_MODULES
from composer.interop.torch_ops import TORCH
from composer.kinds import KINDS
from composer.training.dropout import pass_masks
from composer.training.losses import logit_source

torch = need("torch")
nn = torch.nn

__all__ = ["TorchPass", "native_layer", "NATIVE_ELEMENTS"]

#: the most gate values (steps x batch x gates x units) one call of a `torch.nn` recurrent
#: module computes: 256 MiB in float32, well inside oneDNN's 2 GiB; longer sequences run
#: in chunks with the state carried over (the same result)
NATIVE_ELEMENTS = 2**26


def native_layer(
    graph: nx.MultiDiGraph, plan: Plan, v: Vector, bptt: int | None = None
) -> tuple[str, ...] | None:
    """The state vectors of `v`'s layer, forward first, when the layer runs through its
    `torch.nn` module (see the module's notes), else None. With truncated BPTT only a
    forward layer does (it runs in blocks, its state detached in between)."""
    if v.role != "state":
        return None
    layer = graph.nodes[v.name]["layer"]
    states = [n for n in plan.vectors if graph.nodes[n].get("layer") == layer]
    states = [n for n in states if plan.vectors[n].role == "state"]
    native = TORCH_MODULES.get(v.kind)
    if native is None or native.options(v.activation) is None:
        return None
    weight = KINDS[v.kind].input_weight
    own = {f"{layer}.{weight}", f"{layer}.{weight}_rev"}
    handed = {h[0] for u in plan.vectors.values() for h in (u.handover, u.handover_rev) if h}
    if handed & set(states):  # another layer starts from its state at some step: a loop
        return None
    lags = sorted(graph.nodes[n]["lag"] for n in states)
    if lags not in ([1], [-1, 1]) or (bptt is not None and lags != [1]):
        return None
    for name in states:
        s = plan.vectors[name]
        if not s.present.all() or s.handover is not None or s.window != (0, plan.steps):
            return None
        if not s.feeds:  # a layer without an input: its module has no place for that
            return None
        for feed in s.feeds:
            source = plan.vectors[feed.source]
            if feed.weight not in own or feed.lag != 0 or not source.present.all():
                return None
    return tuple(sorted(states, key=lambda n: graph.nodes[n]["lag"], reverse=True))


class _Values:
    """A vector's values: a (B, T, size) tensor over every step, or step by step."""

    def __init__(self, full=None):
        self.full, self.steps, self.carries = full, {}, {}

    def at(self, t: int):
        return self.full[:, t] if self.full is not None else self.steps[t]

    def over(self, steps: list[int]):
        if self.full is not None:
            return self.full[:, steps[0] : steps[-1] + 1]
        return torch.stack([self.steps[t] for t in steps], 1)


class TorchPass(Walk):
    """One forward pass over a plan, in the plan's group order (`Walk`, the schedule the
    executor and the training tape follow): a recurrent layer through its `torch.nn`
    module where it can, else step by step, each step the kind's one `step` on tensors."""

    def __init__(self, module, plan, arrays, bptt, logits, per_item=None, dropout=None):
        super().__init__(
            plan, {name: [(f, None) for f in v.feeds] for name, v in plan.vectors.items()}
        )
        self.module, self.bptt, self.logits = module, bptt, logits
        self.T, self.weights, self.per_item = plan.steps, module.our_weights(), per_item
        self.arrays, self.done = arrays, set()  # `done`: both directions of a native layer
        self.values: dict[str, _Values] = {name: _Values() for name in plan.vectors}
        self.raw = {}  # pre-activations of softmax vectors, for a cross-entropy
        self.batch = next(iter(arrays.values())).shape[0]
        self.starts = {name: arrays[name] for name in plan.given}  # (B, H) start states
        self.masks, self.recurrent_masks = {}, {}  # the layers' dropout, training only
        if dropout is not None:
            x = next(iter(arrays.values()))
            feeds, recurrent = pass_masks(plan, dropout, self.batch, np.float64)
            as_tensor = lambda m: torch.as_tensor(m, dtype=x.dtype, device=x.device)  # noqa: E731
            self.masks = {feed: as_tensor(mask) for feed, mask in feeds.items()}
            self.recurrent_masks = {name: as_tensor(m) for name, m in recurrent.items()}
        self.forward(0, self.T)

    # -- the walk's hooks -----------------------------------------------------------------

    def read_input(self, v: Vector, start: int, stop: int) -> None:
        name, plan = v.name, self.plan
        x, first = self.arrays[name], plan.window(name).start
        if self.per_item is not None:  # inputs read as zero past each item's end
            stops = [input_steps(self.module.graph, name, int(t)) for t in self.per_item]
            keep = (
                torch.arange(x.shape[1], device=x.device)[None, :]
                < torch.tensor(stops, device=x.device)[:, None]
            )
            x = x * keep[..., None]
        self.values[name] = _Values(x) if first == 0 and x.shape[1] == self.T else _Values()
        if self.values[name].full is None:
            for i, t in enumerate(plan.window(name)):
                self.values[name].steps[t] = x[:, i]

    def emit(self, v: Vector, start: int, stop: int) -> None:
        """Outputs are gathered at the end (`outputs`)."""

    def feedforward(self, v: Vector, start: int, stop: int) -> None:
        if v.role == "merge":
            self._merge(v)
        else:
            self._feedforward(v)

    def scan(self, v: Vector, start: int, stop: int, direction: int) -> None:
        if v.name in self.done:
            return
        layer = self._native_layer(v)
        if layer is not None:
            self._native(layer)
            self.done |= set(layer)
        else:
            self._loop([v], direction)

    def loop(self, vectors: list[Vector], start: int, stop: int) -> None:
        self._loop(vectors, 1)

    @staticmethod
    def all_native(module, plan) -> bool:
        """Whether every recurrent layer of the plan runs natively."""
        groups = [g for g in plan.groups if g.kind not in ("input", "output", "feedforward")]
        return all(
            g.kind == "scan" and native_layer(module.graph, plan, plan.vectors[g.vectors[0]])
            for g in groups
        )

    # -- native ---------------------------------------------------------------------------

    def _native_layer(self, v: Vector) -> tuple[str, ...] | None:
        states = native_layer(self.module.graph, self.plan, v, self.bptt)
        if states and any(name in self.recurrent_masks for name in states):
            return None  # variational dropout on the recurrence: the cell loop applies it
        if states and (len(states) > 1 or self.per_item is not None):
            if self.T > self._chunk(v):  # too long for one call, and not cut in chunks
                return None  # (both directions, or packed): the cell loop, step by step
        return states

    def _chunk(self, v: Vector) -> int:
        """The most steps one call of a layer's `torch.nn` module takes: oneDNN fails
        ("could not create a primitive") once a call's gates pass 2**31 bytes."""
        gates = KINDS[v.kind].gates * v.size * self.batch
        return max(1, NATIVE_ELEMENTS // gates)

    def _dropped(self, feed, x, steps):
        """What a feed reads at `steps` (x: (B, len(steps), rows)), its dropout applied."""
        mask = self.masks.get(feed)
        if mask is None:
            return x
        return x * mask[list(steps)].transpose(0, 1)  # mask[t]: what step t reads

    def _native(self, states: tuple[str, ...]) -> None:
        """A layer through its `torch.nn` module, over all steps (packed with lengths)."""
        forward = self.plan.vectors[states[0]]
        rnn = getattr(self.module, self.module.graph.nodes[states[0]]["layer"]).rnn
        every = range(self.T)
        parts = _by_rows(forward.feeds, lambda f: self._dropped(f, self._over(f.source), every))
        x = torch.cat(parts, -1) if len(parts) > 1 else parts[0]
        state = self._start(forward)
        if self.per_item is not None:
            lengths = torch.as_tensor(self.per_item, dtype=torch.int64)
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths, batch_first=True, enforce_sorted=False
            )
            out, _ = rnn(packed, state)
            out = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=self.T)[0]
        else:  # in chunks, the state carried (exact); detached every bptt steps
            block, chunk = self.bptt or self.T, self._chunk(forward)
            parts = []
            for a in range(0, self.T, block):
                for b in range(a, min(a + block, self.T), chunk):
                    part, state = rnn(x[:, b : min(b + chunk, a + block)], state)
                    parts.append(part)
                if self.bptt is not None:
                    state = (
                        tuple(s.detach() for s in state)
                        if isinstance(state, tuple)
                        else (state.detach())
                    )
            out = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        size = forward.size
        for i, name in enumerate(states):
            self.values[name] = _Values(out[..., i * size : (i + 1) * size])

    def _start(self, v: Vector):
        """A layer's trained or given initial state as its `torch.nn` module's (h0[, c0]),
        or None (zeros)."""
        learned = lambda: self.weights[v.learned].expand(self.batch, v.size)  # noqa: E731
        found = start_values(v, KINDS[v.kind].carries, None, learned, self._given(v), TORCH)
        if not found:  # zeros (a layer handed a state over runs in the cell loop)
            return None
        h0 = found["h"].unsqueeze(0).contiguous()
        names = KINDS[v.kind].carries
        c0 = h0.new_zeros((1, self.batch, v.units))  # the other carries, per unit (an LSTM's c)
        carries = tuple(h0 if name == "h" else c0 for name in names)
        return carries if len(carries) > 1 else carries[0]

    def _over(self, name: str):
        """A vector's values over all T steps, (B, T, size)."""
        values = self.values[name]
        if values.full is not None and values.full.shape[1] == self.T:
            return values.full
        return values.over(list(range(self.T)))

    # -- feedforward ----------------------------------------------------------------------

    def _merge(self, v: Vector) -> None:
        """A bidirectional layer's merge vector (`merge: mean | mul`) at its steps."""
        steps = np.flatnonzero(v.present).tolist()
        how = self.module.graph.nodes[v.name]["merge"]
        forward, backward = (self.values[feed.source].over(steps) for feed in v.feeds)
        out = merge_values(how, forward, backward, TORCH)
        if steps == list(range(self.T)):
            self.values[v.name] = _Values(out)
        else:
            self.values[v.name] = _Values()
            self.values[v.name].steps = dict(zip(steps, out.unbind(1)))

    def _feedforward(self, v: Vector) -> None:
        """A readout or dense vector over all its steps at once."""
        steps = np.flatnonzero(v.present).tolist()
        pre = None
        for feed in v.feeds:
            source = self.values[feed.source]
            sv = self.plan.vectors[feed.source]
            cols = [t - feed.lag for t in steps]
            ok = [0 <= c < self.T and bool(sv.present[c]) for c in cols]
            if not any(ok):
                continue
            if all(ok) and cols == list(range(cols[0], cols[-1] + 1)):
                x = source.over(cols)
            else:
                zero = self.weights[feed.weight].new_zeros((self.batch, sv.size))
                x = torch.stack([source.at(c) if k else zero for c, k in zip(cols, ok)], 1)
            x = self._dropped(feed, x, steps)
            part = x @ self.weights[feed.weight][feed.rows[0] : feed.rows[1]]
            pre = part if pre is None else pre + part
        for key in v.biases:
            pre = self.weights[key] if pre is None else pre + self.weights[key]
        if pre.dim() < 3:  # a bias alone: every item, every step
            pre = pre.expand(self.batch, len(steps), v.size)
        out = _activate(pre, v.activation)
        full = steps == list(range(self.T))
        if v.activation in ("softmax", "sigmoid"):
            self.raw[v.name] = pre if full else dict(zip(steps, pre.unbind(1)))
        self.values[v.name] = _Values(out if full else None)
        if not full:
            self.values[v.name].steps = dict(zip(steps, out.unbind(1)))

    # -- the cell loop --------------------------------------------------------------------

    def _loop(self, vectors: list[Vector], direction: int) -> None:
        """Vectors of one group, step by step in within-step order."""
        members = {v.name for v in vectors}
        for v in vectors:
            self.values[v.name] = _Values()
        start = min(v.span[0] for v in vectors)
        stop = max(v.span[1] for v in vectors)
        order = range(start, stop) if direction > 0 else range(stop - 1, start - 1, -1)
        for t in order:
            for v in vectors:
                if v.present[t]:
                    self._step(v, t, members)

    def _computed(self, name: str, t: int) -> bool:
        return 0 <= t < self.T and bool(self.plan.vectors[name].present[t])

    def _step(self, v: Vector, t: int, members: set) -> None:
        columns = v.columns
        w = self.weights
        xw = None
        for feed in v.feeds:
            at = t - feed.lag
            if not self._computed(feed.source, at):
                continue
            x = self.values[feed.source].at(at)
            if feed.source in members and feed.lag and not self._keeps(t, at, True):
                x = x.detach()
            if feed in self.masks:
                x = x * self.masks[feed][t]
            part = x @ w[feed.weight][feed.rows[0] : feed.rows[1]]
            xw = part if xw is None else xw + part
        values = self.values[v.name]
        if v.role != "state":
            if xw is None:
                any_weight = w[v.biases[0]] if v.biases else next(iter(w.values()))
                xw = any_weight.new_zeros((self.batch, columns))
            pre = xw
            for key in v.biases:
                pre = pre + w[key]
            values.steps[t] = _activate(pre, v.activation)
            if v.activation in ("softmax", "sigmoid"):
                self.raw.setdefault(v.name, {})[t] = pre
            return
        kind, lag = KINDS[v.kind], v.recurrence.lag
        prev = self._previous(v, kind, t, lag)
        weights = kind.step_weights(w[v.recurrence.weight], [w[key] for key in v.biases])
        mask = self.recurrent_masks.get(v.name)  # one mask for every step of the sequence
        read = None if mask is None else prev[0] * mask
        carries = kind.step(TORCH, xw, prev, weights, v.activation, read)
        values.steps[t], values.carries[t] = carries[0], carries

    def _previous(self, v: Vector, kind, t: int, lag: int) -> tuple:
        at = t - lag
        values = self.values[v.name]
        if self._computed(v.name, at) and at in values.carries:
            prev = values.carries[at]
            if not self._keeps(t, at, lag > 0):
                prev = tuple(p.detach() for p in prev)
            return prev
        new_zeros = self.weights[v.recurrence.weight].new_zeros
        learned = lambda: self.weights[v.learned].expand(self.batch, v.size)  # noqa: E731
        given = start_values(v, kind.carries, self._final, learned, self._given(v), TORCH)

        def zeros(name: str):  # h has the state's size, the other carries one per unit
            return new_zeros((self.batch, v.size if name == "h" else v.units))

        return tuple(given[name] if name in given else zeros(name) for name in kind.carries)

    def _given(self, v: Vector):
        """A state's start state given with the data, (B, H), as `start_values` asks."""
        return lambda: self.starts[v.given]

    def _final(self, origin: str, step: int) -> dict:
        """{carry: value} of a state at `step`: the final values it hands over."""
        names = KINDS[self.plan.vectors[origin].kind].carries
        return dict(zip(names, self.values[origin].carries[step]))

    def _keeps(self, t: int, at: int, forward: bool) -> bool:
        """Whether truncated BPTT lets the gradient flow from step t back to step `at`."""
        if self.bptt is None:
            return True
        if forward:
            return t // self.bptt == at // self.bptt
        return (self.T - 1 - t) // self.bptt == (self.T - 1 - at) // self.bptt

    # -- out ------------------------------------------------------------------------------

    def outputs(self) -> tuple[dict, dict]:
        """`{output: (B, T_out, size)}` and the logits of softmax-fed outputs if asked."""
        outputs, logits = {}, {}
        for name in self.plan.outputs:
            v = self.plan.vectors[name]
            steps = list(self.plan.window(name))
            parts = _by_rows(v.feeds, lambda f, steps=steps: self.values[f.source].over(steps))
            outputs[name] = parts[0] if len(parts) == 1 else torch.cat(parts, -1)
            source = logit_source(self.plan, name) if self.logits else None
            if source is not None:
                raw = self.raw[source]
                if isinstance(raw, dict):
                    logits[name] = torch.stack([raw[t] for t in steps], 1)
                else:
                    logits[name] = raw[:, steps[0] : steps[-1] + 1]
        return outputs, logits


def _by_rows(feeds, values) -> list:
    """The feeds' values (`values(feed)`) in row order, those sharing rows added up (the
    two directions of a layer with `merge: sum`)."""
    parts: dict[tuple[int, int], object] = {}
    for feed in sorted(feeds, key=lambda f: f.rows[0]):
        value = values(feed)
        parts[feed.rows] = value if feed.rows not in parts else parts[feed.rows] + value
    return list(parts.values())


def _activate(pre, activation: str | None):
    if activation in (None, "identity"):
        return pre
    if activation == "softmax":
        return pre.softmax(-1)
    return getattr(pre, activation)()
