"""How a diagram is labelled: the readout drawn with its output or apart, edge labels, the
weights' names, a legend. One value, `Style`, that every drawing takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from composer.errors import ComposerError

__all__ = [
    "Style",
    "DEFAULT",
    "LABELS",
    "READOUTS",
    "TAPS",
    "parse_weight_names",
    "merged_readouts",
]

#: `--labels`: no edge labels, the weights' names, or names with shapes (and node sizes).
LABELS = ("none", "weights", "full")
#: `--readout`: one node for an output that is its readout unchanged, or both nodes.
READOUTS = ("merged", "both")
#: `--taps`: a tapped delay line folded as one edge per pair, or one edge per tap.
TAPS = ("folded", "apart")

#: the lecture's order of a layer's weights, for `--weight-names U,W,V`
POSITIONAL = ("Wx", "Ws", "Wy")


@dataclass(frozen=True)
class Style:
    """`readout`: `merged` draws an output that only copies a readout as one node (the
    lecture's picture), `both` draws the readout and the output apart. `labels`: one of
    `LABELS`. `weight_names`: a weight's key or suffix (`Wx`, `rnn.Ws`) -> the name drawn.
    `legend`: add a key of node shapes and edge styles. `taps`: one of `TAPS`.
    `cell_state`: draw an LSTM's cell state c as a track of its own, unfolded."""

    readout: str = "merged"
    labels: str = "weights"
    weight_names: dict[str, str] = field(default_factory=dict)
    legend: bool = False
    taps: str = "folded"
    cell_state: bool = False

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            raise ComposerError(
                f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}"
            )
        if self.labels not in LABELS:
            raise ComposerError(f"labels must be one of {', '.join(LABELS)}, got {self.labels!r}")
        if self.taps not in TAPS:
            raise ComposerError(f"taps must be one of {', '.join(TAPS)}, got {self.taps!r}")

    def __hash__(self) -> int:
        names = tuple(sorted(self.weight_names.items()))
        return hash((self.readout, self.labels, names, self.legend, self.taps, self.cell_state))

    def rename(self, weight: str) -> str:
        """A weight key (`rnn.Wx`) with its drawn name (`rnn.U`), by key first, then suffix."""
        if weight in self.weight_names:
            return self.weight_names[weight]
        layer, dot, param = weight.rpartition(".")
        if param in self.weight_names:
            return f"{layer}{dot}{self.weight_names[param]}"
        return weight


def parse_weight_names(text: str) -> dict[str, str]:
    """`--weight-names`: `U,W,V` names Wx, Ws and Wy (the lecture's letters); `Wx=U,rnn.Ws=W`
    names weights by suffix or key.

    Examples
    --------
    >>> parse_weight_names("U,W,V")
    {'Wx': 'U', 'Ws': 'W', 'Wy': 'V'}
    >>> parse_weight_names("Wy=V, rnn.Ws=W")
    {'Wy': 'V', 'rnn.Ws': 'W'}
    """
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise ComposerError(f"expected names separated by commas, such as `U,W,V`, got {text!r}")
    if all("=" in part for part in parts):
        pairs = [tuple(p.strip() for p in part.split("=", 1)) for part in parts]
        if not all(key and name for key, name in pairs):
            raise ComposerError(f"expected KEY=NAME pairs such as `Wx=U`, got {text!r}")
        return dict(pairs)
    if any("=" in part for part in parts):
        raise ComposerError(f"give either names (`U,W,V`) or KEY=NAME pairs, not both: {text!r}")
    if len(parts) > len(POSITIONAL):
        raise ComposerError(
            f"{len(parts)} names given; in order they name {', '.join(POSITIONAL)}, "
            "use KEY=NAME for other weights"
        )
    return dict(zip(POSITIONAL, parts))


def merged_readouts(folded: nx.MultiDiGraph) -> dict[str, str]:
    """readout -> output, for each output that emits a whole readout unchanged at step t:
    the lecture draws these as one node."""
    merged = {}
    for node, data in folded.nodes(data=True):
        if data["role"] != "output":
            continue
        feeds = list(folded.in_edges(node, data=True))
        if len(feeds) != 1:
            continue
        source, _, edge = feeds[0]
        source_data = folded.nodes[source]
        whole = edge.get("rows") in (None, (0, data["size"]))
        if source_data["role"] == "readout" and edge["lag"] == 0 and whole:
            if source_data["size"] == data["size"] and source not in merged:
                merged[source] = node
    return merged


#: the style every picture takes unless told otherwise
DEFAULT = Style()
