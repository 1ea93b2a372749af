"""Commented starter specs, one per alignment preset, for `rnn-composer new`."""

from __future__ import annotations

__all__ = ["starter"]

_HEADER = """\
# A starter spec for the {preset} pattern: {what}
# Check it with `rnn-composer validate FILE`; see every field with `rnn-composer schema`.
version: 1
name: {name}
steps: {steps}                    # default unroll depth T; `--steps` overrides it
inputs:
  - name: x                 # x_t, the input vector at step t
    size: {insize}
layers:
  - name: rnn
    kind: elman             # elman | lstm | gru | dense
    input: x                # a name, or a list of names (concatenated)
    state_size: 32          # H, the size of the state s_t
    activation: tanh        # phi in s_t = phi(x_t Wx + s_(t-1) Ws + b)
    output:                 # optional readout y_t = psi(s_t Wy + by)
      size: {outsize}
      activation: {readout}
outputs:
  - name: y
    from: rnn
alignment: {alignment}
"""

_PRESETS = {
    "one-to-one": dict(
        what="one input, one output, a single step (a plain feed-forward net).",
        steps=1,
        insize=8,
        outsize=3,
        readout="softmax",
        alignment="one-to-one     # T must be 1",
    ),
    "one-to-many": dict(
        what="one input at step 0, an output at every step (captioning).",
        steps=8,
        insize=16,
        outsize=10,
        readout="softmax",
        alignment="one-to-many    # x at step 0 only; y at every step",
    ),
    "many-to-one": dict(
        what="read a whole sequence, answer once at the end (sentiment).",
        steps=8,
        insize=10,
        outsize=2,
        readout="softmax",
        alignment="many-to-one    # x at every step; y at the last step",
    ),
    "many-to-many": dict(
        what="an output for every input, in step (tagging).",
        steps=8,
        insize=10,
        outsize=5,
        readout="softmax",
        alignment="many-to-many   # or {preset: many-to-many, delay: 3}",
    ),
}


def starter(preset: str) -> str:
    """The starter spec text for `preset` (one of `composer.spec.model.PRESETS`)."""
    return _HEADER.format(preset=preset, name=preset.replace("-", "_"), **_PRESETS[preset])
