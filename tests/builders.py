"""Spec builders for the tests: one way to write a network in a few lines.

The parts (`input_`, `layer`, `readout`, `connection`, `output`) return the plain data a
spec file holds; `spec` puts them together and validates them into a `NetworkSpec`;
`lecture` is the network most tests start from; `write_spec` puts a spec in a file for
the command line. Tests whose point is the file's text (line and column of an error)
keep that text literal and write it with `write_spec` too.

>>> net = spec([layer("rnn", "gru", size=8, output=readout(2, "softmax"))])
>>> net.inputs[0].name, net.layers[0].state_size, net.outputs[0].source
('x', 8, 'rnn')
>>> two = spec(
...     [layer("a"), layer("d", "dense", "a", 3)],
...     inputs=[input_("x", 2, window="0:4")],
...     outputs=[output("o", window="-1:")],
...     connections=[connection("d", "a", delay=2)],
... )
>>> two.layers[1].size, two.outputs[0].source, two.connections[0].delay
(3, 'd', 2)
>>> lecture(alignment="many-to-one").layers[0].output.activation
'softmax'
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import strategies as st

from composer.spec.model import NetworkSpec

__all__ = [
    "input_",
    "layer",
    "readout",
    "connection",
    "output",
    "spec",
    "lecture",
    "write_spec",
    "random_networks",
    "doc_tagger",
]


def input_(name: str = "x", size: int = 3, window: str | None = None) -> dict:
    """An input sequence; without `window` it follows the spec's alignment."""
    return _without_none({"name": name, "size": size, "window": window})


def layer(
    name: str, kind: str = "elman", input: str | list | dict = "x", size: int = 4, **fields
) -> dict:
    """A layer of `kind` reading `input`; `size` is its `state_size` (a dense layer's `size`).

    Other fields (`activation`, `output`, `delay`, `direction`, `active`, ...) go in as given.
    """
    size_key = "size" if kind == "dense" else "state_size"
    return {"name": name, "kind": kind, "input": input, size_key: size, **fields}


def readout(size: int, activation: str | None = None) -> dict:
    """A recurrent layer's `output` readout; without `activation`, the spec's identity."""
    return _without_none({"size": size, "activation": activation})


def connection(source: str, target: str, delay: int | None = None) -> dict:
    """An extra edge `source` -> `target`; without `delay`, the spec's one step."""
    return _without_none({"from": source, "to": target, "delay": delay})


def output(name: str = "y", source: str | None = None, window: str | None = None) -> dict:
    """An emitted output; `spec` reads it from the last layer when `source` is None."""
    return _without_none({"name": name, "from": source, "window": window})


def spec(
    layers: list[dict],
    *,
    inputs: list[dict] | None = None,
    outputs: list[dict] | None = None,
    **fields,
) -> NetworkSpec:
    """A validated network: `layers` in order, by default one input `x` of size 3 and one
    output `y` from the last layer; `fields` are the other top-level fields (`alignment`,
    `connections`, `steps`, ...)."""
    last = layers[-1]["name"]
    outputs = [{**o, "from": o.get("from", last)} for o in outputs or [output()]]
    data = {"inputs": inputs or [input_()], "layers": layers, "outputs": outputs, **fields}
    return NetworkSpec.model_validate(data)


def lecture(**fields) -> NetworkSpec:
    """The lecture's Elman network, x (3) -> rnn (4, softmax readout of 2) -> y, with
    top-level fields (`layers`, `inputs`, `outputs`, `alignment`, ...) replaced."""
    parts = {
        "layers": [layer("rnn", output=readout(2, "softmax"))],
        "outputs": [output("y", "rnn")],
        **fields,
    }
    return spec(**parts)


def write_spec(directory: Path, content: NetworkSpec | str | bytes, name: str = "net.yaml") -> Path:
    """Write `content` to `directory / name` and return the path.

    A `NetworkSpec` is written as YAML, or as JSON when `name` ends in `.json`, with its
    default values left out; text (UTF-8) and bytes are written exactly as given.
    """
    path = Path(directory) / name
    if isinstance(content, NetworkSpec):
        data = content.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        text = json.dumps(data, indent=2) if name.endswith(".json") else yaml.safe_dump(data)
        content = text
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def doc_tagger() -> str:
    """`tagger.yaml`, the LSTM tagger of docs/interop.md (4 -> 16 -> 3), as written there."""
    text = (Path(__file__).parents[1] / "docs" / "interop.md").read_text(encoding="utf-8")
    section = text.split("The same network as a spec, `tagger.yaml`")[1]
    return section.split("```yaml\n")[1].split("```")[0]


@st.composite
def random_networks(draw) -> tuple[NetworkSpec, bool]:
    """A Hypothesis strategy: random stacks of one to three layers (kinds, readouts,
    directions and merges, dilations, tapped delay lines reading ahead where the layer
    may), an alignment preset and perhaps feedback, as (spec, causal), where `causal`
    says every layer runs forward."""
    layers, causal = [], True
    alignment = draw(
        st.sampled_from(
            ["one-to-many", "many-to-one", "many-to-many", {"preset": "many-to-many", "delay": 1}]
        )
    )
    # future context, where every output step reads some step ahead (else a dead weight)
    ahead_ok = alignment not in ("one-to-many", "many-to-one")
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["elman", "lstm", "gru", "dense"]))
        source = f"l{i - 1}" if i else "x"
        if kind == "dense":
            source = _maybe_taps(draw, source, -2 if ahead_ok else 0)
            causal &= isinstance(source, str) or min(source["delays"]) >= 0
            layers.append(layer(f"l{i}", kind, source, draw(st.integers(1, 4))))
            continue
        size = draw(st.integers(1, 4))
        fields = {"delay": draw(st.integers(1, 3))}
        way = draw(st.sampled_from(["forward", "backward", "bidirectional"]))
        if way == "bidirectional":
            fields["bidirectional"] = True
            # concat half the time, as before the other merges: the converters' tests keep
            # only networks they export (a merge but concat is refused)
            fields["merge"] = draw(st.sampled_from(["concat"] * 3 + ["sum", "mean", "mul"]))
        else:
            fields["direction"] = way
        causal &= way == "forward"
        source = _maybe_taps(draw, source, -2 if ahead_ok and way != "forward" else 0)
        if draw(st.booleans()):
            fields["output"] = readout(draw(st.integers(1, 3)))
        layers.append(layer(f"l{i}", kind, source, size, **fields))
    top = layers[-1]
    connections = []
    if top["kind"] != "dense" and top.get("direction") == "forward" and draw(st.booleans()):
        connections.append(connection(top["name"], top["name"], draw(st.integers(1, 2))))
    network = spec(
        layers,
        inputs=[input_("x", 2)],
        outputs=[output("o")],
        connections=connections,
        alignment=alignment,
    )
    return network, causal


def _maybe_taps(draw, source: str, lowest: int) -> str | dict:
    """Perhaps a tapped delay line on `source`: one to three delays from `lowest` to 3."""
    if not draw(st.booleans()):
        return source
    delays = draw(st.lists(st.integers(lowest, 3), min_size=1, max_size=3, unique=True))
    return {"from": source, "delays": sorted(delays)}


def _without_none(fields: dict) -> dict:
    return {key: value for key, value in fields.items() if value is not None}


def random_input(graph, name: str, batch: int, steps: int, rng, scale: float = 1.0):
    """Random values for input `name`: (B, T, F) normal ones times `scale`, or (B, T)
    ids for a token input (`vocab`), where scale has no meaning."""
    vocab = graph.nodes[name].get("vocab")
    if vocab:
        return rng.integers(0, vocab, (batch, steps))
    return scale * rng.normal(size=(batch, steps, graph.nodes[name]["size"]))
