"""Gradients: backpropagation through time over the same compiled Plan the executor runs.

`grad` runs a forward pass that keeps every step of every vector (and each cell's gate
values), computes the loss, then walks the plan's groups backwards: a feedforward group
(a readout or a dense layer) in one vectorised pass over all its steps, a scan group (a
recurrent layer) as a reverse time loop with one `dA_t Ws^T` product per step, a general
group (a feedback loop such as Jordan's) step by step, vector by vector. The inputs of a
layer are projected in one matrix product per feed in the forward pass, and their weight
gradients are one product per feed over all steps in the backward pass.

Truncated BPTT (`bptt=K`) is the TBPTT(K, K) scheme, what PyTorch users get by detaching
the hidden state every K steps: the unrolled steps are cut into blocks of K, [0, K),
[K, 2K), ... (a backward layer counts its blocks from step T-1 down), and a gradient
that would flow through a recurrent edge from step t to step t - lag in another block is
dropped. Recurrent edges are a layer's own recurrence (with the LSTM cell state) and the
delayed edges inside a feedback loop. The forward pass and the loss are unchanged, the
weights still get the gradient of every step, and the hand-over of `initial_state` is not
a recurrence: its gradient always flows.

Examples
--------
>>> from composer.graph.folded import build
>>> from composer.graph.weights import init_params
>>> from composer.engine.plan import compile_plan
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.unrolled import unroll
>>> spec = NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 3}],
...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4,
...                 "output": {"size": 2, "activation": "softmax"}}],
...     "outputs": [{"name": "y", "from": "rnn"}], "alignment": "many-to-one"})
>>> graph = build(spec)
>>> plan = compile_plan(unroll(graph, 5))
>>> x, y = np.ones((2, 5, 3)), np.array([[0], [1]])
>>> value, grads = grad(plan, init_params(graph, 0, "float64"), {"x": x}, {"y": y},
...                     loss="cross-entropy")
>>> sorted(grads), grads["rnn.Ws"].shape
(['rnn.Ws', 'rnn.Wx', 'rnn.Wy', 'rnn.b', 'rnn.by'], (4, 4))
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.dtypes import check_dtype
from composer.engine.inputs import check_inputs
from composer.engine.plan import Plan
from composer.engine.tokens import encode_tokens
from composer.errors import DataError
from composer.graph.weights import check_params
from composer.training.dropout import Dropout
from composer.training.losses import (
    check_targets,
    loss_kinds,
)
from composer.training.tape import Workspace
from composer.training.tape_walk import Tape

__all__ = ["grad", "evaluate", "forward_pass", "backward_pass", "Workspace", "Dropout"]

Arrays = Mapping[str, np.ndarray]


def grad(
    plan: Plan,
    params: Arrays,
    inputs: Arrays,
    targets: Arrays | np.ndarray,
    loss: str | Mapping[str, str] = "mse",
    mask: Arrays | np.ndarray | None = None,
    bptt: int | None = None,
    *,
    dtype: str | None = None,
    workspace: Workspace | None = None,
    totals: Mapping[str, float] | None = None,
    active: Mapping[str, np.ndarray] | None = None,
    train: bool | Dropout = False,
) -> tuple[float, dict[str, np.ndarray]]:
    """The loss of a batch and its gradient w.r.t. every weight, by backpropagation.

    `inputs` are (B, T_in, F) by input name; `targets` (B, T_out, size) by output name, or
    (B, T_out) class ids for cross-entropy (a bare array for a network with one output);
    `mask` (B, T_out) per output weights the steps (0 leaves a step out). `loss` is `mse`
    or `cross-entropy` (see `composer.training.losses`), or a mapping by output. `bptt` truncates
    backpropagation through recurrences to blocks of that many steps (module docs).
    Computes in `dtype` (default: float64 if any weight is float64, else float32). A
    training loop passes the same `Workspace` to every call, to reuse its arrays.
    `totals[output]` divides that output's loss instead of its mask's sum: a part of a
    larger batch (`composer.training.padded`) divides by the whole batch's. `active[name]`
    (per step of 0..T-1, of a batch sorted longest first) runs each recurrent layer of a
    padded batch for the leading items still running only, as the executor's `Packing`
    does; what runs past an item's end must be masked out of the loss.
    `train=True` applies the layers' dropout (`composer.training.dropout`) with masks from
    a generator seeded 0; a `Dropout` instead gives seeded masks that persist from call to
    call until its `renew` (the same masks give the same loss, as finite differences need).
    Without it, dropout is off, as in `run`.
    """
    dropout = Dropout(0) if train is True else (train or None)
    tape, goals, kinds = _start(
        plan, params, inputs, targets, loss, mask, bptt, dtype, workspace, active, dropout
    )
    value = tape.loss(goals, kinds, seed=True, totals=totals)
    tape.backward()
    return value, tape.gradients()


def evaluate(
    plan: Plan,
    params: Arrays,
    inputs: Arrays,
    targets: Arrays | np.ndarray,
    loss: str | Mapping[str, str] = "mse",
    mask: Arrays | np.ndarray | None = None,
    *,
    dtype: str | None = None,
    workspace: Workspace | None = None,
    totals: Mapping[str, float] | None = None,
    active: Mapping[str, np.ndarray] | None = None,
) -> float:
    """The loss `grad` would report, without the backward pass."""
    tape, goals, kinds = _start(
        plan, params, inputs, targets, loss, mask, None, dtype, workspace, active
    )
    return tape.loss(goals, kinds, seed=False, totals=totals)


def forward_pass(plan: Plan, params: Arrays, inputs: Arrays, dtype: str | None = None):
    """A forward pass that keeps every step of every vector (a tape: `tracks`, `outputs`),
    for a trace of the values; no loss, no backward, no dropout (as `run` makes it)."""
    check_params(plan.folded, dict(params))
    return _forward(plan, params, inputs, check_inputs(plan, inputs), dtype)


def backward_pass(plan: Plan, params: Arrays, inputs: Arrays, targets, loss="mse", mask=None,
                  dtype: str | None = None):  # fmt: skip
    """`grad`'s forward and backward passes, the tape kept: `tracks[name].g` is the
    gradient of the loss w.r.t. each step of each vector. Returns (loss, tape)."""
    tape, goals, kinds = _start(plan, params, inputs, targets, loss, mask, None, dtype, None)
    value = tape.loss(goals, kinds, seed=True)
    tape.backward()
    return value, tape


def _by_output(plan: Plan, arrays, what: str) -> dict:
    if arrays is None or isinstance(arrays, Mapping):
        return dict(arrays or {})
    if len(plan.outputs) != 1:
        raise DataError(f"this network has outputs {', '.join(plan.outputs)}; pass {what} by name")
    return {plan.outputs[0]: arrays}


def _start(
    plan, params, inputs, targets, loss, mask, bptt, dtype, workspace, active=None, dropout=None
):
    if bptt is not None and (not isinstance(bptt, (int, np.integer)) or bptt < 1):
        raise DataError(f"bptt must be a whole number of steps >= 1, got {bptt!r}")
    check_params(plan.folded, dict(params))
    batch = check_inputs(plan, inputs)
    kinds = loss_kinds(plan, loss)
    targets, masks = _by_output(plan, targets, "targets"), _by_output(plan, mask, "masks")
    goals = check_targets(plan, targets, masks, kinds, batch)
    tape = _forward(plan, params, inputs, batch, dtype, bptt, workspace, active, dropout)
    return tape, goals, kinds


def _forward(
    plan, params, inputs, batch, dtype, bptt=None, workspace=None, active=None, dropout=None
):
    """The tape of a whole forward pass over checked weights and inputs: computed in
    `dtype` (default: float64 if any weight is float64, else float32), token ids encoded,
    the layers' dropout applied when given."""
    if dtype is None:
        wide = any(np.asarray(v).dtype == np.float64 for v in params.values())
        dtype = "float64" if wide else "float32"
    tape = Tape(plan, params, np.dtype(check_dtype(dtype)), batch, bptt, workspace)
    tape.pack(active or {})
    tape.drop(dropout)
    tape.ids = inputs
    tape.inputs = encode_tokens(plan.folded, inputs, params, tape.dtype)
    tape.forward(0, plan.steps)
    return tape
