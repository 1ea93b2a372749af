"""Unrolling: windows, initial states, pruning, and properties over generated specs."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import SpecError
from composer.graph.deps import dependencies
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.graph.weights import param_table
from composer.spec.windows import parse_window
from tests.builders import connection, input_, layer, lecture, output, random_networks, spec
from tests.conftest import operations


def steps(unrolled, node):
    return unrolled.steps_of(node).tolist()


def test_many_to_one_keeps_one_output_and_every_state():
    unrolled = unroll(build(lecture(alignment="many-to-one")), 5)
    assert steps(unrolled, "y") == [4] and steps(unrolled, "rnn.y") == [4]
    assert steps(unrolled, "rnn.s") == [0, 1, 2, 3, 4]
    assert unrolled.initial["rnn.s"] == (-1,)
    graph = unrolled_graph(unrolled)
    assert graph.has_edge(("rnn.s", -1), ("rnn.s", 0))
    assert graph.nodes["rnn.s", -1]["role"] == "init"
    assert {d["weight"] for _, _, d in graph.edges(data=True) if d["role"] == "recurrent"} == {
        "rnn.Ws"
    }


def test_parallel_edges_keep_every_weight():
    spec = lecture(
        layers=[layer("rnn", input=["x", "x"])],
        connections=[connection("x", "rnn", 0)],
    )
    graph = unrolled_graph(unroll(build(spec), 2))
    assert graph.edges[("x", 1), ("rnn.s", 1)]["weights"] == ("rnn.Wx", "rnn.Wx", "rnn.W_x")


def test_backward_layer_starts_past_the_end():
    spec = lecture(layers=[layer("rnn", direction="backward")])
    unrolled = unroll(build(spec), 3)
    assert unrolled.initial["rnn.s"] == (3,)
    assert unrolled_graph(unrolled).has_edge(("rnn.s", 1), ("rnn.s", 0))


def test_delay_window_shifts_outputs_after_inputs():
    unrolled = unroll(build(lecture(alignment={"preset": "many-to-many", "delay": 2})), 6)
    assert steps(unrolled, "x") == [0, 1, 2, 3]
    assert steps(unrolled, "y") == [2, 3, 4, 5]


def test_one_to_one_refuses_more_than_one_step():
    with pytest.raises(SpecError, match="exactly 1 step, got T = 4") as caught:
        unroll(build(lecture(alignment="one-to-one")), 4)
    assert caught.value.path == ("alignment",)


def test_empty_window_is_located():
    spec = lecture(inputs=[input_("x", 3, window="5:9")])
    with pytest.raises(SpecError, match="selects no step of 0..3") as caught:
        unroll(build(spec), 4)
    assert caught.value.path == ("inputs", 0, "window")


def test_output_outside_active_window_is_refused():
    spec = lecture(layers=[layer("rnn", active="0:2")])
    with pytest.raises(SpecError, match="not active"):
        unroll(build(spec), 4)


def test_unrolling_a_four_layer_stack_to_a_hundred_thousand_steps_is_cheap():
    spec = lecture(
        layers=[layer(f"l{i}", "lstm", f"l{i - 1}" if i else "x", 8) for i in range(4)],
        outputs=[output("o", "l3")],
    )
    folded = build(spec)
    unrolled = unroll(folded, 100_000)
    assert unrolled.node_count() == 100_000 * 6 + 4
    # whole-array work: a Python loop over the steps would make a hundred times the calls
    assert operations(unroll, folded, 100_000) < 4 * operations(unroll, folded, 1_000)


# -- properties over generated specs ---------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_networks(), st.integers(2, 9))
def test_unrolled_graph_is_a_dag_matching_the_windows(generated, steps_count):
    spec, _ = generated
    folded = build(spec)
    unrolled = unroll(folded, steps_count)
    graph = unrolled_graph(unrolled)
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.number_of_nodes() == unrolled.node_count()
    ins, outs = spec.aligned().windows()
    assert steps(unrolled, "o") == list(parse_window(outs, steps_count))
    assert set(steps(unrolled, "x")) <= set(parse_window(ins, steps_count))
    # pruning: every node is an ancestor of (or is) an emitted output
    emitted = {("o", t) for t in steps(unrolled, "o")}
    kept = set(emitted).union(*(nx.ancestors(graph, n) for n in emitted))
    assert kept == set(graph.nodes)
    # shared weights: every weight used along an edge is a parameter
    params = {info.key for info in param_table(folded)}
    assert {w for *_, d in graph.edges(data=True) for w in d["weights"] if w} <= params


@settings(max_examples=40, deadline=None)
@given(random_networks(), st.integers(12, 40))
def test_parameter_count_does_not_depend_on_steps(generated, long):
    """Edge copies grow with T; the weights they use, and so the count, stay the same."""
    spec, _ = generated
    folded = build(spec)
    weights = {i.key: i.count for i in param_table(folded) if i.key.split(".")[1][0] == "W"}
    used = {}
    for steps_count in (long, 2 * long):
        graph = unrolled_graph(unroll(folded, steps_count))
        copies = [w for *_, d in graph.edges(data=True) for w in d["weights"] if w]
        used[steps_count] = (len(copies), set(copies))
    assert used[long][1] == used[2 * long][1] == set(weights)
    assert used[2 * long][0] >= used[long][0]


def _handed_over(initial_state, active=None):
    return spec(
        [
            layer("r", "elman", "x", 3),
            layer("d", "elman", "x", 3, initial_state=initial_state, active=active),
        ],
        outputs=[output("y", "d")],
    )


def test_a_handover_from_a_layer_that_ends_later_is_refused_naming_both():
    """It used to validate, and deps said y[0] <- x[0..7]: a hand-over backwards in time."""
    with pytest.raises(SpecError) as caught:
        unroll(build(_handed_over("r")), 8)
    assert caught.value.path == ("layers", 1, "initial_state")
    assert caught.value.message.startswith(
        "`d` starts at step 0 from the last state of `r`, which is only known at step 7 (T = 8)"
    )
    assert "`initial_state: {from: r, at: end}`" in caught.value.message


def test_a_two_pass_handover_said_explicitly_is_kept():
    unrolled = unroll(build(_handed_over({"from": "r", "at": "end"})), 8)
    assert unrolled.handover["d.s"] == ("r.s", 7)
    assert dependencies(unrolled)["y"][0] == {"x": list(range(8))}


def test_a_handover_after_the_source_ends_needs_nothing_explicit():
    network = spec(
        [
            layer("r", "elman", "x", 3, active="0:4"),
            layer("d", "elman", "x", 3, initial_state="r", active="4:"),
        ],
        outputs=[output("y", "d", "4:")],
    )
    assert unroll(build(network), 8).handover["d.s"] == ("r.s", 3)
