"""The graph features beyond a plain stack: what no `torch.nn` module or ONNX operator has.

PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` and ONNX's recurrent operators have no tapped delay
lines, no future context into a layer, no layer without an input, no two-pass hand-over
and no bidirectional merge but `concat`. `extended_features` lists each use of them in a
folded graph, with its spec path: the converters carry them as the kinds' steps (the
PyTorch module's cell loop; ONNX unrolled at a fixed T, which these name as its reasons),
and a pass that cannot (stepping one step at a time) refuses them in one line naming the
field (`refuse_extended`).
"""

from __future__ import annotations

import networkx as nx

from composer.errors import SpecError

__all__ = ["extended_features", "refuse_extended"]


def extended_features(
    graph: nx.MultiDiGraph, merges: bool = True, taps: bool = True
) -> list[tuple[tuple, str]]:
    """`[(spec path, what)]` for every use of a feature beyond plain stacks, in spec order;
    bidirectional merges other than `concat` only with `merges`, tapped delays, future
    context and several delays of one connection pair only with `taps`.

    Examples
    --------
    >>> from composer.graph.folded import build
    >>> from composer.spec.model import NetworkSpec
    >>> spec = NetworkSpec.model_validate({
    ...     "inputs": [{"name": "x", "size": 3}],
    ...     "layers": [{"name": "d", "kind": "dense", "input": {"from": "x", "delays": [0, 1]},
    ...                 "size": 2}],
    ...     "outputs": [{"name": "y", "from": "d"}]})
    >>> extended_features(build(spec))
    [(('layers', 0, 'input'), 'a tapped delay line (`d.W@1` reads t-1)')]
    """
    found: dict[tuple, str] = {}
    pairs: dict[tuple, set] = {}
    for source, target, data in graph.edges(data=True) if taps else ():
        lag, weight, path = data["lag"], data["weight"], data["path"]
        if data["role"] == "input" and lag != 0:
            found.setdefault((path, weight), f"a tapped delay line (`{weight}` reads t{-lag:+d})")
        if data["role"] == "connection":
            pairs.setdefault((source, graph.nodes[target]["layer"]), set()).add((lag, path))
            if lag < 0:
                found.setdefault((path, weight), f"future context (`{weight}` reads t{-lag:+d})")
    for delays in pairs.values():
        if len({lag for lag, _ in delays}) > 1:
            path = min(p for _, p in delays)
            found.setdefault((path, "delays"), "several delays of one connection pair")
    layers: dict[str, list] = {}
    for node, data in graph.nodes(data=True):
        if data["role"] in ("state", "dense"):
            layers.setdefault(data["layer"], []).append((node, data))
    for layer, nodes in layers.items():
        node, data = nodes[0]
        if not any(d["role"] == "input" for *_, d in graph.in_edges(node, data=True)):
            found.setdefault((data["path"], "input"), f"a layer without an input (`{layer}`)")
        if data.get("two_pass"):
            path = data["path"] + ("initial_state",)
            found.setdefault((path, ""), f"a hand-over from a later step (`{layer}`, two passes)")
        merge = data.get("merge", "concat")
        if merges and merge != "concat" and len(nodes) >= 2:
            path, what = data["path"] + ("merge",), _MERGES[merge]
            found.setdefault(
                (path, ""), f"{what} bidirectional merge (`{layer}`, `merge: {merge}`)"
            )
    return [(path, what) for (path, _), what in sorted(found.items(), key=_order)]


_MERGES = {"sum": "a summed", "mean": "an averaged", "mul": "a multiplied"}


def _order(item) -> tuple:
    (path, tag), _ = item
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in path), tag


def refuse_extended(graph: nx.MultiDiGraph, what: str, merges: bool = True) -> None:
    """Refuse, in one line naming the field, a network using a feature `what` (such as
    `the PyTorch module`) does not carry over; bidirectional merges too with `merges`."""
    found = extended_features(graph, merges)
    if found:
        path, feature = found[0]
        raise SpecError(
            f"{what} does not support {feature} yet; run this network with the numpy engine",
            path,
        )
