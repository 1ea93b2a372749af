"""A start state given with the data (`initial_state: h0`) in the diagrams: folded, a
dotted edge from the input to the layer; unfolded, the input's one node feeding the
layer's initial state(s), dotted, exactly as `unrolled_graph` has them, elided or not;
the cone of an output step reaches it."""

from __future__ import annotations

import networkx as nx
import pytest

from composer.draw.dot import CONE_EDGE
from composer.draw.folded_picture import folded_dot
from composer.draw.highlight import folded_cone
from composer.draw.unfolded_picture import unfolded_dot
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from tests.builders import layer, readout, spec
from tests.draw.test_diagrams import drawn, expected

INPUTS = [{"name": "x", "size": 3}, {"name": "h0", "size": 4}]
NETWORKS = {
    "plain": spec([layer("rnn", "lstm", initial_state="h0", output=readout(2))], inputs=INPUTS),
    "dilated": spec([layer("rnn", "gru", initial_state="h0", delay=2)], inputs=INPUTS),
    "backward": spec([layer("rnn", initial_state="h0", direction="backward")], inputs=INPUTS),
    "late": spec(
        [layer("rnn", initial_state="h0", active="3:")],
        inputs=INPUTS,
        alignment={"inputs": ":", "outputs": "3:"},
    ),
    "two": spec(
        [layer("a", initial_state="h0"), layer("b", "gru", "a", initial_state="h0")],
        inputs=INPUTS,
    ),
}


CASES = [(n, t) for n in NETWORKS for t in (1, 4, 20) if t >= (4 if n == "late" else 1)]


@pytest.mark.parametrize("max_columns", [3, 12])
@pytest.mark.parametrize(("name", "steps"), CASES)
def test_unfolded_draws_exactly_the_unrolled_graph_with_the_start_state(name, steps, max_columns):
    graph = build(NETWORKS[name])
    unrolled = unroll(graph, steps)
    dot = unfolded_dot(unrolled, max_columns=max_columns)
    nodes, edges, _ = drawn(dot)
    assert (nodes, edges) == expected(unrolled, max_columns)
    dag = unrolled_graph(unrolled)
    (given,) = [n for n, role in dag.nodes(data="role") if role == "given"] or [None]
    assert given is not None and given[0] == "h0"
    starts = {v for _, v in dag.out_edges(given)}
    assert all(dag.nodes[v]["role"] == "init" for v in starts)
    assert given in nodes and {(given, v) for v in starts} <= edges
    assert 'class="handover"' in dot and 'style="dotted"' in dot


def test_every_output_step_depends_on_it_in_the_dag():
    unrolled = unroll(build(NETWORKS["dilated"]), 5)
    dag = unrolled_graph(unrolled)
    for t in range(5):
        assert ("h0", -2) in nx.ancestors(dag, ("y", t))
    assert sorted(v for _, v in dag.out_edges(("h0", -2))) == [("rnn.s", -2), ("rnn.s", -1)]


def test_folded_draws_a_dotted_edge_from_the_input_shaded_in_a_cone():
    graph = build(NETWORKS["plain"])
    dot = folded_dot(graph)
    line = next(line for line in dot.splitlines() if 'id="h0->rnn.s"' in line)
    assert 'class="handover"' in line and 'style="dotted"' in line
    assert "start state (4)" in dot
    cone = folded_cone(unroll(graph, 3), ("y", 2))
    assert ("h0", -1) in cone
    shaded = folded_dot(graph, cone=cone)
    line = next(line for line in shaded.splitlines() if 'id="h0->rnn.s"' in line)
    assert f'color="{CONE_EDGE}"' in line  # drawn inside the cone
