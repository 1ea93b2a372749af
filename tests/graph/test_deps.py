"""Dependencies read off the unrolled graph, and their readable form."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.cli.report import format_dependencies
from composer.graph.deps import dependencies
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.readable import format_steps
from tests.builders import input_, layer, lecture, output, random_networks


@pytest.mark.parametrize(
    ("steps", "text"),
    [([], ""), ([3], "3"), ([0, 1, 2], "0..2"), ([0, 1, 2, 5, 7, 8], "0..2, 5, 7..8")],
)
def test_format_steps(steps, text):
    assert format_steps(steps) == text


def test_lecture_output_depends_on_all_previous_inputs():
    deps = dependencies(unroll(build(lecture()), 4))
    assert format_dependencies(deps) == [
        "y[0] <- x[0]",
        "y[1] <- x[0..1]",
        "y[2] <- x[0..2]",
        "y[3] <- x[0..3]",
    ]


def test_backward_layer_depends_on_the_future():
    spec = lecture(layers=[layer("rnn", "gru", size=2, direction="backward")])
    assert dependencies(unroll(build(spec), 3))["y"][0] == {"x": [0, 1, 2]}
    assert dependencies(unroll(build(spec), 3))["y"][2] == {"x": [2]}


def test_dilation_skips_steps():
    spec = lecture(
        layers=[layer("rnn", size=2, delay=3)],
        alignment="many-to-one",
    )
    assert dependencies(unroll(build(spec), 8))["y"] == {7: {"x": [1, 4, 7]}}


def test_two_inputs_and_an_input_free_output():
    spec = lecture(
        inputs=[input_("a", 1), input_("b", 1, window="1:2")],
        layers=[layer("rnn", input=["a", "b"], size=2)],
        alignment={"inputs": "0:1", "outputs": ":"},
    )
    deps = dependencies(unroll(build(spec), 3))
    assert deps["y"] == {0: {"a": [0]}, 1: {"a": [0], "b": [1]}, 2: {"a": [0], "b": [1]}}


@settings(max_examples=40, deadline=None)
@given(random_networks(), st.integers(2, 8))
def test_deps_of_a_causal_network_only_reach_back(generated, steps_count):
    spec, causal = generated
    for per_step in dependencies(unroll(build(spec), steps_count)).values():
        for t, found in per_step.items():
            for input_steps in found.values():
                if causal:
                    assert max(input_steps) <= t


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=4, unique=True),
    st.integers(1, 9),
)
def test_deps_of_a_tapped_delay_line_reach_exactly_the_declared_delays(delays, steps_count):
    """A dense layer reading x at `delays` (a window): y[t] depends on x[t - d], each d."""
    spec = lecture(
        layers=[layer("win", "dense", {"from": "x", "delays": delays}, 2)],
        outputs=[output("y", "win")],
    )
    deps = dependencies(unroll(build(spec), steps_count))
    for t in range(steps_count):
        expected = sorted(t - d for d in delays if 0 <= t - d < steps_count)
        assert deps["y"][t] == ({"x": expected} if expected else {})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True), st.integers(1, 9))
def test_deps_of_tapped_feedback_start_at_the_nearest_delay(delays, steps_count):
    """An Elman layer reading x only through taps at `delays` >= 1: s_t reaches x up to
    t - min(delays), and nothing at t itself."""
    spec = lecture(
        layers=[layer("rnn", "elman", {"from": "x", "delays": delays}, 2)],
        outputs=[output("y", "rnn")],
    )
    deps = dependencies(unroll(build(spec), steps_count))
    for t in range(steps_count):
        expected = list(range(0, t - min(delays) + 1))
        assert deps["y"][t] == ({"x": expected} if expected else {})
