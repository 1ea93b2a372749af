"""Doctest collection on a core-only install: a module of `composer/` that needs an extra
which is not installed is skipped with its reason instead of failing to collect."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

from composer.interop import MissingExtra

PACKAGE = Path(__file__).resolve().parent / "composer"
EXTRAS = {
    "torch": "torch",
    "safetensors": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "numba": "fast",
}
# Modules that import their extra only when called, but whose examples call it.
EXAMPLES_NEED = {"interop/onnx_graph.py": "onnx"}


class NeedsExtra(pytest.File):
    """A module whose doctests cannot be collected here: collecting it skips, with why."""

    reason: str = ""

    def collect(self):
        pytest.skip(self.reason)


def missing_extra(path: Path) -> str | None:
    """Why the module at `path` cannot be imported without an extra, or None if it can."""
    if path.suffix != ".py" or PACKAGE not in path.resolve().parents:
        return None
    name = ".".join(path.resolve().relative_to(PACKAGE.parent).with_suffix("").parts)
    needed = EXAMPLES_NEED.get(path.resolve().relative_to(PACKAGE).as_posix())
    if needed and importlib.util.find_spec(needed) is None:
        return f"the examples of {name} need {needed}: pip install 'rnn-composer[{EXTRAS[needed]}]'"
    try:
        importlib.import_module(name.removesuffix(".__init__"))
    except MissingExtra as err:
        return f"{name} needs an extra: {err}"
    except ModuleNotFoundError as err:
        root = (err.name or "").split(".")[0]
        if root not in EXTRAS:
            raise
        return f"{name} needs {root}: pip install 'rnn-composer[{EXTRAS[root]}]'"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent):
    collectors = yield
    reason = missing_extra(file_path) if collectors else None
    if reason is None:
        return collectors
    skipped = NeedsExtra.from_parent(parent, path=file_path)
    skipped.reason = reason
    return [skipped]
