"""Lengths of a padded batch (issue 10): every bad one refused, naming the key and the item."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.batches import run
from composer.engine.lengths import check_lengths, item_steps, parse_lengths, split_lengths
from composer.errors import DataError
from composer.graph.folded import build
from composer.graph.weights import init_params
from tests.builders import input_, layer, lecture, output, spec

# x (B = 3, 6 steps) into the lecture's Elman layer
LECTURE = build(lecture())
# a :, b 2: -> item b's T is a's length, and b's length + 2
TWO_INPUTS = build(
    spec(
        [layer("l", "elman", ["a", "b"], 4)],
        inputs=[input_("a", 2), input_("b", 3, window="2:")],
        outputs=[output("o", "l")],
    )
)
# x 0:1 -> one step whatever T
ONE_TO_MANY = build(lecture(alignment="one-to-many"))


def _inputs(graph, steps: dict[str, int], batch: int = 3) -> dict[str, np.ndarray]:
    return {
        name: np.zeros((batch, count, graph.nodes[name]["size"])) for name, count in steps.items()
    }


X6 = {"x": 6}
AB = {"a": 6, "b": 4}
BAD = {
    "floats": (
        LECTURE,
        X6,
        {"x": [6.0, 3.0, 2.0]},
        r"x lengths: expected integers, got dtype float64",
    ),
    "booleans": (
        LECTURE,
        X6,
        {"x": [True, True, False]},
        r"x lengths: expected integers, got booleans",
    ),
    "strings": (
        LECTURE,
        X6,
        {"x": ["6", "3", "2"]},
        r"x lengths: expected integers, got dtype <U1",
    ),
    "too few": (
        LECTURE,
        X6,
        {"x": [6, 3]},
        r"x lengths: expected one length per batch item, shape \(3,\), got \(2,\)",
    ),
    "2-D": (LECTURE, X6, {"x": [[6, 3, 2]]}, r"x lengths: .* shape \(3,\), got \(1, 3\)"),
    "a scalar": (LECTURE, X6, {"x": 6}, r"x lengths: .* shape \(3,\), got \(\)"),
    "zero": (LECTURE, X6, {"x": [6, 0, 2]}, r"x lengths: item 1 has length 0; a length is >= 1"),
    "negative": (LECTURE, X6, {"x": [6, 3, -2]}, r"x lengths: item 2 has length -2; a length is"),
    "too long": (
        LECTURE,
        X6,
        {"x": [7, 3, 2]},
        r"x lengths: item 0 has length 7, longer than the array's 6 steps",
    ),
    "not an input": (LECTURE, X6, {"z": [6, 3, 2]}, r"z lengths: `z` is not an input; inputs: x"),
    "no T fits": (
        ONE_TO_MANY,
        {"x": 2},
        {"x": [1, 2, 1]},
        r"^batch item 1: input 'x' has 2 steps in window `0:1`: no number of steps T gives that$",
    ),
    "T differ": (
        TWO_INPUTS,
        AB,
        {"a": [6, 5, 4], "b": [4, 3, 1]},
        r"^batch item 2: inputs disagree on the number of steps T: "
        r"'a' has 4 steps in window `:`; 'b' has 1 steps in window `2:`$",
    ),
    "T differ, b whole": (
        TWO_INPUTS,
        AB,
        {"a": [6, 5, 4]},
        r"^batch item 1: inputs disagree .* 'a' has 5 steps .* 'b' has 4 steps",
    ),
}


@pytest.mark.parametrize(("graph", "steps", "lengths", "message"), BAD.values(), ids=list(BAD))
def test_bad_lengths_are_data_errors_naming_the_key_and_the_item(graph, steps, lengths, message):
    with pytest.raises(DataError, match=message):
        run(graph, init_params(graph), _inputs(graph, steps), lengths=lengths)


def test_a_file_key_names_the_file():
    arrays = _inputs(LECTURE, {"x": 6})
    with pytest.raises(DataError, match=r"^data.npz: key 'x.lengths': item 1 has length 0"):
        check_lengths(LECTURE, arrays, {"x": [6, 0, 2]}, where="data.npz")


def test_lengths_need_a_batch():
    with pytest.raises(DataError, match=r"lengths describe a batch: give \(B, T_in, F\) inputs"):
        run(LECTURE, init_params(LECTURE), np.zeros((6, 3)), lengths={"x": [6]})


def test_a_one_input_network_takes_its_lengths_alone():
    """`run(graph, params, x, lengths=[...])`, as `Network.run` takes x alone: the same as
    the dict by input name (it was an AttributeError); a network of two inputs asks for
    the dict."""
    params = init_params(LECTURE, seed=0)
    x = _inputs(LECTURE, {"x": 6})["x"]
    alone = run(LECTURE, params, x, lengths=np.array([6, 3, 1]))
    named = run(LECTURE, params, x, lengths={"x": [6, 3, 1]})
    for name in named:  # exact: the same lengths, the same runs
        np.testing.assert_array_equal(alone[name], named[name])
    arrays = _inputs(TWO_INPUTS, {"a": 4, "b": 4})
    with pytest.raises(DataError, match=r"^lengths: this network has the inputs .*; give the "):
        check_lengths(TWO_INPUTS, arrays, [4, 4, 4])


def test_good_lengths_of_any_integer_type_are_int64():
    arrays = _inputs(LECTURE, {"x": 6})
    for given in ([6, 3, 1], np.array([6, 3, 1], np.uint8), (6, 3, 1)):
        checked = check_lengths(LECTURE, arrays, {"x": given})
        assert checked["x"].dtype == np.int64 and checked["x"].tolist() == [6, 3, 1]


def test_each_item_gets_the_t_its_lengths_imply():
    arrays = _inputs(TWO_INPUTS, {"a": 6, "b": 4})
    lengths = check_lengths(TWO_INPUTS, arrays, {"a": [6, 5, 3], "b": [4, 3, 1]})
    assert item_steps(TWO_INPUTS, arrays, lengths).tolist() == [6, 5, 3]
    # 0:1 holds one step at every T: the spec's steps, or the steps given
    arrays = _inputs(ONE_TO_MANY, {"x": 1})
    lengths = check_lengths(ONE_TO_MANY, arrays, {"x": [1, 1, 1]})
    default = ONE_TO_MANY.graph["steps"]
    assert item_steps(ONE_TO_MANY, arrays, lengths).tolist() == [default] * 3
    assert item_steps(ONE_TO_MANY, arrays, lengths, steps=9).tolist() == [9] * 3


def test_lengths_in_a_file_are_the_keys_ending_in_dot_lengths():
    x, lengths = np.zeros((2, 4, 3)), np.array([4, 2])
    plain, found = split_lengths({"x": x, "x.lengths": lengths})
    assert list(plain) == ["x"] and plain["x"] is x
    assert list(found) == ["x"] and found["x"] is lengths


@pytest.mark.parametrize("text", ["10,7,x", "1.5", "", "10;7"])
def test_command_line_lengths_must_be_whole_numbers(text):
    with pytest.raises(DataError, match=r"--lengths: expected whole numbers separated by commas"):
        parse_lengths(text)


def test_training_takes_one_inputs_lengths_alone():
    """`train(..., lengths=[...])` trains as the dict by input name does (it was a
    TypeError in the training loop's data check)."""
    from composer.training.loop import train

    params = init_params(LECTURE, seed=0)
    x = _inputs(LECTURE, {"x": 6})["x"]
    data = {"x": x, "y": np.full((3, 6, 2), 0.5)}
    common = dict(epochs=1, loss="cross-entropy", validation=0.0, seed=0)
    alone = train(LECTURE, params, data, lengths=[6, 3, 1], **common)
    named = train(LECTURE, params, data, lengths={"x": [6, 3, 1]}, **common)
    for key in named.params:  # exact: the same lengths, the same updates
        np.testing.assert_array_equal(alone.params[key], named.params[key])
