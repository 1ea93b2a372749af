"""Parameters: the shape, count and formula of every weight, seeded initialisation, `.npz` I/O."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import networkx as nx
import numpy as np

from composer.arrays import read_arrays, write_arrays
from composer.errors import DataError
from composer.graph.folded import GATES

__all__ = [
    "ParamInfo",
    "param_table",
    "param_shapes",
    "init_params",
    "load_params",
    "save_params",
    "check_params",
    "DTYPES",
]

DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class ParamInfo:
    """One weight: its key, shape, the formula of its count, and PyTorch's init bound."""

    key: str
    layer: str
    shape: tuple[int, ...]
    formula: str
    numbers: str  # the formula with the sizes put in, such as `10*4*32`
    bound: float
    summed: bool = False  # elman/lstm `b` is bias_ih + bias_hh in PyTorch: two draws added

    @property
    def count(self) -> int:
        return math.prod(self.shape)


def _info(key, layer, shape, formula, sizes, bound, summed=False) -> ParamInfo:
    numbers = "*".join(str(sizes.get(token, token)) for token in formula.split("*"))
    return ParamInfo(key, layer, tuple(shape), formula, numbers, bound, summed)


def param_table(graph: nx.MultiDiGraph) -> list[ParamInfo]:
    """Every weight of a folded graph, layer by layer in spec order.

    The formulas use `in` (the layer's input size), `H` (its state size), `out` (its readout
    or dense size) and `k` (a connection's source size); none of them involves T.
    """
    spec = graph.graph["spec"]
    weights: dict[str, tuple[int, ...]] = {}
    for _, _, data in graph.edges(data=True):
        if data["weight"] is not None:
            weights[data["weight"]] = data["shape"]
    rows = []
    for layer in spec.layers:
        name = layer.name
        if layer.kind == "dense":
            fan_in = weights[f"{name}.W"][0]
            sizes = {"in": fan_in, "out": layer.size}
            bound = 1 / math.sqrt(fan_in)
            rows += [
                _info(f"{name}.W", name, (fan_in, layer.size), "in*out", sizes, bound),
                _info(f"{name}.b", name, (layer.size,), "out", sizes, bound),
            ]
            rows += _connection_rows(spec, name, weights, sizes, bound, "out")
            continue
        H, gates = layer.state_size, GATES[layer.kind]
        g = {1: "", 4: "4*", 3: "3*"}[gates]
        sizes = {"in": weights[f"{name}.Wx"][0], "H": H}
        bound = 1 / math.sqrt(H)
        for suffix in ["", "_rev"] if layer.bidirectional else [""]:
            rows += [
                _info(
                    f"{name}.Wx{suffix}",
                    name,
                    weights[f"{name}.Wx{suffix}"],
                    f"in*{g}H",
                    sizes,
                    bound,
                ),
                _info(f"{name}.Ws{suffix}", name, (H, gates * H), f"H*{g}H", sizes, bound),
            ]
            if layer.kind == "gru":
                rows += [
                    _info(f"{name}.bx{suffix}", name, (3 * H,), "3*H", sizes, bound),
                    _info(f"{name}.bs{suffix}", name, (3 * H,), "3*H", sizes, bound),
                ]
            else:
                rows.append(
                    _info(
                        f"{name}.b{suffix}", name, (gates * H,), f"{g}H", sizes, bound, summed=True
                    )
                )
        rows += _connection_rows(spec, name, weights, sizes, bound, f"{g}H")
        if layer.output is not None:
            dirs = 2 if layer.bidirectional else 1
            sizes = dict(sizes, out=layer.output.size)
            ybound = 1 / math.sqrt(dirs * H)
            formula = "2*H*out" if dirs == 2 else "H*out"
            rows += [
                _info(f"{name}.Wy", name, (dirs * H, layer.output.size), formula, sizes, ybound),
                _info(f"{name}.by", name, (layer.output.size,), "out", sizes, ybound),
            ]
    return rows


def _connection_rows(spec, target, weights, sizes, bound, cols) -> list[ParamInfo]:
    rows = []
    for conn in spec.connections:
        if conn.target == target:
            key = f"{target}.W_{conn.source}"
            k_sizes = dict(sizes, k=weights[key][0])
            rows.append(_info(key, target, weights[key], f"k*{cols}", k_sizes, bound))
    return rows


def param_shapes(graph: nx.MultiDiGraph) -> dict[str, tuple[int, ...]]:
    """`{key: shape}` of every weight, in table order."""
    return {info.key: info.shape for info in param_table(graph)}


def init_params(
    graph: nx.MultiDiGraph, seed: int = 0, dtype: str = "float32"
) -> dict[str, np.ndarray]:
    """Seeded weights with PyTorch's default ranges: U(-1/sqrt(H), 1/sqrt(H)) for recurrent
    layers (their `b` is the sum of two such draws, as bias_ih + bias_hh), and
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for readouts and dense layers."""
    rng = np.random.default_rng(seed)
    params = {}
    for info in param_table(graph):
        draws = 2 if info.summed else 1
        value = sum(rng.uniform(-info.bound, info.bound, info.shape) for _ in range(draws))
        params[info.key] = np.asarray(value, dtype=DTYPES[dtype])
    return params


def check_params(
    graph: nx.MultiDiGraph,
    params: dict[str, np.ndarray],
    where: str = "weights",
    *,
    allow_nonfinite: bool = False,
) -> None:
    """Refuse missing, extra or mis-shaped keys, non-float arrays and NaN/Inf, naming them."""
    shapes = param_shapes(graph)
    missing = [k for k in shapes if k not in params]
    extra = sorted(k for k in params if k not in shapes)
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f"{k} {shapes[k]}" for k in missing))
        if extra:
            parts.append("unexpected " + ", ".join(f"{k} {np.shape(params[k])}" for k in extra))
        raise DataError(f"{where}: {'; '.join(parts)}")
    for key, shape in shapes.items():
        value = np.asarray(params[key])
        if tuple(value.shape) != shape:
            hint = " (transposed?)" if tuple(value.shape) == shape[::-1] else ""
            raise DataError(
                f"{where}: key {key!r}: expected shape {shape}, got {tuple(value.shape)}{hint}"
            )
        if value.dtype.kind != "f":
            raise DataError(f"{where}: key {key!r}: expected a float array, got {value.dtype}")
        if not allow_nonfinite and not np.isfinite(value).all():
            raise DataError(f"{where}: key {key!r}: holds NaN or Inf")


def load_params(
    path: str | os.PathLike,
    graph: nx.MultiDiGraph,
    dtype: str = "float32",
    *,
    allow_nonfinite: bool = False,
) -> dict[str, np.ndarray]:
    """Weights from a `.npz`, checked against the graph and cast to `dtype`."""
    params = read_arrays(path)
    check_params(graph, params, str(path), allow_nonfinite=allow_nonfinite)
    return {k: np.ascontiguousarray(v, dtype=DTYPES[dtype]) for k, v in params.items()}


def save_params(path: str | os.PathLike, params: dict[str, np.ndarray]) -> None:
    """Write weights to a `.npz` atomically (no pickles)."""
    write_arrays(path, params)
