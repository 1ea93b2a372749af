"""Interop tests. `CONVERTED` are the example specs both converters carry; the rest (token
inputs) are refused in one line, which `test_refusals.py` checks."""

from tests.conftest import SPECS

#: example specs with token inputs (`vocab:`), which the converters do not carry yet
TOKEN_SPECS = [path for path in SPECS if "vocab:" in path.read_text()]
CONVERTED = [path for path in SPECS if path not in TOKEN_SPECS]
