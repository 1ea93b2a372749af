"""Compose recurrent neural networks declaratively: validate, unroll, run, draw, explain.

The stages are plain functions, re-exported here from their subpackages, left to right:
`load_spec` -> `build` (the folded graph) -> `unroll` -> `compile_plan` -> `execute`
(`run` does all of it in one call); `grad` and `train` learn the weights; `dependencies`,
`folded_dot` and `unfolded_dot` read the graphs. `Network` holds a spec and offers them
as methods.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from composer.draw.folded_picture import folded_dot
from composer.draw.unfolded_picture import unfolded_dot
from composer.engine.batches import run
from composer.engine.executor import execute
from composer.engine.plan import compile_plan
from composer.errors import ComposerError, DataError, RenderError, ResourceError, SpecError
from composer.graph.deps import dependencies
from composer.graph.folded import build
from composer.graph.unrolled import Unrolled, unroll, unrolled_graph
from composer.graph.weights import init_params, load_params, save_params
from composer.network import Network
from composer.spec.model import NetworkSpec
from composer.spec.reader import load_spec
from composer.training.backprop import grad
from composer.training.loop import train

try:  # one place for the version: the installed package's metadata (pyproject.toml)
    __version__ = _distribution_version("rnn-composer")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "Network",
    "NetworkSpec",
    "load_spec",
    "build",
    "unroll",
    "Unrolled",
    "unrolled_graph",
    "compile_plan",
    "execute",
    "run",
    "grad",
    "train",
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
