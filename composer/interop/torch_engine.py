"""The PyTorch engine: `run` and the gradients of `train` computed by the module of
`to_torch`, on a CPU or a GPU, data-parallel under `torchrun`.

Training keeps everything else of `composer.training.train` (data checks, the split,
shuffling, optimisers, clipping, the best weights): only each minibatch's loss and
gradients come from here, in our layout, so the result is our `.npz`. Under `torchrun`
(`WORLD_SIZE` > 1) every rank takes its share of each minibatch through
`DistributedDataParallel` (gloo on the CPU, NCCL on GPUs); the gradients are averaged
across ranks, so every rank makes the same update and the result is the single-process
one up to the order of the floating-point sums.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from composer.engine.batches import output_steps
from composer.engine.inputs import batched, split_lengths
from composer.engine.lengths import check_lengths, item_steps
from composer.errors import DataError, SpecError
from composer.interop import need
from composer.interop.launch import process_group
from composer.interop.torch_group import join_group
from composer.interop.torch_keys import grads_from_state
from composer.interop.torch_module import to_torch

torch = need("torch")

__all__ = ["device_for", "rank", "world_size", "run_torch", "TorchEngine", "loss_of"]


def world_size() -> int:
    """How many processes `torchrun` started (1 without it; `composer.interop.launch`)."""
    return process_group().world


def rank() -> int:
    """This process's rank under `torchrun` (0 without it; `composer.interop.launch`)."""
    return process_group().rank


def device_for(text: str | None) -> torch.device:
    """`cpu`, `cuda` or `cuda:N` as a device, checked; under `torchrun`, `cuda` is the
    local rank's GPU."""
    text = text or "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise DataError(f"--device: expected cpu, cuda or cuda:N, got {text!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise DataError(f"--device: expected cpu, cuda or cuda:N, got {text!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DataError(f"--device {text}: no CUDA GPU is available to PyTorch here")
        if device.index is None and world_size() > 1:
            device = torch.device("cuda", process_group().local_rank)
        if (device.index or 0) >= torch.cuda.device_count():
            raise DataError(
                f"--device {text}: there are {torch.cuda.device_count()} GPUs (cuda:0..)"
            )
    return device


def run_torch(
    graph: nx.MultiDiGraph,
    params: Mapping[str, np.ndarray],
    inputs,
    steps: int | None = None,
    dtype: str = "float32",
    device: str | None = None,
    lengths: Mapping[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """`composer.run` on the PyTorch engine: the same arguments, the same result."""
    where = device_for(device)
    module = to_torch(graph, params, dtype).to(where).eval()  # no dropout, as `run`
    arrays, flat = batched(graph, inputs)
    tensors = {name: torch.as_tensor(np.asarray(a)).to(where) for name, a in arrays.items()}
    if flat:
        tensors = {name: t[0] for name, t in tensors.items()}
    with torch.no_grad():
        outputs = module(tensors, lengths=lengths, steps=steps)
    return {name: value.cpu().numpy() for name, value in outputs.items()}


def _weights(
    graph: nx.MultiDiGraph, targets, masks, lengths: Mapping, inputs
) -> dict[str, np.ndarray]:
    """Per output, the (B, T_out) weight of each step in the loss: its mask, and with
    lengths zero past each item's own output steps; left out where every step weighs 1."""
    out = {}
    per_item = None
    if lengths:
        checked = check_lengths(graph, inputs, lengths)
        per_item = item_steps(graph, inputs, checked)
    for name, target in targets.items():
        weight = np.ones(np.shape(target)[:2])
        if name in masks:
            weight = weight * np.asarray(masks[name], dtype=np.float64)
        if per_item is not None:
            counts = np.array([len(r) for r in output_steps(graph, name, per_item)])
            weight = weight * (np.arange(weight.shape[1])[None, :] < counts[:, None])
        if name in masks or per_item is not None:
            out[name] = weight
    return out


def loss_of(outputs, logits, targets, kinds, weights, totals):
    """The losses of `composer.training.losses` on tensors: per output the weighted mean
    over its steps (`totals` divides), mse and binary cross-entropy over features, both
    cross-entropies from logits."""
    value = 0
    for name, kind in kinds.items():
        if totals[name] <= 0:
            continue
        out = outputs[name]
        steps = out.shape[1]  # a padded minibatch's longest item may be shorter than the data's
        target = targets[name][:, :steps]
        weight = weights[name][:, :steps, None] if name in weights else 1.0
        if kind == "mse":
            value = value + (weight * (out - target) ** 2).sum() / (totals[name] * out.shape[-1])
        elif kind == "binary-cross-entropy":
            per = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[name], target, reduction="none"
            )
            value = value + (weight * per).sum() / (totals[name] * out.shape[-1])
        else:
            logp = logits[name].log_softmax(-1)
            if target.dim() == logp.dim() - 1:
                target = torch.nn.functional.one_hot(target.long(), logp.shape[-1]).to(logp)
            value = value - (weight * target * logp).sum() / totals[name]
    return value


class TorchEngine:
    """A minibatch's loss and gradients through the module, for `composer.train`."""

    def __init__(self, graph: nx.MultiDiGraph, dtype: str = "float32", device: str | None = None):
        self.graph, self.dtype = graph, getattr(torch, dtype)
        self.world = world_size()
        self.distributed = self.world > 1
        self.drops = [(t, d) for _, t, d in graph.edges(data=True) if d.get("dropout")]
        if self.drops and self.distributed:  # each rank would need the whole batch's masks
            target = self.drops[0][0]
            raise SpecError(
                f"layer `{graph.nodes[target]['layer']}`: dropout is not applied by the torch "
                "engine under torchrun (DDP) yet; train it on one process or with --engine numpy",
                graph.nodes[target]["path"],
            )
        self.device = device_for(device)  # a missing GPU is refused before any group starts
        if self.distributed and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            join_group(backend, process_group())
        self.module = to_torch(graph, None, dtype).to(self.device)
        self.model = self.module
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=ids)

    def check_data(self, padded: bool) -> None:
        """Refuse, before training starts, what this engine cannot train exactly: dropout
        on a padded data set (its masks would differ from the numpy engine's)."""
        if padded and self.drops:
            target = self.drops[0][0]
            raise SpecError(
                f"layer `{self.graph.nodes[target]['layer']}`: dropout on a padded data set is "
                "not applied by the torch engine yet (its masks would differ from the numpy "
                "engine's); train it with --engine numpy",
                self.graph.nodes[target]["path"],
            )

    def _tensors(self, arrays: Mapping[str, np.ndarray], index=None) -> dict:
        out = {}
        for name, array in arrays.items():
            array = np.asarray(array) if index is None else np.asarray(array)[index]
            dtype = self.dtype if array.dtype.kind == "f" else torch.int64
            out[name] = torch.as_tensor(array).to(self.device, dtype)
        return out

    def __call__(self, weights, inputs, targets, masks, lengths, kinds, bptt, backward,
                 dropout=None):  # fmt: skip
        """The loss (and with `backward` the gradients in our layout) of a minibatch;
        `dropout`, the `Dropout` whose masks this update applies (the NumPy engine's)."""
        inputs, _ = split_lengths(inputs)
        dropout = dropout if backward and self.drops else None
        if dropout is not None and lengths:
            self.check_data(padded=True)
        self.module.train(dropout is not None)  # eval(): nothing drops
        self.module.load_params(weights, check=False)  # checked by `train`
        step_weights = _weights(self.graph, targets, masks, lengths, inputs)
        totals = {
            name: float(step_weights[name].sum()) if name in step_weights else np.prod(t.shape[:2])
            for name, t in targets.items()
        }
        batch = len(next(iter(inputs.values())))
        index, scale = np.arange(batch), 1.0
        if backward and self.distributed:  # this rank's share of the minibatch
            index = np.array_split(np.arange(batch), self.world)[rank()]
            if len(index) == 0:  # fewer items than ranks: take part, add nothing
                index, scale = np.arange(1), 0.0
        part_lengths = {k: np.asarray(v)[index] for k, v in lengths.items()} if lengths else None
        with torch.set_grad_enabled(backward):
            model = self.model if backward else self.module
            outputs, logits = self._forward(model, inputs, index, part_lengths, bptt, dropout)
            value = scale * loss_of(
                outputs,
                logits,
                self._tensors(targets, index),
                kinds,
                self._tensors(step_weights, index),
                totals,
            )
            if self.distributed or not torch.is_tensor(value):
                # every parameter takes part, with a zero where the loss does not reach it
                # (a layer no output needs): DDP then waits for every gradient, every step
                value = value + sum(p.sum() for p in self.module.parameters()) * 0
        if not backward:
            return float(value.detach())
        self.module.zero_grad(set_to_none=True)
        value.backward()
        if self.distributed:  # the sum of the ranks' shares; DDP averaged the gradients
            value = value.detach().clone()
            torch.distributed.all_reduce(value)
        grads = {
            name: p.grad.detach().cpu().numpy() * self.world
            for name, p in self.module.named_parameters()
            if p.grad is not None
        }
        ours = grads_from_state(self.graph, grads, self.module._keys)
        return float(value.detach()), {k: v.astype(weights[k].dtype) for k, v in ours.items()}

    def _forward(self, model, inputs, index, lengths, bptt, dropout=None):
        return model(
            self._tensors(inputs, index), lengths=lengths, bptt=bptt, logits=True, dropout=dropout
        )
