"""The gallery of every spec (`tools/gallery.py`, `make docs`) is current."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import ROOT, SPECS


def load_gallery():
    location = ROOT / "tools" / "gallery.py"
    module_spec = importlib.util.spec_from_file_location("gallery", location)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules.setdefault("gallery", module)  # its dataclass looks itself up there
    module_spec.loader.exec_module(module)
    return module


def test_the_gallery_and_its_dot_sources_are_current():
    gallery = load_gallery()
    texts = gallery.sources(ROOT)
    stale = [rel for rel, text in texts.items() if gallery._read(ROOT / rel) != text]
    assert not stale, "the gallery is stale; run `make docs`"
    committed = {f"docs/gallery/{p.name}" for p in (ROOT / "docs/gallery").glob("*.dot")}
    assert committed == {rel for rel in texts if rel.endswith(".dot")}
    assert {p.stem for p in SPECS} <= {pic.stem for pic in gallery.pictures(ROOT)}


def test_the_interactive_pages_are_current():
    gallery = load_gallery()
    assert gallery.stale_pages(ROOT) == [], "the gallery's pages are stale; run `make docs`"
    committed = {f"docs/gallery/{p.name}" for p in (ROOT / "docs/gallery").glob("*.html")}
    assert committed == set(gallery.pages(ROOT)) and len(committed) == len(SPECS)
