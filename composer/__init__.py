"""Compose recurrent neural networks declaratively: validate, unroll, run, draw, explain.

`composer.unroll.unroll`, `composer.execute.execute`, `composer.grad.grad` and
`composer.train.train` are not re-exported here: their names are their modules' names,
and a function would hide the module. `Network` has them as methods.
"""

from composer.deps import dependencies
from composer.errors import ComposerError, DataError, RenderError, ResourceError, SpecError
from composer.execute import run
from composer.graph import build
from composer.load import load_spec
from composer.network import Network
from composer.params import init_params, load_params, save_params
from composer.plan import compile_plan
from composer.render import folded_dot, unfolded_dot
from composer.spec import NetworkSpec
from composer.unroll import Unrolled, unrolled_graph

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
