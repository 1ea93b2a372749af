"""Parameters: shapes, counts and formulas, seeded init, `.npz` round trips and checks."""

from __future__ import annotations

import numpy as np
import pytest

from composer.errors import DataError
from composer.graph.folded import build
from composer.graph.weights import init_params, load_params, param_table, save_params
from tests.builders import layer, lecture, readout


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("elman", {"rnn.Wx": (3, 4), "rnn.Ws": (4, 4), "rnn.b": (4,)}),
        ("lstm", {"rnn.Wx": (3, 16), "rnn.Ws": (4, 16), "rnn.b": (16,)}),
        ("gru", {"rnn.Wx": (3, 12), "rnn.Ws": (4, 12), "rnn.bx": (12,), "rnn.bs": (12,)}),
    ],
)
def test_shapes_follow_the_design_table(kind, expected):
    spec = lecture(layers=[layer("rnn", kind, output=readout(2))])
    table = {i.key: i.shape for i in param_table(build(spec))}
    assert table == {**expected, "rnn.Wy": (4, 2), "rnn.by": (2,)}


def test_counts_match_shapes_and_the_lecture_total():
    table = param_table(build(lecture()))
    assert [(i.key, i.formula, i.count) for i in table] == [
        ("rnn.Wx", "in*H", 12),
        ("rnn.Ws", "H*H", 16),
        ("rnn.b", "H", 4),
        ("rnn.Wy", "H*out", 8),
        ("rnn.by", "out", 2),
    ]


def test_init_is_seeded_and_within_pytorch_ranges():
    graph = build(lecture())
    first, again, other = init_params(graph, 3), init_params(graph, 3), init_params(graph, 4)
    assert all(np.array_equal(first[k], again[k]) for k in first)  # exact: the same seed
    assert not np.array_equal(first["rnn.Wx"], other["rnn.Wx"])
    assert np.abs(first["rnn.Ws"]).max() <= 0.5  # 1/sqrt(H), H = 4
    assert np.abs(first["rnn.b"]).max() <= 1.0  # bias_ih + bias_hh
    assert first["rnn.Wx"].dtype == np.float32
    assert init_params(graph, 3, "float64")["rnn.Wx"].dtype == np.float64


def test_npz_round_trip_and_checks(tmp_path):
    graph = build(lecture())
    params = init_params(graph, 0, "float64")
    path = tmp_path / "w.npz"
    save_params(path, params)
    loaded = load_params(path, graph, "float64")
    assert all(np.array_equal(params[k], loaded[k]) for k in params)  # exact: stored, read back
    bad = dict(params, **{"rnn.Wx": params["rnn.Wx"].T})
    save_params(path, bad)
    with pytest.raises(
        DataError,
        match=r"'rnn.Wx': expected shape \(3, 4\), got \(4, 3\) "
        r"\(transposed\?\)",
    ):
        load_params(path, graph)
    save_params(
        path, {k: v for k, v in params.items() if k != "rnn.b"} | {"rnn.c": params["rnn.b"]}
    )
    with pytest.raises(DataError, match=r"missing rnn.b \(4,\); unexpected rnn.c \(4,\)"):
        load_params(path, graph)
    save_params(path, dict(params, **{"rnn.b": np.array([0, np.nan, 0, 0])}))
    with pytest.raises(DataError, match="NaN or Inf"):
        load_params(path, graph)
