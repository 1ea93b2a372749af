"""Small seeded data sets for the examples that learn, and the embedded Reber grammar.

- `sine`: forecasting a noisy sine (many-to-many with a delay, mean squared error);
- `running_sum`: the sign of a running sum, read once at the end (many-to-one,
  cross-entropy with class ids);
- `echo`: recall the first of T random symbols at the last step (many-to-one), where
  an Elman network's gradient vanishes and an LSTM's does not;
- `adding`: the adding problem (Hochreiter and Schmidhuber, 1997; Le et al., 2015):
  the sum of the two values marked among T random ones, read once at the end;
- `reber`: next-symbol prediction on the embedded Reber grammar, the classic test of
  long-range memory (Hochreiter and Schmidhuber, 1997), padded, with each string's
  length.

Each returns a dict of arrays keyed as `composer.training.loop` expects. This module needs
nothing of the pipeline; `python -m composer.cli.datasets` writes the data sets, and
`rnn-composer generate --accept reber` lets a trained model write Reber strings and checks
them with `accepts`:

    python -m composer.cli.datasets reber --output specs/data/reber.npz

Examples
--------
>>> accepts("BTBTSSXXTVVETE"), accepts("BTBTSSXXTVVEPE")
(True, False)
>>> sorted(reber(count=4, seed=0))
['next', 'sym', 'sym.lengths']
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SYMBOLS",
    "sine",
    "running_sum",
    "reber",
    "echo",
    "adding",
    "reber_string",
    "accepts",
    "reber_complete",
    "ACCEPTORS",
    "DATASETS",
]

SYMBOLS = "BTPSXVE"
#: Reber's automaton after the leading B: state -> [(symbol, next state)]; None is the end.
_REBER = {
    0: (("T", 1), ("P", 2)),
    1: (("S", 1), ("X", 3)),
    2: (("T", 2), ("V", 4)),
    3: (("X", 2), ("S", 5)),
    4: (("P", 3), ("V", 5)),
    5: (("E", None),),
}


def sine(count: int = 512, steps: int = 32, delay: int = 3, noise: float = 0.1, seed: int = 0):
    """Noisy sines with random frequency and phase: `x` holds the noisy values of steps
    0..T-delay-1; the output at step t (t = delay..T-1) should be the clean value at t + 1,
    so the last `delay` outputs forecast from the state alone, after the input stops."""
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(1 / 16, 1 / 8, (count, 1))  # periods of 8 to 16 steps
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    time = np.arange(steps + 1)
    clean = np.sin(2 * np.pi * frequency * time + phase)
    noisy = clean + rng.normal(0, noise, clean.shape)
    x = noisy[:, : steps - delay, np.newaxis]
    o = clean[:, delay + 1 : steps + 1, np.newaxis]
    return {"x": x.astype(np.float32), "o": o.astype(np.float32)}


def running_sum(count: int = 1024, steps: int = 20, seed: int = 0):
    """Values in [-1, 1] read one per step; the class at the end: 1 if their sum is > 0."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (count, steps, 1))
    sign = (x.sum(axis=(1, 2)) > 0).astype(np.int8)
    return {"x": x.astype(np.float32), "o": sign[:, np.newaxis]}


def echo(count: int = 512, steps: int = 20, symbols: int = 4, seed: int = 0):
    """Recall the first symbol at the end: `x` holds `steps` random one-hot symbols; the
    one output `y` (many-to-one) should be the first of them, one-hot. What the network
    must carry from step 0 to step T-1 is where a vanishing gradient shows."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, symbols, (count, steps))
    x = np.eye(symbols, dtype=np.float32)[ids]
    return {"x": x, "y": x[:, :1].copy()}


def adding(count: int = 800, steps: int = 50, seed: int = 0):
    """`x` (count, T, 2): a value in [0, 1) and a marker per step, the marker 1 at one
    step of the first half and one of the second; `o` (count, 1, 1): the sum of the two
    marked values. Always answering 1 gives an MSE of about 1/6 (the sum's variance)."""
    rng = np.random.default_rng(seed)
    values = rng.random((count, steps))
    first = rng.integers(0, steps // 2, count)
    second = rng.integers(steps // 2, steps, count)
    marks = np.zeros((count, steps))
    marks[np.arange(count), first] = marks[np.arange(count), second] = 1.0
    total = values[np.arange(count), first] + values[np.arange(count), second]
    x = np.stack([values, marks], axis=-1).astype(np.float32)
    return {"x": x, "o": total[:, None, None].astype(np.float32)}


def reber_string(rng: np.random.Generator) -> str:
    """One embedded Reber string: B, T or P, a Reber string, the same T or P, E."""
    inner, state = "B", 0
    while state is not None:
        symbol, state = _REBER[state][rng.integers(len(_REBER[state]))]
        inner += symbol
    wrap = "TP"[rng.integers(2)]
    return "B" + wrap + inner + wrap + "E"


def _accepts_inner(string: str) -> bool:
    if not string.startswith("B"):
        return False
    state = 0
    for symbol in string[1:]:
        moves = dict(_REBER.get(state, ()))  # no moves once the string has ended
        if symbol not in moves:
            return False
        state = moves[symbol]
    return state is None


def accepts(string: str) -> bool:
    """Whether the embedded Reber grammar generates `string`."""
    return (
        len(string) >= 9
        and string[0] == "B"
        and string[1] in "TP"
        and string[-2:] == string[1] + "E"
        and _accepts_inner(string[2:-2])
    )


def encode(strings: list[str], length: int) -> np.ndarray:
    """One-hot symbols, (count, length, 7) uint8, zero past each string's end."""
    out = np.zeros((len(strings), length, len(SYMBOLS)), np.uint8)
    for row, string in enumerate(strings):
        out[row, np.arange(len(string[:length])), [SYMBOLS.index(s) for s in string[:length]]] = 1
    return out


def reber(count: int = 1000, max_length: int = 20, seed: int = 0):
    """Next-symbol data: `sym` one-hot (count, max_length - 1, 7), `next` the class id of
    the symbol that follows each one, and `sym.lengths`, each string's real steps (the
    rest is padding, which the loss leaves out)."""
    rng = np.random.default_rng(seed)
    strings = []
    while len(strings) < count:
        string = reber_string(rng)
        if len(string) <= max_length:  # a few long strings would make every row long
            strings.append(string)
    steps = max_length - 1
    ids = np.zeros((count, steps), np.uint8)
    lengths = np.zeros(count, np.int64)
    for row, string in enumerate(strings):
        ids[row, : len(string) - 1] = [SYMBOLS.index(s) for s in string[1:]]
        lengths[row] = len(string) - 1
    return {"sym": encode([s[:-1] for s in strings], steps), "next": ids, "sym.lengths": lengths}


def reber_complete(string: str) -> bool:
    """Whether a string being written has ended: at its second E (the inner Reber string
    ends with the first)."""
    return string.count("E") >= 2


#: the grammars `rnn-composer generate --accept` checks: name -> (accepts, complete)
ACCEPTORS = {"reber": (accepts, reber_complete)}


DATASETS = {
    "sine": sine,
    "running-sum": running_sum,
    "reber": reber,
    "echo": echo,
    "adding": adding,
}
