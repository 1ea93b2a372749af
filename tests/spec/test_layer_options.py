"""The layer options in the spec: defaults, and one located line for each bad value."""

from __future__ import annotations

import pytest

from composer.errors import SpecError
from composer.graph.folded import build
from composer.kinds import KINDS
from composer.spec.reader import load_spec
from tests.builders import layer, readout, spec, write_spec

LAYERS = "inputs: [{name: x, size: 3}]\noutputs: [{name: y, from: a}]\nlayers:\n  - "


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            "{name: a, kind: lstm, input: x, state_size: 4, reset_after: false}",
            ":4:52: layers[0].reset_after: unknown field `reset_after`: only gru layers take it",
        ),
        (
            "{name: a, kind: dense, input: x, size: 4, recurrent_dropout: 0.5}",
            ":4:47: layers[0].recurrent_dropout: unknown field `recurrent_dropout`: "
            "only elman, lstm and gru layers take it",
        ),
        (
            "{name: a, kind: gru, input: x, state_size: 4, init: {forget_bias: 1.0}}",
            ":4:58: layers[0].init.forget_bias: unknown field `forget_bias`: "
            "only lstm layers' `init` has it",
        ),
        (
            "{name: a, kind: elman, input: x, state_size: 4, dropout: 1.0}",
            "layers[0].dropout: must be < 1.0, got 1.0",
        ),
        (
            "{name: a, kind: elman, input: x, state_size: 4, recurrent_dropout: -0.1}",
            "layers[0].recurrent_dropout: must be >= 0.0, got -0.1",
        ),
        (
            "{name: a, kind: elman, input: x, state_size: 4, output_dropout: 0.5}",
            "layers[0]: `output_dropout` drops the readout's input; give `output` or drop it",
        ),
        (
            "{name: a, kind: lstm, input: x, state_size: 4, bias: false, "
            "init: {forget_bias: 1.0, Ws: orthogonal}}",
            "layers[0]: `init` sets `forget_bias` but the layer has `bias: false`; drop one",
        ),
        (
            "{name: a, kind: dense, input: x, size: 4, layer_norm: true}",
            "layers[0].layer_norm: unknown field `layer_norm`: only lstm and gru layers take it",
        ),
        (
            "{name: a, kind: gru, input: x, state_size: 4, layer_norm: true, reset_after: false}",
            "layers[0]: `layer_norm: true` computes PyTorch's GRU; drop `reset_after: false`",
        ),
        (
            "{name: a, kind: lstm, input: x, state_size: 4, layer_norm: true, bias: false}",
            "layers[0]: `layer_norm: true` needs the layer's biases; drop `bias: false`",
        ),
        (
            "{name: a, kind: gru, input: x, state_size: 4, bias: 0}",
            "layers[0].bias: expected true or false, got 0",
        ),
        (
            "{name: a, kind: gru, input: x, state_size: 4, proj_size: 2}",
            ":4:51: layers[0].proj_size: unknown field `proj_size`: only lstm layers take it",
        ),
        (
            "{name: a, kind: lstm, input: x, state_size: 4, proj_size: 4}",
            "layers[0].proj_size: must be smaller than `state_size` (4), got 4",
        ),
        (
            "{name: a, kind: lstm, input: x, state_size: 4, proj_size: 0}",
            "layers[0].proj_size: must be >= 1, got 0",
        ),
        (
            "{name: a, kind: lstm, input: x, state_size: 4, proj_size: 2, layer_norm: true}",
            "layers[0].proj_size: does not combine with `layer_norm: true` yet",
        ),
        (
            "{name: a, kind: lstm, input: x, state_size: 4, init: {Wp: orthogonal}}",
            "layers[0]: `init` sets `Wp`, the projection, but the layer has no `proj_size`",
        ),
    ],
)
def test_bad_layer_options_are_one_located_line(tmp_path, fields, expected):
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(tmp_path, LAYERS + fields + "\n"))
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_defaults_leave_the_graph_as_before():
    graph = build(spec([layer("a", "gru", output=readout(2))]))
    assert graph.nodes["a.s"]["kind"] == "gru" and graph.nodes["a.s"]["bias"] is True
    assert graph.nodes["a.s"]["init"] == ()
    assert all(d["dropout"] == 0.0 for _, _, d in graph.edges(data=True) if "dropout" in d)


def test_reset_after_false_selects_the_variant_kind():
    graph = build(spec([layer("a", "gru", reset_after=False, bidirectional=True)]))
    assert {graph.nodes[n]["kind"] for n in ("a.s", "a.s_rev")} == {"gru_reset_before"}
    variant = KINDS["gru_reset_before"]
    assert variant.spec_kind == "gru" and not variant.reset_after and KINDS["gru"].reset_after
