"""Shared fixtures and paths: the repository root and the example specs in `specs/`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
#: a test that runs PyTorch: skipped, with the reason, on a core-only install
NEEDS_TORCH = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="needs torch: pip install 'rnn-composer[torch]'",
)


@pytest.fixture(params=SPECS, ids=[p.stem for p in SPECS])
def spec_path(request) -> Path:
    return request.param


def operations(work, *args) -> int:
    """How many calls (Python and C, generator resumptions included) `work(*args)` makes:
    a measure of work that a busy machine cannot change, for tests of how work grows."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        work(*args)
    finally:
        sys.setprofile(None)
    return count
