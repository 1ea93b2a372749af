"""Unrolling: windows, initial states, pruning, and properties over generated specs."""

from __future__ import annotations

import time

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import SpecError
from composer.graph.deps import dependencies
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.graph.weights import param_table
from composer.spec.model import NetworkSpec, parse_window
from tests.conftest import make_spec


def steps(unrolled, node):
    return unrolled.steps_of(node).tolist()


def test_many_to_one_keeps_one_output_and_every_state():
    unrolled = unroll(build(make_spec(alignment="many-to-one")), 5)
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
    spec = make_spec(
        layers=[{"name": "rnn", "kind": "elman", "input": ["x", "x"], "state_size": 4}],
        connections=[{"from": "x", "to": "rnn", "delay": 0}],
    )
    graph = unrolled_graph(unroll(build(spec), 2))
    assert graph.edges[("x", 1), ("rnn.s", 1)]["weights"] == ("rnn.Wx", "rnn.Wx", "rnn.W_x")


def test_backward_layer_starts_past_the_end():
    spec = make_spec(
        layers=[
            {"name": "rnn", "kind": "elman", "input": "x", "state_size": 4, "direction": "backward"}
        ]
    )
    unrolled = unroll(build(spec), 3)
    assert unrolled.initial["rnn.s"] == (3,)
    assert unrolled_graph(unrolled).has_edge(("rnn.s", 1), ("rnn.s", 0))


def test_delay_window_shifts_outputs_after_inputs():
    unrolled = unroll(build(make_spec(alignment={"preset": "many-to-many", "delay": 2})), 6)
    assert steps(unrolled, "x") == [0, 1, 2, 3]
    assert steps(unrolled, "y") == [2, 3, 4, 5]


def test_one_to_one_refuses_more_than_one_step():
    with pytest.raises(SpecError, match="exactly 1 step, got T = 4") as caught:
        unroll(build(make_spec(alignment="one-to-one")), 4)
    assert caught.value.path == ("alignment",)


def test_empty_window_is_located():
    spec = make_spec(inputs=[{"name": "x", "size": 3, "window": "5:9"}])
    with pytest.raises(SpecError, match="selects no step of 0..3") as caught:
        unroll(build(spec), 4)
    assert caught.value.path == ("inputs", 0, "window")


def test_output_outside_active_window_is_refused():
    spec = make_spec(
        layers=[{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4, "active": "0:2"}]
    )
    with pytest.raises(SpecError, match="not active"):
        unroll(build(spec), 4)


def test_window_strings_are_python_slices():
    assert parse_window(":", 4) == range(4)
    assert parse_window("-2:", 4) == range(2, 4)
    assert parse_window("1:-1", 4) == range(1, 3)


def test_ten_thousand_steps_of_a_four_layer_stack_is_cheap():
    spec = make_spec(
        layers=[
            {"name": f"l{i}", "kind": "lstm", "input": f"l{i - 1}" if i else "x", "state_size": 8}
            for i in range(4)
        ],
        outputs=[{"name": "o", "from": "l3"}],
    )
    folded = build(spec)
    start = time.perf_counter()
    unrolled = unroll(folded, 100_000)
    elapsed = time.perf_counter() - start
    assert unrolled.node_count() == 100_000 * 6 + 4
    # generous: the figure measured on the development machine is in docs/performance.md
    assert elapsed < 10


# -- properties over generated specs ---------------------------------------------------------


@st.composite
def specs(draw):
    """Random stacks: kinds, readouts, directions, dilations, presets and feedback."""
    n_layers = draw(st.integers(1, 3))
    layers, causal = [], True
    for i in range(n_layers):
        layer = {
            "name": f"l{i}",
            "kind": draw(st.sampled_from(["elman", "lstm", "gru", "dense"])),
            "input": f"l{i - 1}" if i else "x",
        }
        if layer["kind"] == "dense":
            layer["size"] = draw(st.integers(1, 4))
        else:
            layer["state_size"] = draw(st.integers(1, 4))
            layer["delay"] = draw(st.integers(1, 3))
            way = draw(st.sampled_from(["forward", "backward", "bidirectional"]))
            if way == "bidirectional":
                layer["bidirectional"] = True
            else:
                layer["direction"] = way
            causal &= way == "forward"
            if draw(st.booleans()):
                layer["output"] = {"size": draw(st.integers(1, 3))}
        layers.append(layer)
    top = layers[-1]
    connections = []
    if top["kind"] != "dense" and top.get("direction") == "forward" and draw(st.booleans()):
        connections.append(
            {"from": top["name"], "to": top["name"], "delay": draw(st.integers(1, 2))}
        )
    alignment = draw(
        st.sampled_from(
            ["one-to-many", "many-to-one", "many-to-many", {"preset": "many-to-many", "delay": 1}]
        )
    )
    spec = NetworkSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": 2}],
            "layers": layers,
            "outputs": [{"name": "o", "from": top["name"]}],
            "connections": connections,
            "alignment": alignment,
        }
    )
    return spec, causal


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.integers(2, 9))
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
@given(specs(), st.integers(12, 40))
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


@settings(max_examples=40, deadline=None)
@given(specs(), st.integers(2, 8))
def test_deps_of_a_causal_network_only_reach_back(generated, steps_count):
    spec, causal = generated
    for per_step in dependencies(unroll(build(spec), steps_count)).values():
        for t, found in per_step.items():
            for input_steps in found.values():
                if causal:
                    assert max(input_steps) <= t
