"""The Network object: the Python API in one place, shown as its diagram in a notebook."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from composer import Network
from tests.conftest import make_spec


def test_network_runs_and_counts():
    net = Network.from_spec(make_spec())
    assert net.param_count == 42
    out = net.run(net.init_params(1, "float64"), np.ones((5, 3)), dtype="float64")
    assert out["y"].shape == (5, 2) and out["y"].dtype == np.float64
    assert net.dependencies(3)["y"][1] == {"x": [0, 1]}


@pytest.mark.dot
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_network_shows_itself_as_its_folded_diagram():
    picture = Network.from_spec(make_spec())._repr_svg_()
    assert picture.lstrip().startswith("<?xml") and "<svg" in picture and "Ws" in picture
