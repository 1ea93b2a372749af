"""Small ONNX models the tool did not write, for the tests of `run --model`: outputs of
every kind and name, tensors kept in external files, a loop that never ends.

Each model fits the tagger of docs/interop.md (input `x` (B, T, 4), output `tags`
(B, T, 3)) unless it is built not to.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")  # a core-only install skips the modules that use these
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET = 17
TAGGER = """version: 1
name: tagger
steps: 12
inputs:
  - {name: x, size: 4}
layers:
  - {name: tagger, kind: lstm, input: x, state_size: 16, output: {size: 3}}
outputs:
  - {name: tags, from: tagger}
"""
X = np.random.default_rng(0).normal(size=(2, 12, 4)).astype(np.float32)


def x_input(elem=TensorProto.FLOAT, shape=("B", "T", 4), name="x"):
    return helper.make_tensor_value_info(name, elem, list(shape) if shape else None)


def sliced(source: str = "x", out: str = "tags") -> list:
    """Nodes that give `out` = source[..., :3]: a genuine (B, T, 3) float output."""
    return [
        helper.make_node(
            "Constant", [], [f"{out}.s"], value=numpy_helper.from_array(np.array([0], np.int64))
        ),
        helper.make_node(
            "Constant", [], [f"{out}.e"], value=numpy_helper.from_array(np.array([3], np.int64))
        ),
        helper.make_node(
            "Constant", [], [f"{out}.a"], value=numpy_helper.from_array(np.array([2], np.int64))
        ),
        helper.make_node("Slice", [source, f"{out}.s", f"{out}.e", f"{out}.a"], [out]),
    ]


def constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def make(nodes, outputs, inputs=None, initializers=(), metadata=None) -> bytes:
    graph = helper.make_graph(
        nodes, "hostile", inputs if inputs is not None else [x_input()], outputs,
        initializer=list(initializers),
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    return model.SerializeToString()


def genuine() -> bytes:
    """A model that is not ours but fits the spec: tags = x[..., :3]."""
    return make(sliced(), [helper.make_tensor_value_info("tags", TensorProto.FLOAT, ["B", "T", 3])])


def external(location: str, length: int = 16, where: str = "initializer") -> bytes:
    """tags = x[..., :3] + 0 * sum(w), with `w` kept in the file `location`."""
    w = onnx.TensorProto(name="w", data_type=TensorProto.UINT8, dims=[length])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    nodes = [
        *sliced(out="y"),
        helper.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["wf"], ["ws"], keepdims=0),
        helper.make_node("Add", ["y", "ws"], ["tags"]),
    ]
    out = [helper.make_tensor_value_info("tags", TensorProto.FLOAT, None)]
    if where == "initializer":
        return make(nodes, out, initializers=[w])
    nodes.insert(0, helper.make_node("Constant", [], ["w"], value=w))
    return make(nodes, out)


def endless() -> bytes:
    """tags = x[..., :3], carried through a Loop with no trip count whose condition
    stays true: it never ends."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("Identity", ["v"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None),
        ],
    )  # fmt: skip
    nodes = [
        *sliced(out="y"),
        constant("go", np.array(True)),
        helper.make_node("Loop", ["", "go", "y"], ["tags"], body=body),
    ]
    return make(nodes, [helper.make_tensor_value_info("tags", TensorProto.FLOAT, None)])
