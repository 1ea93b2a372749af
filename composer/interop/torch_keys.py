"""Our weight keys and PyTorch's parameter names, both ways; needs no PyTorch.

Every spec layer is one submodule named after the layer: a recurrent layer holds its
`torch.nn` module as `rnn` (`nn.RNN`, `nn.LSTM` or `nn.GRU`, one layer, both directions
of a bidirectional one) and its readout as `readout` (`nn.Linear`); a dense layer holds
`linear` (`nn.Linear`); a connection `{from: a, to: b}` is `b.W_a`, an `nn.Linear`
without bias. Any other weight, one no `torch.nn` module holds (a tapped delay's
`<layer>.W@k`, the weights of a kind that has no `torch.nn` module, such as a
layer-normalised LSTM's, or of a layer without an input at its own step), is named by its
key: a matrix `<layer>.<name>` is the `nn.Linear` without bias `<layer>.<name>` (so its
PyTorch name is `<layer>.<name>.weight`, transposed), a vector the parameter
`<layer>.<name>`. A token input with `embed: E` is a submodule named after the input holding
its `nn.Embedding` as `embedding` (`<input>.E` is `<input>.embedding.weight`, (N, E) in
both); a layer with `initial_state: learn` holds its trained initial state `<layer>.s0`
as the parameter `s0` of its submodule, so the key is the same in both. Matrices are
transposed (PyTorch keeps (out, in)); a bias that stands for PyTorch's two summed
(`composer.interop.native.TorchModule.biases`) exports as bias_ih = b, bias_hh = 0, which
is exact, and imports as their sum.

Examples
--------
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.folded import build
>>> graph = build(NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 3}],
...     "layers": [{"name": "tagger", "kind": "gru", "input": "x", "state_size": 4,
...                 "output": {"size": 2}}],
...     "outputs": [{"name": "o", "from": "tagger"}]}))
>>> [(k.ours, k.names) for k in torch_keys(graph)][:3]
[('tagger.Wx', ('tagger.rnn.weight_ih_l0',)), ('tagger.Ws', ('tagger.rnn.weight_hh_l0',)), \
('tagger.bx', ('tagger.rnn.bias_ih_l0',))]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from composer.errors import DataError
from composer.graph.weights import param_shapes
from composer.interop.native import TORCH_MODULES
from composer.kinds import KINDS

__all__ = [
    "TorchKey",
    "torch_keys",
    "held_natively",
    "to_state",
    "from_state",
    "grads_from_state",
    "parse_map",
    "used_keys",
    "remap",
    "SHOWN_KEYS",
]


@dataclass(frozen=True)
class TorchKey:
    """One of our weights and the PyTorch parameters it is: `names` holds one name, or
    bias_ih and bias_hh for a summed bias; `transpose`: a matrix, (out, in) in PyTorch."""

    ours: str
    names: tuple[str, ...]
    transpose: bool
    shape: tuple[int, ...]

    def torch_shape(self) -> tuple[int, ...]:
        return self.shape[::-1] if self.transpose else self.shape


def torch_keys(graph: nx.MultiDiGraph) -> list[TorchKey]:
    """Every weight of a folded graph with its PyTorch names, in the parameter table's order."""
    shapes = param_shapes(graph)
    names: dict[str, tuple[tuple[str, ...], bool]] = {}
    for node, data in graph.nodes(data=True):
        layer, role = data.get("layer"), data["role"]
        if role == "input" and data.get("embed"):
            names[f"{node}.E"] = ((f"{node}.embedding.weight",), False)
        if data.get("learned"):
            names[data["learned"]] = ((data["learned"],), False)
        if role == "state" and held_natively(data, shapes):
            kind, sfx = KINDS[data["kind"]], data["suffix"]
            native = TORCH_MODULES[kind.name]
            tail = "_l0" + ("_reverse" if sfx else "")
            rnn = f"{layer}.rnn."
            names[f"{layer}.{kind.input_weight}{sfx}"] = ((f"{rnn}weight_ih{tail}",), True)
            names[f"{layer}.Ws{sfx}"] = ((f"{rnn}weight_hh{tail}",), True)
            for suffix, theirs in native.biases:
                names[f"{layer}.{suffix}{sfx}"] = (tuple(f"{rnn}{n}{tail}" for n in theirs), False)
            for suffix, theirs in native.extras:  # a projection's Wp: weight_hr
                names[f"{layer}.{suffix}{sfx}"] = ((f"{rnn}{theirs}{tail}",), True)
        elif role == "readout" or (role == "dense" and held_natively(data, shapes)):
            module, (weight, bias) = (
                ("readout", ("Wy", "by"))
                if role == "readout"
                else (
                    "linear",
                    (KINDS[data["kind"]].input_weight, KINDS[data["kind"]].biases[0][0]),
                )
            )
            names[f"{layer}.{weight}"] = ((f"{layer}.{module}.weight",), True)
            names[f"{layer}.{bias}"] = ((f"{layer}.{module}.bias",), False)
    for key, shape in shapes.items():  # no torch.nn module of its own: by its key
        if key not in names:
            names[key] = ((f"{key}.weight",), True) if len(shape) == 2 else ((key,), False)
    return [TorchKey(key, *names[key], shape) for key, shape in shapes.items()]


def held_natively(data: dict, shapes: Mapping[str, tuple]) -> bool:
    """Whether a folded node's layer keeps its own weights in a `torch.nn` module: a
    recurrent layer of a kind that has one (`nn.RNN`, `nn.LSTM`, `nn.GRU`) and a dense
    layer, when it reads an input at its own step (its input weight exists)."""
    if data["role"] not in ("state", "dense"):
        return False
    kind = KINDS[data["kind"]]
    if data["role"] == "state" and kind.name not in TORCH_MODULES:
        return False
    return f"{data['layer']}.{kind.input_weight}{data.get('suffix', '')}" in shapes


def to_state(graph: nx.MultiDiGraph, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our weights as a PyTorch state_dict of arrays (checked weights expected)."""
    state = {}
    for key in torch_keys(graph):
        value = np.asarray(params[key.ours])
        value = np.ascontiguousarray(value.T if key.transpose else value)
        state[key.names[0]] = value
        for other in key.names[1:]:  # PyTorch's second bias of a summed one: zero
            state[other] = np.zeros_like(value)
    return state


def from_state(
    graph: nx.MultiDiGraph, state: Mapping[str, np.ndarray], where: str = "state_dict"
) -> dict[str, np.ndarray]:
    """Our weights from a state_dict under our module's names; a missing key or a wrong
    shape names the torch key, our weight, both shapes. A value is read (`np.asarray`)
    only after its shape and dtype were checked, so values read lazily (such as
    `composer.interop.declared.Declared`) are read only when they fit."""
    params = {}
    for key in torch_keys(graph):
        parts = []
        for name in key.names:
            if name not in state:
                raise DataError(
                    f"{where}: no key {name!r} for {key.ours} (expected a tensor of shape "
                    f"{key.torch_shape()}); {_renaming(name)}"
                )
            value = state[name]
            if not hasattr(value, "shape") or not hasattr(value, "dtype"):
                value = np.asarray(value)
            if tuple(value.shape) != key.torch_shape():
                transposed = " transposed" if key.transpose else ""
                raise DataError(
                    f"{where}: key {name!r} has shape {tuple(value.shape)}, but {key.ours} "
                    f"{key.shape} needs {key.torch_shape()} there (our weight{transposed})"
                )
            if np.dtype(value.dtype).kind != "f":
                stored = getattr(value, "stored", value.dtype)
                raise DataError(f"{where}: key {name!r}: expected floats, got {stored}")
            parts.append(np.asarray(value))
        total = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        params[key.ours] = np.ascontiguousarray(total.T if key.transpose else total)
    return params


def _renaming(name: str) -> str:
    """How a missing key can be given: `--map` renames layers' modules, nothing else."""
    if re.search(r"\.(rnn|readout|linear)\.[a-z_]+\d*(_reverse)?$", name):
        return "use --map LAYER=MODULE[:K] for other names"
    what = "an input's embedding" if name.endswith(".embedding.weight") else "this tensor"
    return (
        f"--map renames layers' recurrent, readout and linear modules only, not {what}: "
        f"save it under the name {name!r}"
    )


def grads_from_state(
    graph: nx.MultiDiGraph, grads: Mapping[str, np.ndarray], keys: list[TorchKey] | None = None
) -> dict[str, np.ndarray]:
    """Gradients w.r.t. our weights from those w.r.t. the module's parameters: a summed
    bias's gradient is either of its two (they are equal), a missing one is zero.
    `keys`: `torch_keys(graph)`, when already made."""
    out = {}
    for key in torch_keys(graph) if keys is None else keys:
        value = grads.get(key.names[0])
        if value is None:
            out[key.ours] = np.zeros(key.shape)
        else:
            out[key.ours] = np.ascontiguousarray(value.T if key.transpose else value)
    return out


_MAP = re.compile(r"^(\w+)(\.readout)?=([\w.]+?)(?::(\d+))?$")


def parse_map(text: str) -> tuple[str, bool, str, int]:
    """`LAYER=MODULE[:K]` or `LAYER.readout=MODULE` as (layer, readout, module, K).

    Examples
    --------
    >>> parse_map("l1=encoder.lstm:2"), parse_map("l1.readout=fc")
    (('l1', False, 'encoder.lstm', 2), ('l1', True, 'fc', 0))
    """
    found = _MAP.match(text.strip())
    if not found:
        raise DataError(
            f"--map {text!r}: expected LAYER=MODULE[:K] (the K-th layer of an nn.RNN, LSTM "
            "or GRU whose keys start with `MODULE.`) or LAYER.readout=MODULE (an nn.Linear)"
        )
    layer, readout, module, index = found.groups()
    return layer, bool(readout), module, int(index or 0)


def _renames(graph: nx.MultiDiGraph, maps: Sequence[str]) -> dict[str, str]:
    """Our torch names -> the user's, by `--map` rules."""
    layers = {d["layer"]: d for _, d in graph.nodes(data=True) if d.get("layer")}
    renames = {}
    for text in maps:
        layer, readout, module, index = parse_map(text)
        if layer not in layers:
            raise DataError(f"--map {text!r}: no layer `{layer}`; layers: {', '.join(layers)}")
        if readout:
            renames[f"{layer}.readout.weight"] = f"{module}.weight"
            renames[f"{layer}.readout.bias"] = f"{module}.bias"
            continue
        role = {d["role"] for _, d in graph.nodes(data=True) if d.get("layer") == layer}
        if "state" not in role:  # a dense layer takes an nn.Linear
            renames[f"{layer}.linear.weight"] = f"{module}.weight"
            renames[f"{layer}.linear.bias"] = f"{module}.bias"
            continue
        for tail in ("", "_reverse"):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
                ours = f"{layer}.rnn.{name}_l0{tail}"
                renames[ours] = f"{module}.{name}_l{index}{tail}"
    return renames


def used_keys(
    graph: nx.MultiDiGraph, names: Iterable[str], maps: Sequence[str] = ()
) -> dict[str, str]:
    """Which of a state_dict's keys (`names`) the spec takes, by `--map` rules: our torch
    name -> the user's key, for the keys present (nothing is read)."""
    names = set(names)
    renames = _renames(graph, maps)
    found = {}
    for key in torch_keys(graph):
        for name in key.names:
            if renames.get(name, name) in names:
                found[name] = renames.get(name, name)
    return found


#: unused keys named in a refusal; the rest are counted
SHOWN_KEYS = 10


def remap(
    graph: nx.MultiDiGraph,
    state: Mapping[str, np.ndarray],
    maps: Sequence[str],
    where: str = "state_dict",
    allow_unused: bool = False,
) -> dict[str, np.ndarray]:
    """A user's state_dict under our module's names, by `--map` rules (`parse_map`); the
    rest is expected under our names. Keys left unused are refused unless `allow_unused`;
    their values are never read."""
    renames = _renames(graph, maps)
    for key in torch_keys(graph):
        for name in key.names:
            theirs = renames.get(name, name)
            if theirs in state:
                continue
            if theirs != name:
                raise DataError(
                    f"{where}: no key {theirs!r} (mapped to {name}, for {key.ours}, expected a "
                    f"tensor of shape {key.torch_shape()})"
                )
            raise DataError(
                f"{where}: no key {name!r} for {key.ours} (expected a tensor of shape "
                f"{key.torch_shape()}); {_renaming(name)}"
            )
    used = used_keys(graph, state, maps)
    taken = set(used.values())
    unused = [name for name in state if name not in taken]
    if unused and not allow_unused:
        listed = ", ".join(map(repr, unused[:SHOWN_KEYS]))
        more = f" and {len(unused) - SHOWN_KEYS:,} more" if len(unused) > SHOWN_KEYS else ""
        raise DataError(
            f"{where}: {len(unused):,} key{'s' if len(unused) > 1 else ''} not used by the "
            f"spec: {listed}{more} (map them "
            "with --map, or pass --allow-unused to leave them out)"
        )
    try:
        return from_state(graph, {ours: state[theirs] for ours, theirs in used.items()}, where)
    except DataError as err:  # name the user's key, not ours, in the message
        message = str(err)
        for ours, theirs in renames.items():
            message = message.replace(f"{ours!r}", f"{theirs!r}")
        raise DataError(message) from None
