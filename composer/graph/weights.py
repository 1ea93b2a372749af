"""Parameters: the shape, count and formula of every weight, seeded initialisation, `.npz` I/O."""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from composer.arrays import read_arrays, write_arrays
from composer.dtypes import check_dtype
from composer.errors import DataError, SpecError, key_mismatch
from composer.finite import check_values
from composer.kinds import KINDS

__all__ = [
    "ParamInfo",
    "param_table",
    "param_shapes",
    "init_params",
    "load_params",
    "save_params",
    "check_params",
    "bias_keys",
    "embedding_table",
    "draw",
]


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
    scheme: object = "default"  # the spec's `init` for it: a name, or (`uniform`, a) ...
    blocks: int = 1  # gate blocks side by side in its columns (orthogonal: one each)
    fill: tuple[tuple[int, int, float], ...] = ()  # (column start, stop, value) set after

    @property
    def count(self) -> int:
        return math.prod(self.shape)


def _info(key, layer, shape, formula, sizes, bound, summed=False, **init) -> ParamInfo:
    numbers = "*".join(str(sizes.get(token, token)) for token in formula.split("*"))
    return ParamInfo(key, layer, tuple(shape), formula, numbers, bound, summed, **init)


def _own_init(
    data: dict, kind, suffix: str, size: int, start: str = "default", gated: bool = True
) -> dict:
    """The `init` options of one of a layer's own weights, from its node's `init`;
    `start`, the kind's own default for it; `gated`, whether its columns are gate blocks."""
    options = dict(data.get("init", ()))
    init = {"scheme": options.get(suffix, start)}
    if suffix != "Wy" and kind.gates > 1 and gated:
        init["blocks"] = kind.gates
    forget = options.get("forget_bias")
    if forget is not None and kind.forget_gate is not None and suffix == kind.biases[0][0]:
        gate = kind.forget_gate
        init["fill"] = ((gate * size, (gate + 1) * size, float(forget)),)
    return init


def _check_identity(data: dict, weight, init: dict) -> None:
    """Refuse `identity` on a weight whose (gate) blocks are not square."""
    scheme = init["scheme"]
    if scheme != "identity" and not (isinstance(scheme, tuple) and scheme[0] == "identity"):
        return
    rows, cols = weight.shape[0], weight.shape[-1] // init.get("blocks", 1)
    if len(weight.shape) != 2 or rows != cols:
        raise SpecError(
            f"init: `{weight.suffix}: identity` needs a square weight, but "
            f"`{data['layer']}.{weight.suffix}` is {' x '.join(map(str, weight.shape))}"
            + (f" ({init['blocks']} gate blocks)" if init.get("blocks", 1) > 1 else ""),
            (*data["path"], "init", weight.suffix),
        )


def _layers(graph: nx.MultiDiGraph) -> dict[str, list[tuple[str, dict]]]:
    """Each layer's nodes (states, readout or dense output), layers in spec order."""
    layers: dict[str, list[tuple[str, dict]]] = {}
    for node, data in sorted(graph.nodes(data=True), key=lambda item: item[1]["order"]):
        if data["role"] in ("state", "readout", "dense"):
            layers.setdefault(data["layer"], []).append((node, data))
    return layers


def param_table(graph: nx.MultiDiGraph) -> list[ParamInfo]:
    """Every weight of a folded graph, layer by layer in spec order.

    The formulas use `in` (the layer's input size), `H` (its state size), `out` (its readout
    or dense size) and `k` (a connection's source size); none of them involves T. Each
    layer's own weights and init ranges are its kind's (`composer.kinds.Kind.weights`).
    """
    shapes: dict[str, tuple[int, ...]] = {}
    connections: dict[str, dict[str, tuple]] = {}  # layer -> {weight: spec path}
    for _, target, data in graph.edges(data=True):
        if data["weight"] is not None:
            shapes[data["weight"]] = data["shape"]
        if data["role"] == "connection":
            layer = graph.nodes[target]["layer"]
            connections.setdefault(layer, {})[data["weight"]] = data["path"]
    rows = embedding_table(graph)
    for name, nodes in _layers(graph).items():
        kind = KINDS[nodes[0][1]["kind"]]
        states = [(node, data) for node, data in nodes if data["role"] == "state"]
        main = states or nodes[:1]  # a dense layer's own weights feed its output
        size = units = main[0][1]["size"]
        taps = _input_taps(graph, main[0][0], shapes)
        fan_in = sum(shapes[key][0] for key in taps.values()) or 1
        sizes = {"in": fan_in, "H": size} if kind.stateful else {"in": fan_in, "out": size}
        projected = {}
        if kind.stateful and main[0][1].get("units", size) != size:  # a projected state
            units = main[0][1]["units"]
            sizes, projected = {"in": fan_in, "H": units, "P": size}, {"width": size}
        infos = kind.weights(fan_in, units, main[0][1].get("bias", True), **projected)
        for _, data in main:
            suffix = data.get("suffix", "")
            for w in infos:
                gated = w.shape[-1] == kind.columns(units)
                init = _own_init(data, kind, w.suffix, units, w.scheme, gated)
                _check_identity(data, w, init)
                if w.suffix != kind.input_weight:
                    key = f"{name}.{w.suffix}{suffix}"
                    rows.append(
                        _info(key, name, w.shape, w.formula, sizes, w.bound, w.summed, **init)
                    )
                    continue
                for tap in taps:  # a tapped delay line: one input weight per delay
                    key = f"{name}.{w.suffix}{suffix}{tap}"
                    tap_sizes = dict(sizes, **{"in": shapes[taps[tap]][0]})
                    shape = (shapes[taps[tap]][0],) + w.shape[1:]
                    rows.append(_info(key, name, shape, w.formula, tap_sizes, w.bound, **init))
        for _, data in states:
            if data.get("learned"):  # the initial state it starts from, trained; init zeros
                width = "P" if "P" in sizes else "H"
                rows.append(_info(data["learned"], name, (size,), width, sizes, 0.0))
        bound = infos[0].bound
        incoming = connections.get(name, {})
        for key in sorted(incoming, key=incoming.get):
            k_sizes = dict(sizes, k=shapes[key][0])
            rows.append(
                _info(key, name, shapes[key], f"k*{kind.columns_formula()}", k_sizes, bound)
            )
        readout = [data for _, data in nodes if data["role"] == "readout"]
        if readout:
            dirs, out = len(states), readout[0]["size"]
            if states[0][1].get("merge", "concat") != "concat":  # sum, mean, mul: H rows
                dirs = 1
            sizes = dict(sizes, out=out)
            ybound = 1 / math.sqrt(dirs * size)
            formula = "2*H*out" if dirs == 2 else "H*out"
            if "P" in sizes:  # a projected state: the readout reads P numbers
                formula = formula.replace("H", "P")
            options = dict(readout[0].get("init", ()))
            rows += [
                _info(
                    f"{name}.Wy",
                    name,
                    (dirs * size, out),
                    formula,
                    sizes,
                    ybound,
                    scheme=options.get("Wy", "default"),
                ),
                _info(
                    f"{name}.by",
                    name,
                    (out,),
                    "out",
                    sizes,
                    ybound,
                    scheme=options.get("by", "default"),
                ),
            ]
    return rows


def _input_taps(graph: nx.MultiDiGraph, node: str, shapes: dict) -> dict[str, str]:
    """{tap suffix: weight key} of the input weights feeding a layer's first node, by
    delay: `""` for `Wx` (delay 0), `"@2"` for `Wx@2`; none for a layer without `input`."""
    found = {}
    for _, _, data in graph.in_edges(node, data=True):
        if data["role"] == "input":
            found[data["lag"]] = data["weight"]
    return {key[key.index("@") :] if "@" in key else "": key for _, key in sorted(found.items())}


def embedding_table(graph: nx.MultiDiGraph) -> list[ParamInfo]:
    """The embedding `<input>.E` (vocab, E) of every token input with `embed`, in spec order:
    row i is token i's vector, what a layer reading the input sees."""
    rows = []
    for name, data in sorted(graph.nodes(data=True), key=lambda item: item[1]["order"]):
        if data["role"] == "input" and data.get("embed"):
            sizes = {"vocab": data["vocab"], "E": data["embed"]}
            shape = (data["vocab"], data["embed"])
            info = _info(f"{name}.E", name, shape, "vocab*E", sizes, 1.0)
            rows.append(replace(info, scheme=("normal", 1.0)))
    return rows


def bias_keys(data: dict) -> tuple[str, ...]:
    """The parameter keys of the biases of a folded-graph node, given its attributes, then
    those of its kind's `extras` (an LSTM's projection `Wp`, kept with `bias: false`)."""
    layer, role = data.get("layer"), data["role"]
    if role == "state":
        kind = KINDS[data["kind"]]
        own = [b for b, _ in kind.biases] if data.get("bias", True) else []
        return tuple(f"{layer}.{b}{data['suffix']}" for b in own + list(kind.extras))
    if role == "dense" and not data.get("bias", True):
        return ()
    if role == "dense":
        return tuple(f"{layer}.{b}" for b, _ in KINDS[data["kind"]].biases)
    return (f"{layer}.by",) if role == "readout" else ()


def param_shapes(graph: nx.MultiDiGraph) -> dict[str, tuple[int, ...]]:
    """`{key: shape}` of every weight, in table order; made once per graph (every run
    checks its weights against it)."""
    if graph not in _shapes:
        _shapes[graph] = {info.key: info.shape for info in param_table(graph)}
    return dict(_shapes[graph])


_shapes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # graph -> its shapes


def init_params(
    graph: nx.MultiDiGraph, seed: int = 0, dtype: str = "float32"
) -> dict[str, np.ndarray]:
    """Seeded weights, each by its layer's `init` scheme (`docs/initialisers.md`).

    The default is PyTorch's: U(-1/sqrt(H), 1/sqrt(H)) for recurrent layers (their `b` is
    the sum of two such draws, as bias_ih + bias_hh), and U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) for readouts and dense layers; N(0, 1) for embeddings, as
    nn.Embedding.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for info in param_table(graph):
        value = draw(info, rng)
        for start, stop, fill in info.fill:
            value[..., start:stop] = fill
        params[info.key] = np.asarray(value, dtype=check_dtype(dtype))
    return params


def draw(info: ParamInfo, rng: np.random.Generator) -> np.ndarray:
    """One weight's starting values by its scheme (float64)."""
    scheme, shape = info.scheme, info.shape
    if scheme == "default":
        draws = 2 if info.summed else 1
        return sum(rng.uniform(-info.bound, info.bound, shape) for _ in range(draws))
    if scheme == "zeros":
        return np.zeros(shape)
    if scheme == "ones":  # a normalisation's gain
        return np.ones(shape)
    if scheme in ("xavier", "glorot"):  # Glorot & Bengio 2010: Var = 2 / (fan_in + fan_out)
        limit = math.sqrt(6 / (shape[0] + shape[1]))
        return rng.uniform(-limit, limit, shape)
    if scheme == "identity" or scheme[0] == "identity":  # Le et al. 2015: g I per gate
        scale = 1.0 if scheme == "identity" else float(scheme[1])
        return np.concatenate([scale * np.eye(shape[0]) for _ in range(info.blocks)], 1)
    if scheme == "orthogonal":  # Saxe et al. 2013, one orthogonal block per gate
        width = shape[1] // info.blocks
        return np.concatenate([_orthogonal(rng, shape[0], width) for _ in range(info.blocks)], 1)
    name, value = scheme
    if name == "uniform":
        return rng.uniform(-value, value, shape)
    return rng.normal(0.0, value, shape)


def _orthogonal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows or columns (whichever are fewer), from
    the QR factors of a Gaussian matrix, signs fixed so the draw is uniform (Haar)."""
    flat = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    return q if rows >= cols else q.T


def check_params(
    graph: nx.MultiDiGraph,
    params: dict[str, np.ndarray],
    where: str = "weights",
    *,
    allow_nonfinite: bool = False,
) -> None:
    """Refuse missing, extra or mis-shaped keys, non-float arrays and NaN/Inf, naming them."""
    shapes = param_shapes(graph)
    mismatch = key_mismatch(
        shapes, params, lambda k: f"{k} {shapes[k]}", lambda k: f"{k} {np.shape(params[k])}"
    )
    if mismatch:
        raise DataError(f"{where}: {mismatch}")
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
    """Weights from a `.npz`, checked against the graph (NaN, Inf and values beyond
    `dtype` refused, naming the file and key) and cast to `dtype`."""
    params = read_arrays(path)
    check_params(graph, params, str(path), allow_nonfinite=True)
    check_values(params, check_dtype(dtype), str(path), allow_nonfinite=allow_nonfinite)
    return {k: np.ascontiguousarray(v, dtype=check_dtype(dtype)) for k, v in params.items()}


def save_params(path: str | os.PathLike, params: dict[str, np.ndarray]) -> None:
    """Write weights to a `.npz` atomically (no pickles)."""
    write_arrays(path, params)
