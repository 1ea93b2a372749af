"""Unused parts: each warning names the part and says why, and each is true to the numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from composer.engine.batches import run
from composer.engine.pipeline import plan_for_steps
from composer.graph.folded import build
from composer.graph.unused import needed_inputs, unused_parts
from composer.graph.weights import init_params
from composer.spec.reader import load_spec
from tests.builders import connection, input_, layer, output, random_networks, readout, spec
from tests.conftest import SPECS


def _decoder_reading_the_encoders_input():
    """The issue's case: a decoder whose `input` is the encoder's input, absent where the
    decoder runs; its Wx counted in the parameters but changed nothing."""
    return spec(
        [
            layer("enc", "elman", "x", 4, active="0:4"),
            layer("dec", "elman", "x", 4, active="4:", initial_state="enc", output=readout(2)),
        ],
        inputs=[input_("x", 3, window="0:4")],
        outputs=[output("o", "dec", "4:")],
    )


CASES = {
    "unread input": (
        spec([layer("rnn")], inputs=[input_("x", 3), input_("z", 2)]),
        [(("inputs", 1), "input `z` is read by no layer or connection")],
    ),
    "layer nothing reads": (
        spec([layer("rnn"), layer("spare")], outputs=[output("y", "rnn")]),
        [(("layers", 1), "layer `spare` is read by no layer, connection or output")],
    ),
    "dead decoder Wx": (
        _decoder_reading_the_encoders_input(),
        [(("layers", 1, "input"), "weight `dec.Wx` multiplies `x` at t only at steps where")],
    ),
    "a tap reading before the window": (
        spec(
            [layer("d", "dense", {"from": "x", "delays": [0, 5]}, 2)],
            inputs=[input_("x", 3)],
            alignment={"inputs": ":", "outputs": "0:3"},
        ),
        [(("layers", 0, "input"), "weight `d.W@5` multiplies `x` at t-5 only at steps")],
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_each_unused_part_is_named_with_its_reason(name):
    network, expected = CASES[name]
    found = [(u.path, u.message) for u in unused_parts(build(network))]
    assert len(found) == len(expected), found
    for (path, message), (want_path, want) in zip(found, expected):
        assert path == want_path and message.startswith(want), (path, message)


@pytest.mark.parametrize("name", CASES)
def test_an_unused_weight_or_layer_changes_no_output(name):
    """The warning is true: scaling an unused weight (or a layer's weights) by 100 leaves
    every output as it was, at two T."""
    _assert_unused_is_inert(CASES[name][0])


def _assert_unused_is_inert(network):
    graph = build(network)
    params = init_params(graph, seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    for steps in (network.steps, network.steps + 5):
        plan = plan_for_steps(graph, steps)
        inputs = {
            n: rng.normal(size=(2, len(plan.window(n)), graph.nodes[n]["size"]))
            for n in needed_inputs(graph)
        }
        reference = run(graph, params, inputs, steps, "float64")
        for unused in unused_parts(graph):
            keys = [k for k in params if k == unused.name or k.startswith(unused.name + ".")]
            changed = {k: v * 100 for k, v in params.items() if k in keys}
            out = run(graph, {**params, **changed}, inputs, steps, "float64")
            for key, value in reference.items():  # exact: what is read runs as it did
                np.testing.assert_array_equal(out[key], value)


def test_every_example_spec_uses_everything_it_declares():
    for path in SPECS:
        assert unused_parts(build(load_spec(path))) == [], path.name


def test_feedback_through_a_connection_is_used():
    network = spec([layer("rnn", output=readout(2))], connections=[connection("rnn", "rnn", 1)])
    assert unused_parts(build(network)) == []


@settings(max_examples=30, deadline=None)
@given(random_networks())
def test_what_random_stacks_report_unused_changes_no_output(generated):
    """Whatever is reported (a backward layer read only at its last step, many-to-one,
    never uses Ws: it starts from zeros there), scaling it changes no output."""
    network, _ = generated
    _assert_unused_is_inert(network)
