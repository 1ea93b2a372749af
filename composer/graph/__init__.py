"""The graphs: the folded network, its unrolling in time, its weights, its dependencies."""

from composer.graph.deps import dependencies
from composer.graph.features import extended_features
from composer.graph.folded import build
from composer.graph.loops import check_loops, instant_graph
from composer.graph.unrolled import Unrolled, unroll, unrolled_graph
from composer.graph.weights import (
    check_params,
    init_params,
    load_params,
    param_shapes,
    param_table,
    save_params,
)

__all__ = [
    "build",
    "check_loops",
    "instant_graph",
    "unroll",
    "Unrolled",
    "unrolled_graph",
    "dependencies",
    "extended_features",
    "param_table",
    "param_shapes",
    "init_params",
    "check_params",
    "load_params",
    "save_params",
]
