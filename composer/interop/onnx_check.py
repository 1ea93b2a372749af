"""What a `--model` must be before ONNX Runtime sees it, and what its outputs must be after.

- **No external data.** A tensor stored outside the model names a file that ONNX Runtime
  would read (relative to the current folder, as the model comes to it as bytes): a model
  could carry `.ssh/id_rsa` out in its outputs. The exporter never writes external data,
  so every tensor stored outside the model is refused, wherever it sits (initializers,
  sparse initializers, constants, attributes, subgraphs, functions).
- **The spec's interface.** Its inputs and outputs are the spec's, by name, element type
  and rank (plus `<input>.lengths` and `<output>.lengths`); the network digest the
  exporter writes (`rnn-composer.network.sha256`), when present, is the spec's.
- **Outputs as declared.** Each output that comes back is a float (B, T_out, size) array
  (int64 (B,) for lengths), or the run is refused, before anything is written.
"""

from __future__ import annotations

import hashlib
import json

import networkx as nx
import numpy as np

from composer.errors import DataError
from composer.interop import need
from composer.interop.onnx_plain import input_dims
from composer.output_files import shown
from composer.spec.windows import parse_window

__all__ = [
    "DIGEST_KEY",
    "network_digest",
    "parse_model",
    "refuse_external_data",
    "check_interface",
    "check_outputs",
    "declared",
    "graph_inputs",
    "output_steps",
]

#: the metadata key of the network digest
DIGEST_KEY = "rnn-composer.network.sha256"
#: fields of the built network that do not change what it computes, left out of the digest
NOT_DIGESTED = frozenset(
    {"name", "steps", "path", "window_path", "description", "dropout", "label"}
)
#: ONNX's TensorProto.DataLocation.EXTERNAL
EXTERNAL = 1


def network_digest(folded: nx.MultiDiGraph) -> str:
    """SHA-256 of the network a spec builds: its vectors, connections, sizes, kinds and
    windows, as canonical JSON; comments, layout, descriptions, dropout and the default T
    leave it as is."""

    def kept(data: dict) -> dict:
        return {k: v for k, v in data.items() if k not in NOT_DIGESTED}

    nodes = sorted([name, kept(data)] for name, data in folded.nodes(data=True))
    edges = [[u, v, key, kept(data)] for u, v, key, data in folded.edges(keys=True, data=True)]
    text = json.dumps(
        {
            "graph": kept(dict(folded.graph)),
            "nodes": nodes,
            "edges": sorted(edges, key=lambda edge: json.dumps(edge, default=repr)),
        },
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def parse_model(data: bytes, where: str):
    """The `ModelProto` in `data`, or one line (DataError) when it is not one."""
    onnx = need("onnx")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise DataError(f"{where}: not an ONNX model ({_first_line(err)})") from None
    if not model.HasField("graph"):
        raise DataError(f"{where}: not an ONNX model (it holds no graph)")
    return model


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def refuse_external_data(model, where: str) -> None:
    """Refuse (DataError) a model with any tensor stored outside it."""
    for what, tensor in _tensors(model):
        if tensor.data_location == EXTERNAL or len(tensor.external_data):
            location = {entry.key: entry.value for entry in tensor.external_data}.get("location")
            file = f" ({shown(location)!r})" if location is not None else ""
            if what.startswith("node") and tensor.name:
                what = f"tensor `{shown(tensor.name)}` ({what})"
            raise DataError(
                f"{where}: {what} keeps its data in an external file{file}; models with "
                "external data are not run (the exporter never writes them: keep every "
                "tensor inside the model)"
            )


def _tensors(model):
    """Every TensorProto of a model, with what holds it, for a message."""
    yield from _graph_tensors(model.graph)
    for info in model.training_info:
        yield from _graph_tensors(info.initialization)
        yield from _graph_tensors(info.algorithm)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _graph_tensors(graph):
    for tensor in graph.initializer:
        yield f"initializer `{shown(tensor.name)}`", tensor
    for sparse in graph.sparse_initializer:
        name = shown(sparse.values.name)
        yield f"sparse initializer `{name}`", sparse.values
        yield f"sparse initializer `{name}`", sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node):
    for attribute in node.attribute:
        what = f"node `{shown(node.name or node.op_type)}`, attribute `{shown(attribute.name)}`"
        if attribute.HasField("t"):
            yield what, attribute.t
        for tensor in attribute.tensors:
            yield what, tensor
        sparse = [attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []
        for value in [*sparse, *attribute.sparse_tensors]:
            yield what, value.values
            yield what, value.indices
        if attribute.HasField("g"):
            yield from _graph_tensors(attribute.g)
        for graph in attribute.graphs:
            yield from _graph_tensors(graph)


def declared(value_info) -> tuple[str, int | None, list]:
    """A graph input's or output's declared type: ('tensor(float)', rank, dims), with
    rank None when no shape is declared; the dims are ints or None (symbolic)."""
    onnx = need("onnx")
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type":
        what = {"sequence_type": "a sequence", "map_type": "a map", "optional_type": "an optional"}
        return what.get(kind, "an untyped value"), None, []
    tensor = value_info.type.tensor_type
    element = (
        onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
    )
    if not tensor.HasField("shape"):
        return f"tensor({element})", None, []
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return f"tensor({element})", len(dims), dims


def graph_inputs(model) -> list:
    """The model's real inputs (older models list their initializers as inputs too)."""
    stored = {tensor.name for tensor in model.graph.initializer}
    return [info for info in model.graph.input if info.name not in stored]


def _expected_inputs(folded: nx.MultiDiGraph) -> dict[str, tuple[set[str], int, str]]:
    """Per input the model may take: its element types, rank and how a message says it."""
    out = {}
    for name, data in folded.nodes(data=True):
        if data["role"] != "input":
            continue
        dims = input_dims(folded, name, None)
        if data.get("vocab"):
            out[name] = ({"tensor(int64)"}, 2, "int64 token ids (B, T_in)")
        elif data.get("given_state"):
            out[name] = (FLOATS, 2, f"a float start state (B, {data['size']})")
        else:
            out[name] = (FLOATS, len(dims), f"a float tensor (B, T_in, {data['size']})")
        if not data.get("given_state"):
            out[f"{name}.lengths"] = ({"tensor(int64)"}, 1, "int64 lengths (B,)")
    return out


FLOATS = frozenset({"tensor(float32)", "tensor(float64)"})


def _outputs(folded: nx.MultiDiGraph) -> dict[str, int]:
    return {n: d["size"] for n, d in folded.nodes(data=True) if d["role"] == "output"}


def check_interface(model, folded: nx.MultiDiGraph, where: str) -> None:
    """Refuse (DataError) a model whose inputs or outputs are not the spec's, or whose
    network digest is another network's."""
    meta = {prop.key: prop.value for prop in model.metadata_props}
    if DIGEST_KEY in meta and meta[DIGEST_KEY] != network_digest(folded):
        raise DataError(
            f"{where}: exported from another network than this spec (its {DIGEST_KEY} "
            "differs); run it with the spec it was exported from"
        )
    expected = _expected_inputs(folded)
    inputs = graph_inputs(model)
    for info in inputs:
        name = info.name
        if name not in expected:
            raise DataError(
                f"{where}: input `{shown(name)}` is not an input of this spec "
                f"(its inputs: {', '.join(n for n in expected if not n.endswith('.lengths'))})"
            )
        elements, rank, said = expected[name]
        _check_declared(info, elements, rank, said, where, "input")
    taken = {info.name for info in inputs}
    for name in expected:
        if not name.endswith(".lengths") and name not in taken:
            raise DataError(f"{where}: the model takes no input `{name}`, an input of this spec")
    sizes = _outputs(folded)
    given = [info.name for info in model.graph.output]
    for info in model.graph.output:
        name = info.name
        if name in sizes:
            said = f"a float tensor (B, T_out, {sizes[name]})"
            _check_declared(info, FLOATS, 3, said, where, "output", size=sizes[name])
        elif name.endswith(".lengths") and name[: -len(".lengths")] in sizes:
            _check_declared(info, {"tensor(int64)"}, 1, "int64 lengths (B,)", where, "output")
        else:
            raise DataError(
                f"{where}: output `{shown(name)}` is not an output of this spec "
                f"(its outputs: {', '.join(sizes)})"
            )
    for name in sizes:
        if name not in given:
            raise DataError(f"{where}: the model gives no output `{name}`, an output of this spec")


def _check_declared(info, elements, rank, said, where, role, size=None) -> None:
    element, declared_rank, dims = declared(info)
    fits = element in elements and declared_rank in (None, rank)
    if fits and size is not None and declared_rank is not None:
        fits = dims[-1] in (None, 0, size)
    if not fits:
        shape = "" if declared_rank is None else f" of rank {declared_rank}"
        if declared_rank and all(d for d in dims):
            shape = f" of shape {tuple(dims)}"
        raise DataError(
            f"{where}: {role} `{shown(info.name)}`: expected {said}, the model declares "
            f"{element}{shape}"
        )


def output_steps(folded: nx.MultiDiGraph, steps: int) -> dict[str, int]:
    """Each output's T_out at T = `steps`."""
    return {
        name: len(parse_window(data["window"], steps))
        for name, data in folded.nodes(data=True)
        if data["role"] == "output"
    }


def check_outputs(
    values: dict, folded: nx.MultiDiGraph, batch: int, steps: dict[str, int] | None, where: str
) -> None:
    """Refuse (DataError) outputs that are not what the spec gives: a float (B, T_out,
    size) array per output (T_out checked when `steps` gives it), int64 (B,) lengths."""
    sizes = _outputs(folded)
    for name, value in values.items():
        if isinstance(value, str):  # what the worker found instead of a tensor
            raise DataError(f"{where}: output `{shown(name)}` came as {value}, not a float tensor")
        if name in sizes:
            expected = (batch, (steps or {}).get(name), sizes[name])
            fits = value.dtype.kind == "f" and value.ndim == 3
            fits = fits and all(e is None or e == g for e, g in zip(expected, value.shape))
            said = f"float ({batch}, {expected[1] or 'T_out'}, {sizes[name]})"
        else:
            fits = value.dtype.kind in "iu" and value.shape == (batch,)
            said = f"integer ({batch},)"
        if not fits:
            raise DataError(
                f"{where}: output `{shown(name)}`: expected {said}, the model gave "
                f"{value.dtype.name} {tuple(value.shape)}"
            )
    if not np.all([np.all(v >= 0) for n, v in values.items() if n not in sizes]):
        raise DataError(f"{where}: the model gave negative lengths")
