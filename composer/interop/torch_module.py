"""The spec as a PyTorch module: `to_torch(graph, params)`, an `nn.Module` whose call gives
what `composer.run` gives, with autograd, on any device.

Parameters are PyTorch's own (`composer.interop.torch_keys`): one submodule per spec
layer, holding its `nn.RNN`, `nn.LSTM` or `nn.GRU` as `rnn` and its readout as `readout`.

How it runs, per call (the plan is the one the NumPy engine runs at that T):

- **natively**, a recurrent layer that exists at every step, reads its inputs at the same
  step, has no connection into it, no dilation, no hand-over of a state, and an
  activation its `torch.nn` module has: one call of that module over all steps, so
  cuDNN on a GPU and oneDNN on the CPU; with lengths, through a packed sequence; a
  trained initial state (`initial_state: learn`) is the module's h0;
- **through a cell loop** everything else the spec can say (dilations, Jordan feedback,
  windows, hand-over, absent inputs, backward-only layers): the plan's groups in order,
  step by step, each kind's one `step` on tensors (`composer.interop.torch_ops`), on the
  file's layout of the same parameters.

Token inputs (`vocab`) are ids: embedded by the input's `nn.Embedding` (`embed`) or
one-hot, before anything runs. Readouts and dense layers run over all their steps at
once. Lengths follow the contract of `docs/sequences.md` (a `padding_id` gives them): a
network whose layers all run natively and that could run packed runs packed; any other
runs grouped by each item's T.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from composer.engine.batches import input_steps, output_steps, packable
from composer.engine.inputs import (
    LENGTHS_SUFFIX,
    check_inputs,
    infer_steps,
    input_sizes,
    is_given,
)
from composer.engine.lengths import check_lengths, item_steps
from composer.engine.pipeline import plan_for_steps
from composer.engine.plan import Plan
from composer.engine.tokens import check_ids, padding_lengths, token_vocab
from composer.errors import DataError, SpecError
from composer.graph.weights import check_params
from composer.interop import need
from composer.interop.native import TORCH_MODULES
from composer.interop.torch_keys import from_state, held_natively, to_state, torch_keys
from composer.interop.torch_pass import TorchPass
from composer.kinds import KINDS, writes_step
from composer.training.dropout import Dropout

torch = need("torch")
nn = torch.nn

__all__ = ["ComposerModule", "to_torch"]


def to_torch(
    graph: nx.MultiDiGraph, params: Mapping[str, np.ndarray] | None = None, dtype: str = "float32"
) -> ComposerModule:
    """The network as an `nn.Module` with these weights (None: PyTorch's own init)."""
    module = ComposerModule(graph, getattr(torch, dtype))
    if params is not None:
        module.load_params(params)
    return module


class _Layer(nn.Module):
    """One spec layer's parameters: `rnn` and `readout`, or `linear`, and connections;
    `s0`, its trained initial state, with `initial_state: learn`."""


class _Input(nn.Module):
    """A token input's parameters: its `nn.Embedding` as `embedding`."""


class ComposerModule(nn.Module):
    """A composed network as a PyTorch module; call it like `composer.run`.

    `module(x)` for a one-input network, `module({"x": x, ...})` otherwise, with (B, T, F)
    (or (T, F)) tensors and optional `lengths={"x": [...]}` and `steps=`; returns
    `{output: tensor}` and, with lengths, `{output}.lengths`.
    """

    def __init__(self, graph: nx.MultiDiGraph, dtype=None):
        super().__init__()
        for _, data in graph.nodes(data=True):
            if data["role"] == "state" and not writes_step(KINDS[data["kind"]]):
                raise SpecError(
                    f"layer `{data['layer']}`: kind `{data['kind']}` has no PyTorch module "
                    "yet: it writes no `step` (only the numpy engine runs it)",
                    data["path"],
                )
        self.graph = graph
        self._drops = any(d.get("dropout") for *_, d in graph.edges(data=True))
        self._own_masks = Dropout(None)  # a training call's masks, unless given
        self._plans: dict[tuple[int, bool], Plan] = {}
        self._keys = torch_keys(graph)
        layers = {}
        for _, data in graph.nodes(data=True):
            if data.get("layer"):
                layers.setdefault(data["layer"], []).append(data)
        shapes = {key.ours: key.shape for key in self._keys}
        for layer, nodes in layers.items():
            if hasattr(self, layer):
                raise SpecError(
                    f"layer `{layer}` has the name of an nn.Module attribute; rename it to "
                    "use the network in PyTorch",
                    ("layers",),
                )
            self.add_module(layer, self._layer(layer, nodes, shapes, dtype))
        self._vocab = token_vocab(graph)
        for name in self._vocab:
            if graph.nodes[name].get("embed"):
                if hasattr(self, name):
                    raise SpecError(
                        f"input `{name}` has the name of an nn.Module attribute; rename it to "
                        "use the network in PyTorch",
                        ("inputs",),
                    )
                rows, cols = shapes[f"{name}.E"]
                embedding = _Input()
                embedding.embedding = nn.Embedding(rows, cols, dtype=dtype)
                self.add_module(name, embedding)
        own = set(self.state_dict())
        for key in self._keys:  # the weights no torch.nn module holds, by their keys
            if key.names[0] in own:
                continue
            layer, name = key.ours.split(".", 1)
            if key.transpose:  # a matrix: an nn.Linear without bias
                linear = nn.Linear(*key.shape, bias=False, dtype=dtype)
                getattr(self, layer).add_module(name, linear)
            else:
                value = nn.Parameter(torch.zeros(key.shape, dtype=dtype))
                getattr(self, layer).register_parameter(name, value)
        names = {name for key in self._keys for name in key.names}
        assert names == set(self.state_dict()), sorted(names ^ set(self.state_dict()))

    @staticmethod
    def _layer(layer: str, nodes: list[dict], shapes: dict, dtype) -> _Layer:
        module = _Layer()
        for data in nodes:
            if data.get("learned"):
                module.s0 = nn.Parameter(torch.zeros(shapes[data["learned"]], dtype=dtype))
            bias = data.get("bias", True)
            if data["role"] == "state" and not data["suffix"] and held_natively(data, shapes):
                kind = KINDS[data["kind"]]
                fan_in = shapes[f"{layer}.{kind.input_weight}"][0]
                native = TORCH_MODULES[kind.name]
                options = native.options(data["activation"]) or {}
                units = data.get("units", data["size"])  # H; the state has size P when projected
                options.update(native.sizes(units, data["size"]))
                bidirectional = any(d["role"] == "state" and d["suffix"] for d in nodes)
                module.rnn = getattr(nn, native.module)(
                    fan_in,
                    units,
                    batch_first=True,
                    bidirectional=bidirectional,
                    bias=bias,
                    dtype=dtype,
                    **options,
                )
            elif data["role"] == "readout":
                rows, cols = shapes[f"{layer}.Wy"]
                module.readout = nn.Linear(rows, cols, dtype=dtype)
            elif data["role"] == "dense" and held_natively(data, shapes):
                rows, cols = shapes[f"{layer}.{KINDS[data['kind']].input_weight}"]
                module.linear = nn.Linear(rows, cols, bias=bias, dtype=dtype)
        return module

    # -- weights --------------------------------------------------------------------------

    def load_params(self, params: Mapping[str, np.ndarray], check: bool = True) -> None:
        """Copy our weights (keys `<layer>.<param>`, checked unless `check` is False) into
        the parameters."""
        if check:
            check_params(self.graph, dict(params))
        state = to_state(self.graph, params)
        own = self.state_dict()
        with torch.no_grad():
            for name, value in state.items():
                own[name].copy_(torch.from_numpy(np.asarray(value)))

    def params(self) -> dict[str, np.ndarray]:
        """Our weights from the parameters (`<layer>.<param>` arrays, on the CPU)."""
        state = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        return from_state(self.graph, state)

    def our_weights(self) -> dict:
        """Every weight in our layout as a tensor expression of the parameters (views)."""
        tensors = dict(self.named_parameters())
        out = {}
        for key in self._keys:
            value = tensors[key.names[0]]
            for other in key.names[1:]:
                value = value + tensors[other]
            out[key.ours] = value.t() if key.transpose else value
        return out

    # -- calling --------------------------------------------------------------------------

    def forward(
        self, inputs, lengths=None, steps=None, bptt=None, logits: bool = False, dropout=None
    ):
        """`{output: (B, T_out, size)}` for `{input: (B, T_in, F)}` (or one tensor).

        `bptt=K` detaches the carried states every K steps (truncated BPTT, as training
        does); `logits=True` returns (outputs, the pre-softmax values of outputs read from
        a softmax), what a cross-entropy needs. In training mode (`module.train()`, as
        PyTorch modules start) the layers' dropout applies, with new masks at each call;
        `dropout=` a `composer.training.Dropout` takes its masks from it instead, as
        `Network.grad(train=...)` does (the same seed gives the same masks). `eval()`:
        none.
        """
        outputs, found = self.run(inputs, lengths, steps, bptt, logits, dropout)
        return (outputs, found) if logits else outputs

    def _dropout(self, given):
        """The masks' source of this call: none in eval mode or without dropout."""
        if not self.training or not self._drops:
            return None
        if given is not None:
            return given
        self._own_masks.renew()  # fresh masks at every call, as nn.Dropout draws them
        return self._own_masks

    def run(self, inputs, lengths=None, steps=None, bptt=None, logits: bool = False,
            dropout=None):  # fmt: skip
        """(outputs, the logits of outputs read from a softmax when `logits`)."""
        dropout = self._dropout(dropout)
        names = list(input_sizes(self.graph))
        if not isinstance(inputs, Mapping):
            if len(names) != 1:
                raise DataError(f"the network has inputs {', '.join(names)}: pass a dict")
            inputs = {names[0]: inputs}
        dtype = next(self.parameters()).dtype
        arrays = {  # ids keep their integer type, to be checked
            name: torch.as_tensor(value, dtype=None if name in self._vocab else dtype)
            for name, value in inputs.items()
        }
        flat = all(a.dim() == (1 if self._rank2(n) else 2) for n, a in arrays.items())
        if flat:
            if lengths is not None:
                raise DataError("lengths describe a batch: give (B, T_in, F) inputs with them")
            arrays = {name: a.unsqueeze(0) for name, a in arrays.items()}
        shapes = {name: _shape_only(a) for name, a in arrays.items()}
        ids = {name: a for name, a in arrays.items() if name in self._vocab}
        for name, a in ids.items():  # integer ids in range, or one line naming item and step
            if a.dim() == 2:
                check_ids(f"input {name!r}", a.cpu().numpy(), self._vocab[name])
        if lengths is None and not flat:  # `padding_id` ends each item
            lengths = padding_lengths(self.graph, {n: a.cpu().numpy() for n, a in ids.items()})
            lengths = lengths or None
        for name, a in ids.items():
            if a.dim() == 2:
                arrays[name] = self._tokens(name, a.long(), dtype)
        if lengths is not None:
            result = self._padded(arrays, shapes, lengths, steps, bptt, logits, dropout)
        else:
            plan = self._plan(infer_steps(self.graph, shapes) if steps is None else steps)
            check_inputs(plan, shapes)
            result = TorchPass(self, plan, arrays, bptt, logits, dropout=dropout).outputs()
        if flat:
            result = tuple({k: v[0] for k, v in part.items()} for part in result)
        return result

    def _rank2(self, name: str) -> bool:
        """Whether input `name`'s batched arrays are 2-D: token ids, or a start state."""
        return name in self._vocab or (name in self.graph and is_given(self.graph, name))

    def _tokens(self, name: str, ids, dtype):
        """A token input's (B, T_in) ids as (B, T_in, size) vectors: its embedding's rows,
        or one-hot."""
        if name in self._modules:
            return self._modules[name].embedding(ids)
        return nn.functional.one_hot(ids, self._vocab[name]).to(dtype)

    def _plan(self, steps: int, every_step: bool = False) -> Plan:
        """The plan at T = `steps`; `every_step`: with every output emitted at every step
        (a packed pass, whose items each take their own window's steps)."""
        if (steps, every_step) not in self._plans:
            graph = self.graph
            if every_step:
                graph = graph.copy()
                for name, role in graph.nodes(data="role"):
                    if role == "output":
                        graph.nodes[name]["window"] = ":"
            self._plans[steps, every_step] = plan_for_steps(graph, int(steps))
        return self._plans[steps, every_step]

    def _padded(self, arrays, shapes, lengths, steps, bptt, logits, dropout=None):
        """A padded batch: packed when every layer runs natively, else grouped by T."""
        given = {
            name: np.asarray(value.cpu() if torch.is_tensor(value) else value)
            for name, value in lengths.items()
        }
        checked = check_lengths(self.graph, shapes, given)
        per_item = item_steps(self.graph, shapes, checked, steps)
        longest = int(per_item.max())
        plan = self._plan(longest)
        device = next(self.parameters()).device
        outputs, found = {}, {}
        for name in plan.outputs:
            size = plan.vectors[name].size
            ranges = output_steps(self.graph, name, per_item)
            shape = (len(per_item), max(len(r) for r in ranges), size)
            outputs[name] = arrays[plan.inputs[0]].new_zeros(shape)
            found[name] = outputs[name].clone() if logits else None
            outputs[f"{name}{LENGTHS_SUFFIX}"] = torch.tensor([len(r) for r in ranges])
        packed = self._plan(longest, every_step=True) if packable(self.graph) else None
        native = dropout is None and packed is not None and TorchPass.all_native(self, packed)
        if native and bptt is None:
            result = TorchPass(self, packed, arrays, None, logits, per_item=per_item).outputs()
            for name in plan.outputs:  # the packed pass emitted every step: take each item's
                for item, steps_b in enumerate(output_steps(self.graph, name, per_item)):
                    for part, values in zip((outputs, found), result):
                        if name in values:
                            part[name][item, : len(steps_b)] = values[name][item, steps_b]
        else:
            for t in np.unique(per_item).tolist():
                items = torch.as_tensor(np.flatnonzero(per_item == t), device=device)
                group = {
                    name: array[items]
                    if is_given(self.graph, name)
                    else array[items, : input_steps(self.graph, name, t)]
                    for name, array in arrays.items()
                }
                result = TorchPass(self, self._plan(t), group, bptt, logits, dropout=dropout)
                result = result.outputs()
                for part, values in zip((outputs, found), result):
                    for name, value in values.items():
                        part[name][items, : value.shape[1]] = value
        return outputs, {k: v for k, v in found.items() if v is not None}


def _shape_only(tensor) -> np.ndarray:
    """A zero-memory array with a tensor's shape (and kind: ids stay integers), for the
    shape checks of the engine."""
    kind = np.float64 if tensor.is_floating_point() else np.int64
    return np.broadcast_to(np.zeros((), kind), tuple(tensor.shape))
