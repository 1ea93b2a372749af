"""Shared fixtures: spec builders used across the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.spec.model import NetworkSpec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def make_spec(**overrides) -> NetworkSpec:
    """The lecture's Elman network as a spec, with top-level fields replaced."""
    data = {
        "inputs": [{"name": "x", "size": 3}],
        "layers": [
            {
                "name": "rnn",
                "kind": "elman",
                "input": "x",
                "state_size": 4,
                "output": {"size": 2, "activation": "softmax"},
            }
        ],
        "outputs": [{"name": "y", "from": "rnn"}],
    }
    data.update(overrides)
    return NetworkSpec.model_validate(data)


@pytest.fixture(params=SPECS, ids=[p.stem for p in SPECS])
def spec_path(request) -> Path:
    return request.param
