"""The plan: which plans stream through time in chunks."""

from __future__ import annotations

from composer.engine.plan import compile_plan
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from tests.oracles import SCENARIOS


def test_plans_are_streaming_unless_time_runs_backwards():
    streaming = {
        name: compile_plan(unroll(build(s), t)).streaming for name, (s, t, _) in SCENARIOS.items()
    }
    assert not streaming["backward"] and not streaming["bidirectional-readout"]
    assert streaming["jordan"] and streaming["encoder-decoder-lstm-lstm"]
