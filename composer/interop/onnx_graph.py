"""Writing ONNX graphs: a small builder of nodes, shared weights and constants, each value
under a fresh name, so the exporters read as the equations they write.

Examples
--------
>>> g = Builder("float32", opset=17)
>>> y = g.tanh(g.add("x", g.weight("rnn.b", np.zeros(2))))
>>> [node.op_type for node in g.nodes], sorted(g.initializers)
(['Add', 'Tanh'], ['rnn.b'])
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from composer.interop import need
from composer.kinds.ops import LAYER_NORM_EPS, Ops

__all__ = ["Builder"]

#: ONNX's element type for each of our dtypes (onnx.TensorProto.FLOAT, DOUBLE, INT64, BOOL)
_ELEMENT = {"float32": 1, "float64": 11, "int64": 7, "int32": 6, "bool": 9}


class Builder(Ops):
    """Nodes and initializers of one graph, and the step vocabulary (`composer.kinds.ops`)
    on the names of its values; `child()` makes a subgraph's builder (a Scan
    body) that shares the names and the weights, which a subgraph reads from outside.

    Values are named by what they are (`rnn.s@3`, `tanh_12`); weights by their keys, once.
    """

    def __init__(self, dtype: str, opset: int, parent: Builder | None = None):
        self.onnx = need("onnx")
        self.dtype, self.opset = np.dtype(dtype), opset
        self.element = _ELEMENT[self.dtype.name]
        self.nodes: list = []
        self.root = parent.root if parent else self
        if parent is None:
            self.initializers: dict = {}
            self._count = itertools.count()
            self._constants: dict = {}

    def child(self) -> Builder:
        """A builder for a subgraph (a Scan body) of this graph."""
        return Builder(self.dtype.name, self.opset, parent=self)

    def fresh(self, hint: str) -> str:
        """A name no other value has."""
        return f"{hint}_{next(self.root._count)}"

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str | None = None,
        outputs: int = 1,
        **attrs,
    ):
        """Add a node; its output name (or names, when `outputs` > 1)."""
        names = [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        node = self.onnx.helper.make_node(op_type, list(inputs), names, name=names[0], **attrs)
        self.nodes.append(node)
        return names[0] if outputs == 1 else names

    def name_as(self, value: str, name: str) -> str:
        """Give a value a chosen name (a graph's or a body's output)."""
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name], name=name))
        return name

    def tensor_type(self, shape: Sequence, element: str | None = None):
        """A value's type for graph inputs and outputs: our dtype unless `element` says."""
        kind = _ELEMENT[element] if element else self.element
        return self.onnx.helper.make_tensor_type_proto(kind, list(shape))

    def value_info(self, name: str, shape: Sequence, element: str | None = None):
        return self.onnx.helper.make_value_info(name, self.tensor_type(shape, element))

    # -- weights and constants ------------------------------------------------------------

    def weight(self, key: str, array: np.ndarray) -> str:
        """A weight stored once under its key, cast to the graph's dtype."""
        store = self.root.initializers
        if key not in store:
            value = np.ascontiguousarray(np.asarray(array, dtype=self.dtype))
            store[key] = self.onnx.numpy_helper.from_array(value, key)
        return key

    def const(self, values, dtype: str = "int64") -> str:
        """A small constant (indexes, shapes, axes), stored once per value."""
        array = np.asarray(values, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        known = self.root._constants.get(key)
        if known is None:
            known = self.fresh("const")
            self.root.initializers[known] = self.onnx.numpy_helper.from_array(array, known)
            self.root._constants[key] = known
        return known

    def scalar(self, value: float) -> str:
        """A scalar of the graph's dtype."""
        return self.const(value, self.dtype.name)

    # -- the step vocabulary (`composer.kinds.ops`) ----------------------------------------

    def plus(self, a: str, b: str) -> str:
        return self.op("Add", [a, b])

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", [a, b])

    def times(self, a: str, b: str) -> str:
        return self.op("Mul", [a, b])

    def matmul(self, a: str | None, b: str) -> str | None:
        return None if a is None else self.op("MatMul", [a, b])

    def scale(self, x: str, number: float) -> str:
        return self.times(x, self.scalar(number))

    def sigmoid(self, x: str) -> str:
        return self.op("Sigmoid", [x])

    def tanh(self, x: str) -> str:
        return self.op("Tanh", [x])

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def softmax(self, x: str) -> str:
        return self.op("Softmax", [x], axis=-1)

    def chunks(self, x: str, parts: int) -> list[str]:
        """`x` cut into `parts` equal blocks along its last axis (a layer's gates)."""
        attrs = {"num_outputs": parts} if self.opset >= 18 else {}
        return self.op("Split", [x], outputs=parts, axis=-1, **attrs)

    def concat(self, values: Sequence[str], axis: int = -1) -> str:
        return values[0] if len(values) == 1 else self.op("Concat", list(values), axis=axis)

    def mean(self, x: str) -> str:
        """The mean over the last axis, kept as an axis of 1."""
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.const([-1])], keepdims=1)
        return self.op("ReduceMean", [x], axes=[-1], keepdims=1)

    def normalise(self, x: str) -> str:
        """(x - mean) / sqrt(var + eps) over the last axis, as NumPy's and torch's."""
        centred = self.sub(x, self.mean(x))
        variance = self.mean(self.times(centred, centred))
        std = self.op("Sqrt", [self.plus(variance, self.scalar(LAYER_NORM_EPS))])
        return self.op("Div", [centred, std])

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", [x, self.const(list(axes))])

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Squeeze", [x, self.const(list(axes))])

    def slice(self, x: str, axis: int, start, stop=None) -> str:
        """x[start:stop] along `axis`; `start` and `stop` are ints or (1,) int64 values."""
        stop = np.iinfo(np.int64).max if stop is None else stop
        bounds = [b if isinstance(b, str) else self.const([b]) for b in (start, stop)]
        return self.op("Slice", [x, *bounds, self.const([axis])])

    def dim(self, x: str, axis: int) -> str:
        """The size of `x` along `axis`, as a (1,) int64 value."""
        return self.op("Shape", [x], start=axis, end=axis + 1)

    def cast(self, x: str, element: str) -> str:
        return self.op("Cast", [x], to=_ELEMENT[element])

    def zeros(self, rows: str, size: int, lead: Sequence[int] = ()) -> str:
        """A (*lead, rows, size) block of zeros of the graph's dtype; `rows` a (1,) int64
        value (the batch)."""
        parts = [self.const(list(lead))] if lead else []
        shape = self.op("Concat", [*parts, rows, self.const([size])], axis=0)
        zero = self.onnx.numpy_helper.from_array(np.zeros(1, dtype=self.dtype))
        return self.op("ConstantOfShape", [shape], value=zero)

    def tokens(self, ids: str, vocab: int, table: str | None) -> str:
        """(B, T, size) vectors of (B, T) int64 ids: rows of an embedding `table` (Gather),
        or one-hot over `vocab` (ids compared with 0..vocab-1, cast)."""
        if table is not None:
            return self.op("Gather", [table, ids], axis=0, hint="embedded")
        hit = self.op("Equal", [self.unsqueeze(ids, [2]), self.const(np.arange(vocab))])
        return self.cast(hit, self.dtype.name)

    def initial(self, s0: str, rows: str, size: int, lead: Sequence[int] = ()) -> str:
        """A trained initial state `s0` (size,) repeated to (*lead, rows, size)."""
        return self.add(self.zeros(rows, size, lead), s0)

    def steps_mask(self, steps: str, lengths: str) -> str:
        """(B, T) booleans: step t < lengths[b]; `steps` a (1,) int64 T, `lengths` (B,)."""
        limit = self.squeeze(steps, [0])
        positions = self.op("Range", [self.const(0), limit, self.const(1)])
        return self.op("Less", [self.unsqueeze(positions, [0]), self.unsqueeze(lengths, [1])])
