"""Generation: greedy equals argmax of run on the growing prefix; seeded sampling repeats;
beam 1 is greedy; beams come out best first with their log-probabilities."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

from composer.engine.batches import run
from composer.engine.generation import (
    beam_search,
    find_feedback,
    generate,
    generation_bytes,
    sample_next,
)
from composer.errors import DataError, SpecError
from composer.network import Network
from tests.conftest import ROOT
from tests.tolerances import run_depth, tolerance

SPEC = {
    "inputs": [{"name": "x", "vocab": 7, "embed": 4}],
    "layers": [
        {"name": "g1", "kind": "gru", "input": "x", "state_size": 8},
        {"name": "g2", "kind": "lstm", "input": "g1", "state_size": 8,
         "output": {"size": 7, "activation": "softmax"}},
    ],
    "outputs": [{"name": "y", "from": "g2"}],
}  # fmt: skip


@pytest.fixture(scope="module")
def model():
    net = Network.from_spec(SPEC)
    params = net.init_params(3, "float64")
    return net, params, net.stepper(params, "float64"), find_feedback(net.graph)


def test_greedy_equals_argmax_of_run_on_the_growing_prefix(model):
    net, params, stepper, feedback = model
    greedy = generate(stepper, feedback, [1, 2], 50, temperature=0)[0].tolist()
    prefix = [1, 2]
    for _ in range(50):
        probs = run(net.graph, params, np.array(prefix), dtype="float64")["y"]
        prefix.append(int(probs[-1].argmax()))
    # token ids: argmaxes of probabilities the stepper (one row a step) and `run` (products
    # over the prefix) give to float64 rounding, so equal where the likeliest two are apart
    top = np.sort(probs[1:], axis=-1)
    assert (top[:, -1] - top[:, -2]).min() > tolerance(np.float64, run_depth(len(prefix), 2))
    assert greedy == prefix[2:]


def test_seeded_sampling_repeats(model):
    _, _, stepper, feedback = model
    options = dict(count=3, temperature=0.8, top_k=4, top_p=0.9, seed=5)
    first = generate(stepper, feedback, [1], 30, **options)
    # exact: the same seeded draws from the same steps
    assert np.array_equal(first, generate(stepper, feedback, [1], 30, **options))
    assert not np.array_equal(first, generate(stepper, feedback, [1], 30, **options | {"seed": 6}))


def test_beam_one_is_greedy_and_beams_are_sorted_with_their_log_probability(model):
    net, params, stepper, feedback = model
    greedy = generate(stepper, feedback, [1, 2], 20, temperature=0)[0].tolist()
    assert beam_search(stepper, feedback, [1, 2], 20, 1)[0][0] == greedy
    beams = beam_search(stepper, feedback, [1, 2], 8, 5)
    scores = [score for _, score in beams]
    assert scores == sorted(scores, reverse=True) and len(beams) == 5
    tokens, score = beams[0]
    sequence = [1, 2, *tokens]
    probs = run(net.graph, params, np.array(sequence[:-1]), dtype="float64")["y"]
    assert np.isclose(score, sum(np.log(probs[t, sequence[t + 1]]) for t in range(1, 9)))


def test_top_k_and_top_p_keep_the_likeliest_tokens():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]] * 400)
    rng = np.random.default_rng(0)
    assert set(sample_next(probs, rng, 1.0, top_k=2).tolist()) == {0, 1}
    assert set(sample_next(probs, rng, 1.0, top_p=0.7).tolist()) == {0, 1}
    assert set(sample_next(probs, rng, 1.0).tolist()) == {0, 1, 2, 3}
    assert sample_next(probs[:1], rng, 0).tolist() == [0]
    assert set(sample_next(probs, rng, 1.0, top_p=0.0).tolist()) == {0}  # the likeliest stays


def test_generation_through_a_feedback_connection():
    net = Network.from_file(ROOT / "specs" / "generate.yaml")
    params = net.init_params(0, "float64")
    feedback = find_feedback(net.graph)
    assert (feedback.node, feedback.output) == ("gen.y", "o")
    stepper = net.stepper(params, "float64")
    x = np.random.default_rng(0).normal(size=16)
    tokens = generate(stepper, feedback, [], 6, temperature=0, inputs={"x": x})[0]
    # the same by hand: each step's chosen token, one-hot, is what the next step reads back
    probs, chosen = net.stepper(params, "float64"), []
    out = probs.step({"x": x[np.newaxis]})["o"]
    for _ in range(6):
        chosen.append(int(out.argmax()))
        probs.replace_last("gen.y", np.eye(10)[[chosen[-1]]])
        out = probs.step({}, batch=1)["o"]
    assert tokens.tolist() == chosen


def test_a_network_without_feedback_is_refused():
    net = Network.from_file(ROOT / "specs" / "gru.yaml")
    with pytest.raises(SpecError, match="nothing to feed a generated token back into"):
        find_feedback(net.graph)


def test_a_tiny_temperature_draws_the_likeliest_without_overflowing():
    """Issue 25, item 9: 1e-320 passed the `min=0` check, then overflowed into NaN weights
    (RuntimeWarnings) and drew token 0. Any temperature above 0 is the sampling's own limit:
    the likeliest token, ties shared at random."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(9), size=200)
    probs[:, 0] = 0.0  # token 0 is never the likeliest
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        for temperature in (1e-320, 5e-324, 1e-300, 1e-30):
            picked = sample_next(probs, rng, temperature)
            assert np.array_equal(picked, probs.argmax(axis=1)), temperature
        tied = np.array([[0.4, 0.1, 0.4, 0.1]] * 400)
        assert set(sample_next(tied, rng, 1e-320).tolist()) == {0, 2}
        assert sample_next(tied, rng, 0).tolist() == [0] * 400  # 0: argmax, the first of ties


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), -1.0])
def test_a_temperature_that_is_no_number_of_sharpness_is_refused(temperature):
    with pytest.raises(DataError, match="temperature must be a finite number >= 0"):
        sample_next(np.full((1, 3), 1 / 3), np.random.default_rng(0), temperature)


GENERATED = [  # (count, length, beam): the sizes whose memory the estimate must cover
    (1, 60, None), (20, 30, None), (400, 12, None), (1, 6, 3), (1, 7, 300), (1, 4, 2000),
]  # fmt: skip


@pytest.mark.parametrize("count, length, beam", GENERATED)
def test_generation_stays_within_its_estimate(model, count, length, beam):
    """Issue 25, item 15: the estimate `generate` checks against --max-memory before any
    work covers what generating allocates (traced), rows of beams included."""
    net, params, _, feedback = model
    stepper = net.stepper(params, "float64")
    tokens = [str(i) for i in range(feedback.vocab)]
    need = generation_bytes(
        net.graph, feedback, tokens, length, count=count, beam=beam, dtype="float64"
    )
    tracemalloc.start()
    try:
        if beam is None:
            generate(stepper, feedback, [1, 2], length, count=count, seed=0)
        else:
            beam_search(stepper, feedback, [1, 2], length, beam)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= need, (peak, need)
    assert need <= 4 * peak + (256 << 10)  # and not wildly over


def test_the_estimate_of_huge_beams_follows_the_rows_they_reach(model):
    """The beams grow from one row by the vocabulary's size at each token: 10^9 beams over
    2 tokens of 7 reach 7 rows; over 20 tokens, 10^9."""
    net, _, _, feedback = model
    tokens = [str(i) for i in range(feedback.vocab)]
    short = generation_bytes(net.graph, feedback, tokens, 2, beam=10**9)
    long = generation_bytes(net.graph, feedback, tokens, 20, beam=10**9)
    assert short < (1 << 20) < 10**9 * 20 * 8 < long
