"""Layer options in the diagrams: dropped edges say so, a reset-before GRU is tagged."""

from __future__ import annotations

from composer.draw.folded_picture import folded_dot
from composer.graph.folded import build
from tests.builders import layer, readout, spec


def test_the_folded_diagram_names_each_dropout_and_the_gru_variant():
    network = spec(
        [
            layer(
                "a",
                "gru",
                output=readout(2),
                reset_after=False,
                dropout=0.2,
                recurrent_dropout=0.3,
                output_dropout=0.1,
            )
        ]
    )
    dot = folded_dot(build(network))
    for label in ("Wx, dropout 0.2", "Ws, dropout 0.3", "Wy, dropout 0.1"):
        assert label in dot
    assert "GRU h (reset before)" in dot
    plain = folded_dot(build(spec([layer("a", "gru", output=readout(2))])))
    assert "dropout" not in plain and "reset before" not in plain


def test_a_projected_lstm_shows_its_state_and_cell_sizes():
    network = spec([layer("a", "lstm", size=6, proj_size=4, output=readout(2))])
    dot = folded_dot(build(network))
    assert "projected LSTM h (4), c (6)" in dot
    plain = folded_dot(build(spec([layer("a", "lstm", size=6, output=readout(2))])))
    assert "projected" not in plain and "c (6)" not in plain
