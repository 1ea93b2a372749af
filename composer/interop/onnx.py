"""ONNX export, and running an exported model with ONNX Runtime.

`build_model` writes a network with its weights as an ONNX model: with a dynamic batch
and T when nothing in it depends on T (`composer.interop.onnx_plain`: ONNX's recurrent
operators and Scan loops), else unrolled at a fixed T (`composer.interop.onnx_unrolled`).
`export` is the `export --format onnx` entry; `run_model` runs a model through ONNX
Runtime on our input arrays, and `run_onnx` is `run --engine onnx`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from composer.arrays import atomic_write
from composer.engine.pipeline import unroll_within
from composer.errors import ComposerError, DataError, ResourceError, SpecError
from composer.interop import need
from composer.interop.native import ONNX_OPERATORS
from composer.interop.onnx_check import (
    DIGEST_KEY,
    check_interface,
    check_outputs,
    declared,
    graph_inputs,
    network_digest,
    output_steps,
    parse_model,
    refuse_external_data,
)
from composer.interop.onnx_graph import Builder
from composer.interop.onnx_plain import fixed_t_reasons, plain_graph
from composer.interop.onnx_unrolled import write_unrolled
from composer.interop.onnx_worker import QUIET, WorkerError, run_session
from composer.kinds import KINDS, writes_step
from composer.output_files import shown

__all__ = [
    "MIN_OPSET",
    "NeedsSteps",
    "default_opset",
    "build_model",
    "export",
    "run_model",
    "run_onnx",
]

#: the oldest opset we write: Split, Squeeze and Unsqueeze take their sizes and axes as inputs
MIN_OPSET = 17
#: protobuf's limit on one serialized message: a model must fit in it (no external data)
MAX_MODEL_BYTES = 2**31 - 1
#: what one unrolled (vector, step) costs in the file, at most: its nodes and constants
UNROLLED_NODE_BYTES = 1024
#: metadata keys of a written model
META = (
    "rnn-composer.version",
    "rnn-composer.spec",
    "rnn-composer.weights.sha256",
    "rnn-composer.network.sha256",
)


class NeedsSteps(ComposerError):
    """A network that exports only unrolled, asked for without a T (a usage error)."""

    exit_code = 2


class OptionError(ComposerError):
    """An option value the ONNX export cannot take (a usage error)."""

    exit_code = 2


def _version() -> str:
    from composer import __version__

    return __version__


@functools.cache
def default_opset() -> int:
    """The newest opset both the installed `onnx` and `onnxruntime` support."""
    onnx, ort = need("onnx"), need("onnxruntime")
    ort.set_default_logger_severity(QUIET)  # its errors come as exceptions; no log lines
    quiet = ort.SessionOptions()
    quiet.log_severity_level = QUIET
    for opset in range(onnx.defs.onnx_opset_version(), MIN_OPSET - 1, -1):
        g = Builder("float32", opset)
        g.name_as("x", "y")
        model = _model(g, [g.value_info("x", [1])], [g.value_info("y", [1])], "probe", opset)
        try:
            ort.InferenceSession(
                model.SerializeToString(), quiet, providers=["CPUExecutionProvider"]
            )
        except Exception:  # noqa: BLE001 - ONNX Runtime's error types vary by version
            continue
        return opset
    raise OptionError(  # pragma: no cover - only with an onnxruntime older than opset 17
        f"the installed onnx and onnxruntime share no opset >= {MIN_OPSET}; upgrade onnxruntime"
    )


def _model(g: Builder, inputs, outputs, name: str, opset: int, doc: str = ""):
    helper = g.onnx.helper
    graph = helper.make_graph(
        g.nodes, name, inputs, outputs, initializer=list(g.initializers.values()), doc_string=doc
    )
    operators = [helper.make_opsetid("", opset)]
    return helper.make_model(
        graph,
        opset_imports=operators,
        ir_version=helper.find_min_ir_version_for(operators),
        producer_name="rnn-composer",
        producer_version=_version(),
        doc_string=doc,
    )


def _check_kinds(folded: nx.MultiDiGraph) -> None:
    for _, data in folded.nodes(data=True):
        kind = KINDS.get(data.get("kind"))
        if data["role"] == "state" and not writes_step(kind):
            what = f"`{kind.spec_kind}` with `{kind.option}`" if kind.option else f"`{kind.name}`"
            field = (kind.option.split(":")[0],) if kind.option else ()  # the option's field
            raise SpecError(
                f"layer `{data['layer']}`: kind {what} has no ONNX export yet",
                data["path"] + field,
            )


def export_mode(folded: nx.MultiDiGraph, dtype: str, steps: int | None, lengths: bool) -> str:
    """How a network is written: `operators` (ONNX's RNN/LSTM/GRU where they fit, Scan
    loops elsewhere), `scan` (float64: ONNX Runtime's recurrent operators run float32
    only) or `unrolled`; refused
    when it needs a T and has none, or lengths it cannot take."""
    _check_kinds(folded)
    reasons = fixed_t_reasons(folded)
    if not reasons:
        return "operators" if dtype == "float32" else "scan"
    if lengths:
        raise SpecError(
            "--lengths is exported only with a dynamic T, and this network is exported "
            f"unrolled because of {_listed(list(reasons))}",
            next(iter(reasons.values())),
        )
    if steps is None and folded.graph["preset"] != "one-to-one":
        raise NeedsSteps(
            f"`{folded.graph['name']}` exports to ONNX only unrolled at a fixed T, so give "
            f"--steps T: {_listed(list(reasons))} need{'s' if len(reasons) == 1 else ''} a fixed "
            "number of steps"
        )
    return "unrolled"


def _listed(reasons: list[str]) -> str:
    return reasons[0] if len(reasons) == 1 else ", ".join(reasons[:-1]) + " and " + reasons[-1]


def build_model(
    folded: nx.MultiDiGraph,
    params: Mapping[str, np.ndarray],
    *,
    dtype: str = "float32",
    steps: int | None = None,
    lengths: bool = False,
    opset: int | None = None,
    metadata: Mapping[str, str] | None = None,
):
    """The network with its weights as an ONNX `ModelProto`, checked; and its mode.

    Plain stacks keep a dynamic batch and T (a fixed T when `steps` is given); the rest
    is unrolled at `steps`. `lengths` adds an int64 input `<input>.lengths` per input and
    an output `<output>.lengths` per output.
    """
    onnx = need("onnx")
    opset = _opset(opset)
    mode = export_mode(folded, dtype, steps, lengths)
    _check_size(folded, params, dtype, steps if mode == "unrolled" else None)
    g = Builder(dtype, opset)
    if mode == "unrolled":
        steps = 1 if steps is None else steps  # only a one-to-one network gets here without
        inputs, outputs = write_unrolled(g, folded, params, steps)
        how = f"unrolled at T = {steps}"
    else:
        inputs, outputs = plain_graph(
            g, folded, params, lengths=lengths, steps=steps, native=mode == "operators"
        )
        how = _written_as({node.op_type for node in g.nodes})
        how += ", dynamic batch and T" if steps is None else f", T = {steps}"
    name = folded.graph["name"]
    doc = f"{name}: a recurrent network composed with rnn-composer ({how})."
    model = _model(g, inputs, outputs, name, opset, doc)
    props = {META[0]: _version(), **(metadata or {})}
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model, how


def _check_size(folded, params, dtype: str, steps: int | None) -> None:
    """Refuse (ResourceError) a model that cannot fit in one protobuf message, before
    building it: its weights, and for an unrolled one a bound on its nodes."""
    weights = sum(np.size(value) for value in params.values()) * np.dtype(dtype).itemsize
    nodes = 0
    if steps is not None:
        nodes = unroll_within(folded, steps).node_count() * UNROLLED_NODE_BYTES
    if weights + nodes > MAX_MODEL_BYTES:
        what = f"unrolled at T = {steps:,} " if steps else ""
        raise ResourceError(
            f"the ONNX model {what}would take about {(weights + nodes) / 2**30:.1f} GiB, more "
            f"than the 2 GiB an ONNX file holds; export fewer steps or smaller layers"
        )


def _written_as(op_types: set[str]) -> str:
    """How a network's recurrent layers were written, from its graph's operators."""
    forms = []
    if op_types & {native.operator for native in ONNX_OPERATORS.values()}:
        forms.append("ONNX recurrent operators")
    if "Scan" in op_types:
        forms.append("Scan loops")
    return " and ".join(forms) or "feedforward operators"


def _opset(opset: int | None) -> int:
    newest = default_opset()
    if opset is None:
        return newest
    if not MIN_OPSET <= opset <= newest:
        raise OptionError(
            f"--opset: expected {MIN_OPSET} to {newest} (the newest the installed onnx and "
            f"onnxruntime both run), got {opset}"
        )
    return opset


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(request) -> str:
    """`export --format onnx`: write the model (atomically); the line to report."""
    metadata = {
        META[1]: request.spec_text,
        META[2]: _sha256(request.weights_path),
        DIGEST_KEY: network_digest(request.graph),
    }
    model, how = build_model(
        request.graph,
        request.params,
        dtype=request.dtype,
        steps=request.steps,
        lengths=request.lengths,
        opset=request.opset,
        metadata=metadata,
    )
    data = model.SerializeToString()
    atomic_write(request.output, lambda handle: handle.write(data), overwrite=request.force)
    opset = model.opset_import[0].version
    return (
        f"wrote {shown(request.output)}: ONNX opset {opset}, {how}, {request.dtype}, "
        f"{len(data):,} bytes"
    )


def run_model(model, arrays: Mapping[str, np.ndarray], lengths: Mapping | None = None) -> dict:
    """Run an ONNX model (a path, bytes or a ModelProto) with ONNX Runtime on (B, T_in, F)
    arrays by input name, with `lengths` (B,) per input if the model takes them; its
    outputs by name. Refused in one line (DataError) when the model wants other inputs or
    keeps data in external files; an output that is not a numeric tensor comes as a string
    saying what it is. The run is a child process (`onnx_worker`), so it stops on SIGINT
    and SIGTERM like any other."""
    return _run_parsed(*model_bytes(model), arrays, lengths)


def _run_parsed(data: bytes, where: str, proto, arrays, lengths) -> dict:
    lengths = dict(lengths or {})
    feeds = {}
    for info in graph_inputs(proto):
        name = info.name
        element = {"tensor(float64)": np.float64, "tensor(int64)": np.int64}.get(
            declared(info)[0], np.float32
        )
        if name.endswith(".lengths"):
            source = arrays.get(name[: -len(".lengths")])
            if source is None:
                continue
            given = lengths.get(name[: -len(".lengths")])
            shape = np.shape(source)
            feeds[name] = np.asarray(
                np.full(shape[0], shape[1]) if given is None else given, dtype=np.int64
            )
        elif name in arrays:
            feeds[name] = np.ascontiguousarray(arrays[name], dtype=element)
        else:
            raise DataError(
                f"{where}: the model needs an input `{shown(name)}`; given: {', '.join(arrays)}"
            )
    if lengths and not any(name.endswith(".lengths") for name in feeds):
        raise DataError(f"{where}: the model takes no lengths; export it with --lengths")
    try:
        return run_session(data, feeds)
    except WorkerError as err:
        said = {"load": "cannot load the model: ", "run": "refused the inputs: "}
        raise DataError(f"{where}: ONNX Runtime {said.get(err.stage, '')}{err}") from None


def model_bytes(model) -> tuple[bytes, str, object]:
    """A model's bytes, its name for messages and its parsed `ModelProto`, checked for
    external data (refused: `composer.interop.onnx_check`)."""
    where = "the ONNX model"
    if hasattr(model, "SerializeToString"):  # parsed already
        data, proto = model.SerializeToString(), model
    else:
        if isinstance(model, (str, Path)):
            where = shown(model)
            data = Path(model).read_bytes()
        else:
            data = bytes(model)
        proto = parse_model(data, where)
    refuse_external_data(proto, where)
    return data, where, proto


def run_onnx(
    folded: nx.MultiDiGraph,
    params: Mapping[str, np.ndarray],
    arrays: Mapping[str, np.ndarray],
    lengths: Mapping[str, np.ndarray],
    dtype: str,
    steps: int,
    model: Path | None = None,
) -> dict[str, np.ndarray]:
    """`run --engine onnx`: the network exported in memory (or the given `model`) run by
    ONNX Runtime; the outputs as `run` gives them (with `<output>.lengths` when padded)."""
    where = shown(model) if model is not None else "the exported model"
    if model is None:
        fixed = steps if fixed_t_reasons(folded) else None
        model, _ = build_model(folded, params, dtype=dtype, steps=fixed, lengths=bool(lengths))
    data, _, proto = model_bytes(model)
    if where != "the exported model":
        check_interface(proto, folded, where)
    outputs = _run_parsed(data, where, proto, arrays, lengths)
    batch = len(next(iter(arrays.values())))
    check_outputs(outputs, folded, batch, None if lengths else output_steps(folded, steps), where)
    return {name: value for name, value in outputs.items() if lengths or "." not in name}
