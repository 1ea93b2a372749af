"""Stepping: one step at a time equals the whole run; state carried over pieces equals the
whole run in float64 (to the last bit on all but two examples); a step's work does not grow
with the steps before it."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.batches import run
from composer.engine.pipeline import plan_for_steps
from composer.engine.stepper import Stepper, run_stepped
from composer.errors import DataError, SpecError
from composer.network import Network
from tests.conftest import SPECS, operations
from tests.tolerances import assert_close, run_depth

STEPPABLE = []
for path in SPECS:
    net = Network.from_file(path)
    try:
        Stepper(net.graph, net.init_params(0))
    except SpecError:  # backward layers, encoder-decoders: not causal
        continue
    STEPPABLE.append(path)


def _inputs(net, steps, batch=2):
    rng = np.random.default_rng(0)
    plan = plan_for_steps(net.graph, steps)
    nodes = [(n, d) for n, d in net.graph.nodes(data=True) if d["role"] == "input"]
    return {
        n: rng.integers(0, d["vocab"], (batch, len(plan.window(n))))
        if d.get("vocab")
        else rng.normal(size=(batch, len(plan.window(n)), d["size"]))
        for n, d in nodes
    }


def test_the_causal_examples_are_covered():
    names = {p.stem for p in STEPPABLE}
    assert names >= {"gru", "lstm", "dilated", "jordan", "generate", "forecast", "sentiment"}


@pytest.mark.parametrize("path", STEPPABLE, ids=[p.stem for p in STEPPABLE])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_pieces_with_state_carried_equal_the_whole_run(path, chunk):
    """Each input at every step (zeros outside its window, where it is absent); each
    output of the whole run is the pieces' output at the steps of its window."""
    net = Network.from_file(path)
    params = net.init_params(1, "float64")
    steps = 1000 if chunk == 1000 else 23
    inputs = _inputs(net, steps)
    whole = run(net.graph, params, inputs, steps, dtype="float64")
    plan = plan_for_steps(net.graph, steps)
    every = {}
    for name, array in inputs.items():
        if array.ndim == 2:  # token ids: at every step in the examples
            every[name] = array
            continue
        every[name] = np.zeros((2, steps, array.shape[2]))
        window = plan.window(name)
        every[name][:, window.start : window.stop] = array
    state, pieces = None, []
    for start in range(0, steps, chunk):
        piece = {n: a[:, start : start + chunk] for n, a in every.items()}
        outputs, state = run_stepped(net.graph, params, piece, state, "float64")
        pieces.append(outputs)
    for name, value in whole.items():
        window = plan.window(name)
        stepped = np.concatenate([p[name] for p in pieces], axis=1)
        # BLAS may round a product of a few rows (one step) and of many (a chunk)
        # differently, by CPU: forecast's and sine's one-column readouts do here
        got = stepped[:, window.start : window.stop]
        assert_close(got, value, np.float64, run_depth(steps, len(net.spec.layers)), name)


def test_a_step_costs_the_same_at_step_10_and_step_1000():
    net = Network.from_file(SPECS[0].parent / "lstm.yaml")
    stepper = net.stepper(net.init_params(0))
    x = {"x": np.ones((1, net.graph.nodes["x"]["size"]))}
    counts = {}
    for t in range(1001):
        if t in (10, 1000):
            counts[t] = operations(stepper.step, x)
        else:
            stepper.step(x)
    assert counts[10] == counts[1000]


def test_state_is_by_layer_and_can_be_set():
    net = Network.from_file(SPECS[0].parent / "lstm.yaml")
    params = net.init_params(0, "float64")
    stepper = net.stepper(params, "float64")
    x = _inputs(net, 5, batch=1)["x"]
    for t in range(3):
        stepper.step({"x": x[:, t]})
    saved = stepper.state
    assert sorted(saved) == ["lstm1.c", "lstm1.h", "lstm2.c", "lstm2.h"]
    after = [stepper.step({"x": x[:, t]})["y"] for t in (3, 4)]
    fresh = net.stepper(params, "float64")
    fresh.state = saved
    # exact: the same steps on the same shapes from the same state
    assert all(np.array_equal(fresh.step({"x": x[:, t]})["y"], after[t - 3]) for t in (3, 4))


def test_bad_state_and_unsteppable_networks_are_refused():
    net = Network.from_file(SPECS[0].parent / "gru.yaml")
    stepper = net.stepper(net.init_params(0))
    with pytest.raises(DataError, match="missing gru.h; unknown rnn.h"):
        stepper.state = {"rnn.h": np.zeros((1, 24))}
    with pytest.raises(DataError, match=r"key 'gru.h': expected \(2, 24\)"):
        stepper.state = {"gru.h": np.zeros((2, 23))}
    tagger = Network.from_file(SPECS[0].parent / "bidirectional-tagger.yaml")
    with pytest.raises(SpecError, match="runs backward in time"):
        tagger.stepper(tagger.init_params(0))


def test_one_items_step_may_be_1d_and_a_refused_first_step_changes_nothing():
    """(F,) is one item's step, a batch of one, the same numbers as (1, F); a first step
    refused for its shape leaves the stepper unstarted, so the next may set the batch."""
    net = Network.from_file(SPECS[0].parent / "lstm.yaml")
    params = net.init_params(0, "float64")
    x = _inputs(net, 3, batch=1)["x"]
    flat, batched = net.stepper(params, "float64"), net.stepper(params, "float64")
    for t in range(3):
        np.testing.assert_array_equal(  # exact: (F,) is run as (1, F), the same products
            flat.step({"x": x[0, t]})["y"], batched.step({"x": x[:, t]})["y"]
        )
    size = x.shape[-1]
    stepper = net.stepper(params, "float64")
    with pytest.raises(DataError, match=rf"expected a step of shape \({size},\) for one item"):
        stepper.step({"x": np.zeros(size + 1)})
    with pytest.raises(DataError, match=rf"expected a step of shape \(3, {size}\)"):
        stepper.step({"x": np.zeros((3, size + 1))})
    assert stepper.steps == 0
    assert stepper.step({"x": np.zeros((2, size))})["y"].shape[0] == 2  # the batch is free
