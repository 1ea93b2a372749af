"""What a vocabulary is: its levels, the tokens of each, and its file, checked whole at load.

A vocabulary file is the JSON object `data text` writes:

- `level`: `"char"` (each token one character) or `"word"` (a word, a run of spaces or
  one punctuation mark);
- `tokens`: a non-empty list of distinct tokens of that level; a token's id is its index;
- `counts` (optional): a count of each token, integers >= 0, one per token;
- `unknown` (optional): the id of the token that stands for every token not in the list.

Nothing else is accepted, and every field is checked when the file is read, so that a
bad file is refused in one line naming the field before any work starts, never at the
first unknown token of a prompt.

Examples
--------
>>> parse_vocab('{"level": "char", "tokens": ["a", "b"], "unknown": 1}', "v.json")
{'level': 'char', 'tokens': ['a', 'b'], 'unknown': 1}
>>> parse_vocab('{"level": "char", "tokens": ["a", "b"], "unknown": 9}', "v.json")
Traceback (most recent call last):
...
composer.errors.DataError: v.json: key 'unknown': expected the id of a token, 0..1, got 9
"""

from __future__ import annotations

import json
import re

from composer.errors import DataError

__all__ = ["LEVELS", "tokenize", "token_count", "parse_vocab", "check_vocab"]

LEVELS = ("char", "word")
_WORD = re.compile(r"\w+|\s+|[^\w\s]")
_FIELDS = ("level", "tokens", "counts", "unknown")
_SHAPE = '{"level": "char" or "word", "tokens": [...]}'
#: longer integers are kept as their digit count: Python's int() refuses over 4300 digits
_DIGITS = 30


def tokenize(text: str, level: str) -> list[str]:
    """Characters, or words with the spaces and punctuation between them as tokens."""
    if level not in LEVELS:
        raise DataError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    return list(text) if level == "char" else _WORD.findall(text)


def token_count(text: str, level: str) -> int:
    """How many tokens `tokenize` would make of a text, without making them."""
    if level == "char":
        return len(text)
    return sum(1 for _ in _WORD.finditer(text)) if level in LEVELS else len(tokenize(text, level))


class _LongInteger:
    """An integer of too many digits to convert, shown by its length."""

    def __init__(self, digits: str) -> None:
        self.digits = len(digits.lstrip("-"))


class _Object(dict):
    """A JSON object that remembers the first key it held twice."""

    def __init__(self, pairs) -> None:
        super().__init__()
        self.twice = None
        for key, value in pairs:
            if key in self and self.twice is None:
                self.twice = key
            self[key] = value


def _integer(digits: str):
    return int(digits) if len(digits) <= _DIGITS else _LongInteger(digits)


def _show(value) -> str:
    """A JSON value in a few words: its type, and itself when short."""
    if isinstance(value, _LongInteger):
        return f"an integer of {value.digits} digits"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, str):
        shown = repr(value) if len(value) <= 40 else repr(value[:40])[:-1] + "...'"
        return f"the string {shown}"
    return f"the number {value!r}"


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_vocab(text: str, where: str) -> dict:
    """A vocabulary from the JSON text of file `where`, checked whole (`check_vocab`);
    anything else refused in one line (DataError) naming the field."""
    try:
        data = json.loads(text, parse_int=_integer, object_pairs_hook=_Object)
    except RecursionError:
        raise DataError(f"{where}: nested too deeply; a vocabulary is {_SHAPE}") from None
    except json.JSONDecodeError as err:
        raise DataError(
            f"{where}: not JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    return check_vocab(data, where)


def check_vocab(data, where: str) -> dict:
    """The vocabulary `data` (parsed JSON) with its fields checked: their types, their
    ranges, and how they agree; the first problem refused (DataError) naming the key."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object {_SHAPE}, got {_show(data)}")
    if getattr(data, "twice", None) is not None:
        raise DataError(f"{where}: key {_key(data.twice)} appears twice")
    extra = [key for key in data if key not in _FIELDS]
    if extra:
        raise DataError(
            f"{where}: unexpected key {_key(extra[0])}; a vocabulary holds "
            f"{', '.join(_FIELDS[:-1])} and {_FIELDS[-1]}"
        )
    for key in ("level", "tokens"):
        if key not in data:
            raise DataError(f"{where}: missing key {key!r}; a vocabulary is {_SHAPE}")
    level = data["level"]
    if not isinstance(level, str) or level not in LEVELS:
        raise DataError(f'{where}: key \'level\': expected "char" or "word", got {_show(level)}')
    tokens = _tokens(data["tokens"], level, where)
    vocab = {"level": level, "tokens": tokens}
    if "counts" in data:
        vocab["counts"] = _counts(data["counts"], len(tokens), where)
    if "unknown" in data:
        unknown = data["unknown"]
        if not _is_integer(unknown) or not 0 <= unknown < len(tokens):
            raise DataError(
                f"{where}: key 'unknown': expected the id of a token, 0..{len(tokens) - 1}, "
                f"got {_show(unknown) if not _is_integer(unknown) else unknown}"
            )
        vocab["unknown"] = unknown
    return vocab


def _key(key: str) -> str:
    return repr(key) if len(key) <= 40 else repr(key[:40])[:-1] + "...'"


def _tokens(tokens, level: str, where: str) -> list[str]:
    """The token list: non-empty, strings of exactly one token of the level, distinct."""
    if not isinstance(tokens, list) or not tokens:
        raise DataError(
            f"{where}: key 'tokens': expected a non-empty list of strings, got {_show(tokens)}"
        )
    seen: dict[str, int] = {}
    what = "one character" if level == "char" else "a word, a run of spaces or one mark"
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise DataError(
                f"{where}: key 'tokens', item {i}: expected a string, got {_show(token)}"
            )
        if not token.isascii() and not _encodable(token):
            raise DataError(
                f"{where}: key 'tokens', item {i}: {_show(token)} holds a lone surrogate, "
                "which is not text"
            )
        if tokenize(token, level) != [token]:
            raise DataError(
                f"{where}: key 'tokens', item {i}: a {level!r} token is {what}, got {_show(token)}"
            )
        if token in seen:
            raise DataError(
                f"{where}: key 'tokens', item {i}: {_show(token)} is item {seen[token]} too; "
                "each token is listed once"
            )
        seen[token] = i
    return list(tokens)


def _encodable(token: str) -> bool:
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _counts(counts, size: int, where: str) -> list[int]:
    """One integer >= 0 per token."""
    if not isinstance(counts, list) or len(counts) != size:
        raise DataError(
            f"{where}: key 'counts': expected a list of {size} counts, one per token, "
            f"got {_show(counts)}"
        )
    for i, count in enumerate(counts):
        if not _is_integer(count) or count < 0:
            raise DataError(
                f"{where}: key 'counts', item {i}: expected an integer >= 0, got "
                f"{_show(count) if not _is_integer(count) else count}"
            )
    return list(counts)
