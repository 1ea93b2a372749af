"""Diagrams: the drawn nodes and edges are the unrolled graph's, escaped and deterministic."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import networkx as nx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from composer.draw.dot import CONE
from composer.draw.folded_picture import folded_dot
from composer.draw.graphviz import svg, write_diagram
from composer.draw.highlight import folded_cone, parse_highlight
from composer.draw.style import Style, merged_readouts
from composer.draw.unfolded_picture import unfolded_dot
from composer.draw.view import StepTemplate, kept_columns, same_steps
from composer.errors import ComposerError, RenderError
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.spec.reader import load_spec
from tests.builders import connection, input_, layer, output, readout, spec
from tests.conftest import ROOT, SPECS

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")


SOFTMAX = readout(2, "softmax")
NETWORKS = {
    "lecture": spec([layer("s", output=SOFTMAX)]),
    "stack": spec(
        [layer("s1", output=readout(5)), layer("s2", input="s1", output=SOFTMAX)],
        outputs=[output("o", "s2")],
    ),
    "many-to-one": spec([layer("rnn", output=SOFTMAX)], alignment="many-to-one"),
    "delay-2": spec(
        [layer("rnn", output=SOFTMAX)], alignment={"preset": "many-to-many", "delay": 2}
    ),
    "one-to-many": spec([layer("rnn", output=SOFTMAX)], alignment="one-to-many"),
    "bidirectional": spec([layer("bi", bidirectional=True, output=SOFTMAX)]),
    "backward": spec([layer("back", direction="backward")]),
    "bidirectional-mul": spec(
        [layer("bi", bidirectional=True, merge="mul"), layer("top", input="bi", output=SOFTMAX)]
    ),
    "lstm": spec([layer("lstm", "lstm", size=6)]),
    "gru": spec([layer("gru", "gru", size=6), layer("head", "dense", "gru", 2)]),
    "dilated": spec(
        [layer("d1"), layer("d2", input="d1", delay=2), layer("d4", input="d2", delay=4)],
        alignment="many-to-one",
    ),
    "encoder-decoder": spec(
        [
            layer("enc", input="src", active=":-3"),
            layer("dec", input="prev", active="-3:", initial_state="enc", output=SOFTMAX),
        ],
        inputs=[input_("src", 3, ":-3"), input_("prev", 2, "-3:")],
        alignment={"inputs": ":", "outputs": "-3:"},
    ),
    "jordan": spec([layer("s", output=SOFTMAX)], connections=[connection("s", "s", 1)]),
    "skip": spec(
        [layer("r1"), layer("r2", input="r1")],
        connections=[connection("x", "r2", 0)],
    ),
}
MIN_STEPS = {"delay-2": 3, "encoder-decoder": 4}
CASES = [
    (name, steps) for name in NETWORKS for steps in (1, 3, 8, 30) if steps >= MIN_STEPS.get(name, 1)
]


# -- reading our own DOT back ---------------------------------------------------------

NODE_LINE = re.compile(r'^  (n\d+) \[id="([^"]*)", class="(\w+)"(.*)\];$', re.M)
EDGE_LINE = re.compile(r'^  (n\d+) -> (n\d+) \[class="(\w+)"(?:, id="([^"]*)")?(.*)\];$', re.M)


def _step_node(text: str) -> tuple[str, int]:
    vector, _, t = text.rpartition("@")
    return vector, int(t)


def drawn(dot_text: str):
    """(nodes, edges, shaded) read from an unfolded diagram; DOT ends checked against ids."""
    ids, shaded = {}, set()
    for dot_id, node_id, role, rest in NODE_LINE.findall(dot_text):
        if role != "elided":
            ids[dot_id] = _step_node(node_id)
            if f'fillcolor="{CONE}"' in rest:
                shaded.add(ids[dot_id])
    edges = set()
    for tail, head, role, edge_id, _ in EDGE_LINE.findall(dot_text):
        if role == "elided":
            continue
        source, target = (_step_node(end) for end in edge_id.split("->"))
        assert (ids[tail], ids[head]) == (source, target), edge_id
        edges.add((source, target))
    return set(ids.values()), edges, shaded


def expected(unrolled, max_columns=12):
    """unrolled_graph's nodes and edges within the columns drawn, each output that shows
    its readout unchanged contracted into one node, the output's (the default drawing)."""
    graph = unrolled_graph(unrolled)
    kept = {c.first for c in kept_columns(unrolled, max_columns) if not c.elided}
    nodes = {n for n in graph if n[1] in kept}
    edges = {(u, v) for u, v in graph.edges if u in nodes and v in nodes}
    merged = same_steps(unrolled, merged_readouts(unrolled.folded))

    def renamed(node):
        return (merged.get(node[0], node[0]), node[1])

    nodes = {renamed(n) for n in nodes}
    edges = {(renamed(u), renamed(v)) for u, v in edges if renamed(u) != renamed(v)}
    return nodes, edges


# -- unfolded: the diagram is the computation -------------------------------------------


@pytest.mark.parametrize(("name", "steps"), CASES)
def test_unfolded_diagram_has_exactly_the_unrolled_nodes_and_edges(name, steps):
    unrolled = unroll(build(NETWORKS[name]), steps)
    nodes, edges, _ = drawn(unfolded_dot(unrolled))
    assert (nodes, edges) == expected(unrolled)
    if steps <= 12:
        apart, _, _ = drawn(unfolded_dot(unrolled, style=Style(readout="both")))
        assert apart == set(unrolled_graph(unrolled))


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
@pytest.mark.parametrize("max_columns", [3, 12])
def test_every_example_spec_draws_its_unrolled_graph(spec_path, max_columns):
    spec = load_spec(spec_path)
    unrolled = unroll(build(spec), spec.steps)
    nodes, edges, _ = drawn(unfolded_dot(unrolled, max_columns=max_columns))
    assert (nodes, edges) == expected(unrolled, max_columns)


@st.composite
def stacks(draw):
    """Elman stacks with random delays, directions, readouts, connections and alignment."""
    layers, source = [], "x"
    for i in range(draw(st.integers(1, 3))):
        fields = {"delay": draw(st.integers(1, 3))}
        if draw(st.booleans()):
            fields["bidirectional"] = True
        elif draw(st.booleans()):
            fields["direction"] = "backward"
        if draw(st.booleans()):
            fields["output"] = readout(2)
        layers.append(layer(f"r{i}", input=source, **fields))
        source = f"r{i}"
    extra = {"alignment": draw(st.sampled_from(["many-to-many", "many-to-one", "one-to-many"]))}
    last = layers[-1]
    if draw(st.booleans()) and not last.get("bidirectional"):
        back = last.get("direction") == "backward"
        extra["connections"] = [connection("x", last["name"], 0 if back else 2)]
    return spec(layers, **extra)


@given(spec=stacks(), steps=st.integers(1, 20), max_columns=st.integers(1, 12))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_stack_draws_exactly_its_unrolled_graph(spec, steps, max_columns):
    try:
        unrolled = unroll(build(spec), steps)
    except ComposerError:
        assume(False)
    nodes, edges, _ = drawn(unfolded_dot(unrolled, max_columns=max_columns))
    assert (nodes, edges) == expected(unrolled, max_columns)
    columns = kept_columns(unrolled, max_columns)
    inside = [c for c in columns if 0 <= c.first < steps]
    assert [c.first for c in inside] == [0] + [c.last + 1 for c in inside[:-1]]
    assert inside[-1].last == steps - 1


@pytest.mark.parametrize(("name", "steps"), [(n, 30) for n in NETWORKS] + [("lecture", 7)])
def test_elided_columns_keep_both_ends_and_cover_every_step(name, steps):
    unrolled = unroll(build(NETWORKS[name]), steps)
    columns = kept_columns(unrolled, max_columns=5)
    inside = [c for c in columns if 0 <= c.first < steps]
    assert inside[0].first == 0 and inside[-1].last == steps - 1
    assert [c.first for c in inside[1:]] == [c.last + 1 for c in inside[:-1]]
    assert any(c.elided for c in columns)
    text = unfolded_dot(unrolled, max_columns=5)
    assert text.count('class="elided", shape="plaintext"') >= 1
    assert "t = " in text and " … " in text


def test_initial_states_before_and_after_the_steps_get_edge_columns():
    unrolled = unroll(build(NETWORKS["bidirectional"]), 30)
    steps = [c.first for c in kept_columns(unrolled, 12)]
    assert steps[0] == -1 and steps[-1] == 30
    nodes, _, _ = drawn(unfolded_dot(unrolled))
    assert {("bi.s", -1), ("bi.s_rev", 30)} <= nodes


def test_dilated_many_to_one_draws_only_the_steps_the_output_needs():
    nodes, edges, _ = drawn(unfolded_dot(unroll(build(NETWORKS["dilated"]), 8)))
    assert {t for v, t in nodes if v == "d4.s"} == {-1, 3, 7}
    assert {t for v, t in nodes if v == "y"} == {7}
    assert (("d4.s", 3), ("d4.s", 7)) in edges


def test_a_huge_sequence_is_drawn_from_the_template_without_the_full_graph(monkeypatch):
    unrolled = unroll(build(NETWORKS["jordan"]), 10_000)
    monkeypatch.setattr("composer.graph.unrolled.unrolled_graph", None)
    text = unfolded_dot(unrolled, highlight=("y", 9_999))
    assert text.count("\n") < 300
    assert 'id="s.s@9999"' in text and 'id="s.s@5000"' not in text


@pytest.mark.parametrize(("name", "steps"), CASES)
def test_the_dependency_cone_is_the_unrolled_ancestors(name, steps):
    unrolled = unroll(build(NETWORKS[name]), steps)
    graph = unrolled_graph(unrolled)
    output = next(n for n, d in graph.nodes(data=True) if d["role"] == "output")
    assert StepTemplate(unrolled).cone(output) == nx.ancestors(graph, output) | {output}
    nodes, _, shaded = drawn(unfolded_dot(unrolled, highlight=output))
    assert shaded == (nx.ancestors(graph, output) | {output}) & nodes


def test_highlighting_the_lecture_output_shades_every_earlier_input():
    text = unfolded_dot(unroll(build(NETWORKS["lecture"]), 5), highlight=("y", 2))
    _, _, shaded = drawn(text)
    assert {t for v, t in shaded if v == "x"} == {0, 1, 2}
    assert "shaded: what y[2] depends on" in text  # as the folded title and deps write it


def test_a_highlighted_step_is_kept_when_columns_are_elided():
    text = unfolded_dot(unroll(build(NETWORKS["lecture"]), 100), highlight=("y", 50))
    assert 'id="y@50"' in text and 'penwidth="3"' in text


@pytest.mark.parametrize(
    ("highlight", "message"),
    [(("y", 9), "not a node"), (("nope", 0), "outputs: y"), (("y", -9), "computed at steps 0..4")],
)
def test_highlighting_a_node_that_is_not_drawn_says_where_it_is(highlight, message):
    with pytest.raises(ComposerError, match=message):
        unfolded_dot(unroll(build(NETWORKS["lecture"]), 5), highlight=highlight)


# -- folded -----------------------------------------------------------------------------


FOLDED_EDGE = re.compile(
    r'^  (n\d+) -> (n\d+) \[id="([^"]*)", class="(\w+)"(?:, label=<([^>]*)>)?(.*)\];$', re.M
)


def folded_parts(dot_text: str):
    """(tail, head, role, label) of each folded edge, DOT ends checked against the id."""
    ids = {dot_id: node_id for dot_id, node_id, _, _ in NODE_LINE.findall(dot_text)}
    parts = []
    for tail, head, edge_id, role, label, rest in FOLDED_EDGE.findall(dot_text):
        source, target = edge_id.split("->")
        ends = (ids[head], ids[tail]) if 'dir="back"' in rest else (ids[tail], ids[head])
        assert ends == (source, target), edge_id
        parts.append((source, target, role, label))
    return parts


def test_the_lecture_network_folded_has_wx_ws_wy_and_a_loop_on_s():
    text = folded_dot(build(NETWORKS["lecture"]))
    edges = folded_parts(text)
    assert ("x", "s.s", "input", "Wx") in edges
    assert ("s.s", "s.s", "recurrent", "Ws") in edges
    assert ("s.s", "y", "readout", "Wy") in edges  # the lecture's one node for y
    assert 'id="s.y"' not in text and len(NODE_LINE.findall(text)) == 3
    assert "rankdir=BT" in text and "s (4)" in text
    apart = folded_parts(folded_dot(build(NETWORKS["lecture"]), style=Style(readout="both")))
    assert ("s.s", "s.y", "readout", "Wy") in apart and ("s.y", "y", "emit", "") in apart


@pytest.mark.parametrize("name", NETWORKS)
def test_folded_diagram_draws_every_folded_edge(name):
    graph = build(NETWORKS[name])
    edges = folded_parts(folded_dot(graph, style=Style(readout="both")))
    drawn_pairs = sorted((t, h) for t, h, role, _ in edges if role != "handover")
    assert drawn_pairs == sorted((u, v) for u, v in graph.edges())
    handovers = [(t, h) for t, h, role, _ in edges if role == "handover"]
    expected_handovers = [(d["initial_state"], n) for n, d in graph.nodes(data=True)
                          if d.get("initial_state")]  # fmt: skip
    assert handovers == expected_handovers


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("stack", ["s1.Wx", "s2.Wy", "s1.Ws"]),
        ("dilated", ["d2.Ws, t-2", "d4.Ws, t-4"]),
        ("backward", ["Ws, t+1", "back←"]),
        ("bidirectional", ["Ws_rev, t+1", "Wy[0:4]", "Wy[4:8]", "bi→", "bi←", "rank=same"]),
        ("bidirectional-mul", ["<B>bi</B><BR/>", "fwd × bwd (4)", 'class="merge"', "top.Wx"]),
        ("lstm", ["LSTM h (6)", 'shape="box"']),
        ("gru", ["GRU h (6)", 'shape="hexagon"', "gru.Wx", "head.W"]),
        ("jordan", ['class="connection", label=<W_s, t-1>, style="dashed", dir="back"']),
        ("skip", ['label=<r2.W_x>, style="dashed"']),
        ("encoder-decoder", ['class="handover", label=<initial state>, style="dotted"']),
    ],
)
def test_folded_labels_name_weights_kinds_delays_and_directions(name, wanted):
    text = folded_dot(build(NETWORKS[name]))
    for fragment in wanted:
        assert fragment in text


# -- text hygiene -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS)
def test_diagrams_are_byte_identical_across_builds(name):
    first, second = build(NETWORKS[name]), build(NETWORKS[name].model_copy())
    assert folded_dot(first) == folded_dot(second)
    assert unfolded_dot(unroll(first, 8)) == unfolded_dot(unroll(second, 8))


def test_diagrams_do_not_depend_on_hash_seeds():
    code = (
        "from composer.graph.folded import build; from composer.spec.reader import load_spec; "
        "from composer.draw.folded_picture import folded_dot; "
        "from composer.draw.unfolded_picture import unfolded_dot; "
        "from composer.graph.unrolled import unroll; g = build(load_spec('specs/dilated.yaml')); "
        "print(folded_dot(g) + unfolded_dot(unroll(g, 30), highlight=('o', -1)))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


HOSTILE = 'x"<b>&\\ \n]; evil -> x'


def hostile_graph() -> nx.MultiDiGraph:
    graph = nx.relabel_nodes(build(NETWORKS["lecture"]), {"x": HOSTILE, "y": "o<&>"})
    graph.graph["name"] = "<script>"
    graph.nodes["s.s"]["layer"] = 's"\\'
    return graph


def test_hostile_names_are_escaped_in_labels_and_ids():
    graph = hostile_graph()
    for text in (folded_dot(graph), unfolded_dot(unroll(graph, 3), highlight=("o<&>", 2))):
        outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
        for raw in ("<script>", "<b>", "<&>", "evil ->"):
            assert raw not in outside_strings
        assert "&lt;script&gt;" in text and "x&quot;&lt;b&gt;&amp;\\ <BR/>]; evil -&gt; x" in text
        assert 'id="x\\"<b>&\\\\  ]; evil -> x' in text
        for line in outside_strings.splitlines()[1:-1]:  # statements: generated ids only
            assert re.match(r"  (graph|node|edge|\{ rank|[na]\d+( -> n\d+)?) ?\[?", line), line


@needs_dot
@pytest.mark.dot
def test_hostile_names_survive_graphviz(tmp_path):
    graph = hostile_graph()
    image = write_diagram(folded_dot(graph), tmp_path / "f.svg", "svg").read_text()
    assert "x&quot;&lt;b&gt;&amp;\\ " in image and "<b>" not in image  # text, not markup
    assert re.search(r'<g id="x&quot;&lt;b&gt;&amp;\\ .*\]; evil &#45;&gt; x" class="node', image)
    assert write_diagram(unfolded_dot(unroll(graph, 3)), tmp_path / "u.svg", "svg").exists()


# -- files ------------------------------------------------------------------------------


@needs_dot
@pytest.mark.dot
@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_renders_to_svg_and_png_without_warnings(spec_path, tmp_path):
    spec = load_spec(spec_path)
    graph = build(spec)
    for view, text in [
        ("folded", folded_dot(graph)),
        ("unfolded", unfolded_dot(unroll(graph, 30))),
    ]:
        done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True)
        assert done.returncode == 0 and not done.stderr, done.stderr.decode()
        png = write_diagram(text, tmp_path / f"{view}.png", "png")
        assert png.read_bytes().startswith(b"\x89PNG")
        assert "<svg" in write_diagram(text, tmp_path / f"{view}.svg", "svg").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "folded.png", "folded.svg", "unfolded.png", "unfolded.svg"
    ]  # fmt: skip


@needs_dot
@pytest.mark.dot
def test_svg_gives_the_folded_picture_for_a_notebook():
    text = svg(build(NETWORKS["lecture"]))
    assert text.lstrip().startswith("<?xml") and "<svg" in text and ">Ws<" in text


def test_dot_format_writes_the_text(tmp_path):
    path = write_diagram("digraph {}\n", tmp_path / "d.dot", "dot")
    assert path.read_text() == "digraph {}\n"


def test_missing_dot_keeps_the_source_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RenderError, match="apt-get install graphviz") as info:
        write_diagram("digraph {}\n", tmp_path / "d.png", "png")
    assert (tmp_path / "d.dot").read_text() == "digraph {}\n"
    assert not (tmp_path / "d.png").exists() and str(tmp_path / "d.dot") in str(info.value)


@needs_dot
@pytest.mark.dot
def test_a_dot_failure_names_the_cause(tmp_path):
    with pytest.raises(RenderError, match="failed: .*syntax error"):
        write_diagram("digraph { -> }\n", tmp_path / "d.svg", "svg")
    assert (tmp_path / "d.dot").exists() and not (tmp_path / "d.svg").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["d.dot"]  # no temporary files left


def test_a_timeout_is_a_render_error(tmp_path, monkeypatch):
    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(RenderError, match=r"timed out after 0\.5 s"):
        write_diagram("digraph {}\n", tmp_path / "d.svg", "svg", timeout=0.5)
    assert (tmp_path / "d.dot").exists()


def test_an_unwritable_path_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="cannot write .*missing/d.dot"):
        write_diagram("digraph {}\n", tmp_path / "missing" / "d.dot", "dot")


def test_an_unknown_format_lists_the_known_ones(tmp_path):
    with pytest.raises(RenderError, match="'gif'; expected one of: dot, svg, png, pdf"):
        write_diagram("digraph {}\n", tmp_path / "d.gif", "gif")


@pytest.mark.parametrize(
    ("text", "parsed"), [("o[7]", ("o", 7)), (" y [ -1 ] ", ("y", -1)), ("rnn.s[0]", ("rnn.s", 0))]
)
def test_parse_highlight(text, parsed):
    assert parse_highlight(text) == parsed


@pytest.mark.parametrize("text", ["o", "o[x]", "[3]", "o[1]x", "o[1.5]", ""])
def test_parse_highlight_refuses_other_text(text):
    with pytest.raises(ComposerError, match=r"expected NAME\[t\]"):
        parse_highlight(text)


def test_max_columns_must_be_positive():
    with pytest.raises(ComposerError, match="max_columns"):
        unfolded_dot(unroll(build(NETWORKS["lecture"]), 3), max_columns=0)


def _handed_over(initial_state):
    return build(
        spec(
            [
                layer("r", "elman", "x", 3, active="0:2" if initial_state == "r" else None),
                layer(
                    "d",
                    "elman",
                    "x",
                    3,
                    initial_state=initial_state,
                    active="2:" if initial_state == "r" else None,
                ),
            ],
            outputs=[output("y", "d", "2:" if initial_state == "r" else None)],
        )
    )


def test_a_two_pass_handover_is_drawn_as_a_second_pass():
    folded = _handed_over({"from": "r", "at": "end"})
    assert "label=<last state, second pass>" in folded_dot(folded)
    text = unfolded_dot(unroll(folded, 4))
    (line,) = [line for line in text.splitlines() if 'class="handover"' in line]
    assert 'id="r.s@3->d.s@-1"' in line and "label=<second pass>" in line
    causal = _handed_over("r")
    assert "label=<initial state>" in folded_dot(causal)
    assert "second pass" not in unfolded_dot(unroll(causal, 4))


def test_input_taps_drawn_apart_are_labelled_with_their_delay():
    text = folded_dot(build(load_spec(ROOT / "specs" / "tdnn.yaml")), style=Style(taps="apart"))
    for label in ("tdnn1.W@-2, t+2", "tdnn1.W@1, t-1", "tdnn2.W@2, t-2"):
        assert label in text
    assert "tdnn1.W, t" not in text  # the present step needs no mark
    ids = re.findall(r'id="(frames->tdnn1\.y[^"]*)"', text)  # one id per tap
    assert len(ids) == 5 == len(set(ids)) and "frames->tdnn1.y:tdnn1.W@2" in ids


def test_a_pairs_taps_are_one_edge_named_with_its_delays_by_default():
    text = folded_dot(build(load_spec(ROOT / "specs" / "tdnn.yaml")))
    taps = [line for line in text.splitlines() if 'id="frames->tdnn1.y"' in line]
    assert len(taps) == 1 and "label=<tdnn1.W@k, t-k, k = -2..2>" in taps[0]
    assert "label=<tdnn2.W@k, t-k, k = -2, 0, 2>" in text
    full = folded_dot(build(load_spec(ROOT / "specs" / "tdnn.yaml")), style=Style(labels="full"))
    assert "k = -2..2 (13×32 each)" in full


def test_taps_drawn_apart_fan_out_in_the_order_of_their_delays():
    text = folded_dot(build(load_spec(ROOT / "specs" / "narx.yaml")), style=Style(taps="apart"))
    lags = [int(m) for m in re.findall(r'id="u->h\.y:h\.W@(\d+)"', text)]
    assert lags == [2, 1, 3]  # Graphviz draws the first in the middle, then either side


def test_the_legend_draws_its_swatches_and_keys_start_states_and_shading():
    graph = build(load_spec(ROOT / "specs" / "lecture-elman.yaml"))
    style = Style(legend=True)
    folded = folded_dot(graph, style=style)
    assert "ellipse</FONT>" not in folded  # outlines are drawn, not named
    assert 'BORDER="1" STYLE="rounded">input x' in folded
    assert '<TABLE BORDER="1" STYLE="rounded" CELLBORDER="0" BGCOLOR="#fee2e2">' in folded
    assert "start state" not in folded  # folded pictures draw none
    unfolded = unfolded_dot(unroll(graph, 3), style=style)
    assert 'STYLE="dashed">start state (= 0, or handed over)' in unfolded
    assert "what the shaded node depends on" not in unfolded
    shaded = unfolded_dot(unroll(graph, 3), style=style, highlight=("y", 1))
    assert "what the shaded node depends on" in shaded and "the rest" in shaded
    cone = folded_cone(unroll(graph, 3), ("y", 1))
    assert "what the shaded node depends on" in folded_dot(graph, style=style, cone=cone)


def test_the_cell_state_is_drawn_as_a_track_of_its_own_on_request():
    graph = build(load_spec(ROOT / "specs" / "lstm.yaml"))
    plain = unfolded_dot(unroll(graph, 3))
    assert 'class="cell"' not in plain  # the lecture's h-only picture by default
    text = unfolded_dot(unroll(graph, 3), style=Style(cell_state=True))
    cells = re.findall(
        r'^  (cn\d+) \[class="cell".*label=<(lstm\d\.c)<SUB>(-?\d+)</SUB>>', text, re.M
    )
    assert {(name, int(t)) for _, name, t in cells} == {
        (f"lstm{k}.c", t) for k in (1, 2) for t in range(-1, 3)
    }
    ids = {(name, int(t)): cid for cid, name, t in cells}
    for k in (1, 2):
        for t in range(3):  # c_(t-1) -> c_t along the track
            assert f"  {ids[f'lstm{k}.c', t - 1]} -> {ids[f'lstm{k}.c', t]} [" in text
    bidirectional = build(load_spec(ROOT / "specs" / "bidirectional-tagger.yaml"))
    assert 'class="cell"' not in unfolded_dot(
        unroll(bidirectional, 3), style=Style(cell_state=True)
    )
