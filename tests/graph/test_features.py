"""The features a converter must support exactly or refuse are each found, with the field."""

from __future__ import annotations

from composer.graph.features import extended_features
from composer.graph.folded import build
from composer.spec.reader import load_spec
from tests.conftest import SPECS
from tests.oracles import SCENARIOS

EXPECTED = {
    "narx": {("connections", 0), ("layers", 0, "input")},
    "tdnn": {("layers", 0, "input")},
    "backward-taps": {("layers", 0, "input")},
    "bidirectional-sum": {("layers", 0, "merge"), ("layers", 2, "merge")},
    "two-pass": {("layers", 1, "initial_state")},
    "inputless-decoder": {("layers", 1)},
}


def test_each_scenario_reports_exactly_its_extended_features():
    for name, (network, _, _) in SCENARIOS.items():
        paths = {path for path, _ in extended_features(build(network))}
        assert paths == EXPECTED.get(name, set()), name


def test_the_example_specs_beyond_plain_stacks_are_the_tapped_ones():
    extended = {p.stem for p in SPECS if extended_features(build(load_spec(p)))}
    assert extended == {"narx", "tdnn"}
