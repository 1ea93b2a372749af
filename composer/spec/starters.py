"""Commented starter specs for `rnn-composer new`: one per alignment preset, and a few
designs that need more than a preset (`DESIGNS`)."""

from __future__ import annotations

__all__ = ["starter", "STARTERS", "DESIGNS"]

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


_ENCODER_DECODER = """\
# A starter spec for an encoder-decoder (sequence to sequence): the encoder reads the
# source at steps 0..9 and hands its last state to the decoder, which exists at steps
# 10..15 only and writes the target, one token at a time.
# Check it with `rnn-composer validate FILE`; see every field with `rnn-composer schema`.
version: 1
name: encoder_decoder
steps: 16                   # 10 source steps, then 6 target steps
inputs:
  - {name: src, size: 16, window: "0:10"}    # quote windows: `0:10` alone is not YAML
layers:
  - {name: enc, kind: gru, input: src, state_size: 64, active: "0:10"}
  - name: dec
    kind: gru               # no `input`: it runs on its handed-over state and its own
    state_size: 64          # previous output, fed back by the connection below
    active: "10:16"
    initial_state: enc      # start from the encoder's last state (step 9)
    output: {size: 12, activation: softmax}
connections:
  - {from: dec, to: dec, delay: 1}   # y_(t-1) -> dec at t; or give dec an input of the
                                     # previous target token (teacher forcing)
outputs:
  - {name: y, from: dec, window: "10:16"}
"""

_NARX = """\
# A starter spec for a NARX model (system identification, time-series prediction):
# y_t reads the input u at t-1..t-3 and its own last two outputs, each delay with its own
# weight (`h.W@1`, `h.W@2`, `h.W@3`, `h.W_y@1`, `h.W_y@2`).
# Check it with `rnn-composer validate FILE`; see every field with `rnn-composer schema`.
version: 1
name: narx
steps: 50
inputs:
  - {name: u, size: 1}      # the exogenous input
layers:
  - name: h
    kind: dense
    input: {from: u, delays: [1, 2, 3]}   # a tapped delay line (0 would read u_t itself)
    size: 16
    activation: tanh
  - {name: y, kind: dense, input: h, size: 1}
connections:
  - {from: y, to: h, delays: [1, 2]}      # output feedback y_(t-1), y_(t-2)
outputs:
  - {name: out, from: y}
alignment: many-to-many
"""

_CHAR_LM = """\
# A starter spec for a character-level language model: token ids in, the next token's
# probabilities out, at every step. Make its data with `rnn-composer data text FILE...
# --output chars.npz --vocab-size 80`, train it with `rnn-composer train`, and write text
# with `rnn-composer generate`.
# Check it with `rnn-composer validate FILE`; see every field with `rnn-composer schema`.
version: 1
name: char_lm
steps: 64                   # characters per training window
inputs:
  - {name: chars, vocab: 80, embed: 16}  # token ids, each read through a learned embedding
layers:
  - {name: gru1, kind: gru, input: chars, state_size: 128}
  - name: gru2
    kind: gru
    input: gru1
    state_size: 128
    output: {size: 80, activation: softmax}   # the next character's probabilities
outputs:
  - {name: next, from: gru2}
alignment: many-to-many
"""

#: starters for designs beyond an alignment preset
DESIGNS = {"encoder-decoder": _ENCODER_DECODER, "narx": _NARX, "char-lm": _CHAR_LM}
#: every name `new` takes
STARTERS = (*_PRESETS, *DESIGNS)


def starter(name: str) -> str:
    """The starter spec text for `name`: an alignment preset (`composer.spec.model.PRESETS`)
    or a design (`DESIGNS`)."""
    if name in DESIGNS:
        return DESIGNS[name]
    return _HEADER.format(preset=name, name=name.replace("-", "_"), **_PRESETS[name])
