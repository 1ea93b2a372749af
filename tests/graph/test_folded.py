"""The folded graph: nodes, edges, sizes and the loop checks."""

from __future__ import annotations

import pytest

from composer.errors import SpecError
from composer.graph.folded import build, layer_output
from tests.builders import connection, input_, layer, lecture, output, readout


def test_lecture_network_has_x_s_y_with_shared_weights():
    graph = build(lecture())
    assert sorted(graph.nodes) == ["rnn.s", "rnn.y", "x", "y"]
    weights = {(u, v): d["weight"] for u, v, d in graph.edges(data=True)}
    assert weights == {
        ("x", "rnn.s"): "rnn.Wx",
        ("rnn.s", "rnn.s"): "rnn.Ws",
        ("rnn.s", "rnn.y"): "rnn.Wy",
        ("rnn.y", "y"): None,
    }
    assert graph.edges["rnn.s", "rnn.s", "rnn.Ws"]["lag"] == 1


def test_concatenated_inputs_split_the_rows_of_one_weight():
    graph = build(
        lecture(
            inputs=[input_("a", 3), input_("b", 5)],
            layers=[layer("rnn", input=["a", "b"], size=6)],
        )
    )
    rows = {u: d["rows"] for u, v, d in graph.in_edges("rnn.s", data=True) if d["role"] == "input"}
    assert rows == {"a": (0, 3), "b": (3, 8)}
    assert graph.edges["a", "rnn.s", "rnn.Wx[0]"]["shape"] == (8, 6)


def test_bidirectional_layer_has_two_states_with_opposite_lags():
    graph = build(lecture(layers=[layer("rnn", bidirectional=True)]))
    assert graph.nodes["rnn.s"]["lag"] == 1 and graph.nodes["rnn.s_rev"]["lag"] == -1
    assert layer_output(graph, "rnn") == [("rnn.s", 4), ("rnn.s_rev", 4)]
    assert graph.nodes["y"]["size"] == 8


def test_stacking_feeds_the_readout_not_the_state():
    graph = build(
        lecture(
            layers=[layer("r1", output=readout(5)), layer("r2", input="r1")],
            outputs=[output("o", "r2")],
        )
    )
    assert graph.has_edge("r1.y", "r2.s")
    assert graph.edges["r1.y", "r2.s", "r2.Wx[0]"]["shape"] == (5, 4)


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        ({"layers": [layer("rnn", input="z")]}, ("layers", 0, "input"), "unknown name `z`"),
        ({"layers": [layer("rnn", input="rn")]}, ("layers", 0, "input"), "did you mean `rnn`"),
        ({"layers": [layer("x", input="x")]}, ("layers", 0, "name"), "duplicate name `x`"),
        ({"layers": [layer("rnn", input="y")]}, ("layers", 0, "input"), "`y` is an output"),
        ({"outputs": [output("o", "x")]}, ("outputs", 0, "from"), "is an input"),
        (
            {
                "layers": [layer("a", input="b"), layer("b", input="a")],
                "outputs": [output("o", "b")],
            },
            ("layers", 0, "input"),
            "algebraic loop",
        ),
        (
            {"connections": [connection("rnn", "rnn", 0)]},
            ("connections", 0),
            "algebraic loop",
        ),
        (
            {"connections": [connection("rnn", "x", 1)]},
            ("connections", 0, "to"),
            "goes into a layer",
        ),
        (
            {
                "layers": [layer("rnn", direction="backward", output=readout(2))],
                "connections": [connection("rnn", "rnn", 1)],
            },
            ("connections", 0),
            "backward",
        ),
        (
            {
                "layers": [layer("a"), layer("b", input="a", size=5, initial_state="a")],
                "outputs": [output("o", "b")],
            },
            ("layers", 1, "initial_state"),
            "state_size 4 but `b` has state_size 5",
        ),
        (
            {
                "layers": [layer("a", initial_state="a")],
                "outputs": [output("o", "a")],
            },
            ("layers", 0, "initial_state"),
            "its own last state",
        ),
    ],
)
def test_invalid_graphs_name_the_field(overrides, path, message):
    with pytest.raises(SpecError) as caught:
        build(lecture(**overrides))
    assert caught.value.path == path
    assert message in caught.value.message


def test_mixed_direction_loop_is_refused_even_with_nonzero_delays():
    spec = lecture(
        layers=[layer("rnn", direction="backward", output=readout(2))],
        connections=[connection("rnn", "rnn", 3)],
    )
    with pytest.raises(SpecError, match="runs forward in time"):
        build(spec)


def test_connection_with_delay_makes_a_legal_loop():
    graph = build(lecture(connections=[connection("rnn", "rnn", 1)]))
    assert graph.edges["rnn.y", "rnn.s", "rnn.W_rnn[0]"]["lag"] == 1
