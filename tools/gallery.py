"""Regenerate the gallery: every spec in specs/, folded and unfolded, as DOT, SVG and PNG.

Usage: `.venv/bin/python tools/gallery.py` (what `make docs` runs) writes
docs/gallery.md and docs/gallery/, with an interactive page (`.html`) per spec; `--check`
only compares the DOT sources, the Markdown page and the interactive pages' source digests
with what is committed and exits 1 when they are stale.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from composer.draw.folded_picture import folded_dot
from composer.draw.graphviz import dot_svg, render_options, write_diagram
from composer.draw.page import fingerprint, page_data, page_html, page_stamp, page_steps
from composer.draw.unfolded_picture import unfolded_dot
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.spec.reader import load_spec

__all__ = ["Picture", "pictures", "sources", "pages", "main"]

ROOT = Path(__file__).resolve().parent.parent

PAGE = "docs/gallery.md"
FOLDER = "docs/gallery"

#: extra pictures beside each spec's two: (spec stem, name, steps, highlight, caption)
EXTRAS = [
    (
        "lecture-elman",
        "highlight",
        4,
        ("y", 2),
        "The lecture's remark, drawn with `--highlight 'y[2]'`: the output at step 2 "
        "depends on the input at step 2 and on every input before it.",
    ),
    (
        "tagging",
        "long",
        10_000,
        None,
        "Ten thousand steps: the first and last few columns are drawn, the rest is one "
        "`⋯` column (`--steps 10000`).",
    ),
]

LEGEND = """\
How to read the pictures: inputs are blue, Elman states amber ellipses, LSTM states
green boxes, GRU states purple hexagons, readouts and dense layers orange, emitted
outputs red with a double border (an output that emits its readout unchanged is drawn as
that one node, as the lecture does; `--readout both` draws the two). Each edge is named
by its weight (`Wx`, `Ws`, `Wy`;
`layer.Wx` when there are several layers); a recurrence reaching further back than one
step says so (`Ws, t-2`), and a backward one reads `t+1`. Dashed edges are extra
`connections`, the dotted edge hands a last state over (`initial_state`). Unfolded,
dashed nodes are initial states (`= 0`, or handed over), only the steps the outputs
need are drawn, and a `⋯` column stands for steps left out."""


@dataclass(frozen=True)
class Picture:
    """One folded/unfolded pair of the gallery."""

    stem: str
    spec_file: str
    steps: int
    highlight: tuple[str, int] | None = None
    caption: str = ""
    folded: bool = True


def pictures(root: Path = ROOT) -> list[Picture]:
    """The gallery's pictures: the lecture's first, each spec at its own `steps`.

    An extra picture follows the spec it draws.
    """
    found = []
    paths = (root / "specs").glob("*.yaml")
    for path in sorted(paths, key=lambda p: (not p.stem.startswith("lecture"), p.stem)):
        found.append(Picture(path.stem, f"specs/{path.name}", load_spec(path).steps))
        for stem, name, steps, highlight, caption in EXTRAS:
            if stem == path.stem:
                extra = Picture(f"{stem}-{name}", found[-1].spec_file, steps, highlight, caption)
                found.append(replace(extra, folded=False))
    return found


def sources(root: Path = ROOT) -> dict[str, str]:
    """Relative path -> text of every DOT source and of the page, as they should be."""
    texts = {}
    for picture in pictures(root):
        graph = build(load_spec(root / picture.spec_file))
        unrolled = unroll(graph, picture.steps)
        if picture.folded:
            texts[f"{FOLDER}/{picture.stem}.folded.dot"] = folded_dot(graph)
        texts[f"{FOLDER}/{picture.stem}.unfolded.dot"] = unfolded_dot(
            unrolled, highlight=picture.highlight
        )
    texts[PAGE] = page(root)
    return texts


def pages(root: Path = ROOT) -> dict[str, tuple[str, object]]:
    """Relative path -> (source digest, a function writing the HTML) of each spec's
    interactive page; the digest needs no Graphviz (`composer.draw.page.fingerprint`)."""
    found = {}
    for picture in pictures(root):
        if not picture.folded:
            continue
        network = load_spec(root / picture.spec_file)
        graph = build(network)
        unrollings = page_steps(picture.steps, lambda t, graph=graph: unroll(graph, t))
        name = network.name or picture.stem
        stamp = fingerprint(page_data(name, unrollings))

        def make(name=name, unrollings=unrollings) -> str:
            return page_html(name, unrollings, dot_svg)

        found[f"{FOLDER}/{picture.stem}.html"] = (stamp, make)
    return found


def stale_pages(root: Path = ROOT) -> list[str]:
    """The interactive pages missing or drawn from other sources than the current ones."""
    stale = []
    for rel, (stamp, _) in pages(root).items():
        text = _read(root / rel)
        if text is None or page_stamp(text) != stamp:
            stale.append(rel)
    return stale


def page(root: Path = ROOT) -> str:
    """docs/gallery.md: each picture with its spec's own comment as the caption."""
    lines = [
        "# Gallery",
        "",
        "Every spec in `specs/`, folded and unfolded, drawn by `rnn-composer render`.",
        "Generated by `tools/gallery.py` (`make docs`); `tests/test_gallery.py` checks that",
        "this page and the `.dot` sources beside the pictures are current.",
        "",
        "**Interactive pages.** Each example also has a page of its own, the folded and the",
        "unfolded network side by side: click a node to shade what it depends on and what",
        "depends on it, click a weight to see every step that shares it, hover for sizes and",
        "formulas, slide T ([The interactive page](diagrams.md#the-interactive-page)). They",
        "are single files that load nothing, so they open from a disk, a course page or this",
        "site alike:",
        "",
        " · ".join(f"[{p.stem}](gallery/{p.stem}.html)" for p in pictures(root) if p.folded),
        "",
        LEGEND,
        "",
    ]
    for picture in pictures(root):
        caption = picture.caption or _comment(root / picture.spec_file)
        views = ["folded", "unfolded"] if picture.folded else ["unfolded"]
        base = f"gallery/{picture.stem}"
        links = ", ".join(
            f"{view}: [PNG]({base}.{view}.png), [DOT]({base}.{view}.dot)" for view in views
        )
        if picture.folded:
            links += f", [interactive page]({base}.html)"
        lines += [f"## {picture.stem}", "", caption, ""]
        lines += [
            f"From [`{picture.spec_file}`](../{picture.spec_file}), unfolded at "
            f"T = {picture.steps} ({links}).",
            "",
        ]
        for view in views:
            lines += [f"![{picture.stem}, {view}]({base}.{view}.svg)", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _comment(path: Path) -> str:
    """A spec's leading comment as Markdown: prose, and indented lines as code."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].removeprefix(" ")
        if not text.startswith("deps "):  # the test suite's dependency examples
            lines.append(text)
    out, code = [], False
    for text in lines:
        indented = text.startswith("  ")
        if indented != code:
            out.append("```" if indented else "```\n")
            code = indented
        out.append(text.strip() if indented else text)
    if code:
        out.append("```")
    text = "\n".join(out).replace("```\n\n", "```\n").strip()
    return text[:-1] + "." if text.endswith(":") else text  # it introduced the deps lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    texts = sources(ROOT)
    stale = [rel for rel, text in texts.items() if _read(ROOT / rel) != text]
    stale += stale_pages(ROOT)
    if args.check:
        for rel in stale:
            print(f"stale: {rel} (run `make docs`)")
        return 1 if stale else 0
    (ROOT / FOLDER).mkdir(parents=True, exist_ok=True)
    for rel, text in texts.items():
        write_diagram(text, ROOT / rel, "dot")  # the text as it is, written atomically
        if rel.endswith(".dot"):
            for fmt in ("svg", "png"):
                path = (ROOT / rel).with_suffix(f".{fmt}")
                write_diagram(text, path, fmt, options=render_options(fmt))
    made = pages(ROOT)
    for rel, (_, make) in made.items():
        html = make()
        write_diagram(html, ROOT / rel, "dot")  # text written atomically, as it is
    for old in sorted((ROOT / FOLDER).iterdir()):
        if f"{FOLDER}/{old.stem}.dot" not in texts and f"{FOLDER}/{old.name}" not in made:
            old.unlink()  # a picture of a spec that is gone
    print(f"wrote {PAGE}, {len(texts) - 1} pictures and {len(made)} pages in {FOLDER}/")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
