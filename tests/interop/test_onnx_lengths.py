"""`--lengths` in ONNX: `<input>.lengths` wired to `sequence_lens` (or the Scan loops'
masks), and outputs that follow the lengths contract, equal to `run` with lengths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from composer import build, init_params, run
from composer.errors import SpecError
from composer.interop.onnx import build_model, run_model
from tests.builders import connection, input_, layer, output, readout, spec

pytest.importorskip("onnxruntime")

LENGTHS = np.array([7, 1, 4, 6, 7])  # length 1, the full length and between
WAYS = {
    "forward": {},
    "backward": {"direction": "backward"},
    "bi": {"bidirectional": True},
    "dilated": {"delay": 2},
    "dilated-backward": {"delay": 3, "direction": "backward"},
    "feedback": None,
}
ALIGNMENTS = {
    "many-to-many": "many-to-many",
    "many-to-one": "many-to-one",
    "delay-2": {"preset": "many-to-many", "delay": 2},
}
CASES = list(itertools.product(["elman", "lstm", "gru"], WAYS, ALIGNMENTS))


def stack(kind: str, way: str, alignment: str):
    fields = WAYS[way] if way != "feedback" else {}
    layers = [
        layer("a", kind, "x", 4, **fields),
        layer("b", kind, "a", 3, **fields, output=readout(2, "tanh")),
    ]
    # feedback: b's output two steps back into a, and a skip from the input into b
    loops = [connection("b", "a", 2), connection("x", "b", 1)] if way == "feedback" else []
    return build(
        spec(
            layers,
            inputs=[input_("x", 3)],
            outputs=[output("o", "b")],
            alignment=ALIGNMENTS[alignment],
            connections=loops,
        )
    )


@pytest.fixture(scope="module")
def exported():
    """Each case's graph, weights and model per dtype, exported once."""
    cache = {}

    def get(case, dtype):
        if (case, dtype) not in cache:
            graph = stack(*case)
            params = {
                k: np.random.default_rng(3).normal(0, 0.5, v.shape)
                for k, v in init_params(graph).items()
            }
            model, _ = build_model(graph, params, dtype=dtype, lengths=True)
            cache[case, dtype] = graph, params, model
        return cache[case, dtype]

    return get


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_padded_batches_give_what_run_gives(exported, case, dtype):
    graph, params, model = exported(case, dtype)
    for lengths, width in [(LENGTHS, 7), (np.array([1, 1]), 3), (np.array([3, 5]), 9)]:
        x = np.random.default_rng(width).normal(size=(len(lengths), width, 3))
        x[np.arange(width)[np.newaxis] >= lengths[:, np.newaxis]] = 1e3  # loud padding
        got = run_model(model, {"x": x}, {"x": lengths})
        want = run(graph, params, {"x": x}, dtype=dtype, lengths={"x": lengths})
        assert sorted(got) == sorted(want) == ["o", "o.lengths"]
        np.testing.assert_array_equal(got["o.lengths"], want["o.lengths"])
        assert got["o"].shape == want["o"].shape
        tolerance = 1e-5 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(got["o"], want["o"], atol=tolerance, rtol=0)


def test_lengths_reach_the_operators_as_sequence_lens(exported):
    _, _, model = exported(("gru", "bi", "many-to-one"), "float32")
    names = [i.name for i in model.graph.input]
    assert names == ["x", "x.lengths"]
    assert model.graph.input[1].type.tensor_type.elem_type == 7  # int64
    nodes = [n for n in model.graph.node if n.op_type == "GRU"]
    assert len(nodes) == 2  # one per layer
    for node in nodes:
        assert len(node.input) == 5 and node.input[4]  # X, W, R, B, sequence_lens
    assert [o.name for o in model.graph.output] == ["o", "o.lengths"]


def test_without_lengths_the_whole_array_is_each_item(exported):
    graph, params, model = exported(("lstm", "forward", "many-to-many"), "float32")
    x = np.random.default_rng(5).normal(size=(2, 5, 3))
    got = run_model(model, {"x": x})  # the lengths input filled with T_in
    np.testing.assert_array_equal(got["o.lengths"], [5, 5])
    np.testing.assert_allclose(got["o"], run(graph, params, {"x": x})["o"], atol=1e-5, rtol=0)


def test_an_unrolled_network_refuses_lengths_naming_why():
    graph = build(spec([layer("d", "elman", "x", 3, active="1:")], outputs=[output("o")]))
    with pytest.raises(SpecError, match=r"only with a dynamic T.*the active steps of `d` \(`1:`\)"):
        build_model(graph, init_params(graph), steps=5, lengths=True)
