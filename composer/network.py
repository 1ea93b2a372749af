"""A network in one object: a spec, its folded graph, and the stages that read them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np

from composer.api.engines import run_on
from composer.api.export import ExportRequest, export
from composer.api.train_options import TrainOptions
from composer.arrays import write_arrays
from composer.draw.folded_picture import folded_dot
from composer.draw.graphviz import svg
from composer.draw.style import Style
from composer.draw.unfolded_picture import unfolded_dot
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
        engine: str = "numpy",
        device: str | None = None,
        model: str | os.PathLike | None = None,
    ):
        """Outputs by name for inputs by name (or one array for a one-input network).

        `lengths={"x": [10, 7, 4]}` runs a padded batch: each item as if alone, and the
        result also holds `<output>.lengths`. `threads` sets the matrix products' thread
        count for this call (default: chosen by `composer.threads` from the work's size
        and how busy the machine is). `engine` is `numpy` (embedded), `torch` (on
        `device`; the `[torch]` extra) or `onnx` (ONNX Runtime: the network exported in
        memory, or the exported `model` file; the `[onnx]` extra).
        """
        work = work_of(self.graph, _batch(self.graph, inputs))
        with limited(threads, work):
            return run_on(
                engine, self.graph, params, inputs, steps, dtype, lengths, device,
                None if model is None else Path(model),
            )  # fmt: skip

    def export(
        self,
        params,
        output: str | os.PathLike,
        format: str = "torch",
        *,
        steps: int | None = None,
        lengths: bool = False,
        opset: int | None = None,
        dtype: str = "float32",
        force: bool = False,
        spec_text: str | None = None,
        weights_path: str | os.PathLike | None = None,
    ) -> str:
        """Write the network with these weights for another engine (atomically): `torch`
        (a state_dict, `.pt` or `.safetensors`) or `onnx` (`steps`, `lengths`, `opset`;
        the file records `spec_text`, default the spec as JSON, and the digest of the
        `weights_path` file, default these weights written as .npz). The line to report."""
        if weights_path is None:
            with tempfile.TemporaryDirectory() as folder:
                weights_path = Path(folder) / "weights.npz"
                write_arrays(weights_path, dict(params))
                return self.export(
                    params, output, format, steps=steps, lengths=lengths, opset=opset,
                    dtype=dtype, force=force, spec_text=spec_text, weights_path=weights_path,
                )  # fmt: skip
        request = ExportRequest(
            graph=self.graph,
            params=dict(params),
            output=Path(output),
            spec_path=None,
            spec_text=self.spec.model_dump_json(by_alias=True) if spec_text is None else spec_text,
            weights_path=Path(weights_path),
            dtype=dtype,
            steps=steps,
            lengths=lengths,
            opset=opset,
            force=force,
        )
        return export(request, format)

    def folded_dot(self, style: Style | None = None, **options) -> str:
        """The folded picture as Graphviz DOT in `style` (a `composer.draw.style.Style`;
        `composer.draw.folded_picture.folded_dot`'s options: `cone=`, `title=`)."""
        return folded_dot(self.graph, style=style or Style(), **options)

    def unfolded_dot(self, steps: int | None = None, style: Style | None = None, **options) -> str:
        """The network unfolded over `steps` as Graphviz DOT (`unfolded_dot`'s options:
        `max_columns=`, `highlight=`, `shades=`)."""
        return unfolded_dot(self.unroll(steps), style=style or Style(), **options)

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

    def train(
        self,
        params,
        data,
        options: TrainOptions | None = None,
        threads: int | None = None,
        **keywords,
    ) -> TrainResult:
        """Train the weights on data by name with `options` (a `TrainOptions`: `lengths=`
        too, `validation=` a fraction or a data dict, `metrics=`, `callbacks=`,
        `patience=`, `schedule=`, `checkpoint=`, `resume=`; docs/training.md). Keyword
        arguments of `composer.train` still work, alone or changing `options`. `threads`
        as `run`'s, for the whole training (chosen for its minibatches' size)."""
        chosen = (options or TrainOptions()).but(**keywords)
        batch = min(chosen.batch_size, _batch(self.graph, data))
        with limited(threads, work_of(self.graph, batch)):
            return train(self.graph, params, data, **chosen.keywords())

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
