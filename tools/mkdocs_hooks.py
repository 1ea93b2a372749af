"""MkDocs hooks of the documentation site (mkdocs.yml `hooks:`), offline and small.

The Markdown pages in docs/ link to the example specs by their repository paths
(`../specs/lecture-elman.yaml`), so the links work on GitHub. The site copies specs/
beside its pages and points those links at the copy.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
#: repository folders outside docs/ that the site carries, for the pages' links into them
CARRIED = ("specs",)
_LINK = re.compile(r"\]\(((?:\.\./)+)(" + "|".join(CARRIED) + r")/")


def on_files(files, config):
    """Add the carried folders' files to the site, at the same paths."""
    site = config["site_dir"]
    for folder in CARRIED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                files.append(File(rel, src_dir=str(ROOT), dest_dir=site, use_directory_urls=False))
    return files


def on_page_markdown(markdown, page, config, files):
    """A link leaving docs/ for a carried folder points at the site's copy."""
    depth = page.file.src_uri.count("/")  # folders between docs/ and the page

    def inside(match: re.Match) -> str:
        ups = match.group(1).count("../")
        return f"]({'../' * (ups - 1)}{match.group(2)}/" if ups == depth + 1 else match.group(0)

    return _LINK.sub(inside, markdown)
