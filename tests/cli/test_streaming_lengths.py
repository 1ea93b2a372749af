"""`run --lengths` with `--state-in/--state-out` (docs/sequences.md, "Streaming"): each item's
saved state is the one after its own last step, its outputs are zeros past it with
`<output>.lengths`, all as the item run alone gives them; and `--save-weights` is refused
with `--model`, whose weights are its own."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.engine.stepper import run_stepped
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.spec.reader import read_spec_text
from tests.builders import doc_tagger

runner = CliRunner()
TAGGER = doc_tagger()
TOL = dict(rtol=1e-12, atol=1e-12)  # float64; batches of 2 and of 1 may round apart


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def tagger(tmp_path, monkeypatch):
    (tmp_path / "tagger.yaml").write_text(TAGGER)
    x = np.random.default_rng(0).normal(size=(2, 12, 4))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "item1.npy", x[1:, :5])
    np.save(tmp_path / "item0.npy", x[:1])
    np.savez(tmp_path / "in.npz", x=x, **{"x.lengths": np.array([12, 5])})
    monkeypatch.chdir(tmp_path)
    return tmp_path


RUN = ("run", "tagger.yaml", "--dtype", "float64")


def _alone(item: str, *extra) -> tuple[dict, dict]:
    code, out = invoke(*RUN, "-i", f"{item}.npy", "--state-out", f"{item}.s.npz",
                       "-o", f"{item}.o.npz", *extra)  # fmt: skip
    assert code == 0, out
    return dict(np.load(f"{item}.s.npz")), dict(np.load(f"{item}.o.npz"))


@pytest.mark.parametrize("lengths", [("-i", "x.npy", "--lengths", "12,5"), ("-i", "in.npz")])
def test_each_items_state_is_the_one_after_its_own_last_step(tagger, lengths):
    code, out = invoke(*RUN, *lengths, "--state-out", "s.npz", "-o", "o.npz")
    assert code == 0, out
    state, outputs = np.load("s.npz"), np.load("o.npz")
    for item, name in ((0, "item0"), (1, "item1")):
        alone_state, alone_out = _alone(name)
        for key in ("tagger.h", "tagger.c"):
            np.testing.assert_allclose(state[key][item], alone_state[key][0], **TOL)
        steps = alone_out["tags"].shape[1]
        np.testing.assert_allclose(outputs["tags"][item, :steps], alone_out["tags"][0], **TOL)
        assert not outputs["tags"][item, steps:].any()  # zeros past the item's end
    assert outputs["tags.lengths"].tolist() == [12, 5]


def test_a_padded_batch_continues_from_each_items_own_state(tagger):
    """A second piece, from the state the first one left, with lengths again."""
    assert invoke(*RUN, "-i", "x.npy", "--lengths", "12,5", "--state-out", "s.npz")[0] == 0
    second = np.random.default_rng(1).normal(size=(2, 6, 4))
    np.save("second.npy", second)
    np.save("second1.npy", second[1:, :3])
    code, out = invoke(*RUN, "-i", "second.npy", "--lengths", "6,3", "--state-in", "s.npz",
                       "--state-out", "s2.npz")  # fmt: skip
    assert code == 0, out
    _alone("item1")
    alone_state, _ = _alone("second1", "--state-in", "item1.s.npz")
    np.testing.assert_allclose(np.load("s2.npz")["tagger.h"][1], alone_state["tagger.h"][0], **TOL)


def test_without_output_the_padded_report_is_printed(tagger):
    code, out = invoke(*RUN, "-i", "x.npy", "--lengths", "12,5", "--state-out", "s.npz")
    assert code == 0, out
    assert "tags.lengths = [12, 5]" in out and "item 1: 5 steps, tags[4] =" in out


def test_run_stepped_refuses_lengths_that_do_not_fit_the_batch():
    graph = build(read_spec_text(TAGGER, "tagger.yaml").spec)
    params, x = init_params(graph, 0, "float64"), np.zeros((2, 4, 4))
    for bad in ([4], [0, 2], [2, 5]):
        with pytest.raises(ValueError, match="lengths: expected"):
            run_stepped(graph, params, {"x": x}, None, "float64", item_steps=bad)


def test_a_state_of_another_batch_is_refused_naming_its_file(tagger):
    assert invoke(*RUN, "-i", "x.npy", "--state-out", "s.npz")[0] == 0
    code, out = invoke(*RUN, "-i", "item0.npy", "--state-in", "s.npz")
    assert code == 4
    assert out == (
        "s.npz: holds the state of 2 items, but the inputs are a batch of 1; give a state "
        "of the same batch\n"
    )


def test_save_weights_is_refused_with_a_model(tagger):
    pytest.importorskip("onnxruntime")
    assert invoke(*RUN, "-i", "x.npy", "--save-weights", "w.npz")[0] == 0
    assert invoke("export", "tagger.yaml", "-w", "w.npz", "-f", "onnx", "-o", "m.onnx")[0] == 0
    code, out = invoke("run", "tagger.yaml", "-i", "x.npy", "--engine", "onnx", "--model",
                       "m.onnx", "--save-weights", "seeded.npz")  # fmt: skip
    assert (
        code == 2 and "Invalid value for --save-weights: a model file holds its own weights" in out
    )
    assert not (tagger / "seeded.npz").exists()
