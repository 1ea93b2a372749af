"""Fuzzing the language-model surfaces (issue 25): vocabulary files, and the sizes asked of
`generate` and `data text`.

Each is read or refused whole: a vocabulary loads with every field in range or is one
located line; a size either fits `--max-memory` and then stays within the estimate the
command checked, or is refused (exit code 5) before any work. `make test` runs a few
examples; `make fuzz` sets FUZZ_EXAMPLES for thousands.
"""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from composer.cli import app
from composer.engine.generation import beam_search, find_feedback, generate, generation_bytes
from composer.engine.memory import text_data_bytes
from composer.engine.stepper import Stepper
from composer.errors import DataError
from composer.graph.weights import init_params, save_params
from composer.network import Network
from composer.training.text import (
    build_vocab,
    decode_ids,
    encode_text,
    text_windows,
    token_count,
    tokenize,
    window_count,
)
from composer.training.vocabulary import LEVELS, parse_vocab

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
HEAVY = int(os.environ.get("FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: generators that run generation or whole commands: a few examples in `make test`, and
#: FUZZ_EXAMPLES (a quarter of them for the commands behind an in-process generator)
SIZES_FUZZ = settings(
    max_examples=HEAVY,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLI = settings(SIZES_FUZZ, max_examples=max(15, HEAVY // 4))
runner = CliRunner()

# -- vocabularies -----------------------------------------------------------------------------

CHARACTERS = st.characters() | st.characters(categories=["Cs"])  # lone surrogates too
ANY_TEXT = st.text(CHARACTERS, max_size=4)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
    | st.sampled_from(LEVELS)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
TOKENS = st.lists(
    st.sampled_from(["a", "b", "ab", " ", "  ", "\n", ".", "\ufffd", "é", "日", "", "x y"])
    | st.text(CHARACTERS, min_size=1, max_size=3),
    min_size=0,
    max_size=8,
)


@st.composite
def raw_values(draw, field: str) -> str:
    """The JSON text of a field: mostly of its own type, or anything, or hostile text."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return "9" * draw(st.integers(1, 10_000))  # a long integer
    if choice == 1:
        depth = draw(st.sampled_from([2, 50, 900, 5_000, 100_000]))
        return "[" * depth + draw(st.sampled_from(["", "1", '"a"'])) + "]" * depth
    if choice == 2:
        return draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0", "1.0"]))
    if choice in (3, 4):
        return json.dumps(draw(VALUES))
    if field == "level":
        return json.dumps(draw(st.sampled_from(LEVELS)))
    if field == "tokens":
        return json.dumps(draw(TOKENS))
    if field == "counts":
        return json.dumps(draw(st.lists(st.integers(-1, 10**40), max_size=8)))
    return json.dumps(draw(st.integers(-2, 9)))  # unknown


@st.composite
def vocabulary_texts(draw) -> str:
    """A vocabulary file's text: fields of their types, of other types, hostile, missing,
    repeated or unknown; sometimes not an object, sometimes cut or with bytes spliced in."""
    if draw(st.integers(0, 19)) == 0:
        return draw(raw_values("unknown"))
    keys = draw(
        st.lists(
            st.sampled_from(["level", "tokens", "counts", "unknown", "level", "tokens", "extra"]),
            max_size=6,
        )
    )
    fields = [f"{json.dumps(key)}: {draw(raw_values(key))}" for key in keys]
    text = "{" + ", ".join(fields) + "}"
    if draw(st.integers(0, 9)) == 0:
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.text(max_size=3)) + text[pos + draw(st.integers(0, 3)) :]
    return text


def _check_loaded(vocab: dict, prompt: str, ids: list[int]) -> None:
    tokens = vocab["tokens"]
    assert vocab["level"] in LEVELS and tokens and len(set(tokens)) == len(tokens)
    assert all(tokenize(token, vocab["level"]) == [token] for token in tokens)
    unknown = vocab.get("unknown")
    assert unknown is None or (type(unknown) is int and 0 <= unknown < len(tokens))
    counts = vocab.get("counts", [0] * len(tokens))
    assert len(counts) == len(tokens) and all(type(c) is int and c >= 0 for c in counts)
    decode_ids([i % len(tokens) for i in ids], vocab).encode("utf-8")  # printable text
    try:
        encoded = encode_text(prompt, vocab, "--prompt")
    except DataError as err:
        assert unknown is None and str(err).startswith("--prompt: token ")
        return
    assert len(encoded) == token_count(prompt, vocab["level"])
    if unknown is None:
        assert decode_ids(encoded, vocab) == prompt


@FUZZ
@given(vocabulary_texts(), st.text(max_size=8), st.lists(st.integers(0, 99), max_size=5))
def test_fuzz_vocabularies_load_whole_or_fail_in_one_located_line(text, prompt, ids):
    try:
        vocab = parse_vocab(text, "v.json")
    except DataError as err:
        message = str(err)
        assert message.startswith("v.json: ") and "\n" not in message and len(message) < 400
        return
    _check_loaded(vocab, prompt, ids)


@CLI
@given(vocabulary_texts())
def test_fuzz_vocabularies_through_generate(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("vocab")
    (folder / "v.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        size = len(parse_vocab(text, "v.json")["tokens"])
    except DataError:
        size = 3
    net = Network.from_spec(_language_model(size))
    (folder / "lm.json").write_text(json.dumps(_language_model(size)))
    save_params(folder / "w.npz", net.init_params(0))
    args = ["generate", folder / "lm.json", "-w", folder / "w.npz", "--vocab", folder / "v.json"]
    result = runner.invoke(app, [str(a) for a in args + ["--prompt", "a b", "--length", 3]])
    assert result.exit_code in (0, 2, 4), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 4:
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.output


# -- generation sizes -------------------------------------------------------------------------


def _language_model(vocab: int, kind: str = "gru", embed: bool = True) -> dict:
    x = {"name": "x", "vocab": vocab} | ({"embed": 3} if embed else {})
    return {
        "inputs": [x],
        "layers": [{"name": "g", "kind": kind, "input": "x", "state_size": 4,
                    "output": {"size": vocab, "activation": "softmax"}}],
        "outputs": [{"name": "y", "from": "g"}],
    }  # fmt: skip


MODELS = [(1, "gru", True), (2, "lstm", False), (15, "gru", True), (300, "lstm", True)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Each model of MODELS: (spec file, weights file, vocabulary file, graph, params)."""
    folder = tmp_path_factory.mktemp("models")
    made = []
    for vocab, kind, embed in MODELS:
        spec = _language_model(vocab, kind, embed)
        graph = Network.from_spec(spec).graph
        params = init_params(graph, 0, "float32")
        name = f"{kind}{vocab}"
        (folder / f"{name}.json").write_text(json.dumps(spec))
        save_params(folder / f"{name}.npz", params)
        tokens = ["a"] if vocab == 1 else [chr(0x61 + i % 26) + str(i // 26) for i in range(vocab)]
        level = "char" if vocab <= 2 else "word"
        tokens = tokens if level == "word" else ["a", "b"][:vocab]
        (folder / f"{name}.vocab.json").write_text(json.dumps({"level": level, "tokens": tokens}))
        files = (folder / f"{name}.json", folder / f"{name}.npz", folder / f"{name}.vocab.json")
        made.append((*files, graph, params, tokens))
    return made


SIZES = st.integers(1, 40) | st.integers(1, 10**12)


@SIZES_FUZZ
@given(
    st.integers(0, len(MODELS) - 1),
    SIZES,
    SIZES,
    st.none() | SIZES,
    st.integers(10, 26).map(lambda bits: 1 << bits),
)
def test_fuzz_generation_sizes_are_refused_or_stay_within_their_estimate(
    models, which, count, length, beam, limit
):
    spec, weights, vocab, graph, params, tokens = models[which]
    feedback = find_feedback(graph)
    need = generation_bytes(graph, feedback, tokens, length, count=count, beam=beam)
    rows = count if beam is None else min(beam, feedback.vocab ** min(length, 60))
    if need > limit:  # the command refuses, before any work
        sizes = ["--count", count] if beam is None else ["--beam", beam]
        args = ["generate", spec, "-w", weights, "--vocab", vocab, "--prompt", tokens[0],
                "--length", length, *sizes, "--max-memory", limit]  # fmt: skip
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 5 and result.stdout == "", result.output
        assert result.stderr.count("\n") == 1 and "over the limit of" in result.stderr
    elif rows * length <= 2_000:  # small enough to run here, traced
        stepper = Stepper(graph, params, "float32")
        # the compiled steps load once, a fixed cost the estimates leave out as every
        # command's does: loaded before tracing, as `generate` itself would load them
        stepper.expect((count if beam is None else beam) * (1 + length))
        tracemalloc.start()
        try:
            if beam is None:
                out = generate(stepper, feedback, [0], length, count=count, seed=0)
                assert out.shape == (count, length)
            else:
                assert len(beam_search(stepper, feedback, [0], length, beam)) == min(rows, beam)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak <= need, (peak, need)


LETTERS = st.sampled_from(list("ab c.\n") + ["é", "日", "\U0001f600", "\ufffd"])


@FUZZ
@given(
    st.lists(st.text(LETTERS, max_size=300), min_size=1, max_size=3),
    st.sampled_from(LEVELS),
    st.integers(1, 400) | st.integers(1, 10**12),
)
def test_fuzz_data_text_sizes_are_refused_or_stay_within_their_estimate(texts, level, seq_len):
    sizes = [token_count(text, level) for text in texts]
    assert sizes == [len(tokenize(text, level)) for text in texts]
    try:
        windows = window_count(sum(sizes), seq_len)
    except DataError as err:
        assert sum(sizes) < 2 or seq_len > sum(sizes) - 1, str(err)
        return
    assert windows * seq_len < sum(sizes) - 1 + seq_len  # at most one ragged window
    shared = level == "char" and all(not t or max(t) < "\u0100" for t in texts)
    need = text_data_bytes(sum(sizes), max(sizes), windows, seq_len, shared)
    tracemalloc.start()
    try:
        table = build_vocab(texts, level)
        ids = np.concatenate([encode_text(text, table) for text in texts])
        x, _, lengths = text_windows(ids, seq_len)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (windows, seq_len) and lengths.sum() == sum(sizes) - 1
    assert peak <= need + (64 << 10), (peak, need)  # the vocabulary's own few objects


@CLI
@given(st.integers(0, 300), st.integers(1, 400) | st.integers(1, 10**12))
def test_fuzz_data_text_sizes_through_the_command(tmp_path_factory, length, seq_len):
    folder = tmp_path_factory.mktemp("text")
    (folder / "a.txt").write_text(("the cat sat. " * 30)[:length])
    out = folder / "o.npz"
    result = runner.invoke(app, ["data", "text", str(folder / "a.txt"), "-o", str(out),
                                 "--seq-len", str(seq_len)])  # fmt: skip
    fits = length >= 2 and seq_len <= length - 1
    assert result.exit_code == (0 if fits else 4), result.output
    assert out.exists() == fits and "Traceback" not in result.output
    if fits:
        assert np.load(out)["x"].nbytes <= 16 * length
