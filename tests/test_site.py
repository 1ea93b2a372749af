"""The documentation site (mkdocs.yml): its generated pages are current, the commands it
shows print what it shows, and `mkdocs build --strict` builds it offline."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT
from tests.test_readme import check_command, console_examples

#: pages whose console blocks this file runs, each command in a fresh directory
RUN_HERE = ("docs/index.md", "docs/tutorial.md")
#: pages whose commands build on each other, run in order by a test of their own
RUN_ELSEWHERE = {
    "docs/interop.md": ("tests/interop/test_torch_docs.py", "tests/interop/test_onnx_cli.py"),
    "docs/time.md": ("tests/cli/test_spec_checks.py",),
    **{
        f"docs/recipes/{name}.md": ("tests/test_recipes.py",)
        for name in ("streaming", "onnx", "gpu", "slides", "narx", "irnn", "sunspots")
    },
}
#: sections of RUN_HERE pages whose commands build on each other (a file written by one
#: is read by the next): tests/test_recipes.py runs them in order, in one directory
IN_ORDER = {"docs/tutorial.md": "## 8. A character-level language model"}
#: pages whose commands are run by no test, and why
NOT_RUN = {
    "docs/training.md": "its training runs take minutes; tests/training checks the trainer",
}
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))


def run_here(page: str) -> str:
    """A RUN_HERE page's text without its sections run in order elsewhere."""
    text = (ROOT / page).read_text(encoding="utf-8")
    if page in IN_ORDER:
        start = text.index(IN_ORDER[page])
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end:] if end > 0 else "")
    return text


EXAMPLES = [
    (page, command, output)
    for page in RUN_HERE
    for command, output in console_examples(run_here(page))
]


def load_tool(name: str):
    location = ROOT / "tools" / f"{name}.py"
    module_spec = importlib.util.spec_from_file_location(f"tools_{name}", location)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules.setdefault(module_spec.name, module)
    module_spec.loader.exec_module(module)
    return module


def test_the_generated_pages_and_pictures_are_current():
    site = load_tool("site")
    texts = site.sources(ROOT)
    stale = [rel for rel, text in texts.items() if site._read(ROOT / rel) != text]
    assert not stale, f"stale: {stale}; run `make docs`"
    committed = {
        p.relative_to(ROOT).as_posix()
        for folder in ("docs/tutorial", "docs/recipes")
        for p in (ROOT / folder).glob("*.dot")
    }
    assert committed == {rel for rel in texts if rel.endswith(".dot")}
    assert all((ROOT / rel).with_suffix(".svg").exists() for rel in committed)


def test_the_architecture_pages_table_of_modules_is_current():
    """docs/architecture.md lists every module of the package, each once, with the first
    sentence of its docstring, as `tools/site.py` makes it from the package."""
    site = load_tool("site")
    text = (ROOT / site.ARCHITECTURE).read_text(encoding="utf-8")
    assert text == site.architecture_page(ROOT), "stale module table; run `make docs`"
    listed = re.findall(r"^\| `(composer/[\w/]+\.py)` \|", text, re.M)
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "composer").rglob("*.py"))
    assert sorted(listed) == modules


def test_the_reference_pages_name_every_command_option_and_field():
    """The generated pages are complete: checked against the app and the schema directly."""
    import typer

    from composer.cli import app
    from composer.spec.schema import spec_schema

    cli = (ROOT / "docs/reference/cli.md").read_text(encoding="utf-8")
    group = typer.main.get_command(app)
    ctx = group.make_context("rnn-composer", [], resilient_parsing=True)
    for name in group.list_commands(ctx):
        assert f"## `{name}`" in cli
        command = group.get_command(ctx, name)
        for param in command.params:
            for option in param.opts:
                if option.startswith("-"):
                    assert option in cli, (name, option)
    spec = (ROOT / "docs/reference/spec.md").read_text(encoding="utf-8")
    schema = spec_schema()
    for obj in [schema, *schema["$defs"].values()]:
        for field, prop in obj["properties"].items():
            assert f"| `{field}` |" in spec
            if "description" in prop:
                assert " ".join(prop["description"].split()).replace("|", "\\|") in spec


@pytest.mark.parametrize(
    ("page", "command", "output"), EXAMPLES, ids=[f"{p}: {c}" for p, c, _ in EXAMPLES]
)
def test_a_documented_command_prints_what_the_page_shows(
    page, command, output, tmp_path, monkeypatch
):
    check_command(command, output, tmp_path, monkeypatch)


def test_every_pages_commands_are_run_somewhere_or_say_why_not():
    """A page with commands and their output is run here, by a named test, or listed with
    the reason it is not."""
    for page in PAGES:
        shown = [o for _, o in console_examples((ROOT / page).read_text(encoding="utf-8")) if o]
        if not shown or page in RUN_HERE or page in NOT_RUN:
            continue
        tests = [ROOT / t for t in RUN_ELSEWHERE.get(page, ())]
        named = [t for t in tests if t.exists() and page in t.read_text(encoding="utf-8")]
        assert named, f"{page} shows commands; add it to RUN_HERE, RUN_ELSEWHERE or NOT_RUN"


def test_the_tutorial_has_commands_for_each_step():
    shown = [c for p, c, _ in EXAMPLES if p == "docs/tutorial.md"]
    for verb in ("validate", "render", "summary", "deps", "run", "train"):
        assert any(c.startswith(f"rnn-composer {verb} ") for c in shown), verb
    assert "--steps 3000" in " ".join(shown)


def test_the_tutorials_specs_are_the_files_themselves():
    text = (ROOT / "docs/tutorial.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n# (specs/\S+)\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    for path, body in blocks:
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines(keepends=True)
        assert body == "".join(line for line in lines if not line.startswith("#")), path


def test_the_tutorials_python_prints_the_same_numbers_as_its_run(monkeypatch):
    text = (ROOT / "docs/tutorial.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "docs/tutorial.md", "exec"), namespace)
    shown = re.findall(r"^  y\[\d\] = \[(.*)\]$", text, re.M)[:4]
    expected = np.array([[float(v) for v in row.split()] for row in shown])
    np.testing.assert_allclose(namespace["y"], expected, atol=6e-5)


# -- the build ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site, built once with `mkdocs build --strict`, with every network fetch refused."""
    pytest.importorskip("mkdocs", reason="the [docs] extra builds the site")
    out = tmp_path_factory.mktemp("site")
    dead = "http://127.0.0.1:9"  # nothing listens: a plugin that fetches fails the build
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        NO_MKDOCS_2_WARNING="1",
        HTTP_PROXY=dead,
        HTTPS_PROXY=dead,
        http_proxy=dead,
        https_proxy=dead,
        NO_PROXY="",
        no_proxy="",
    )
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_the_configuration_fetches_nothing():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:")[0])
    assert config["theme"]["font"] is False  # the theme's default loads Google Fonts
    plugins = [next(iter(p)) if isinstance(p, dict) else p for p in config["plugins"]]
    assert set(plugins) == {"search", "mkdocstrings"}
    handler = config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    assert "inventories" not in handler and "import" not in handler  # no remote inventories
    assert config["strict"] is True


def test_the_site_builds_with_every_page_of_the_navigation(built):
    for page in ("index", "tutorial", "gallery", "sequences", "errors", "architecture"):
        assert (built / f"{page}.html").exists(), page
    for page in ("spec", "cli", "api", "weights"):
        assert (built / "reference" / f"{page}.html").exists(), page
    for page in (ROOT / "docs/recipes").glob("*.md"):
        assert (built / "recipes" / f"{page.stem}.html").exists(), page.name
    api = (built / "reference/api.html").read_text(encoding="utf-8")
    assert "Network.from_file" in api and "param_count" in api  # docstrings rendered


def test_the_built_pages_load_nothing_from_elsewhere(built):
    """Scripts, styles, images and fonts come from the site; outside addresses only in
    ordinary links (<a href>)."""
    remote = r"""(?:https?:)?//[^"'\s)]+"""
    loads = re.compile(
        rf"""<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc=["']{remote}"""
        rf"""|<link\b[^>]*\bhref=["']{remote}|@import\s+(?:url\()?["']?{remote}"""
        rf"""|url\(["']?{remote}""",
        re.I,
    )
    found = []
    for path in [*built.rglob("*.html"), *built.rglob("*.css")]:
        found += [(path.name, m.group(0)) for m in loads.finditer(path.read_text("utf-8"))]
    assert not found, found[:5]


def test_every_picture_and_link_of_the_built_pages_resolves(built):
    missing = []
    for page in built.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for target in re.findall(r"""(?:src|href)="([^"#?]+)[^"]*\"""", html):
            if re.match(r"^[a-z]+:|^//", target) or target.startswith("/"):
                continue
            if not (page.parent / target).resolve().exists():
                missing.append((page.relative_to(built).as_posix(), target))
    assert not missing, missing[:10]
    tutorial = (built / "tutorial.html").read_text(encoding="utf-8")
    assert tutorial.count("<img") >= 12  # folded, unfolded, the presets, the kinds
    gallery = (built / "gallery.html").read_text(encoding="utf-8")
    assert 'href="specs/lecture-elman.yaml"' in gallery  # the spec links reach the copy
    # every interactive page is linked from the gallery and copied as it is
    for page in (ROOT / "docs/gallery").glob("*.html"):
        assert f'href="gallery/{page.name}"' in gallery, page.name
        assert (built / "gallery" / page.name).read_bytes() == page.read_bytes()
    weights = (built / "reference/weights.html").read_text(encoding="utf-8")
    assert 'href="../interop.html#gate-order-and-bias-conventions"' in weights
    assert (built / "specs/lecture-elman.yaml").exists()


def test_the_readme_links_to_the_sites_pages_by_repository_path():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert {"docs/tutorial.md", "docs/reference/spec.md", "docs/reference/cli.md"} <= set(links)
    recipes = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs/recipes").glob("*.md")}
    assert recipes <= set(links), recipes - set(links)
    assert all((ROOT / link).exists() for link in links), links
