"""No edge label covers a node or another label: every gallery spec, folded and unfolded
(at its own T and at T = 12), at every `--labels` setting, and the networks whose
pictures were crowded (taps, skips, Jordan, stacked bidirectional LSTMs, decoders). The
positions are Graphviz's own (`dot -Tjson`), read by `tests.draw.overlaps`."""

from __future__ import annotations

import shutil

import pytest

from composer.draw.folded_picture import folded_dot
from composer.draw.style import LABELS, Style, parse_weight_names
from composer.draw.unfolded_picture import unfolded_dot
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.kinds import KINDS
from composer.spec.reader import load_spec
from tests.builders import connection, layer, readout, spec
from tests.conftest import ROOT
from tests.draw.overlaps import crossings, overlaps

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")

GALLERY = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
TRICKY = {
    "skips": spec(
        [layer("l1"), layer("l2", input="l1"), layer("l3", input="l2", output=readout(2))],
        connections=[connection("l1", "l3", 0), connection("x", "l3", 0)],
        steps=5,
    ),
    "bilstm2": spec(
        [
            layer("l1", "lstm", bidirectional=True),
            layer("l2", "lstm", input="l1", bidirectional=True, output=readout(2)),
        ],
        steps=5,
    ),
    "skip-lag": spec(
        [layer("l1"), layer("l2", input="l1"), layer("l3", input="l2", output=readout(2))],
        connections=[connection("l1", "l3", 1), connection("l3", "l1", 2)],
        steps=6,
    ),
}


def pictures(graph, steps: int, style: Style):
    yield "folded", folded_dot(graph, style=style)
    for t in sorted({steps, 12}):
        yield f"unfolded T={t}", unfolded_dot(unroll(graph, t), style=style)


@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("stem", GALLERY)
def test_gallery_labels_are_clear_of_nodes_and_each_other(stem, labels):
    network = load_spec(ROOT / "specs" / f"{stem}.yaml")
    graph = build(network)
    for view, text in pictures(graph, network.steps, Style(labels=labels)):
        assert overlaps(text) == [], (stem, labels, view)


@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("name", sorted(TRICKY))
def test_crowded_networks_keep_their_labels_clear(name, labels):
    graph = build(TRICKY[name])
    for view, text in pictures(graph, TRICKY[name].steps, Style(labels=labels)):
        assert overlaps(text) == [], (name, labels, view)


@pytest.mark.parametrize("stem", ["tdnn", "narx"])
def test_taps_drawn_apart_keep_their_labels_clear(stem):
    graph = build(load_spec(ROOT / "specs" / f"{stem}.yaml"))
    for labels in LABELS:
        assert overlaps(folded_dot(graph, style=Style(labels=labels, taps="apart"))) == []


def test_the_lecture_slide_with_its_letters_at_twelve_steps():
    graph = build(load_spec(ROOT / "specs/lecture-elman.yaml"))
    names = parse_weight_names("U,W,V")
    for labels in LABELS:
        style = Style(labels=labels, weight_names=names, legend=True)
        for t in (4, 12, 30):
            assert overlaps(unfolded_dot(unroll(graph, t), style=style)) == [], (labels, t)


def test_the_check_sees_a_label_on_a_node():
    text = (
        'digraph g { a [pos="0,0!"]; b [pos="1.2,0!"]; a -> b [headlabel="a long label", '
        "labeldistance=6, labelangle=0]; }"
    )
    assert any("meets node" in found for found in overlaps(text.replace("{", "{ layout=neato;", 1)))


@pytest.mark.parametrize("stem", ["jordan", "generate", "encoder-decoder", "narx", "tdnn"])
def test_a_slanted_edges_label_is_beside_its_line_not_on_it(stem):
    network = load_spec(ROOT / "specs" / f"{stem}.yaml")
    graph = build(network)
    for labels in ("weights", "full"):
        text = unfolded_dot(unroll(graph, network.steps), style=Style(labels=labels))
        own = [c for c in crossings(text) if c.split(" is crossed by ")[1] in c.split(" [")[0]]
        assert own == [], (stem, labels)


LSTMS = [s for s in GALLERY if "c" in [
    carried for n, d in build(load_spec(ROOT / "specs" / f"{s}.yaml")).nodes(data=True)
    if d["role"] == "state" for carried in KINDS[d["kind"]].carries]]  # fmt: skip


@pytest.mark.parametrize("stem", LSTMS)
def test_the_cell_state_track_keeps_labels_clear(stem):
    network = load_spec(ROOT / "specs" / f"{stem}.yaml")
    graph = build(network)
    for labels in LABELS:
        style = Style(labels=labels, cell_state=True)
        for t in sorted({network.steps, 12}):
            assert overlaps(unfolded_dot(unroll(graph, t), style=style)) == [], (stem, labels, t)
