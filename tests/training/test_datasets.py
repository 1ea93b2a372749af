"""Datasets: the Reber grammar's acceptor, and the shipped data is what the generator writes."""

from __future__ import annotations

import numpy as np
import pytest

from composer.arrays import read_arrays
from composer.cli.datasets import main
from composer.training.example_data import DATASETS, SYMBOLS, accepts, reber_string
from composer.training.text import read_vocab
from tests.conftest import ROOT
from tests.tolerances import assert_close

DATA = ROOT / "specs" / "data"


def test_reber_acceptor():
    rng = np.random.default_rng(0)
    strings = [reber_string(rng) for _ in range(200)]
    assert all(map(accepts, strings))
    for string in strings[:50]:
        assert not accepts(string[:-1])
        wrong_end = string[:-2] + ("P" if string[1] == "T" else "T") + "E"
        assert not accepts(wrong_end)
    assert accepts("BTBTXXVVETE") and not accepts("BTBTSSETE")  # no E right after S


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_shipped_data_is_what_the_generator_writes(name, tmp_path):
    assert main([name, "--output", str(tmp_path / "d.npz")]) == 0
    written, shipped = read_arrays(tmp_path / "d.npz"), read_arrays(DATA / f"{name}.npz")
    assert sorted(written) == sorted(shipped)
    for key in shipped:
        if shipped[key].dtype.kind == "f":
            # float64 values (a libm's sin, which may differ in its last bit from machine
            # to machine) rounded to the float32 shipped: one float32 ulp apart at most
            assert written[key].dtype == shipped[key].dtype, key
            assert_close(written[key], shipped[key], np.float32, 2, err_msg=key)
        else:  # exact: labels and ids, integers drawn from the same seed
            np.testing.assert_array_equal(written[key], shipped[key], err_msg=key)
    assert (DATA / f"{name}.npz").stat().st_size < 400_000


def test_the_reber_vocabulary_names_the_one_hot_columns():
    assert read_vocab(DATA / "reber.vocab.json")["tokens"] == list(SYMBOLS)
