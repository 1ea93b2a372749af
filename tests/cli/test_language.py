"""The language-model commands: `data text`, `generate`, `run --state-in/--state-out`, with
a tiny model trained for a few steps; bad input gets its exit code and one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.engine.batches import run
from composer.graph.folded import build
from composer.graph.weights import init_params, save_params
from composer.spec.model import NetworkSpec
from composer.spec.reader import load_spec
from composer.training.text import decode_ids, read_vocab
from tests.conftest import ROOT
from tests.tolerances import assert_close, run_depth

runner = CliRunner()
TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 4


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _spec(vocab: int) -> dict:
    return {
        "inputs": [{"name": "x", "vocab": vocab, "embed": 5}],
        "layers": [{"name": "g", "kind": "gru", "input": "x", "state_size": 6,
                    "output": {"size": vocab, "activation": "softmax"}}],
        "outputs": [{"name": "y", "from": "g"}],
    }  # fmt: skip


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A text, its data and vocabulary, a spec of that vocabulary and trained weights."""
    root = tmp_path_factory.mktemp("lm")
    (root / "a.txt").write_text(TEXT, encoding="utf-8")
    code, out = invoke("data", "text", root / "a.txt", "--output", root / "d.npz",
                       "--seq-len", 10)  # fmt: skip
    assert code == 0, out
    size = len(read_vocab(root / "d.vocab.json")["tokens"])
    assert f"vocab: {size}" in out
    (root / "lm.json").write_text(json.dumps(_spec(size)))
    options = ("--epochs", 2, "--loss", "cross-entropy", "--lr", 0.05)
    code, out = invoke(
        "train", root / "lm.json", "--data", root / "d.npz", *options, "--output", root / "w.npz"
    )
    assert code == 0, out
    return root


def test_data_text_round_trips_and_has_a_ragged_last_window(lm):
    data, vocab = np.load(lm / "d.npz"), read_vocab(lm / "d.vocab.json")
    x, y, lengths = data["x"], data["y"], data["x.lengths"]
    assert vocab["level"] == "char" and vocab["tokens"] == sorted(set(TEXT))
    ids = np.concatenate([row[:n] for row, n in zip(x, lengths)])
    assert decode_ids(ids, vocab) == TEXT[:-1]
    assert decode_ids(np.concatenate([r[:n] for r, n in zip(y, lengths)]), vocab) == TEXT[1:]
    assert lengths[-1] == (len(TEXT) - 1) % 10 and set(lengths[:-1]) == {10}


def test_word_level_keeps_the_text(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT)
    code, out = invoke("data", "text", tmp_path / "a.txt", "-o", tmp_path / "d.npz",
                       "--level", "word", "--names", "w,nxt")  # fmt: skip
    assert code == 0, out
    data, vocab = np.load(tmp_path / "d.npz"), read_vocab(tmp_path / "d.vocab.json")
    assert set(data) >= {"w", "nxt"} and "cat" in vocab["tokens"] and " " in vocab["tokens"]
    lengths = data.get("w.lengths", np.full(len(data["w"]), data["w"].shape[1]))
    ids = np.concatenate([row[:n] for row, n in zip(data["w"], lengths)])
    assert decode_ids(ids, vocab) + "\n" == TEXT


def test_generate_streams_repeats_with_a_seed_and_beams(lm):
    args = ("generate", lm / "lm.json", "-w", lm / "w.npz", "--vocab", lm / "d.vocab.json",
            "--prompt", "the ", "--length", 30)  # fmt: skip
    code, first = invoke(*args, "--seed", 3)
    assert code == 0, first
    assert first.startswith("the ") and len(first) == len("the ") + 30 + 1
    assert invoke(*args, "--seed", 3)[1] == first
    code, many = invoke(*args, "--seed", 3, "--count", 3, "--top-k", 3, "--top-p", 0.9)
    assert code == 0 and len(many.splitlines()) == 3
    code, beams = invoke(*args, "--beam", 4)
    scores = [float(line.split()[0]) for line in beams.splitlines()]
    assert code == 0 and len(scores) == 4 and scores == sorted(scores, reverse=True)


def test_generate_takes_start_states_given_with_the_data(lm, tmp_path):
    """A model whose layer starts from an input: `--start` gives it, checked before any
    text is written; the beams' log-probabilities depend on it."""
    spec = _spec(len(read_vocab(lm / "d.vocab.json")["tokens"]))
    spec["inputs"].append({"name": "h0", "size": 6})
    spec["layers"][0]["initial_state"] = "h0"
    (tmp_path / "s.json").write_text(json.dumps(spec))
    graph = build(NetworkSpec.model_validate(spec))
    save_params(tmp_path / "w.npz", init_params(graph, seed=4))
    vocab = ("--vocab", lm / "d.vocab.json")
    args = ("generate", tmp_path / "s.json", "-w", tmp_path / "w.npz", *vocab,
            "--prompt", "the ", "--length", 12, "--beam", 2)  # fmt: skip
    code, out = invoke(*args)
    assert code == 4 and out.count("\n") == 1 and "give it with --start" in out
    assert "the " not in out  # nothing written before the refusal
    texts = []
    for scale in (3.0, -3.0):
        np.save(tmp_path / "h0.npy", np.full(6, scale))
        code, out = invoke(*args, "--start", tmp_path / "h0.npy")
        assert code == 0, out
        texts.append(out)
    assert texts[0] != texts[1]  # the log-probabilities depend on the start
    np.save(tmp_path / "bad.npy", np.zeros((2, 6)))
    code, out = invoke(*args, "--start", tmp_path / "bad.npy")
    assert code == 4 and "expected a start state of shape (6,)" in out
    plain = ("generate", lm / "lm.json", "-w", lm / "w.npz", *args[4:])  # no start states
    code, out = invoke(*plain, "--start", tmp_path / "h0.npy")
    assert code == 4 and "no layer whose `initial_state` is an input" in out


def test_run_in_pieces_with_state_equals_the_whole_run(lm, tmp_path):
    x = np.load(lm / "d.npz")["x"][:2]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "a.npy", x[:, :4])
    np.save(tmp_path / "b.npy", x[:, 4:])
    common = ("run", lm / "lm.json", "-w", lm / "w.npz", "--dtype", "float64")
    assert invoke(*common, "-i", tmp_path / "x.npy", "-o", tmp_path / "whole.npz")[0] == 0
    code, out = invoke(*common, "-i", tmp_path / "a.npy", "-o", tmp_path / "a.npz",
                       "--state-out", tmp_path / "s.npz")  # fmt: skip
    assert code == 0 and "g.h (2, 6)" in out
    assert invoke(*common, "-i", tmp_path / "b.npy", "-o", tmp_path / "b.npz",
                  "--state-in", tmp_path / "s.npz")[0] == 0  # fmt: skip
    pieces = np.concatenate([np.load(tmp_path / f"{k}.npz")["y"] for k in "ab"], axis=1)
    # pieces carrying a state run step by step, the whole run one product over its steps:
    # BLAS may round those differently, so float64 rounding apart
    assert_close(pieces, np.load(tmp_path / "whole.npz")["y"], np.float64, run_depth(x.shape[1]))


def _bad_inputs(lm, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    np.save(tmp_path / "ids.npy", np.array([[1, 2, 99]]))
    np.save(tmp_path / "floats.npy", np.array([[1.0, 2.0]]))
    np.save(tmp_path / "good.npy", np.array([[1, 2]]))
    (tmp_path / "v.json").write_text(json.dumps({"level": "char", "tokens": ["a", "b"]}))
    save_params(tmp_path / "s.npz", {"other.h": np.zeros((1, 6))})
    gen = ("generate", lm / "lm.json", "-w", lm / "w.npz", "--length", 3)
    run = ("run", lm / "lm.json", "-w", lm / "w.npz")
    return [
        (("data", "text", tmp_path / "latin1.txt", "-o", tmp_path / "o.npz"), 4,
         "not UTF-8 text (byte 0xe9 at offset 3)"),
        ((*run, "-i", tmp_path / "ids.npy"), 4, "item 0, step 2: id 99 is outside"),
        ((*run, "-i", tmp_path / "floats.npy"), 4, "expected integer token ids"),
        ((*gen, "--vocab", tmp_path / "v.json", "--prompt", "a"), 4,
         "2 tokens, but"),
        ((*gen, "--vocab", lm / "d.vocab.json", "--prompt", "Z"), 4,
         "--prompt: token 'Z' (token 0) is not in the vocabulary"),
        ((*gen, "--vocab", lm / "d.vocab.json"), 2, "give at least one token"),
        ((*run, "-i", tmp_path / "good.npy", "--state-in", tmp_path / "s.npz"), 4,
         "missing g.h; unknown other.h"),
        (("generate", ROOT / "specs" / "gru.yaml", "-w", lm / "w.npz", "--vocab",
          lm / "d.vocab.json"), 3, "nothing to feed a generated token back into"),
    ]  # fmt: skip


def test_bad_input_gets_its_exit_code_and_one_line(lm, tmp_path):
    for args, code, message in _bad_inputs(lm, tmp_path):
        got, out = invoke(*args)
        assert (got, message in out) == (code, True), (args, out)
        assert "Traceback" not in out


def test_init_params_of_a_token_spec_has_the_embedding():
    graph = build(NetworkSpec.model_validate(_spec(9)))
    assert init_params(graph)["x.E"].shape == (9, 5)


def test_char_lm_spec_fits_the_data_make_char_lm_builds(tmp_path):
    docs = sorted((ROOT / "docs").glob("*.md"))
    code, out = invoke("data", "text", ROOT / "README.md", *docs, "-o", tmp_path / "d.npz",
                       "--names", "chars,next", "--vocab-size", 80)  # fmt: skip
    assert code == 0, out
    spec = load_spec(ROOT / "specs" / "char-lm.yaml")
    assert spec.inputs[0].vocab == 80 and "unigram baseline" in out
    data = np.load(tmp_path / "d.npz")
    assert set(data) >= {"chars", "next"} and data["chars"].max() < 80


def test_a_trained_language_model_exports_to_both_formats(lm, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("safetensors")
    from composer.interop.onnx import run_model

    for fmt, name in (("onnx", "m.onnx"), ("torch", "m.safetensors")):
        code, out = invoke("export", lm / "lm.json", "-w", lm / "w.npz", "-f", fmt,
                           "-o", tmp_path / name)  # fmt: skip
        assert code == 0 and "wrote" in out, out
    data = np.load(lm / "d.npz")
    graph = build(load_spec(lm / "lm.json"))
    params = dict(np.load(lm / "w.npz"))
    got = run_model(tmp_path / "m.onnx", {"x": data["x"][:3]})["y"]
    want = run(graph, params, {"x": data["x"][:3]})["y"]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def _generate(lm, *args):
    return invoke("generate", lm / "lm.json", "-w", lm / "w.npz", "--vocab",
                  lm / "d.vocab.json", "--prompt", "the ", *args)  # fmt: skip


def test_a_tiny_temperature_is_the_likeliest_token(lm):
    """Issue 25, item 9: `--temperature 1e-320` printed RuntimeWarnings and repeated token 0."""
    code, tiny = _generate(lm, "--length", 20, "--temperature", 1e-320, "--seed", 1)
    assert code == 0 and "Warning" not in tiny, tiny
    assert tiny == _generate(lm, "--length", 20, "--temperature", 0)[1]
    code, out = _generate(lm, "--length", 20, "--temperature", "inf")
    assert code == 2 and "expected a finite number >= 0, got inf" in out


def test_a_vocabulary_is_checked_whole_before_any_text(lm, tmp_path):
    """Issue 25, item 14: a bad `unknown` loaded, then was a traceback at the first unknown
    token; now refused at load, whatever the prompt holds."""
    vocab = read_vocab(lm / "d.vocab.json")
    for unknown in (99, "a", 1.5):
        (tmp_path / "v.json").write_text(json.dumps({**vocab, "unknown": unknown}))
        for prompt in ("the ", "Z"):
            code, out = invoke("generate", lm / "lm.json", "-w", lm / "w.npz", "--vocab",
                               tmp_path / "v.json", "--prompt", prompt, "--length", 3)  # fmt: skip
            assert code == 4 and out.count("\n") == 1, out
            assert out.startswith(f"{tmp_path / 'v.json'}: key 'unknown': expected the id")


HUGE = [  # issue 25, item 15: each was a MemoryError traceback (the beams after 24 s)
    (("--count", 10**9), "generating 1,000,000,000 texts of 200 tokens"),
    (("--length", 10**12), "generating 1 text of 1,000,000,000,000 tokens"),
    (("--beam", 10**9, "--length", 8), "a beam search of 1,000,000,000 beams over 8 tokens"),
    (("--count", 1000, "--length", 1000, "--max-memory", "1M"), "generating 1,000 texts"),
    (("--count", 50, "--length", 50, "--accept", "reber", "--max-memory", "100K"),
     "generating 50 texts of 50 tokens"),
]  # fmt: skip


@pytest.mark.parametrize("args, what", HUGE)
def test_generation_over_the_memory_limit_is_refused_before_any_work(lm, args, what):
    result = runner.invoke(app, [str(a) for a in ("generate", lm / "lm.json", "-w", lm / "w.npz",
                           "--vocab", lm / "d.vocab.json", "--prompt", "the ", *args)])  # fmt: skip
    assert result.exit_code == 5 and result.stdout == "", result.output  # nothing generated
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(what), result.stderr
    assert "over the limit of" in result.stderr and "generate less" in result.stderr


def test_generation_under_the_memory_limit_runs(lm):
    code, out = _generate(lm, "--count", 1000, "--length", 50, "--max-memory", "20M")
    assert code == 0 and out.count("\n") >= 1000, out[-200:]


def test_data_text_refuses_a_window_longer_than_the_text(lm, tmp_path):
    """Issue 25, item 16: `--seq-len 1000000000` was a MemoryError traceback; `--seq-len
    1e8` on 77 tokens wrote a 1.6 GB file. A window holds at most the text's next-token
    pairs (its tokens less one)."""
    text, out = lm / "a.txt", tmp_path / "o.npz"
    pairs = len(TEXT) - 1
    for seq_len in (10**9, 10**8, pairs + 1):
        code, message = invoke("data", "text", text, "-o", out, "--seq-len", seq_len)
        assert code == 4 and message.count("\n") == 1, message
        assert message.startswith(f"{text}: --seq-len {seq_len:,} is longer than the text")
        assert f"its {len(TEXT):,} tokens make {pairs:,} next-token pairs" in message
        assert not out.exists() and not (tmp_path / "o.vocab.json").exists()
    code, message = invoke("data", "text", text, "-o", out, "--seq-len", pairs)
    assert code == 0, message
    assert np.load(out)["x"].shape == (1, pairs) and "x.lengths" not in np.load(out)


def test_data_text_over_the_memory_limit_is_refused_before_it_is_encoded(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT * 500)
    out = tmp_path / "o.npz"
    code, message = invoke("data", "text", tmp_path / "a.txt", "-o", out, "--max-memory", "100K")
    assert code == 5 and message.count("\n") == 1, message
    assert message.startswith(f"turning {tmp_path / 'a.txt'} ({len(TEXT) * 500:,} tokens)")
    assert "over the limit of 100.0 KiB" in message and not out.exists()
    assert invoke("data", "text", tmp_path / "a.txt", "-o", out, "--max-memory", "10M")[0] == 0
