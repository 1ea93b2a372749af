"""Interop tests. `CONVERTED` are the example specs both converters carry; the others
(token inputs; taps, merges, input-free layers and two passes) are refused in one line,
which `test_refusals.py` and `tests/graph/test_features.py` check."""

from composer.graph.features import extended_features
from composer.graph.folded import build
from composer.spec.reader import load_spec
from tests.conftest import SPECS

#: example specs with token inputs (`vocab:`), which the converters do not carry yet
TOKEN_SPECS = [path for path in SPECS if "vocab:" in path.read_text()]
CONVERTED = [
    path
    for path in SPECS
    if path not in TOKEN_SPECS and not extended_features(build(load_spec(path)))
]
