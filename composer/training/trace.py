"""Traces: every vector at every step (with each cell's gates and cell state), and how
strongly the loss depends on each step of each state (`gradient_norms`), from the tape
that training keeps.

Keys of a trace (arrays (B, T, size), batch first like the executor's outputs, NaN at the
steps a vector is not computed at): each input and output by name; each layer's state
`<layer>.s` (`<layer>.s_rev` for a bidirectional layer's backward copy), readout
`<layer>.y` and dense layer `<layer>.y`; and for gated kinds the gates after their
activations, `<layer>.gates.<gate>` (LSTM i, f, g, o; GRU r, z, n), with an LSTM's cell
state `<layer>.c` (a backward copy's carry `_rev`: `<layer>.gates.i_rev`, `<layer>.c_rev`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from composer.arrays import write_arrays
from composer.engine.plan import Plan
from composer.errors import DataError
from composer.kinds import KINDS
from composer.training.backprop import backward_pass, forward_pass

__all__ = ["trace", "trace_keys", "write_trace", "gradient_norms", "step_mask"]


def trace(plan: Plan, params: Mapping, inputs: Mapping, dtype: str | None = None) -> dict:
    """Every vector's values at every step 0..T-1 (module docs for the keys)."""
    tape = forward_pass(plan, params, inputs, dtype)
    found = {}
    for name, v in plan.vectors.items():
        if v.role == "output":
            start, stop = v.window
            values = np.full((tape.batch, plan.steps, v.size), np.nan, tape.dtype)
            values[:, start:stop] = tape.outputs[name]
            found[name] = values
            continue
        track = tape.tracks[name]
        found[name] = _steps(track.h, track.lo, plan.steps, v.present)
        if v.role == "state":
            for key, array in track.kind.traced(track).items():
                found[_extra_key(plan, name, key)] = _steps(array, track.lo, plan.steps, v.present)
    return found


def write_trace(path, plan: Plan, params, inputs, dtype: str, flat: bool, overwrite: bool) -> int:
    """`run --trace`: the trace written to an .npz, atomically; (T, size) arrays for a
    flat input. Returns how many arrays were written."""
    found = trace(plan, params, inputs, dtype)
    if flat:
        found = {key: value[0] for key, value in found.items()}
    write_arrays(path, found, overwrite=overwrite)
    return len(found)


def trace_keys(plan: Plan) -> list[str]:
    """The keys `trace` gives, in the plan's order (for documentation and checks)."""
    keys = []
    for name, v in plan.vectors.items():
        keys.append(name)
        if v.role == "state":
            kind = KINDS[v.kind]
            extra = [f"gates.{g}" for g in kind.gate_names] + list(kind.carries[1:])
            keys += [_extra_key(plan, name, key) for key in extra]
    return keys


def _extra_key(plan: Plan, state: str, key: str) -> str:
    data = plan.folded.nodes[state]
    return f"{data['layer']}.{key}{data.get('suffix', '')}"


def _steps(array: np.ndarray, lo: int, steps: int, present: np.ndarray) -> np.ndarray:
    """Steps 0..T-1 of a time-major track array as (B, T, n), NaN where not computed."""
    values = np.array(array[-lo : steps - lo].transpose(1, 0, 2))
    values[:, ~np.asarray(present[:steps])] = np.nan
    return values


def step_mask(plan: Plan, output: str, step: int, batch: int) -> dict:
    """A loss mask that keeps one step of one output (`gradient_norms(at=...)`)."""
    if output not in plan.outputs:
        raise DataError(f"no output {output!r}; outputs: {', '.join(plan.outputs)}")
    start, stop = plan.vectors[output].window
    if not start <= step < stop:
        raise DataError(f"{output} is emitted at steps {start}..{stop - 1}, not at {step}")
    masks = {}
    for name in plan.outputs:
        lo, hi = plan.vectors[name].window
        masks[name] = np.zeros((batch, hi - lo))
    masks[output][:, step - start] = 1.0
    return masks


def gradient_norms(
    plan: Plan,
    params: Mapping,
    inputs: Mapping,
    targets,
    loss="mse",
    mask=None,
    at: tuple[str, int] | None = None,
    dtype: str | None = None,
) -> tuple[float, dict[str, np.ndarray]]:
    """(the loss, {state: ‖∂L/∂s_t‖ per step t, (T,)}): the norm over the batch and the
    units of the loss's gradient w.r.t. each state's value at each step, NaN where the
    state is not computed. A kind that carries more than h has those too, keyed as the
    trace keys them: an LSTM's cell state c as `<layer>.c` (`<layer>.c_rev`).
    `at=(output, t)` takes the loss of that one output step (the other steps masked
    out)."""
    if at is not None:
        batch = next(iter(inputs.values())).shape[0]
        mask = step_mask(plan, at[0], at[1], batch)
    value, tape = backward_pass(plan, params, inputs, targets, loss, mask, dtype)
    norms = {}
    for name, v in plan.vectors.items():
        if v.role != "state":
            continue
        track = tape.tracks[name]
        layer, _, state = name.partition(".")
        suffix = state.removeprefix("s")  # "" or "_rev"
        for carried in track.kind.carries:  # h, and an LSTM's cell state c
            g = track.gradient(carried)[-track.lo : plan.steps - track.lo]
            found = np.sqrt(np.einsum("tbh,tbh->t", g, g, dtype=np.float64))
            found[~np.asarray(v.present[: plan.steps])] = np.nan
            norms[name if carried == "h" else f"{layer}.{carried}{suffix}"] = found
    return value, norms
