"""Plans, needed inputs and weight shapes are made once per folded graph and given again:
the same objects for the same steps, a bounded number kept, nothing shared that a caller
could change, and the memory check still made on a plan given again."""

from __future__ import annotations

import pytest

from composer.engine.pipeline import KEPT_PLANS, plan_for_steps
from composer.errors import ResourceError
from composer.graph.unused import needed_inputs
from composer.graph.weights import param_shapes
from composer.network import Network


@pytest.fixture
def graph():
    return Network.from_file("specs/lecture-elman.yaml").graph


def test_a_plan_is_made_once_per_graph_and_steps(graph):
    first = plan_for_steps(graph, 6)
    assert plan_for_steps(graph, 6) is first
    assert plan_for_steps(graph, 7) is not first and plan_for_steps(graph, 7).steps == 7
    other = Network.from_file("specs/lecture-elman.yaml").graph  # an equal graph, not this one
    assert plan_for_steps(other, 6) is not first


def test_only_the_most_recent_plans_are_kept(graph):
    first = plan_for_steps(graph, 3)
    for steps in range(4, 4 + KEPT_PLANS):
        plan_for_steps(graph, steps)
    assert plan_for_steps(graph, 3) is not first  # made again


def test_the_memory_limit_holds_for_a_plan_given_again(graph):
    plan_for_steps(graph, 50)
    with pytest.raises(ResourceError, match="unrolling to T = 50"):
        plan_for_steps(graph, 50, max_memory=10)


def test_needed_inputs_and_shapes_are_fresh_copies(graph):
    needed, shapes = needed_inputs(graph), param_shapes(graph)
    needed.append("junk")
    shapes["junk"] = (1,)
    assert needed_inputs(graph) == ["x"]
    assert "junk" not in param_shapes(graph)
