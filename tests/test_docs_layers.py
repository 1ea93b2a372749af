"""Every spec in docs/layers.md is valid, and the message it quotes is the one printed."""

from __future__ import annotations

import re

import pytest

from composer.errors import SpecError
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.spec.reader import read_spec_text
from tests.conftest import ROOT

TEXT = (ROOT / "docs" / "layers.md").read_text()
SPECS = re.findall(r"```yaml\n(.*?)```", TEXT, re.S)


def test_the_page_has_its_examples():
    assert len(SPECS) >= 4


@pytest.mark.parametrize("text", SPECS)
def test_each_documented_spec_builds_and_initialises(text):
    graph = build(read_spec_text(text, "docs/layers.md", "yaml").spec)
    assert init_params(graph, 0)


def test_the_quoted_message_is_printed():
    quoted = re.search(r"```text\n(.*?)\n```", TEXT, re.S).group(1)
    text = "inputs: [{name: x, size: 3}]\noutputs: [{name: y, from: a}]\nlayers:\n  - "
    text += "{name: a, kind: lstm, input: x, state_size: 4, reset_after: false}\n"
    with pytest.raises(SpecError) as caught:
        read_spec_text(text, "net.yaml", "yaml")
    assert str(caught.value) == quoted
