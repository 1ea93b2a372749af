"""Interop tests. `CONVERTED` are the example specs both converters carry; the others
(taps, merges, input-free layers and two passes) are refused in one line, which
`tests/graph/test_features.py` checks."""

from composer.graph.features import extended_features
from composer.graph.folded import build
from composer.spec.reader import load_spec
from tests.conftest import SPECS

CONVERTED = [path for path in SPECS if not extended_features(build(load_spec(path)))]
