"""Token inputs: integer ids checked, then turned into the vectors a layer reads.

An input with `vocab: N` takes arrays of ids, (B, T_in) batched or (T_in,) for one
sequence. Without `embed` each id is one-hot encoded, an N-vector; with `embed: E` it
selects row `id` of the learned weight `<input>.E` (N, E), as PyTorch's `nn.Embedding`
does. Everything after the input sees plain (B, T_in, size) vectors, so the executor,
the training tape and the diagrams treat a token input as any other; the gradient of
`<input>.E` is the input's gradient added up into the rows of the ids that were read.

Examples
--------
>>> import numpy as np
>>> one_hot_ids(np.array([[2, 0]]), 3, np.float64)[0]
array([[0., 0., 1.],
       [1., 0., 0.]])
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from composer.errors import DataError

__all__ = [
    "token_vocab",
    "is_token",
    "check_ids",
    "one_hot_ids",
    "encode_tokens",
    "embedding_grads",
    "padding_lengths",
]


def token_vocab(graph: nx.MultiDiGraph) -> dict[str, int]:
    """`{input name: vocab}` of the token inputs, in spec order."""
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    return {n: d["vocab"] for n, d in nodes if d["role"] == "input" and d.get("vocab")}


def is_token(graph: nx.MultiDiGraph, name: str) -> bool:
    """Whether input `name` takes token ids."""
    return bool(graph.nodes[name].get("vocab"))


def check_ids(where: str, array: np.ndarray, vocab: int) -> np.ndarray:
    """Refuse anything but integer ids in 0..vocab-1, naming the first bad item and step;
    the ids as int64. `array` is (B, T_in)."""
    array = np.asarray(array)
    if array.dtype.kind not in "iu":
        kind = "booleans" if array.dtype.kind == "b" else f"dtype {array.dtype}"
        raise DataError(
            f"{where}: expected integer token ids (a `vocab` input), got {kind}; "
            "save the ids as integers"
        )
    bad = (array < 0) | (array >= vocab)
    if bad.any():
        item, step = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{where}: item {item}, step {step}: id {int(array[item, step])} is outside "
            f"the vocabulary 0..{vocab - 1}"
        )
    return array.astype(np.int64, copy=False)


def one_hot_ids(ids: np.ndarray, vocab: int, dtype) -> np.ndarray:
    """(..., vocab) one-hot rows of integer ids."""
    out = np.zeros((*ids.shape, vocab), dtype)
    np.put_along_axis(out, ids[..., np.newaxis], 1, axis=-1)
    return out


def encode_tokens(
    graph: nx.MultiDiGraph,
    arrays: Mapping[str, np.ndarray],
    params: Mapping[str, np.ndarray],
    dtype,
) -> dict[str, np.ndarray]:
    """The arrays with each token input's (B, T_in) ids as (B, T_in, size) vectors: rows
    of its embedding `<input>.E` in `params`, or one-hot. Other inputs pass through."""
    out = dict(arrays)
    for name, vocab in token_vocab(graph).items():
        if name not in arrays:
            continue
        ids = check_ids(f"input {name!r}", arrays[name], vocab)
        if graph.nodes[name].get("embed"):
            out[name] = np.asarray(params[f"{name}.E"], dtype=dtype)[ids]
        else:
            out[name] = one_hot_ids(ids, vocab, dtype)
    return out


def embedding_grads(
    graph: nx.MultiDiGraph, arrays: Mapping[str, np.ndarray], input_grads: Mapping[str, object]
) -> dict[str, np.ndarray]:
    """`{<input>.E: gradient}` from the gradient of each embedded input's vectors,
    (B, T_in, E): each step's gradient added into the row of the id it read."""
    grads = {}
    for name, vocab in token_vocab(graph).items():
        if not graph.nodes[name].get("embed"):
            continue
        g = np.asarray(input_grads[name])
        ids = np.asarray(arrays[name]).reshape(-1)
        out = np.zeros((vocab, g.shape[-1]), g.dtype)
        np.add.at(out, ids, g.reshape(-1, g.shape[-1]))
        grads[f"{name}.E"] = out
    return grads


def padding_lengths(graph: nx.MultiDiGraph, arrays: Mapping[str, np.ndarray]) -> dict:
    """`{input: (B,) lengths}` of the token inputs with a `padding_id`: each item ends at
    its first padding id (all its steps when it has none)."""
    lengths = {}
    for name in token_vocab(graph):
        pad = graph.nodes[name].get("padding_id")
        if pad is None or name not in arrays:
            continue
        ids = np.asarray(arrays[name])
        if ids.ndim != 2:
            continue  # a shape the checks refuse with their own message
        hit = ids == pad
        lengths[name] = np.where(hit.any(axis=1), hit.argmax(axis=1), ids.shape[1])
    return lengths
