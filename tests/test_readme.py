"""Every example in the README runs, and prints what the README shows."""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from composer.cli import app
from tests.tolerances import printed_in

README = (Path(__file__).parent.parent / "README.md").read_text()


def console_examples(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for each `$ ` line of a Markdown text's console blocks."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *output = chunk.rstrip("\n").split("\n")
            examples.append((command, output))
    return examples


EXAMPLES = console_examples(README)


@pytest.mark.parametrize(("command", "output"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_command(command, output, tmp_path, monkeypatch):
    check_command(command, output, tmp_path, monkeypatch)


#: what differs from run to run, and so is compared by its form only: a training speed
VARYING = re.compile(r"\d[\d,.]* updates/s")


def check_command(command, output, tmp_path, monkeypatch):
    """Run one documented `rnn-composer` command in tmp_path; every shown line is printed."""
    words = shlex.split(command.split(" | ")[0])
    assert words[0] == "rnn-composer"
    args = [match for w in words[1:] for match in (sorted(glob.glob(w)) if "*" in w else [w])]
    missing = [
        a
        for a in args
        if a.endswith((".yaml", ".npz", ".csv"))
        and "/" not in a
        and not Path(a).exists()
        and not any(o in args for o in ("--output", "-o"))
    ]
    if missing:
        pytest.skip(f"illustrates a file of the reader's: {missing}")
    root = Path(__file__).parent.parent
    args = [str(root / a) if (root / a).exists() else a for a in args]
    monkeypatch.chdir(tmp_path)  # whatever the example writes lands here
    result = CliRunner().invoke(app, args)
    reports_errors = any(re.search(r":\d+:\d+: ", line) for line in output)
    assert result.exit_code == (3 if reports_errors else 0), result.output
    shown = [VARYING.sub("N updates/s", line) for line in output if line.strip() != "..."]
    printed = (result.stdout + result.stderr).replace(str(root) + "/", "")
    printed = VARYING.sub("N updates/s", printed)
    for line in shown:
        assert printed_in(line, printed.splitlines()), (line, printed)


def test_readme_python_example(monkeypatch):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(Path(__file__).parent.parent)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["net"].param_count == 131
    assert namespace["y"].shape == (4, 3)


@pytest.mark.parametrize("text", re.findall(r"```yaml\n(.*?)```", README, re.S))
def test_readme_spec_is_valid(text):
    from composer.graph.folded import build
    from composer.spec.reader import read_spec_text

    build(read_spec_text(text, "README.md", "yaml").spec)
