"""Padded batches with lengths (issue 10): each item gives exactly what it gives alone.

The oracles are PyTorch's packed sequences, and each item run alone on its arrays cut to
its lengths. Padding is filled with large random values, so that any leak shows.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.engine import batches, executor
from composer.engine.batches import packable, run
from composer.engine.inputs import input_sizes
from composer.engine.lengths import check_lengths, item_steps
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.spec.reader import load_spec
from composer.spec.windows import parse_window
from tests.builders import (
    connection,
    input_,
    layer,
    output,
    random_input,
    random_networks,
    readout,
    spec,
)
from tests.conftest import SPECS
from tests.engine.test_executor import _stacked_spec, _torch_network, normal_params
from tests.oracles import SCENARIOS

TOLERANCE = 1e-10  # float64, against PyTorch
SAME = 1e-12  # float64, the same computation over a different number of rows
PADDING = 1e3  # the scale of the values past each item's length


def lengths_for(graph, steps: list[int]) -> dict[str, np.ndarray]:
    """Each input's lengths for batch items of T `steps`: its window's steps at each T."""
    return {
        name: np.array([len(parse_window(graph.nodes[name]["window"], t)) for t in steps])
        for name in input_sizes(graph)
    }


def padded_inputs(graph, lengths, rng, extra: int = 0) -> dict[str, np.ndarray]:
    """(B, longest + `extra`, F) inputs: normal values on each item's real steps, padding
    `PADDING` times larger after them."""
    arrays = {}
    for name in input_sizes(graph):
        counts = lengths[name]
        array = random_input(graph, name, len(counts), max(counts) + extra, rng, PADDING)
        for item, count in enumerate(counts):
            array[item, :count] = random_input(graph, name, 1, count, rng)[0]
        arrays[name] = array
    return arrays


def assert_each_alone(graph, params, arrays, lengths) -> dict[str, np.ndarray]:
    """The padded batch's outputs are each item's outputs alone, then zeros; return them."""
    out = run(graph, params, arrays, dtype="float64", lengths=lengths)
    batch = len(next(iter(lengths.values())))
    counts = {}
    for item in range(batch):
        cut = {
            name: array[item : item + 1, : lengths[name][item]] for name, array in arrays.items()
        }
        alone = run(graph, params, cut, dtype="float64")
        assert set(out) == set(alone) | {f"{name}.lengths" for name in alone}
        for name, expected in alone.items():
            steps = expected.shape[1]
            counts.setdefault(name, []).append(steps)
            where = f"output {name}, item {item}"
            np.testing.assert_allclose(out[name][item, :steps], expected[0], 0, SAME, err_msg=where)
            assert not out[name][item, steps:].any(), f"{where}: not zero past its steps"
    for name, steps in counts.items():
        assert out[f"{name}.lengths"].dtype == np.int64
        assert out[f"{name}.lengths"].tolist() == steps
        assert out[name].shape[1] == max(steps)
    return out


# ------------------------------------------------------------------ PyTorch as the oracle


@pytest.mark.torch
@pytest.mark.parametrize("alignment", ["many-to-one", "many-to-many"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"], ids=["rnn-tanh", "lstm", "gru"])
def test_matches_pytorch_packed_sequences(kind, layers, bidirectional, alignment):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    F, H, T = 3, 4, 7
    activation = "tanh" if kind == "elman" else None
    model, params = _torch_network(kind, activation, layers, bidirectional, F, H, seed=layers)
    graph = build(_stacked_spec(kind, activation, layers, bidirectional, F, H, alignment))
    rng = np.random.default_rng(layers)
    lengths = rng.permutation([T, 3, 1, T, 5])  # unsorted, ties, one step, the whole array
    x = padded_inputs(graph, {"x": lengths}, rng)["x"]
    packed = pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        states, counts = pad_packed_sequence(model(packed)[0], batch_first=True)
    expected = states.numpy()
    assert counts.tolist() == lengths.tolist()
    if alignment == "many-to-one":  # the last real step's states, both directions
        expected, counts = expected[np.arange(len(lengths)), lengths - 1][:, np.newaxis], 1
    out = run(graph, params, {"x": x}, dtype="float64", lengths={"x": lengths})
    assert out["o"].shape == expected.shape
    np.testing.assert_allclose(out["o"], expected, atol=TOLERANCE, rtol=0)
    expected_counts = np.broadcast_to(counts, lengths.shape)
    assert out["o.lengths"].tolist() == expected_counts.tolist()
    for item, steps in enumerate(expected_counts.tolist()):
        assert not out["o"][item, steps:].any(), f"item {item}: padding positions not zero"


# ------------------------------------------------------------------ each item alone


def _relative_encoder_decoder():
    """The hand-over at each item's own step T - 3: windows relative to the end."""
    return spec(
        [
            layer("enc", "gru", "x", 4, active=":-3"),
            layer("dec", "lstm", "d", 4, active="-3:", initial_state="enc", output=readout(2)),
        ],
        inputs=[input_("x", 3), input_("d", 2, window="-3:")],
        outputs=[output("o", "dec")],
        alignment={"inputs": ":-3", "outputs": "-3:"},
    )


def _window_inside():
    """A bidirectional layer read at steps T-3 and T-2 only, and a backward one at step 0."""
    return spec(
        [
            layer("bi", "gru", "x", 3, bidirectional=True),
            layer("back", "elman", "bi", 2, direction="backward"),
        ],
        outputs=[output("o", "bi", "-3:-1"), output("first", "back", "0:1")],
    )


def _two_prefix_inputs():
    """Two inputs ending at different steps, one read two steps late: both packed."""
    return spec(
        [layer("l", "lstm", ["a", "b"], 4), layer("d", "dense", "l", 2)],
        inputs=[input_("a", 2), input_("b", 3, window=":-2")],
        outputs=[output("o", "d", "1:")],
        connections=[connection("b", "l", 2)],
    )


NETWORKS = {
    **{f"spec:{path.stem}": lambda path=path: load_spec(path) for path in SPECS},
    **{f"scenario:{name}": lambda name=name: SCENARIOS[name][0] for name in SCENARIOS},
    "relative-encoder-decoder": _relative_encoder_decoder,
    "window-inside": _window_inside,
    "two-prefix-inputs": _two_prefix_inputs,
}


def _random_batch(name: str, batch: int = 5, seed: int = 0):
    """A network's graph, params, padded inputs and lengths for items of random T, among
    them the shortest T and a longer one than the spec's."""
    network = NETWORKS[name]()
    graph = build(network)
    windows = [window for _, window in graph.nodes(data="window")]
    fitting = [t for t in range(1, network.steps + 3) if all(parse_window(w, t) for w in windows)]
    rng = np.random.default_rng(seed)
    steps = rng.permutation([fitting[0], fitting[-1], *rng.choice(fitting, batch - 2)])
    lengths = lengths_for(graph, steps.tolist())
    arrays = padded_inputs(graph, lengths, rng, extra=2)
    return graph, normal_params(graph, seed), arrays, lengths


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_item_of_a_padded_batch_is_what_it_gives_alone(name):
    assert_each_alone(*_random_batch(name))


PACKABLE = [name for name in sorted(NETWORKS) if packable(build(NETWORKS[name]()))]


def test_the_packed_strategy_covers_the_networks_the_issue_names():
    for name in ("dilated", "jordan", "forecast", "sine", "bidirectional-tagger", "lstm"):
        assert f"spec:{name}" in PACKABLE
    packed = ("scenario:backward", "scenario:bidirectional-readout", "scenario:self-connection")
    for name in (*packed, "window-inside", "two-prefix-inputs"):
        assert name in PACKABLE
    grouped = {"spec:encoder-decoder", "spec:generate", "relative-encoder-decoder"}
    grouped |= {"scenario:concatenated-inputs", "scenario:active-window"}
    assert not grouped & set(PACKABLE)


@pytest.mark.parametrize("name", PACKABLE)
def test_packed_and_grouped_give_the_same_numbers(name):
    graph, params, arrays, lengths = _random_batch(name, batch=6, seed=1)
    per_item = item_steps(graph, arrays, check_lengths(graph, arrays, lengths))
    packed = batches._packed(graph, params, arrays, per_item, "float64")
    grouped = batches._grouped(graph, params, arrays, per_item, "float64")
    assert sorted(packed) == sorted(grouped)
    for key, values in grouped.items():
        assert packed[key].shape == values.shape, key
        np.testing.assert_allclose(packed[key], values, atol=SAME, rtol=0, err_msg=key)


@pytest.mark.parametrize("chunk", [1, 2])
@pytest.mark.parametrize("name", PACKABLE)
def test_small_chunks_change_nothing_in_a_packed_batch(name, chunk, monkeypatch):
    """Chunks of two steps exercise the sliding history of a streaming plan, packed; of one
    step, projections too large to gather into the partial-products buffer (a product
    per step)."""
    graph, params, arrays, lengths = _random_batch(name, seed=2)
    expected = run(graph, params, arrays, dtype="float64", lengths=lengths)
    monkeypatch.setattr(executor, "chunk_steps", lambda plan, batch, dtype: chunk)
    out = run(graph, params, arrays, dtype="float64", lengths=lengths)
    for key, values in expected.items():
        np.testing.assert_allclose(out[key], values, atol=SAME, rtol=0, err_msg=key)


@pytest.mark.parametrize("name", PACKABLE)
def test_many_items_are_read_by_one_gather_with_the_same_numbers(name, monkeypatch):
    """A packed batch's inputs are copied item by item up to `_ROW_COPIES` items, gathered
    at once past it (NaN padding: the gather's padding must read as zero too)."""
    graph, params, arrays, lengths = _random_batch(name, seed=4)
    for key, array in arrays.items():
        if array.dtype.kind == "f":
            for item, count in enumerate(lengths[key]):
                array[item, count:] = np.nan
    expected = run(graph, params, arrays, dtype="float64", lengths=lengths)
    monkeypatch.setattr(executor, "_ROW_COPIES", 1)
    out = run(graph, params, arrays, dtype="float64", lengths=lengths)
    for key, values in expected.items():
        # exact: the same rows gathered another way, then the same products on them
        np.testing.assert_array_equal(out[key], values, err_msg=key)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_padding_never_matters_even_nan(name):
    graph, params, arrays, lengths = _random_batch(name, seed=3)
    expected = run(graph, params, arrays, dtype="float64", lengths=lengths)
    for key, array in arrays.items():
        fill = np.nan if array.dtype.kind == "f" else graph.nodes[key]["vocab"] - 1  # ids: any
        for item, count in enumerate(lengths[key]):
            array[item, count:] = fill
    out = run(graph, params, arrays, dtype="float64", lengths=lengths)
    for key, values in expected.items():
        # exact: the padding is never read, so the same products run on the same shapes
        np.testing.assert_array_equal(out[key], values, err_msg=key)


def test_lengths_equal_to_the_arrays_change_nothing():
    graph, params, arrays, _ = _random_batch("spec:bidirectional-tagger")
    whole = {"words": np.full(5, arrays["words"].shape[1])}
    out = run(graph, params, arrays, dtype="float64", lengths=whole)
    np.testing.assert_allclose(out["tags"], run(graph, params, arrays, dtype="float64")["tags"])


@settings(max_examples=25, deadline=None)
@given(random_networks(), st.lists(st.integers(2, 7), min_size=1, max_size=4), st.integers(0, 99))
def test_generated_networks_and_lengths_give_each_item_alone(generated, steps, seed):
    network, _ = generated
    graph = build(network)
    rng = np.random.default_rng(seed)
    lengths = lengths_for(graph, steps)
    assert_each_alone(
        graph, normal_params(graph, seed), padded_inputs(graph, lengths, rng), lengths
    )


# ------------------------------------------------------------------ memory


def _peak_bytes(graph, params, x, **kwargs) -> int:
    run(graph, params, {"x": x}, **kwargs)  # once first: nothing cached is counted
    tracemalloc.start()
    try:
        run(graph, params, {"x": x}, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("alignment", ["many-to-one", "many-to-many"])
def test_a_packed_batch_peaks_within_a_tenth_of_the_memory_without_lengths(alignment):
    B, F, H, T = 16, 8, 32, 64
    graph = build(
        spec(
            [layer("l", "lstm", "x", H)],
            inputs=[input_("x", F)],
            outputs=[output("o")],
            alignment=alignment,
        )
    )
    assert packable(graph)
    params = init_params(graph)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    padded = _peak_bytes(graph, params, x, lengths={"x": lengths})
    whole = _peak_bytes(graph, params, x)
    assert padded <= 1.1 * whole, f"{padded} bytes with lengths, {whole} without"
