"""Vocabulary files are checked whole at load: each bad field is one line naming the file,
the key and what was expected against what came, never a traceback at first use."""

from __future__ import annotations

import json

import pytest

from composer.errors import DataError
from composer.training.text import UNKNOWN, build_vocab, encode_text, read_vocab, vocab_json
from composer.training.vocabulary import parse_vocab
from tests.conftest import ROOT

GOOD = {"level": "char", "tokens": ["a", "b", "c"], "counts": [3, 2, 1], "unknown": 2}


def _text(**fields) -> str:
    return json.dumps({**GOOD, **fields})


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BAD = [
    # issue 25, item 14: an `unknown` that is no token's id
    (_text(unknown=99), "key 'unknown': expected the id of a token, 0..2, got 99"),
    (_text(unknown="a"), "key 'unknown': expected the id of a token, 0..2, got the string 'a'"),
    (_text(unknown=1.5), "key 'unknown': expected the id of a token, 0..2, got the number 1.5"),
    (_text(unknown=True), "key 'unknown': expected the id of a token, 0..2, got true"),
    (_text(unknown=-1), "key 'unknown': expected the id of a token, 0..2, got -1"),
    (_text(unknown=None), "key 'unknown': expected the id of a token, 0..2, got null"),
    (_text()[:-1] + ', "unknown": ' + "9" * 5000 + "}", "key 'unknown' appears twice"),
    ('{"level": "char", "tokens": ["a"], "unknown": ' + "9" * 5000 + "}",
     "key 'unknown': expected the id of a token, 0..0, got an integer of 5000 digits"),
    ('{"level": "char", "tokens": ["a"], "counts": [' + "1" * 5000 + "]}",
     "key 'counts', item 0: expected an integer >= 0, got an integer of 5000 digits"),
    ('{"level": "char", "tokens": ' + _deep(100_000) + "}", "nested too deeply"),
    (_deep(100_000), "nested too deeply"),
    ('{"level": "char", "tokens": ' + _deep(300) + "}",
     "key 'tokens', item 0: expected a string, got a list of 1"),
    # the other fields
    ("[]", 'expected a JSON object {"level": "char" or "word", "tokens": [...]}, got a list'),
    ('"char"', "expected a JSON object"),
    ("{", "not JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
    ('{"tokens": ["a"]}', "missing key 'level'"),
    ('{"level": "char"}', "missing key 'tokens'"),
    (_text(level="byte"), "key 'level': expected \"char\" or \"word\", got the string 'byte'"),
    (_text(level=1), "key 'level': expected \"char\" or \"word\", got the number 1"),
    (_text(tokens="abc"), "key 'tokens': expected a non-empty list of strings, got the string"),
    (_text(tokens=[]), "key 'tokens': expected a non-empty list of strings, got a list of 0"),
    (_text(tokens=["a", 5, "c"]), "key 'tokens', item 1: expected a string, got the number 5"),
    (_text(tokens=["a", None, "c"]), "key 'tokens', item 1: expected a string, got null"),
    (_text(tokens=["a", "", "c"]), "key 'tokens', item 1: a 'char' token is one character"),
    (_text(tokens=["a", "bc", "d"]), "item 1: a 'char' token is one character, got the string"),
    (_text(level="word", tokens=["a", "b c", "d"]),
     "key 'tokens', item 1: a 'word' token is a word, a run of spaces or one mark"),
    (_text(tokens=["a", "b", "a"]), "key 'tokens', item 2: the string 'a' is item 0 too"),
    ('{"level": "char", "tokens": ["a", "\\ud800"]}', "item 1: the string '\\ud800' holds a lone"),
    (_text(counts=[1, 2]), "key 'counts': expected a list of 3 counts, one per token, got a list"),
    (_text(counts=[1, -2, 3]), "key 'counts', item 1: expected an integer >= 0, got -2"),
    (_text(counts=[1, 2.5, 3]), "key 'counts', item 1: expected an integer >= 0, got the number"),
    (_text()[:-1] + ', "counts": [1, NaN, 2]}', "key 'counts' appears twice"),
    ('{"level": "char", "tokens": ["a"], "counts": [NaN]}', "got the number nan"),
    (_text(extra=1), "unexpected key 'extra'; a vocabulary holds level, tokens, counts and"),
    ('{"level": "char", "level": "word", "tokens": ["a"]}', "key 'level' appears twice"),
]  # fmt: skip


@pytest.mark.parametrize("text, message", BAD)
def test_a_bad_vocabulary_is_one_located_line(text, message):
    with pytest.raises(DataError) as caught:
        parse_vocab(text, "v.json")
    assert str(caught.value).startswith("v.json: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_unknown_is_refused_at_load_not_at_the_first_unknown_token(tmp_path):
    """Issue 25, item 14: the file used to load, then fail at a prompt's unknown token."""
    path = tmp_path / "v.json"
    path.write_text(_text(unknown=99))
    with pytest.raises(DataError, match="v.json: key 'unknown'"):
        read_vocab(path)


@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("size", [None, 4])
def test_what_data_text_writes_reads_back(level, size):
    texts = ["the cat sat, the dog\u00e9 " + "\ufffd" * 9 + " sat\n\n  on \U0001f600 mats"]
    vocab = build_vocab(texts, level, size)
    assert parse_vocab(vocab_json(vocab), "v.json") == vocab
    assert len(set(vocab["tokens"])) == len(vocab["tokens"])  # U+FFFD in the text too
    if size is not None:
        assert vocab["tokens"][vocab["unknown"]] == UNKNOWN
        assert len(encode_text("zzz", vocab)) == (3 if level == "char" else 1)


def test_the_shipped_vocabulary_reads():
    assert read_vocab(ROOT / "specs" / "data" / "reber.vocab.json")["tokens"] == list("BTPSXVE")
