"""A network in one object: a spec, its folded graph, and the stages that read them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from composer.draw.graphviz import svg
from composer.engine.batches import run
from composer.engine.inputs import batched, infer_steps
from composer.engine.pipeline import plan_for_steps, unroll_within
from composer.engine.stepper import Stepper
from composer.graph.deps import dependencies
from composer.graph.folded import build
from composer.graph.unrolled import Unrolled
from composer.graph.weights import init_params, param_table
from composer.spec.model import NetworkSpec
from composer.spec.reader import load_spec
from composer.threads import limited, work_of
from composer.training.backprop import grad
from composer.training.loop import TrainResult, train
from composer.training.padded import grad_padded
from composer.training.scoring import score
from composer.training.trace import gradient_norms, trace

__all__ = ["Network"]


@dataclass(frozen=True)
class Network:
    """A checked spec and its folded graph; in a notebook it shows itself as its diagram.

    Examples
    --------
    >>> net = Network.from_file("specs/lecture-elman.yaml")
    >>> net.param_count
    131
    >>> net.dependencies(steps=3)["y"][2]
    {'x': [0, 1, 2]}
    """

    spec: NetworkSpec
    graph: nx.MultiDiGraph = field(repr=False)

    @classmethod
    def from_spec(cls, spec: NetworkSpec | Mapping) -> Network:
        """A network from a spec object or a plain dict of one."""
        if not isinstance(spec, NetworkSpec):
            spec = NetworkSpec.model_validate(spec)
        return cls(spec, build(spec))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Network:
        """A network from a YAML or JSON spec file."""
        return cls.from_spec(load_spec(path))

    @property
    def param_count(self) -> int:
        """The number of weights, the same for every T."""
        return sum(info.count for info in param_table(self.graph))

    def unroll(self, steps: int | None = None) -> Unrolled:
        """The network unrolled to `steps` (default: the spec's)."""
        return unroll_within(self.graph, steps)

    def init_params(self, seed: int = 0, dtype: str = "float32") -> dict[str, np.ndarray]:
        """Seeded initial weights with PyTorch's default ranges."""
        return init_params(self.graph, seed, dtype)

    def run(
        self,
        params,
        inputs,
        steps: int | None = None,
        dtype: str = "float32",
        lengths=None,
        threads: int | None = None,
    ):
        """Outputs by name for inputs by name (or one array for a one-input network).

        `lengths={"x": [10, 7, 4]}` runs a padded batch: each item as if alone, and the
        result also holds `<output>.lengths`. `threads` sets the matrix products' thread
        count for this call (default: chosen by `composer.threads` from the work's size
        and how busy the machine is).
        """
        with limited(threads, work_of(self.graph, _batch(self.graph, inputs))):
            return run(self.graph, params, inputs, steps, dtype, lengths=lengths)

    def grad(
        self,
        params,
        inputs,
        targets,
        steps: int | None = None,
        lengths=None,
        threads: int | None = None,
        **options,
    ):
        """The loss and its gradient for every weight (`composer.grad`'s options).

        Like `run`, it takes (T, F) inputs for one sequence; targets are then unbatched too.
        With `lengths`, the loss covers each item's real steps only. `threads` as `run`'s.
        """
        with limited(threads, work_of(self.graph, _batch(self.graph, inputs))):
            return self._grad(params, inputs, targets, steps, lengths, **options)

    def _grad(self, params, inputs, targets, steps, lengths, **options):
        arrays, flat = batched(self.graph, inputs)
        if flat:
            targets = {k: np.asarray(v)[np.newaxis] for k, v in dict(targets).items()}
        if lengths is not None:
            return grad_padded(self.graph, params, arrays, targets, lengths, steps=steps, **options)
        plan = plan_for_steps(
            self.graph, infer_steps(self.graph, arrays) if steps is None else steps
        )
        return grad(plan, params, arrays, targets, **options)

    def trace(self, params, inputs, steps: int | None = None, dtype: str | None = None):
        """Every vector at every step, with each cell's gates and cell state, by key
        (`composer.training.trace`): arrays (B, T, size), NaN where not computed; (T, size)
        for (T, F) inputs."""
        arrays, flat = batched(self.graph, inputs)
        plan = plan_for_steps(
            self.graph, infer_steps(self.graph, arrays) if steps is None else steps
        )
        found = trace(plan, params, arrays, dtype)
        return {k: v[0] for k, v in found.items()} if flat else found

    def gradient_norms(
        self, params, inputs, targets, at=None, steps: int | None = None, **options
    ) -> dict[str, np.ndarray]:
        """‖∂L/∂s_t‖ for each state and step t, (T,) by state name (an LSTM's cell state c
        too, as `<layer>.c`); `at=("y", 7)` takes the
        loss of that output step alone. Options as `grad`'s (`loss`, `mask`, `dtype`)."""
        arrays, flat = batched(self.graph, inputs)
        if flat:
            targets = {k: np.asarray(v)[np.newaxis] for k, v in dict(targets).items()}
        plan = plan_for_steps(
            self.graph, infer_steps(self.graph, arrays) if steps is None else steps
        )
        if at is not None:
            name, t = at
            at = (name, t + plan.steps if t < 0 else t)
        return gradient_norms(plan, params, arrays, targets, at=at, **options)[1]

    def train(self, params, data, threads: int | None = None, **options) -> TrainResult:
        """Train the weights on data by name (`composer.train`'s options, `lengths=` too:
        `validation=` a fraction or a data dict, `metrics=`, `callbacks=`, `patience=`,
        `schedule=`, `checkpoint=`, `resume=`; docs/training.md); `threads` as `run`'s, for
        the whole training (chosen for its minibatches' size)."""
        batch = min(options.get("batch_size", 32), _batch(self.graph, data))
        with limited(threads, work_of(self.graph, batch)):
            return train(self.graph, params, data, **options)

    def evaluate(self, params, data, **options) -> dict[str, float]:
        """The loss and the metrics of weights on data by name, nothing updated:
        `{"loss": ..., "<output>.<metric>": ...}` (`composer.training.scoring.score`'s
        options: `loss=`, `metrics=`, `dtype=`, `engine=`)."""
        return score(self.graph, params, data, **options)

    def stepper(self, params, dtype: str = "float32") -> Stepper:
        """The network one step at a time, its state kept: `.step(inputs) -> outputs`,
        `.state` by key (`composer.engine.stepper`); each step costs the same."""
        return Stepper(self.graph, params, dtype)

    def to_torch(self, params=None, dtype: str = "float32"):
        """The network as a PyTorch `nn.Module` with these weights (None: PyTorch's init).

        Called like `run` (tensors in, `lengths=` too), it returns `{output: tensor}`; its
        parameter names are PyTorch's (`docs/interop.md`). Needs the `[torch]` extra.
        """
        from composer.interop.torch_module import to_torch

        return to_torch(self.graph, params, dtype)

    def dependencies(self, steps: int | None = None):
        """`{output: {t: {input: [steps]}}}` at `steps`."""
        return dependencies(self.unroll(steps))

    def _repr_svg_(self) -> str:
        return svg(self.graph)


def _batch(graph: nx.MultiDiGraph, inputs) -> int:
    """The batch size of inputs as `run` takes them: the leading size of a (B, T, F) array
    or of (B, T) token ids (the first input by name that has one), 1 for one sequence."""
    named = inputs.items() if isinstance(inputs, Mapping) else [(None, inputs)]
    for name, value in named:
        shape = np.shape(value)
        vocab = name in graph.nodes and graph.nodes[name].get("vocab")
        if len(shape) == (2 if vocab else 3):
            return int(shape[0])
    return 1
