"""Input arrays and files: step counts inferred from lengths and windows, `.npy`/`.npz`/`.csv`
read and checked, with errors that name the file, key, expected and received shapes."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.inputs import infer_steps, read_csv, read_inputs
from composer.errors import DataError
from composer.graph.folded import build
from composer.spec.windows import fitting_steps
from tests.builders import input_, layer, lecture, output, spec


def _lecture_graph(window=None):
    """The lecture's network at six steps, its input `x` present in `window`."""
    return build(lecture(inputs=[input_("x", 3, window)], steps=6))


@pytest.mark.parametrize(
    ("window", "length", "expected"),
    [(":", 5, 5), (":-3", 5, 8), ("2:", 4, 6), ("0:1", 1, 6), ("-2:", 2, 6), ("1:-1", 3, 5)],
)
def test_steps_are_inferred_from_input_lengths_and_windows(window, length, expected):
    graph = _lecture_graph(window)
    assert infer_steps(graph, {"x": np.zeros((1, length, 3))}) == expected


def test_windows_give_their_length_as_exact_step_ranges():
    assert fitting_steps(":-3", 5) == [range(8, 9)]
    assert fitting_steps("-5:3", 2) == [range(2, 3), range(6, 7)]
    assert fitting_steps("0:1", 2) == []


def test_inferring_steps_names_what_does_not_fit():
    with pytest.raises(DataError, match="no number of steps"):
        infer_steps(_lecture_graph("0:1"), {"x": np.zeros((1, 2, 3))})
    with pytest.raises(DataError, match="cannot tell T"):
        infer_steps(_lecture_graph("-8:"), {"x": np.zeros((1, 8, 3))})


# ------------------------------------------------------------------ files


def _two_inputs():
    return build(
        spec(
            [layer("l", input=["a", "b"], size=3)],
            inputs=[input_("a", 2), input_("b", 1)],
            outputs=[output("o")],
        )
    )


def test_reads_npy_npz_and_csv(tmp_path):
    graph = _lecture_graph()
    x = np.arange(18.0).reshape(6, 3)
    np.save(tmp_path / "x.npy", x)
    arrays, flat, _ = read_inputs(tmp_path / "x.npy", graph)
    assert flat and arrays["x"].shape == (1, 6, 3)
    np.savez(tmp_path / "x.npz", x=np.stack([x, x]))
    arrays, flat, _ = read_inputs(tmp_path / "x.npz", graph)
    assert not flat and arrays["x"].shape == (2, 6, 3)
    (tmp_path / "x.csv").write_text("\n".join(",".join(map(str, row)) for row in x) + "\n\n")
    arrays, flat, _ = read_inputs(tmp_path / "x.csv", graph)
    assert flat
    np.testing.assert_array_equal(arrays["x"][0], x)  # exact: repr of a float reads back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a,b,c\n1,2,3\n", r"row 1, column 1: 'a' is not a number; a header line"),
        ("1,2,3\n4,5\n", "row 2 has 2 columns, expected 3 like row 1"),
        ("1,2,3\n4,x,6\n", r"row 2, column 2: 'x' is not a number$"),
        ("1,2,nan\n", "row 1, column 3: 'nan' is not finite"),
    ],
)
def test_csv_errors_name_row_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_csv(path)


def test_input_file_errors_name_file_key_expected_and_received(tmp_path):
    graph = _two_inputs()
    np.savez(tmp_path / "in.npz", a=np.zeros((1, 4, 2)), c=np.zeros((1, 4, 1)))
    with pytest.raises(DataError, match=r"in.npz: missing 'b'; unexpected 'c'"):
        read_inputs(tmp_path / "in.npz", graph)
    np.savez(tmp_path / "in.npz", a=np.zeros((1, 4, 2)), b=np.zeros((1, 4, 5)))
    with pytest.raises(DataError, match=r"key 'b': expected 1 features .* got 5"):
        read_inputs(tmp_path / "in.npz", graph)
    np.savez(tmp_path / "in.npz", a=np.zeros((4, 2)), b=np.zeros((1, 4, 1)))
    with pytest.raises(DataError, match=r"every input as \(B, T_in, F\)"):
        read_inputs(tmp_path / "in.npz", graph)
    np.savez(tmp_path / "in.npz", a=np.zeros((2, 4, 2)), b=np.zeros((3, 4, 1)))
    with pytest.raises(DataError, match="batch size"):
        read_inputs(tmp_path / "in.npz", graph)
    np.save(tmp_path / "in.npy", np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"a \.npy file holds one input.*a, b"):
        read_inputs(tmp_path / "in.npy", graph)
    (tmp_path / "in.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=r"a \.csv file holds one input"):
        read_inputs(tmp_path / "in.csv", graph)
    np.save(tmp_path / "one.npy", np.zeros((2, 2, 4, 3)))
    with pytest.raises(DataError, match=r"\(2, 2, 4, 3\)"):
        read_inputs(tmp_path / "one.npy", _lecture_graph())


# -- a CSV's parse within its estimate (issue 18, item 20) ---------------------------------


@pytest.mark.parametrize(
    ("rows", "columns", "cell"),
    [(20_000, 1, "1"), (5_000, 4, "0.25"), (1, 40_000, "0"), (300, 300, "-1.5e-3")],
)
def test_reading_a_csv_stays_within_its_estimate(tmp_path, rows, columns, cell):
    import tracemalloc

    from composer.engine.inputs import csv_bytes, read_csv

    path = tmp_path / "x.csv"
    path.write_text(("\n".join([",".join([cell] * columns)] * rows)) + "\n\n")
    tracemalloc.start()
    try:
        array = read_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert array.shape == (rows, columns) and array[0, 0] == float(cell)
    assert peak <= csv_bytes(path), (peak, csv_bytes(path))
    assert csv_bytes(path) < 64 * path.stat().st_size + (32 << 20)  # not absurdly high
