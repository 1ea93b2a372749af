"""Dependencies read off the unrolled graph, and their readable form."""

from __future__ import annotations

import pytest

from composer.graph.deps import dependencies, format_dependencies, format_steps
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from tests.conftest import make_spec


@pytest.mark.parametrize(
    ("steps", "text"),
    [([], ""), ([3], "3"), ([0, 1, 2], "0..2"), ([0, 1, 2, 5, 7, 8], "0..2, 5, 7..8")],
)
def test_format_steps(steps, text):
    assert format_steps(steps) == text


def test_lecture_output_depends_on_all_previous_inputs():
    deps = dependencies(unroll(build(make_spec()), 4))
    assert format_dependencies(deps) == [
        "y[0] <- x[0]",
        "y[1] <- x[0..1]",
        "y[2] <- x[0..2]",
        "y[3] <- x[0..3]",
    ]


def test_backward_layer_depends_on_the_future():
    spec = make_spec(
        layers=[
            {"name": "rnn", "kind": "gru", "input": "x", "state_size": 2, "direction": "backward"}
        ]
    )
    assert dependencies(unroll(build(spec), 3))["y"][0] == {"x": [0, 1, 2]}
    assert dependencies(unroll(build(spec), 3))["y"][2] == {"x": [2]}


def test_dilation_skips_steps():
    spec = make_spec(
        layers=[{"name": "rnn", "kind": "elman", "input": "x", "state_size": 2, "delay": 3}],
        alignment="many-to-one",
    )
    assert dependencies(unroll(build(spec), 8))["y"] == {7: {"x": [1, 4, 7]}}


def test_two_inputs_and_an_input_free_output():
    spec = make_spec(
        inputs=[{"name": "a", "size": 1}, {"name": "b", "size": 1, "window": "1:2"}],
        layers=[{"name": "rnn", "kind": "elman", "input": ["a", "b"], "state_size": 2}],
        alignment={"inputs": "0:1", "outputs": ":"},
    )
    deps = dependencies(unroll(build(spec), 3))
    assert deps["y"] == {0: {"a": [0]}, 1: {"a": [0], "b": [1]}, 2: {"a": [0], "b": [1]}}
