"""Training: the examples learn, data is checked, runs are seeded and interruptible, and the
`train` command writes the best weights (and a loss curve) the way the docs say."""

from __future__ import annotations

import re
import shlex

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import composer.train.loop as train_module
from composer.arrays import read_arrays
from composer.cli.common import reports_errors
from composer.cli.train import train_command
from composer.draw.curve import loss_curve_svg
from composer.errors import DataError
from composer.graph.folded import build
from composer.graph.weights import init_params, load_params
from composer.run.executor import run
from composer.spec.reader import load_spec
from composer.train.datasets import DATASETS, accepts, generate, main, reber_string
from composer.train.loop import train
from tests.conftest import ROOT

SPECS, DATA = ROOT / "specs", ROOT / "specs" / "data"


def _fit(name: str, loss: str, epochs: int, lr: float = 0.01, **options):
    spec = load_spec(SPECS / f"{name}.yaml")
    graph = build(spec)
    data = read_arrays(DATA / f"{name}.npz")
    result = train(
        spec,
        init_params(graph, 0),
        data,
        epochs=epochs,
        batch_size=32,
        lr=lr,
        optimizer="adam",
        loss=loss,
        seed=0,
        **options,
    )
    return graph, result


@pytest.mark.parametrize(
    ("name", "loss", "epochs", "ratio"),
    [("sine", "mse", 8, 0.2), ("running-sum", "cross-entropy", 10, 0.5)],
)
def test_examples_learn(name, loss, epochs, ratio):
    _, result = _fit(name, loss, epochs)
    untrained = result.history[0].val_loss
    assert result.best_loss < ratio * untrained
    assert result.best_epoch > 0 and not result.interrupted
    assert len(result.history) == epochs + 1 and result.steps_per_second > 0


def test_reber_learns_and_writes_grammatical_strings():
    graph, result = _fit("reber", "cross-entropy", 10)
    assert result.best_loss < 0.3 * result.history[0].val_loss
    strings = generate(lambda x: run(graph, result.params, {"sym": x})["next"], 200, seed=0)
    assert np.mean([accepts(s) for s in strings]) > 0.7


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
        np.testing.assert_array_equal(written[key], shipped[key])
    assert (DATA / f"{name}.npz").stat().st_size < 400_000


def test_training_is_seeded():
    first, second = (_fit("running-sum", "cross-entropy", 2)[1] for _ in range(2))
    assert [e.val_loss for e in first.history] == [e.val_loss for e in second.history]
    assert all(np.array_equal(first.params[k], second.params[k]) for k in first.params)


def test_clipping_bptt_sgd_and_no_validation_run():
    spec = load_spec(SPECS / "sine.yaml")
    data = read_arrays(DATA / "sine.npz")
    result = train(
        spec,
        init_params(build(spec), 0),
        data,
        epochs=3,
        batch_size=64,
        lr=0.05,
        optimizer="sgd",
        loss="mse",
        seed=0,
        bptt=5,
        clip=1.0,
        weight_decay=1e-4,
        validation=0.0,
    )
    assert result.history[0].val_loss is None
    assert result.best_loss < result.history[0].train_loss


def test_ctrl_c_keeps_the_best_weights_so_far(monkeypatch):
    calls = {"n": 0}
    real = train_module.grad

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:  # in the third epoch: sine has 15 minibatches per epoch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "grad", interrupted)
    _, result = _fit("sine", "mse", 10)
    assert result.interrupted and len(result.history) == 3
    assert result.best_epoch == 2


def test_ctrl_c_before_the_first_update_returns_the_start(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "evaluate", interrupted)
    spec = load_spec(SPECS / "sine.yaml")
    start = init_params(build(spec), 3)
    result = train(spec, start, read_arrays(DATA / "sine.npz"), epochs=2)
    assert result.interrupted and result.best_epoch == 0
    assert all(np.array_equal(result.params[k], start[k]) for k in start)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("o"), r"d\.npz: missing 'o'"),
        (lambda d: d.update(extra=d["x"]), "unexpected 'extra'"),
        (lambda d: d.update(x=d["x"][:, :, :0]), r"d\.npz: input 'x': expected shape"),
        (lambda d: d.update(o=d["o"][:10]), r"d\.npz: key 'o': expected \(B, T_out, size\)"),
        (lambda d: d.update({"o.mask": np.ones((512, 3))}), r"key 'o\.mask': expected a \(B"),
    ],
)
def test_data_errors_name_the_file_key_and_shapes(change, message):
    spec = load_spec(SPECS / "sine.yaml")
    data = dict(read_arrays(DATA / "sine.npz"))
    change(data)
    with pytest.raises(DataError, match=message):
        train(spec, init_params(build(spec)), data, epochs=1, where="d.npz")


def test_loss_curve_is_an_svg_polyline():
    history = _fit("sine", "mse", 2)[1].history
    svg = loss_curve_svg(history, "a <b> & c")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert "a &lt;b&gt; &amp; c" in svg and "epoch</text>" in svg


# -- the command ----------------------------------------------------------------------

# composer.cli.app registers the command the same way; its settings give one-line usage errors
app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)
app.callback()(lambda: None)
app.command("train")(reports_errors(train_command))
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["train", *map(str, args)])


def test_command_writes_best_weights_and_curve(tmp_path):
    out, curve = tmp_path / "w.npz", tmp_path / "c.svg"
    args = (SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--epochs", 2, "--lr", 0.01)
    result = invoke(*args, "--output", out, "--curve", curve)
    assert result.exit_code == 0, result.output
    assert "untrained, best" in result.output and f"wrote {out}" in result.output
    load_params(out, build(load_spec(SPECS / "sine.yaml")))
    assert curve.read_text().startswith("<svg")
    again = invoke(*args, "--output", out)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    assert invoke(*args, "--output", out, "--force", "--weights", out).exit_code == 0


def test_command_exits_130_after_writing_on_ctrl_c(tmp_path, monkeypatch):
    real = train_module.grad
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "grad", interrupted)
    out = tmp_path / "w.npz"
    result = invoke(SPECS / "sine.yaml", "--data", DATA / "sine.npz", "--output", out)
    assert result.exit_code == 130 and "interrupted" in result.output and out.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("sine.yaml", "reber.npz"), 4, "missing 'x', 'o'"),
        (("sine.yaml", "sine.npz", "--loss", "cross-entropy"), 3, "needs a softmax readout"),
        (("reber.yaml", "reber.npz", "--loss", "mse"), 4, "expected (B, T_out, size)"),
    ],
)
def test_command_errors_are_one_line_with_exit_codes(args, code, message, tmp_path):
    spec, data, *rest = args
    result = invoke(SPECS / spec, "--data", DATA / data, "--output", tmp_path / "w.npz", *rest)
    assert result.exit_code == code, result.output
    assert message in result.output


def _documented_commands() -> list[str]:
    text = (ROOT / "docs" / "training.md").read_text()
    return re.findall(r"^\$ (rnn-composer train .+)$", text, re.M)


def test_docs_have_commands():
    assert len(_documented_commands()) >= 3


@pytest.mark.parametrize("command", _documented_commands())
def test_documented_commands_run(command, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)[2:]  # after `rnn-composer train`
    out = ["--epochs", "1", "--output", tmp_path / "w.npz", "--curve", tmp_path / "c.svg"]
    result = invoke(*args, *out, "--force")
    assert result.exit_code == 0, result.output


def test_training_over_the_memory_limit_is_refused_before_it_starts(tmp_path):
    from composer.cli.app import app

    result = CliRunner().invoke(
        app,
        [
            "train",
            str(ROOT / "specs/reber.yaml"),
            "--data",
            str(ROOT / "specs/data/reber.npz"),
            "--max-memory",
            "1M",
            "--loss",
            "cross-entropy",
            "--batch-size",
            "1000",
            "--output",
            str(tmp_path / "w.npz"),
        ],
    )
    assert (
        result.exit_code == 5 and "training" in result.stderr and "over the limit" in result.stderr
    )
    assert not (tmp_path / "w.npz").exists()


def test_tape_estimate_is_close_to_what_a_gradient_pass_allocates():
    import tracemalloc

    from composer.train.backprop import grad, tape_bytes
    from composer.train.loop import plan_for

    for kind in ("lstm", "gru", "elman"):
        spec = {
            "inputs": [{"name": "x", "size": 8}],
            "layers": [
                {"name": "r", "kind": kind, "input": "x", "state_size": 32, "output": {"size": 4}}
            ],
            "outputs": [{"name": "o", "from": "r"}],
        }
        graph = build(__import__("composer").NetworkSpec.model_validate(spec))
        x = np.random.default_rng(0).normal(size=(16, 100, 8)).astype("float32")
        plan = plan_for(graph, {"x": x})
        tracemalloc.start()
        grad(plan, init_params(graph), {"x": x}, {"o": np.zeros((16, 100, 4), "float32")})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert 0.6 < tape_bytes(plan, 16) / peak < 1.6, kind
