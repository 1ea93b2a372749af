"""Padded batches through the command line: `run --lengths`, `<input>.lengths` in inputs
and data files, `<output>.lengths` in the outputs, and bad lengths refused with exit 4."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from tests.builders import input_, layer, output, readout, spec, write_spec
from tests.conftest import SPECS

runner = CliRunner()
SENTIMENT = next(p for p in SPECS if p.stem == "sentiment")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def padded(tmp_path):
    """Three sentences of 10, 7 and 4 steps, padded to 10 with large values."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 10, 50)) * 1e3
    for b, n in enumerate([10, 7, 4]):
        x[b, :n] = rng.normal(size=(n, 50))
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x=x, **{"x.lengths": np.array([10, 7, 4])})
    return tmp_path, x


def test_lengths_option_and_file_key_agree_with_each_item_alone(padded):
    folder, x = padded
    a = invoke(
        "run", SENTIMENT, "-i", folder / "x.npy", "--lengths", "10,7,4", "-o", folder / "a.npz"
    )
    b = invoke("run", SENTIMENT, "-i", folder / "x.npz", "-o", folder / "b.npz")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    first, second = np.load(folder / "a.npz"), np.load(folder / "b.npz")
    assert sorted(first) == ["o", "o.lengths"] and first["o.lengths"].tolist() == [1, 1, 1]
    np.testing.assert_array_equal(first["o"], second["o"])  # exact: the same run
    for item, n in enumerate([10, 7, 4]):
        np.save(folder / "alone.npy", x[item, :n])
        alone = invoke(
            "run", SENTIMENT, "-i", folder / "alone.npy", "-o", folder / "c.npz", "--force"
        )
        assert alone.exit_code == 0, alone.output
        np.testing.assert_allclose(first["o"][item], np.load(folder / "c.npz")["o"], atol=1e-6)


def test_the_report_shows_each_item_and_the_lengths(padded):
    folder, _ = padded
    result = invoke("run", SENTIMENT, "-i", folder / "x.npz")
    assert result.exit_code == 0, result.output
    assert "padded batch of 3 (T = 4, 7, 10 per item)" in result.stdout
    assert "o.lengths = [1, 1, 1]" in result.stdout
    assert "item 2: 1 step, o[3] =" in result.stdout


def test_a_lengths_file_is_read_too(padded):
    folder, _ = padded
    np.save(folder / "lengths.npy", np.array([10, 7, 4]))
    result = invoke("run", SENTIMENT, "-i", folder / "x.npy", "--lengths", folder / "lengths.npy")
    assert result.exit_code == 0, result.output
    assert "o.lengths = [1, 1, 1]" in result.stdout


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ("10,7", "one length per batch item, shape (3,), got (2,)"),
        ("0,7,4", "item 0 has length 0"),
        ("10,-1,4", "item 1 has length -1"),
        ("10,7,11", "item 2 has length 11, longer than the array's 10 steps"),
        ("ten,7,4", "whole numbers separated by commas"),
        ("7.5,7,4", "whole numbers separated by commas"),
    ],
)
def test_bad_lengths_exit_4_naming_the_item(padded, lengths, message):
    folder, _ = padded
    result = invoke("run", SENTIMENT, "-i", folder / "x.npy", "--lengths", lengths)
    assert result.exit_code == 4, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_lengths_that_are_not_integers_in_a_file_exit_4(padded):
    folder, x = padded
    np.savez(folder / "f.npz", x=x, **{"x.lengths": np.array([10.0, 7.0, 4.0])})
    result = invoke("run", SENTIMENT, "-i", folder / "f.npz")
    assert result.exit_code == 4
    assert "f.npz: key 'x.lengths': expected integers, got dtype float64" in result.stderr


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([5, 6], "batch item 1: input 'x' has 6 steps in window `0:5`: no number of steps T"),
        ([5, 3], "batch item 1: outputs[0].window: window `5:` of `y` selects no step of 0..2"),
    ],
)
def test_lengths_no_t_fits_exit_4(tmp_path, lengths, message):
    network = spec(
        [layer("rnn", "gru", size=4, output=readout(2))],
        inputs=[input_("x", 3, window="0:5")],
        outputs=[output("y", window="5:")],
        steps=8,
    )
    path = write_spec(tmp_path, network)
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 6, 3)), **{"x.lengths": np.array(lengths)})
    result = invoke("run", path, "-i", tmp_path / "x.npz")
    assert result.exit_code == 4, result.output
    assert message in result.stderr


def test_lengths_with_a_single_sequence_or_several_inputs_are_refused(padded, tmp_path):
    folder, x = padded
    np.save(folder / "one.npy", x[0])
    result = invoke("run", SENTIMENT, "-i", folder / "one.npy", "--lengths", "4")
    assert result.exit_code == 4 and "give (B, T_in, F) inputs" in result.stderr
    both = invoke("run", SENTIMENT, "-i", folder / "x.npz", "--lengths", "10,7,4")
    assert both.exit_code == 2 and "give them once" in both.output
    pair = next(p for p in SPECS if p.stem == "encoder-decoder")
    several = invoke("run", pair, "-i", "specs/data/pair.npz", "--lengths", "5,5")
    assert several.exit_code == 2 and "<input>.lengths" in several.output


def test_train_takes_lengths_in_its_data(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(24, 6, 3))
    lengths = rng.integers(1, 7, size=24)
    y = np.stack([x[b, : lengths[b]].sum(axis=0)[:2] for b in range(24)])[:, np.newaxis]
    network = spec(
        [layer("rnn", "gru", size=8, output=readout(2))],
        inputs=[input_("x", 3)],
        alignment="many-to-one",
        steps=6,
    )
    path = write_spec(tmp_path, network)
    np.savez(tmp_path / "d.npz", x=x, y=y, **{"x.lengths": lengths})
    args = ("train", path, "--data", tmp_path / "d.npz", "--epochs", 3, "-o", tmp_path / "w.npz")
    assert invoke(*args).exit_code == 0
    np.savez(tmp_path / "bad.npz", x=x, y=y, **{"x.lengths": lengths * 0})
    bad = invoke("train", path, "--data", tmp_path / "bad.npz", "-o", tmp_path / "v.npz")
    assert bad.exit_code == 4 and "bad.npz: key 'x.lengths': item 0 has length 0" in bad.stderr
