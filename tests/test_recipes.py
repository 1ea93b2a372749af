"""The how-to recipes (docs/recipes/*.md) and the tutorial's language-model section run:
their `console` and `python` blocks in order, in one directory with `specs/` and `docs/`
beside it, each command printing the lines shown under it. Commands in `text` blocks are
not run (a GPU, several processes); each page says why."""

from __future__ import annotations

import json
import re
import shlex

import numpy as np
import pytest
from typer.testing import CliRunner

from composer import Network
from composer.cli import app
from tests.conftest import ROOT
from tests.test_readme import VARYING
from tests.test_site import IN_ORDER, load_tool
from tests.tolerances import printed_in


def blocks(page: str) -> list[tuple[str, str]]:
    """(kind, body) of a page's fenced blocks, or of its section run in order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    if page in IN_ORDER:
        start = text.index(IN_ORDER[page])
        end = text.find("\n## ", start + 1)
        text = text[start : end if end > 0 else None]
    return re.findall(r"```(\w+)\n(.*?)```", text, re.S)


def run_in_order(page: str, where, monkeypatch) -> dict:
    """Run a page's console and python blocks in order in `where`; the python namespace."""
    monkeypatch.chdir(where)
    for folder in ("specs", "docs"):
        (where / folder).symlink_to(ROOT / folder)
    namespace: dict = {}
    for kind, body in blocks(page):
        if kind == "python":
            exec(compile(body, page, "exec"), namespace)  # noqa: S102
        elif kind == "console":
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, *output = chunk.rstrip("\n").split("\n")
                words = shlex.split(command)
                assert words[0] == "rnn-composer", command
                result = CliRunner().invoke(app, words[1:])
                assert result.exit_code == 0, (page, command, result.output)
                lines = result.output.splitlines()
                printed = [VARYING.sub("N updates/s", line).rstrip() for line in lines]
                for line in output:
                    if line.strip() != "...":
                        assert printed_in(line, printed), (page, command, line, printed)
    return namespace


def test_every_recipe_with_commands_is_run_here():
    here = (ROOT / "tests/test_recipes.py").read_text(encoding="utf-8")
    for path in sorted((ROOT / "docs/recipes").glob("*.md")):
        page = path.relative_to(ROOT).as_posix()
        shown = [kind for kind, _ in blocks(page) if kind in ("console", "python")]
        assert not shown or f'run_in_order("{page}"' in here, page


def test_streaming_in_pieces_gives_the_whole_run(tmp_path, monkeypatch):
    ns = run_in_order("docs/recipes/streaming.md", tmp_path, monkeypatch)
    net = Network.from_file(ROOT / "specs/lecture-elman.yaml")
    params = net.init_params(seed=0)
    whole = net.run(params, np.eye(4))["y"]
    np.testing.assert_allclose(np.concatenate(ns["rows"]), whole, atol=1e-6)
    # the state the command line's second piece ended with is the stepper's after 4 steps
    np.testing.assert_allclose(np.load(tmp_path / "s2.npz")["s.h"], ns["saved"]["s.h"], atol=1e-6)


def test_the_onnx_recipe_serves_what_numpy_computes(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    ns = run_in_order("docs/recipes/onnx.md", tmp_path, monkeypatch)
    net = Network.from_file(ROOT / "specs/running-sum.yaml")
    params = dict(np.load(tmp_path / "running-sum.weights.npz"))
    np.testing.assert_allclose(ns["o"], net.run(params, ns["x"])["o"], atol=1e-5)
    assert ns["o"][:, 0].argmax(-1).tolist() == [1, 0]  # positive, negative, as the page says


@pytest.mark.torch
def test_the_gpu_recipes_cpu_commands_run_and_its_refusal_is_the_pages(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared machine: PyTorch's threads would only contend
    try:
        run_in_order("docs/recipes/gpu.md", tmp_path, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    a, b = np.load(tmp_path / "numpy.weights.npz"), np.load(tmp_path / "torch.weights.npz")
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], atol=1e-4, err_msg=key)
    if not torch.cuda.is_available():
        data = str(ROOT / "specs/data/running-sum.npz")
        args = ["train", str(ROOT / "specs/running-sum.yaml"), "--data", data]
        result = CliRunner().invoke(app, [*args, "--engine", "torch", "--device", "cuda"])
        assert result.exit_code == 4
        line = result.output.strip().splitlines()[-1]
        assert line in (ROOT / "docs/recipes/gpu.md").read_text(encoding="utf-8"), line


@pytest.mark.dot
def test_the_slides_recipe_renders_with_the_options_its_pictures_were_drawn_with(
    tmp_path, monkeypatch
):
    (command,) = [b for kind, b in blocks("docs/recipes/slides.md") if kind == "console"]
    site = load_tool("site")
    assert " ".join(site.SLIDE) in command  # the pictures shown are this command's drawing
    assert f"--dpi {site.SLIDE_DPI}" in command
    run_in_order("docs/recipes/slides.md", tmp_path, monkeypatch)
    for view in ("folded", "unfolded"):
        assert (tmp_path / f"slide.{view}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for suffix in ("svg", "png"):
            assert (ROOT / f"docs/recipes/slide.{view}.{suffix}").exists()


def test_the_tutorials_language_model_trains_and_writes(tmp_path, monkeypatch):
    run_in_order("docs/tutorial.md", tmp_path, monkeypatch)
    assert (tmp_path / "lm.weights.npz").exists() and (tmp_path / "lm.vocab.json").exists()


def test_the_narx_recipe_runs(tmp_path, monkeypatch):
    run_in_order("docs/recipes/narx.md", tmp_path, monkeypatch)
    text = (ROOT / "docs/recipes/narx.md").read_text(encoding="utf-8")
    (body,) = re.findall(r"```yaml\n# specs/narx.yaml\n(.*?)```", text, re.S)
    lines = (ROOT / "specs/narx.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    assert body == "".join(line for line in lines if not line.startswith("#"))


def test_the_irnn_recipe_learns_what_the_tanh_layer_does_not(tmp_path, monkeypatch):
    run_in_order("docs/recipes/irnn.md", tmp_path, monkeypatch)
    assert (tmp_path / "irnn.weights.npz").exists() and (tmp_path / "tanh.weights.npz").exists()


def test_the_sunspot_recipe_beats_the_last_value_baseline(tmp_path, monkeypatch):
    pytest.importorskip("statsmodels", reason="statsmodels ships the sunspot series")
    ns = run_in_order("docs/recipes/sunspots.md", tmp_path, monkeypatch)
    text = (ROOT / "docs/recipes/sunspots.md").read_text(encoding="utf-8")
    (body,) = re.findall(r"```yaml\n# specs/sunspots.yaml\n(.*?)```", text, re.S)
    lines = (ROOT / "specs/sunspots.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    assert body == "".join(line for line in lines if not line.startswith("#"))
    # the figures the page prints, from the page's own errors
    (shown,) = re.findall(r"```text\n(.*?)```", text, re.S)
    for name, error in ns["errors"].items():
        mae, rmse = np.abs(error).mean(), np.sqrt(np.mean(error**2))
        assert f"{name:10}  MAE {mae:.1f}  RMSE {rmse:.1f}" in shown.splitlines()
    gru, naive = (np.abs(ns["errors"][k]).mean() for k in ("GRU", "last value"))
    assert gru < 0.6 * naive
    # evaluate's MAE (standardised) is the one computed here by hand from Network.run
    norm = json.loads((tmp_path / "sunspots.norm.json").read_text(encoding="utf-8"))
    (mae,) = re.findall(r"^y\.mae +(\S+)$", text, re.M)
    np.testing.assert_allclose(gru / norm["std"], float(mae), rtol=1e-4)
    # the naive forecast's MSE is the baseline `data series` prints for the held-out set
    held = np.load(tmp_path / "sunspots.val.npz")
    mse = np.mean((held["x"][:, -1, 0] - held["y"][:, 0, 0]) ** 2)
    assert (
        f"held-out: 62 windows, x (62, 20, 1), y (62, 1, 1); last-value baseline MSE {mse:.4g}"
        in text
    )
