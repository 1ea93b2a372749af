"""docs/gradients.md quotes measured gradient norms: its untrained rows are recomputed
here (seed 0, no training, so they are exact), and its table has a row for each
network, state and stage that `tools/gradients.py` prints."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from tests.conftest import ROOT

_SPEC = importlib.util.spec_from_file_location("gradients_tool", ROOT / "tools" / "gradients.py")
TOOL = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(TOOL)
NETWORKS, STEPS, untrained = TOOL.NETWORKS, TOOL.STEPS, TOOL.untrained

PAGE = (ROOT / "docs" / "gradients.md").read_text(encoding="utf-8")
ROWS = {
    m.group(1): [float(v) for v in m.group(2).split(" | ")]
    for m in re.finditer(r"^\| ([^|]+?, [hc], (?:un)?trained) \| (.+?) \|$", PAGE, re.M)
}


def test_the_table_has_every_network_state_and_stage():
    wanted = {
        f"{name}, {state}, {stage}"
        for name in NETWORKS
        for state in (("h",) if name == "Elman" else ("h", "c"))
        for stage in ("untrained", "trained")
    }
    assert set(ROWS) == wanted


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_untrained_figures_are_what_the_networks_give(name):
    found = untrained(NETWORKS[name])
    for key, state in (("rnn.s", "h"), ("rnn.c", "c")):
        if key not in found:
            continue
        values = found[key]
        quoted = ROWS[f"{name}, {state}, untrained"]
        measured = [values[t] for t in STEPS] + [values.min() / values.max()]
        np.testing.assert_allclose(quoted, measured, rtol=0.051)  # two significant digits
