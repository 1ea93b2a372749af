"""Text as token ids: a vocabulary (characters or words), ids, and next-token windows.

The vocabulary is the sorted set of the tokens seen, so the same text always gives the
same ids; a token's id is its index in `tokens`. Word level keeps the spaces and the
punctuation as tokens of their own, so decoding the ids gives the text back exactly.

Examples
--------
>>> vocab = build_vocab(["abca"], "char")
>>> vocab["tokens"], encode_text("cab", vocab).tolist()
(['a', 'b', 'c'], [2, 0, 1])
>>> decode_ids([2, 0, 1], vocab)
'cab'
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from composer.errors import DataError
from composer.reading import MAX_VOCAB_BYTES, check_readable
from composer.training.vocabulary import LEVELS, parse_vocab, token_count, tokenize

__all__ = [
    "LEVELS",
    "read_text",
    "tokenize",
    "token_count",
    "build_vocab",
    "encode_text",
    "decode_ids",
    "window_count",
    "text_windows",
    "read_vocab",
    "vocab_json",
    "unigram_bits",
]

#: the token that stands for the rare ones left out of a vocabulary of a given size
UNKNOWN = "\ufffd"


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file; anything else refused in one line (DataError). Not a regular
    file (a device, a FIFO) is refused before it is read (`composer.reading`)."""
    path = Path(path)
    check_readable(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "convert it to UTF-8 first"
        ) from None


def build_vocab(texts: Sequence[str], level: str = "char", size: int | None = None) -> dict:
    """`{"level", "tokens", "counts"}` of texts: tokens sorted, each one's count.

    With `size`, exactly that many tokens: the `size - 1` most frequent (ties by token),
    and `UNKNOWN` standing for every other one (`"unknown"` holds its id), so that a
    spec's `vocab` stays the same when the text changes a little."""
    counts = Counter(token for text in texts for token in tokenize(text, level))
    if not counts:
        raise DataError("the text is empty: no token to build a vocabulary from")
    if size is None:
        tokens = sorted(counts)
        return {"level": level, "tokens": tokens, "counts": [counts[t] for t in tokens]}
    others = [token for token in counts if token != UNKNOWN]  # a U+FFFD joins the rest
    if size < 2 or size > len(others) + 1:
        raise DataError(
            f"--vocab-size {size}: the text has {len(others)} distinct tokens; give 2.."
            f"{len(others) + 1} (the most frequent ones and one for the rest)"
        )
    kept = sorted(sorted(others, key=lambda t: (-counts[t], t))[: size - 1])
    rest = sum(counts.values()) - sum(counts[t] for t in kept)
    tokens = [*kept, UNKNOWN]
    return {
        "level": level,
        "tokens": tokens,
        "counts": [counts[t] for t in kept] + [rest],
        "unknown": len(kept),
    }


def encode_text(text: str, vocab: dict, where: str = "text") -> np.ndarray:
    """The ids of a text's tokens; a token not in the vocabulary refused, named."""
    index = {token: i for i, token in enumerate(vocab["tokens"])}
    unknown = vocab.get("unknown")
    ids = []
    for position, token in enumerate(tokenize(text, vocab["level"])):
        if token not in index and unknown is not None:
            token = vocab["tokens"][unknown]
        if token not in index:
            raise DataError(
                f"{where}: token {token!r} (token {position}) is not in the vocabulary of "
                f"{len(index)} tokens"
            )
        ids.append(index[token])
    return np.array(ids, dtype=np.int64)


def decode_ids(ids: Sequence[int], vocab: dict) -> str:
    """The text of token ids."""
    tokens = vocab["tokens"]
    return "".join(tokens[int(i)] for i in ids)


def window_count(tokens: int, seq_len: int) -> int:
    """How many windows of `seq_len` steps a text of `tokens` tokens makes: one per
    `seq_len` of its `tokens - 1` next-token pairs, the last one ragged. A window longer
    than every pair would be mostly padding, so it is refused (DataError), as are texts of
    fewer than 2 tokens."""
    if seq_len < 1:
        raise DataError(f"--seq-len must be >= 1, got {seq_len}")
    if tokens < 2:
        raise DataError("the text has fewer than 2 tokens: no next token to predict")
    if seq_len > tokens - 1:
        raise DataError(
            f"--seq-len {seq_len:,} is longer than the text: its {tokens:,} tokens make "
            f"{tokens - 1:,} next-token pairs, so a window holds at most {tokens - 1:,}"
        )
    return -(-(tokens - 1) // seq_len)


def text_windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, next-token targets, lengths): windows of `seq_len` steps, (B, seq_len) ids,
    the targets one token ahead; the last window padded with 0 past its length
    (`window_count`: `seq_len` at most the number of next-token pairs)."""
    count = window_count(len(ids), seq_len)
    inputs, targets = ids[:-1], ids[1:]
    x = np.zeros((count, seq_len), dtype=np.int64)
    y = np.zeros((count, seq_len), dtype=np.int64)
    x.reshape(-1)[: len(inputs)] = inputs
    y.reshape(-1)[: len(targets)] = targets
    lengths = np.full(count, seq_len, dtype=np.int64)
    lengths[-1] = len(inputs) - seq_len * (count - 1)
    return x, y, lengths


def unigram_bits(vocab: dict) -> float:
    """Bits per token of the unigram model (each token's frequency, nothing else) on the
    text the vocabulary counted: the baseline a language model must beat."""
    counts = np.asarray(vocab["counts"], dtype=np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def vocab_json(vocab: dict) -> str:
    """The vocabulary as the JSON text `data text` writes."""
    return json.dumps(vocab, ensure_ascii=False, indent=1) + "\n"


def read_vocab(path: str | os.PathLike) -> dict:
    """A vocabulary file, checked whole: every field's type and range
    (`composer.training.vocabulary`), each problem one line naming the file and the key; at
    most `MAX_VOCAB_BYTES` (`composer.reading`)."""
    check_readable(path, cap=MAX_VOCAB_BYTES, what="a vocabulary file")
    text = read_text(path)
    return parse_vocab(text, str(path))
