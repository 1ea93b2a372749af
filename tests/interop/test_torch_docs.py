"""The PyTorch section of docs/interop.md runs: its `python` and `console` blocks in order,
in one directory, the spec of its `yaml` block as `tagger.yaml`, each command printing
the lines shown under it."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from composer.cli import app
from tests.conftest import ROOT
from tests.tolerances import printed_in

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

pytestmark = pytest.mark.torch

TEXT = (ROOT / "docs" / "interop.md").read_text()
SECTION = TEXT[TEXT.index("## PyTorch") : TEXT.index("## ONNX")]
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", SECTION, re.S)


def _commands(block: str):
    for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
        command, *output = chunk.rstrip("\n").split("\n")
        yield command, output


def test_the_section_shows_each_kind_of_block():
    kinds = [kind for kind, _ in BLOCKS]
    assert kinds.count("yaml") == 1 and kinds.count("python") >= 3 and "console" in kinds


def test_the_pytorch_section_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared machine: PyTorch's threads would only contend
    namespace: dict = {}
    try:
        for kind, body in BLOCKS:
            if kind == "yaml":
                (tmp_path / "tagger.yaml").write_text(body)
            elif kind == "python":
                exec(compile(body, "docs/interop.md", "exec"), namespace)  # noqa: S102
            elif kind == "console":
                for command, output in _commands(body):
                    words = shlex.split(command)
                    assert words[0] == "rnn-composer", command
                    result = CliRunner().invoke(app, words[1:])
                    assert result.exit_code == 0, (command, result.output)
                    printed = [line.rstrip() for line in result.output.splitlines()]
                    for line in output:
                        assert printed_in(line, printed), (command, line, printed)
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "tagger.svg").read_text().startswith("<?xml")
    assert (tmp_path / "running-sum.weights.npz").exists()
