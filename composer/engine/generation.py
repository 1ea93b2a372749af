"""Generation: a network writes tokens one at a time, each fed back in as the next input.

Built on `composer.engine.stepper.Stepper`, so each token costs one step, whatever came
before. The chosen token goes back in one of two ways (`feedback`):

- **through an input**: the output (a softmax over N) and a token input with `vocab: N`
  (the token is its next id), or else an input of N features (the token's one-hot vector);
- **through a connection**: the output's layer reads its own output back in time (a
  `connections` edge, the lecture's one-to-many generator); the token's one-hot vector
  takes the place of the probabilities it fed back.

Sampling draws from the output's probabilities sharpened by a temperature (0: the most
likely token), optionally kept to the `top_k` most likely or the smallest set holding
`top_p` of the mass; a seeded generator makes it repeatable. Beam search keeps the `beam`
best sequences by log-probability, each beam a batch row of one stepper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from composer.engine.memory import beam_bytes, stepped_bytes
from composer.engine.stepper import Stepper, step_plan
from composer.engine.tokens import one_hot_ids, token_vocab
from composer.errors import DataError, SpecError

__all__ = [
    "Feedback",
    "find_feedback",
    "sample_next",
    "generate",
    "beam_search",
    "generation_bytes",
]

#: the most bytes a token's character takes: in a Python string (4), encoded for the
#: terminal (4), and escaped by `repr` in a beam's line (10)
_CHARACTER_BYTES = 18


@dataclass(frozen=True)
class Feedback:
    """How a chosen token goes back in: `output` gives the probabilities; `input` (a token
    input) or `node` (the output's own vector, read back by a connection) takes the token."""

    output: str
    vocab: int
    input: str | None = None
    node: str | None = None
    one_hot: bool = False  # the input takes N features, not ids


def find_feedback(graph: nx.MultiDiGraph) -> Feedback:
    """The feedback of a network that can generate: a softmax output over N tokens, and a
    token input of the same N or a connection reading that output back; else SpecError."""
    vocab = token_vocab(graph)
    outputs = [n for n, role in graph.nodes(data="role") if role == "output"]
    for out in outputs:
        sources = [s for s, _, role in graph.in_edges(out, data="role") if role == "emit"]
        if len(sources) != 1 or graph.nodes[sources[0]].get("activation") != "softmax":
            continue
        size = graph.nodes[out]["size"]
        same = [name for name, n in vocab.items() if n == size]
        if same:
            return Feedback(out, size, input=same[0])
        features = [
            n for n, d in graph.nodes(data=True)
            if d["role"] == "input" and not d.get("vocab") and d["size"] == size
        ]  # fmt: skip
        if features:
            return Feedback(out, size, input=features[0], one_hot=True)
        read_back = [lag for _, _, lag in graph.out_edges(sources[0], data="lag") if lag > 0]
        if read_back:
            return Feedback(out, size, node=sources[0])
    shown = ", ".join(f"`{name}` (vocab {n})" for name, n in vocab.items()) or "none"
    raise SpecError(
        "nothing to feed a generated token back into: generation needs a softmax output "
        f"whose size equals a token input's `vocab` (token inputs: {shown}) or an input's "
        "size, or a connection that reads that output back",
        ("outputs",),
    )


def sample_next(
    probs: np.ndarray,
    rng: np.random.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:
    """One token id per row of (B, N) probabilities: argmax at temperature 0, else a draw
    from p^(1/temperature), kept to the top_k tokens and the top_p mass, renormalised.

    Any finite temperature above 0 is honoured: the log-probabilities' distances below the
    likeliest token's are divided by it, so a tiny one (1e-320) gives every other token a
    weight of 0 and draws among the likeliest, the limit of sampling as it goes to 0."""
    if not np.isfinite(temperature) or temperature < 0:
        raise DataError(f"temperature must be a finite number >= 0, got {temperature!r}")
    probs = np.asarray(probs, dtype=np.float64)
    if temperature == 0:
        return probs.argmax(axis=-1)
    logp = np.log(np.maximum(probs, 1e-300))
    logp -= logp.max(axis=-1, keepdims=True)  # in -690.8..0: the likeliest at 0
    with np.errstate(over="ignore", under="ignore"):  # far below the likeliest: weight 0
        weights = np.exp(logp / temperature)
    order = np.argsort(-weights, axis=-1, kind="stable")
    ranked = np.take_along_axis(weights, order, axis=-1)
    ranked /= ranked.sum(axis=-1, keepdims=True)
    keep = np.ones_like(ranked, dtype=bool)
    if top_k is not None:
        keep[:, top_k:] = False
    if top_p is not None:  # the smallest prefix whose mass reaches top_p
        before = np.cumsum(ranked, axis=-1) - ranked
        keep &= before < top_p
        keep[:, 0] = True  # the likeliest token always stays
    ranked = np.where(keep, ranked, 0)
    ranked /= ranked.sum(axis=-1, keepdims=True)
    draws = rng.random(len(ranked))[:, np.newaxis]
    picked = (np.cumsum(ranked, axis=-1) < draws).sum(axis=-1)
    picked = np.minimum(picked, keep.sum(axis=-1) - 1)
    return np.take_along_axis(order, picked[:, np.newaxis], axis=-1)[:, 0]


def _feed(stepper: Stepper, feedback: Feedback, tokens: np.ndarray, inputs) -> np.ndarray:
    """One step with `tokens` (B,) going back in; the output's (B, N) probabilities."""
    if feedback.input is not None:
        value = one_hot_ids(tokens, feedback.vocab, np.float64) if feedback.one_hot else tokens
        return stepper.step({**inputs, feedback.input: value})[feedback.output]
    stepper.replace_last(feedback.node, one_hot_ids(tokens, feedback.vocab, np.float64))
    return stepper.step(inputs)[feedback.output]


def _prime(stepper, feedback, prompt, count, inputs):
    """Step through the prompt for `count` rows; the probabilities of the next token."""
    batch = {
        k: np.repeat(np.asarray(v)[np.newaxis], count, axis=0) for k, v in (inputs or {}).items()
    }
    if feedback.input is not None:
        if not len(prompt):
            raise DataError("the prompt is empty; give at least one token to start from")
        probs = None
        for k, token in enumerate(prompt):
            probs = _feed(stepper, feedback, np.full(count, token), batch if k == 0 else {})
        return probs
    probs = stepper.step(batch, batch=count)[feedback.output]
    for token in prompt:
        probs = _feed(stepper, feedback, np.full(count, token), {})
    return probs


def generate(
    stepper: Stepper,
    feedback: Feedback,
    prompt: Sequence[int],
    length: int,
    *,
    count: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    on_token: Callable[[np.ndarray], None] | None = None,
) -> np.ndarray:
    """`count` sequences of `length` token ids after the prompt, (count, length): each
    token sampled (`sample_next`) and fed back. `inputs` are other inputs' first-step
    values, one item's, such as (F,) or a start state's (H,) (`initial_state: h0`);
    `on_token` sees each step's (count,) tokens as they come."""
    rng = np.random.default_rng(seed)
    stepper.reset()
    stepper.expect(count * (len(prompt) + length))
    probs = _prime(stepper, feedback, list(prompt), count, inputs)
    out = np.empty((count, length), dtype=np.int64)
    for t in range(length):
        tokens = sample_next(probs, rng, temperature, top_k, top_p)
        out[:, t] = tokens
        if on_token is not None:
            on_token(tokens)
        if t + 1 < length:
            probs = _feed(stepper, feedback, tokens, {})
    return out


def beam_search(
    stepper: Stepper,
    feedback: Feedback,
    prompt: Sequence[int],
    length: int,
    beam: int,
    *,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> list[tuple[list[int], float]]:
    """The `beam` most likely continuations of `length` tokens, best first, each with its
    log-probability (natural log): the beams are the rows of one stepper's batch."""
    if beam < 1:
        raise DataError(f"beam must be >= 1, got {beam}")
    stepper.reset()
    stepper.expect(beam * (len(prompt) + length))
    probs = _prime(stepper, feedback, list(prompt), 1, inputs)
    sequences = np.zeros((1, 0), dtype=np.int64)
    scores = np.zeros(1)
    for t in range(length):
        logp = scores[:, np.newaxis] + np.log(np.maximum(probs, 1e-300))
        flat = logp.reshape(-1)
        best = np.argsort(-flat, kind="stable")[:beam]
        rows, tokens = np.divmod(best, logp.shape[1])
        sequences = np.concatenate([sequences[rows], tokens[:, np.newaxis]], axis=1)
        scores = flat[best]
        if t + 1 < length:
            stepper.select(rows)
            probs = _feed(stepper, feedback, tokens, {})
    return [(seq.tolist(), float(score)) for seq, score in zip(sequences, scores)]


def generation_bytes(
    graph: nx.MultiDiGraph,
    feedback: Feedback,
    tokens: Sequence[str],
    length: int,
    *,
    count: int = 1,
    beam: int | None = None,
    held: int = 0,
    dtype: str = "float32",
) -> int:
    """The memory `generate` (or `beam_search` with `beam`) needs for `length` tokens of
    `count` rows, `held` texts of them kept at once, weights excluded: estimated from the
    sizes alone (`composer.engine.memory`), before anything is allocated."""
    _, plan = step_plan(graph)
    token_bytes = _CHARACTER_BYTES * max(len(token) for token in tokens)
    if beam is not None:
        return beam_bytes(plan, feedback.vocab, beam, length, token_bytes, dtype)
    return stepped_bytes(plan, feedback.vocab, count, length, token_bytes, held, dtype)
