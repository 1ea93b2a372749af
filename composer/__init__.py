"""Compose recurrent neural networks declaratively: validate, unroll, run, draw, explain.

`composer.graph.unrolled.unroll`, `composer.run.executor.execute`, `composer.train.backprop.grad` and
`composer.train.loop.train` are not re-exported here: their names are their modules' names,
and a function would hide the module. `Network` has them as methods.
"""

from composer.graph.deps import dependencies
from composer.errors import ComposerError, DataError, RenderError, ResourceError, SpecError
from composer.run.executor import run
from composer.graph.folded import build
from composer.spec.reader import load_spec
from composer.network import Network
from composer.graph.weights import init_params, load_params, save_params
from composer.run.plan import compile_plan
from composer.draw.diagrams import folded_dot, unfolded_dot
from composer.spec.model import NetworkSpec
from composer.graph.unrolled import Unrolled, unrolled_graph

__all__ = [
    "Network",
    "NetworkSpec",
    "load_spec",
    "build",
    "Unrolled",
    "unrolled_graph",
    "compile_plan",
    "run",
    "init_params",
    "load_params",
    "save_params",
    "dependencies",
    "folded_dot",
    "unfolded_dot",
    "ComposerError",
    "SpecError",
    "DataError",
    "ResourceError",
    "RenderError",
]
