"""`--threads N` on run, train, evaluate and generate: the count reaches the libraries' limits, the
user's OMP_NUM_THREADS and the like are left alone, and a count below 1 is a usage error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from composer import threads
from composer.cli import app
from tests.conftest import ROOT
from tests.test_threads import Recorder

runner = CliRunner()
SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"


@pytest.fixture
def recorder(monkeypatch):
    for name in threads.ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    found = Recorder()
    monkeypatch.setattr(threads, "_libraries", lambda: found)
    return found


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_run_takes_threads(recorder, monkeypatch):
    args = ("run", SPECS / "lecture-elman.yaml", "--input", DATA / "lecture-x.csv")
    result = invoke(*args, "--threads", 3)
    assert result.exit_code == 0, result.output
    assert recorder.asked == [3]
    assert invoke(*args).exit_code == 0 and recorder.asked == [3, 1]  # small work: one
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert invoke(*args).exit_code == 0 and recorder.asked == [3, 1]  # the user's own
    bad = invoke(*args, "--threads", 0)
    assert bad.exit_code == 2 and "--threads" in bad.output


def test_train_takes_threads(recorder, tmp_path):
    args = ("train", SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--epochs", 1)
    result = invoke(*args, "--output", tmp_path / "w.npz", "--threads", 2)
    assert result.exit_code == 0, result.output
    assert recorder.asked == [2]


def test_evaluate_takes_threads(recorder, tmp_path):
    from composer.graph.folded import build
    from composer.graph.weights import init_params, save_params
    from composer.spec.reader import load_spec

    spec = SPECS / "sine.yaml"
    save_params(tmp_path / "w.npz", init_params(build(load_spec(spec)), seed=0))
    args = ("evaluate", spec, "--weights", tmp_path / "w.npz", "--data", DATA / "sine.npz")
    result = invoke(*args, "--threads", 2)
    assert result.exit_code == 0, result.output
    assert recorder.asked == [2]


def test_generate_takes_threads(recorder, tmp_path):
    spec = tmp_path / "lm.yaml"
    spec.write_text(
        "inputs: [{name: x, vocab: 3}]\n"
        "layers: [{name: r, kind: gru, input: x, state_size: 4,"
        " output: {size: 3, activation: softmax}}]\n"
        "outputs: [{name: y, from: r}]\n"
    )
    vocab = tmp_path / "v.json"
    vocab.write_text('{"level": "char", "tokens": ["a", "b", "c"]}')
    from composer.graph.folded import build
    from composer.graph.weights import init_params, save_params
    from composer.spec.reader import load_spec

    save_params(tmp_path / "w.npz", init_params(build(load_spec(spec)), seed=0))
    args = ("generate", spec, "-w", tmp_path / "w.npz", "--vocab", vocab, "--prompt", "ab")
    result = invoke(*args, "--length", 5, "--seed", 0, "--threads", 2)
    assert result.exit_code == 0, result.output
    assert recorder.asked == [2] and result.output.startswith("ab")
