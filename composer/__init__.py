"""Compose recurrent neural networks declaratively: validate, unroll, run, draw, explain."""

from composer.deps import dependencies
from composer.errors import ComposerError, DataError, RenderError, ResourceError, SpecError
from composer.execute import execute, run
from composer.graph import build
from composer.load import load_spec
from composer.network import Network
from composer.params import init_params, load_params, save_params
from composer.plan import compile_plan
from composer.render import folded_dot, unfolded_dot
from composer.spec import NetworkSpec
from composer.unroll import unroll, unrolled_graph

__all__ = [
    "Network",
    "NetworkSpec",
    "load_spec",
    "build",
    "unroll",
    "unrolled_graph",
    "compile_plan",
    "execute",
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
