"""The features a converter must support exactly or refuse are each found, with the field."""

from __future__ import annotations

import pytest

from composer.errors import SpecError
from composer.graph.features import extended_features
from composer.graph.folded import build
from composer.spec.reader import load_spec
from tests.conftest import SPECS
from tests.oracles import SCENARIOS

EXPECTED = {
    "narx": {("connections", 0), ("layers", 0, "input")},
    "tdnn": {("layers", 0, "input")},
    "backward-taps": {("layers", 0, "input")},
    "bidirectional-sum": {("layers", 0, "merge"), ("layers", 2, "merge")},
    "bidirectional-mean-mul": {("layers", 0, "merge"), ("layers", 2, "merge")},
    **{
        f"bidirectional-encoder-{merge}": {("layers", 0, "merge")}
        for merge in ("sum-gru-elman", "mean-lstm-lstm", "mul-lstm-gru")
    },
    "two-pass": {("layers", 1, "initial_state")},
    "inputless-decoder": {("layers", 1)},
}

MERGES = {"bidirectional-sum", "bidirectional-mean-mul"} | {
    name for name in EXPECTED if name.startswith("bidirectional-encoder")
}


def test_each_scenario_reports_exactly_its_extended_features():
    for name, (network, _, _) in SCENARIOS.items():
        paths = {path for path, _ in extended_features(build(network))}
        assert paths == EXPECTED.get(name, set()), name


def test_the_example_specs_beyond_plain_stacks_are_the_tapped_ones():
    extended = {p.stem for p in SPECS if extended_features(build(load_spec(p)))}
    assert extended == {"narx", "tdnn"}


def test_converters_refuse_an_extended_network_in_one_line_naming_the_field():
    pytest.importorskip("torch")
    from composer.interop.torch_module import to_torch

    for name in EXPECTED:
        graph = build(SCENARIOS[name][0])
        if name in MERGES:  # the module merges both directions as the engine does
            assert not extended_features(graph, merges=False)
            continue
        with pytest.raises(SpecError) as caught:
            to_torch(graph)
        assert caught.value.path in EXPECTED[name], name
        assert "\n" not in str(caught.value)
        assert caught.value.message.startswith("the PyTorch module does not support ")


def test_onnx_export_refuses_an_extended_network_naming_the_field():
    pytest.importorskip("onnx")
    from composer.interop.onnx import export_mode

    for name in EXPECTED:
        with pytest.raises(SpecError) as caught:
            export_mode(build(SCENARIOS[name][0]), "float32", 8, False)
        assert caught.value.path in EXPECTED[name], name
        assert caught.value.message.startswith("ONNX export does not support ")
