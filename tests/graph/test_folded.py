"""The folded graph: nodes, edges, sizes and the loop checks."""

from __future__ import annotations

import pytest

from composer.errors import SpecError
from composer.graph.folded import build
from composer.graph.names import layer_output
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


# -- hidden algebraic loops (issue 18, item 10) ----------------------------------------


def _dense_mesh(count: int, zero_pairs: set, order=None) -> dict:
    """`count` dense layers, every ordered pair connected with delay 1, except the pairs in
    `zero_pairs` (both ways) with delay 0: a zero-delay loop among thousands of cycles."""
    names = [f"d{i}" for i in range(count)]
    connections = [
        {"from": a, "to": b, "delay": 0 if frozenset((a, b)) in zero_pairs else 1}
        for a in names
        for b in names
        if a != b
    ]
    if order is not None:
        connections = [connections[i] for i in order]
    return {
        "inputs": [{"name": "x", "size": 2}],
        "layers": [{"name": n, "kind": "dense", "input": "x", "size": 2} for n in names],
        "connections": connections,
        "outputs": [{"name": "y", "from": names[-1]}],
        "alignment": "many-to-many",
    }


def test_a_hidden_zero_delay_loop_is_named_not_a_crash():
    spec = lecture(**_dense_mesh(8, {frozenset(("d3", "d5"))}))
    with pytest.raises(SpecError, match=r"algebraic loop d3\.y -> d5\.y -> d3\.y"):
        build(spec)


def test_the_named_loop_does_not_depend_on_the_order_of_connections():
    import random

    zero = {frozenset(("d2", "d6")), frozenset(("d1", "d4"))}
    messages = set()
    for seed in range(4):
        order = list(range(8 * 7))
        random.Random(seed).shuffle(order)
        with pytest.raises(SpecError) as caught:
            build(lecture(**_dense_mesh(8, zero, order)))
        messages.add(caught.value.message)
    assert messages == {
        "algebraic loop d1.y -> d4.y -> d1.y: its delays sum to 0, so each step would need "
        "its own result; add a delay"
    }


def test_the_named_loop_does_not_depend_on_the_hash_seed(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    spec = tmp_path / "mesh.json"
    spec.write_text(json.dumps(_dense_mesh(8, {frozenset(("d3", "d5"))})))
    for seed in ("12345",):  # the in-process runs above had another seed
        done = subprocess.run(
            [sys.executable, "-m", "composer", "validate", str(spec)],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            cwd=str(tmp_path.parent),
            timeout=60,
        )
        assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
        assert "algebraic loop d3.y -> d5.y -> d3.y" in done.stderr


def test_a_mesh_without_zero_delay_loops_is_valid():
    build(lecture(**_dense_mesh(8, set())))


def _lag_graph(edges):
    import networkx as nx

    graph = nx.MultiDiGraph()
    for i, name in enumerate("abcd"):
        graph.add_node(name, order=i)
    for i, (u, v, lag) in enumerate(edges):
        graph.add_edge(u, v, lag=lag, path=("connections", i))
    return graph


@pytest.mark.parametrize(
    ("edges", "refused"),
    [
        ([("a", "b", 1), ("b", "a", 1), ("a", "a", 1)], False),
        ([("a", "b", -1), ("b", "a", -2)], False),
        ([("a", "b", 1), ("b", "a", -1)], True),  # sums to 0
        ([("a", "a", 1), ("a", "b", 0), ("b", "b", -1), ("b", "a", 0)], True),  # both ways
        ([("a", "b", 2), ("b", "c", -1), ("c", "a", -1)], True),
        ([("a", "b", 2), ("b", "c", -1), ("c", "a", 0)], False),
    ],
)
def test_signs_are_decided_without_enumerating_cycles(edges, refused):
    import networkx as nx

    from composer.graph import loops

    graph = _lag_graph(edges)
    components = [frozenset(c) for c in nx.strongly_connected_components(graph)]
    if refused:
        with pytest.raises(SpecError, match="run both ways in time"):
            loops._check_signs(graph, components)
    else:
        loops._check_signs(graph, components)
