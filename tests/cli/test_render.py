"""`render` as a new user tries it: formats from suffixes, highlights on both views, every
`.dot` kept without Graphviz, sizes, the readout node, legends, labels and weight names."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.draw.dot import CONE, FADED
from tests.builders import connection, layer, output, readout, spec, write_spec

runner = CliRunner()
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")
LECTURE = "specs/lecture-elman.yaml"
SKIPS = spec(
    [layer("l1"), layer("l2", input="l1"), layer("l3", input="l2", output=readout(2))],
    connections=[connection("l1", "l3", 0), connection("x", "l3", 0)],
    steps=5,
)
BILSTM = spec(
    [
        layer("l1", "lstm", bidirectional=True),
        layer("l2", "lstm", input="l1", bidirectional=True, output=readout(2)),
    ],
    steps=5,
)
TWO_OUTPUTS = spec(
    [layer("a", output=readout(2)), layer("b", input="a", output=readout(2))],
    outputs=[output("early", "a"), output("late", "b")],
    steps=3,
)


def invoke(*args):
    return runner.invoke(app, ["render", *map(str, args)])


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# -- B1: the format follows the suffix; a conflict is a usage error ---------------------


@needs_dot
def test_the_format_comes_from_the_output_suffix(tmp_path):
    result = invoke(LECTURE, "-o", tmp_path / "t1.png")
    assert result.exit_code == 0, result.output
    for view in ("folded", "unfolded"):
        png_size(tmp_path / f"t1.{view}.png")  # PNG bytes, not SVG text


@pytest.mark.parametrize(("fmt", "name"), [("png", "t2.svg"), ("svg", "t2.png"), ("dot", "a.pdf")])
def test_a_format_that_contradicts_the_suffix_is_a_usage_error(tmp_path, fmt, name):
    result = invoke(LECTURE, "--format", fmt, "-o", tmp_path / name)
    assert result.exit_code == 2 and f"ends in .{name.split('.')[1]}" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_suffix_keeps_the_default_format(tmp_path):
    result = invoke(LECTURE, "--view", "folded", "-f", "dot", "-o", tmp_path / "net.txt")
    assert result.exit_code == 0 and (tmp_path / "net.txt").read_text().startswith("digraph")


# -- B6: a highlight on the folded view shades what the output step uses ----------------


def shaded_ids(text: str) -> tuple[set[str], set[str]]:
    """(node ids, edge ids) drawn in the cone's colours."""
    nodes = set(re.findall(rf'\[id="([^"]+)", class="\w+"[^\n]*fillcolor="{CONE}"', text))
    edges = set(re.findall(r'\[id="([^"]+->[^"]+)", class="\w+"[^\n]*penwidth="1.8"', text))
    return nodes, edges


def test_a_folded_highlight_shades_the_vectors_and_weights_it_uses(tmp_path):
    path = write_spec(tmp_path, TWO_OUTPUTS)
    out = tmp_path / "f.dot"
    result = invoke(path, "--view", "folded", "--highlight", "early[2]", "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    nodes, edges = shaded_ids(text)
    assert nodes == {"x", "a.s", "early"}
    assert edges == {"x->a.s", "a.s->a.s", "a.s->early"}
    assert 'id="b.s", class="state"' in text and text.count(f'fillcolor="{FADED}"') == 2
    late = invoke(path, "--view", "folded", "--highlight", "late[2]", "-o", tmp_path / "l.dot")
    assert late.exit_code == 0
    nodes, edges = shaded_ids((tmp_path / "l.dot").read_text())
    # `early` is drawn as the one node of a's readout, which b reads
    assert nodes == {"x", "a.s", "early", "b.s", "late"} and "early->b.s" in edges


def test_a_folded_highlight_of_a_missing_step_is_a_usage_error(tmp_path):
    result = invoke(LECTURE, "--view", "folded", "--highlight", "y[9]", "-o", tmp_path / "f.dot")
    assert result.exit_code == 2 and "not a node" in result.output
    assert list(tmp_path.iterdir()) == []


# -- B8: without dot, every .dot is written, then one message ---------------------------


def test_without_dot_both_sources_are_written_and_one_message_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = invoke(LECTURE, "--format", "png", "-o", tmp_path / "net.png")
    assert result.exit_code == 6
    assert (tmp_path / "net.folded.dot").read_text().startswith("digraph folded")
    assert (tmp_path / "net.unfolded.dot").read_text().startswith("digraph unfolded")
    assert not list(tmp_path.glob("*.png"))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install graphviz" in lines[0]
    assert "net.folded.dot" in lines[0] and "net.unfolded.dot" in lines[0]


# -- size and resolution ---------------------------------------------------------------


@needs_dot
def test_pngs_default_to_150_dpi_and_follow_dpi_and_size(tmp_path):
    def width(*options):
        out = tmp_path / f"f{len(list(tmp_path.iterdir()))}.png"
        assert invoke(LECTURE, "--view", "folded", "-o", out, *options).exit_code == 0
        return png_size(out)

    default, low = width(), width("--dpi", "72")
    assert default[0] == pytest.approx(low[0] * 150 / 72, rel=0.03)
    assert default[0] > 1.5 * 239  # the 239 px wide picture a new user got before
    small = width("--size", "1,1")
    assert max(small) <= 150 + 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--size", "big"), "expected a size in inches"),
        (("--size", "0,3"), "expected a size"),
        (("--dpi", "300", "-f", "svg", "-o", "n.svg"), "--dpi sets a PNG"),
    ],
)
def test_bad_sizes_are_usage_errors(tmp_path, options, message):
    result = invoke(LECTURE, "-o", tmp_path / "n.png", *options)  # a later -o wins
    assert result.exit_code == 2 and message in result.output
    assert list(tmp_path.iterdir()) == []


# -- the readout, legends, labels and weight names -------------------------------------


def test_the_readout_is_one_node_unless_both_are_asked_for(tmp_path):
    out = tmp_path / "n.dot"
    assert invoke(LECTURE, "-o", out).exit_code == 0
    unfolded = (tmp_path / "n.unfolded.dot").read_text()
    assert 'id="y@3"' in unfolded and "s.y@" not in unfolded
    assert 'class="readout", id="s.s@3->y@3"' in unfolded
    assert invoke(LECTURE, "-o", out, "--readout", "both", "--force").exit_code == 0
    assert 'class="emit", id="s.y@3->y@3"' in (tmp_path / "n.unfolded.dot").read_text()


def test_legend_labels_and_weight_names(tmp_path):
    out = tmp_path / "n.dot"
    args = ("--legend", "--weight-names", "U,W,V", "--labels", "full")
    assert invoke(LECTURE, "-o", out, *args).exit_code == 0
    folded = (tmp_path / "n.folded.dot").read_text()
    assert "output (emitted)" in folded and "input x" in folded and "recurrence" in folded
    assert "label=<U (4×8)>" in folded and "label=<W (8×8)>" in folded
    assert "label=<V (8×3)>" in folded
    assert invoke(LECTURE, "-o", out, "--labels", "none", "--force").exit_code == 0
    for view in ("folded", "unfolded"):
        text = (tmp_path / f"n.{view}.dot").read_text()
        assert not re.search(r"-> n\d+ \[[^\n]*label=<", text)


@pytest.mark.parametrize("names", ["U,W,V,Z", "Wx=U,W", "=U", "U,,V"])
def test_bad_weight_names_are_usage_errors(tmp_path, names):
    result = invoke(LECTURE, "-o", tmp_path / "n.dot", "--weight-names", names)
    assert result.exit_code == 2 and "--weight-names" in result.output


def labels_by_column(text: str) -> list[tuple[str, str, str]]:
    """(weight label, head step, tail vector) of every labelled unfolded edge."""
    found = []
    for edge_id, label in re.findall(
        r'id="([^"]+)"[^\n]*?(?:label|xlabel|headlabel)=<([^>]+)>', text
    ):
        if "->" in edge_id:
            tail, head = edge_id.split("->")
            found.append((label, head.rpartition("@")[2], tail.rpartition("@")[0]))
    return found


def test_a_bidirectional_stack_names_each_weight_once_per_column(tmp_path):
    out = tmp_path / "b.dot"
    path = write_spec(tmp_path, BILSTM)
    assert invoke(path, "--view", "unfolded", "-o", out).exit_code == 0
    labels = labels_by_column(out.read_text())
    pairs = [(label, step) for label, step, _ in labels]
    assert len(pairs) == len(set(pairs)), "a weight named twice in one column"
    assert ("l2.Wx", "0") in pairs and ("l2.Wx_rev", "0") in pairs


def test_skip_connections_are_named_once(tmp_path):
    out = tmp_path / "s.dot"
    path = write_spec(tmp_path, SKIPS)
    assert invoke(path, "--view", "unfolded", "-o", out).exit_code == 0
    labels = [label for label, _, _ in labels_by_column(out.read_text())]
    assert labels.count("l3.W_l1") == 1 and labels.count("l3.W_x") == 1
    assert labels.count("l3.Wx") == 5


@needs_dot
def test_the_folded_stack_is_drawn_straight_up(tmp_path):
    out = tmp_path / "s.dot"
    path = write_spec(tmp_path, SKIPS)
    assert invoke(path, "--view", "folded", "-o", out).exit_code == 0
    plain = subprocess.run(
        ["dot", "-Tplain", str(out)], capture_output=True, text=True, check=True
    ).stdout
    ids = dict(re.findall(r'^\s*(n\d+) \[id="([^"]+)"', out.read_text(), re.M))
    xs = {}
    for line in plain.splitlines():
        parts = line.split()
        if parts[0] == "node":
            xs[ids[parts[1]]] = float(parts[2])
    stack = [xs[name] for name in ("x", "l1.s", "l2.s", "l3.s", "y")]
    assert max(stack) - min(stack) < 0.05, xs


# -- the interactive page ----------------------------------------------------------------


@needs_dot
def test_render_html_writes_one_self_contained_page(tmp_path):
    out = tmp_path / "net.html"
    x = tmp_path / "x.npy"
    np.save(x, np.eye(4)[:3])
    result = invoke(LECTURE, "-o", out, "--input", x)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.html", "x.npy"]
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "default-src 'none'" in text
    # the folded picture and T = 1..3, the input's T, in the JSON (where < is \u003c)
    assert text.count("\\u003csvg") == 1 + 3 and "<svg" not in text
    assert '"values":{"1":{"T":1' in text and not re.search(r"""(src|href)=["']?https?:""", text)
    again = invoke(LECTURE, "-o", out)
    assert again.exit_code == 2 and "--force" in again.output


def test_values_need_the_page(tmp_path):
    result = invoke(LECTURE, "-o", tmp_path / "n.svg", "--input", LECTURE)
    assert result.exit_code == 2 and "--format html" in result.output


@needs_dot
def test_the_page_shows_values_at_every_t_the_input_allows(tmp_path):
    out, x = tmp_path / "net.html", tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).normal(size=(1, 5, 4)))
    assert invoke(LECTURE, "-o", out, "--input", x).exit_code == 0
    text = out.read_text()
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    values = json.loads(found.group(1))["values"]
    assert sorted(values, key=int) == ["1", "2", "3", "4", "5"]
    # the input's first T steps at each T: a causal network's early steps agree
    for t in range(1, 5):
        assert values[str(t)]["cells"]["s.s@0"] == values["5"]["cells"]["s.s@0"]
        assert f"y@{t - 1}" in values[str(t)]["cells"] and f"y@{t}" not in values[str(t)]["cells"]
