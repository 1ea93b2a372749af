"""Shared fixtures and paths: the repository root and the example specs in `specs/`."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


@pytest.fixture(params=SPECS, ids=[p.stem for p in SPECS])
def spec_path(request) -> Path:
    return request.param
