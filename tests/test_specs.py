"""Every spec in specs/ loads, validates, unrolls and has the dependencies its header claims."""

from __future__ import annotations

import re

from composer.graph.deps import dependencies, format_dependencies
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.spec.reader import load_spec

CLAIM = re.compile(r"^# deps --steps (\d+): (.+)$", re.M)


def test_spec_has_a_header_and_a_deps_claim(spec_path):
    text = spec_path.read_text()
    assert text.startswith("# "), "each example opens with a comment saying what it shows"
    assert CLAIM.search(text), "each example states one dependency its header claims"


def test_spec_validates_unrolls_and_keeps_its_claims(spec_path):
    spec = load_spec(spec_path)
    folded = build(spec)
    graph = unrolled_graph(unroll(folded, spec.steps))
    assert graph.number_of_nodes() > 0
    for steps, line in CLAIM.findall(spec_path.read_text()):
        assert line in format_dependencies(dependencies(unroll(folded, int(steps))))
