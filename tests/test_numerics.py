"""Numerics: huge inputs give finite outputs with no floating-point warnings, repeatably."""

from __future__ import annotations

import numpy as np
import pytest

from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params
from composer.run.executor import execute
from composer.run.plan import compile_plan
from composer.spec.reader import load_spec
from tests.conftest import SPECS


def _inputs(plan, scale: float, dtype: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        name: (
            scale
            * rng.choice([-1.0, 1.0], size=(2, len(plan.window(name)), plan.vectors[name].size))
        ).astype(dtype)
        for name in plan.inputs
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [1e4, 1e30])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_huge_inputs_give_finite_outputs_without_warnings(path, scale, dtype):
    spec = load_spec(path)
    folded = build(spec)
    plan = compile_plan(unroll(folded, min(spec.steps, 12)))
    params = init_params(folded, 0, dtype)
    inputs = _inputs(plan, scale, dtype)
    with np.errstate(all="raise"):
        first = execute(plan, params, inputs, dtype)
        again = execute(plan, params, inputs, dtype)
    for name, value in first.items():
        assert value.dtype == np.dtype(dtype)
        assert np.isfinite(value).all(), name
        assert value.tobytes() == again[name].tobytes()  # bitwise identical across runs
