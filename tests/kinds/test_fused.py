"""The fused float32 kernels (`[fast]` extra, numba): the same numbers as the NumPy path
and as PyTorch, chunked runs as whole ones to float32 rounding, and the switch that
decides when they load and when they run."""

from __future__ import annotations

import numpy as np
import pytest

from composer.engine.executor import execute
from composer.engine.plan import compile_plan
from composer.graph.folded import build
from composer.graph.unrolled import unroll
from composer.graph.weights import init_params
from composer.kinds import KINDS, fused
from tests.builders import layer, readout, spec
from tests.tolerances import assert_close, run_depth, tolerance

pytest.importorskip("numba")
kernels = pytest.importorskip("composer.kinds.fused_kernels")


@pytest.fixture(scope="module", autouse=True)
def loaded():
    """The kernels loaded for this module's tests, and put back as they were after; a
    `RNN_COMPOSER_FUSED=0` of the caller's is set aside meanwhile (each test sets it)."""
    before = fused._loaded
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RNN_COMPOSER_FUSED", raising=False)
        assert fused.prepare(force=True)
        yield
    fused._loaded = before


def test_the_fused_tanh_is_within_4e_7_of_the_true_one():
    x = np.linspace(-20, 20, 400_001, dtype=np.float32)
    got = np.array([kernels.ftanh(v) for v in x[::50]], np.float64)
    want = np.tanh(x[::50].astype(np.float64))
    assert np.abs(got - want).max() < 4e-7
    assert kernels.ftanh(np.float32(0.0)) == 0.0
    assert kernels.ftanh(np.float32(30.0)) == pytest.approx(1.0, abs=1e-7)
    assert kernels.ftanh(np.float32(-1.5)) == -kernels.ftanh(np.float32(1.5))


CASES = {  # (layers, batch): each runs fused (batch * state size <= fused.SMALL)
    "forward": ([layer("l", "lstm", size=16)], 1),
    "backward, batch 4": ([layer("l", "lstm", size=16, direction="backward")], 4),
    "dilated": ([layer("l", "lstm", size=8, delay=3)], 2),
    "bidirectional + readout": (
        [layer("l", "lstm", size=8, bidirectional=True, output=readout(3, "softmax"))],
        1,
    ),
    "stacked": ([layer("a", "lstm", size=16), layer("b", "lstm", input="a", size=16)], 2),
}


def _run(net, params, x, *, on: bool, chunk=None, monkeypatch):
    monkeypatch.setenv("RNN_COMPOSER_FUSED", "1" if on else "0")
    plan = compile_plan(unroll(build(net), x.shape[1]))
    return execute(plan, params, {"x": x}, "float32", chunk=chunk)["y"]


@pytest.mark.parametrize("case", CASES)
def test_fused_and_numpy_paths_agree(case, monkeypatch):
    layers, batch = CASES[case]
    net = spec(layers, inputs=[{"name": "x", "size": 5}])
    params = init_params(build(net), seed=3)
    x = np.random.default_rng(0).standard_normal((batch, 40, 5)).astype(np.float32)
    fast = _run(net, params, x, on=True, monkeypatch=monkeypatch)
    plain = _run(net, params, x, on=False, monkeypatch=monkeypatch)
    assert np.abs(fast - plain).max() < 2e-6
    assert not np.array_equal(fast, plain)  # the fused path really ran: its tanh differs
    # the same steps, but the input projection is a product of 7 steps' rows, not 40:
    # BLAS may add a row's terms in another order (it does on AMD's Haswell kernel)
    chunked = _run(net, params, x, on=True, chunk=7, monkeypatch=monkeypatch)
    assert_close(chunked, fast, np.float32, run_depth(x.shape[1], len(layers)))


def test_fused_lstm_matches_pytorch(monkeypatch):
    torch = pytest.importorskip("torch")
    net = spec([layer("l", "lstm", size=32)], inputs=[{"name": "x", "size": 6}])
    params = init_params(build(net), seed=1)
    x = np.random.default_rng(2).standard_normal((1, 300, 6)).astype(np.float32)
    ours = _run(net, params, x, on=True, monkeypatch=monkeypatch)
    model = torch.nn.LSTM(6, 32, batch_first=True)
    with torch.no_grad():
        model.weight_ih_l0.copy_(torch.from_numpy(params["l.Wx"].T.astype(np.float32)))
        model.weight_hh_l0.copy_(torch.from_numpy(params["l.Ws"].T.astype(np.float32)))
        model.bias_ih_l0.copy_(torch.from_numpy(params["l.b"].astype(np.float32)))
        model.bias_hh_l0.zero_()
        theirs = model(torch.from_numpy(x))[0].numpy()
    assert np.abs(ours - theirs).max() < 1e-5


def test_the_switch(monkeypatch):
    assert fused.kernels(np.float32, 1, 64) is kernels
    assert fused.kernels(np.float32, 4, 64) is kernels  # 256: still small
    assert fused.kernels(np.float32, 4, 128) is None  # NumPy's products pay from here
    assert fused.kernels(np.float64, 1, 64) is None  # float64 keeps NumPy's exact tanh
    monkeypatch.setenv("RNN_COMPOSER_FUSED", "0")
    assert fused.kernels(np.float32, 1, 64) is None
    assert not fused.installed()


def test_kernels_load_only_for_long_runs_of_kinds_that_have_them(monkeypatch):
    monkeypatch.setattr(fused, "_loaded", None)
    monkeypatch.setattr(fused, "_asked", 0)
    lstm, elman = KINDS["lstm"], KINDS["elman"]
    assert not fused.prepare(fused.LOAD_AT - 1, kinds={lstm})  # a short run: not worth it
    assert not fused.prepare(10 * fused.LOAD_AT, kinds={elman})  # nothing to fuse
    assert not fused.prepare(10 * fused.LOAD_AT, kinds={KINDS["lstm_layer_norm"]})
    assert fused.kernels(np.float32, 1, 64) is None
    assert fused.prepare(fused.LOAD_AT, kinds={elman, lstm})
    assert fused.kernels(np.float32, 1, 64) is kernels


def test_many_short_runs_add_up_to_a_load(monkeypatch):
    """A server's or a notebook's many short runs load the kernels once their work, added
    up, reaches `LOAD_AT`: the load then pays as it would for one long run."""
    monkeypatch.setattr(fused, "_loaded", None)
    monkeypatch.setattr(fused, "_asked", 0)
    lstm, elman = KINDS["lstm"], KINDS["elman"]
    short = fused.LOAD_AT // 4
    for _ in range(3):
        assert not fused.prepare(short, kinds={lstm})
        assert not fused.prepare(10 * fused.LOAD_AT, kinds={elman})  # not counted
    assert fused.prepare(short, kinds={lstm})
    assert fused.kernels(np.float32, 1, 64) is kernels


def test_kernels_that_cannot_load_leave_the_numpy_path(monkeypatch):
    """A numba that fails to load (here: out of memory while warming up) is an optimisation
    missed, never an error: the run goes on with NumPy and gives the same numbers."""
    monkeypatch.setattr(fused, "_loaded", None)
    monkeypatch.setattr(fused, "_failed", False)

    def broken():
        raise MemoryError("cannot allocate")

    monkeypatch.setattr(kernels, "warm", broken)
    assert not fused.prepare(force=True)
    assert not fused.prepare(force=True)  # not tried again
    net = spec([layer("l", "lstm", size=8)], inputs=[{"name": "x", "size": 5}])
    params = init_params(build(net), seed=3)
    x = np.random.default_rng(0).standard_normal((1, 30, 5)).astype(np.float32)
    monkeypatch.setenv("RNN_COMPOSER_FUSED", "1")
    plan = compile_plan(unroll(build(net), 30))
    with_missing = execute(plan, params, {"x": x}, "float32")["y"]
    monkeypatch.setenv("RNN_COMPOSER_FUSED", "0")
    # exact: no kernel loaded, so the same NumPy products run on the same shapes
    np.testing.assert_array_equal(with_missing, execute(plan, params, {"x": x}, "float32")["y"])


def test_a_long_generation_loads_the_kernels_and_steps_with_them(monkeypatch):
    """Generation steps one token at a time at B = 1, the kernels' best case: it says how
    many item-steps are coming, and a fused stepper writes what the NumPy one writes."""
    from composer.engine.batches import run
    from composer.engine.generation import find_feedback, generate
    from composer.engine.stepper import Stepper

    net = spec(
        [layer("l", "lstm", size=16, output=readout(7, "softmax"))],
        inputs=[{"name": "x", "vocab": 7, "embed": 4}],
    )
    graph = build(net)
    params = init_params(graph, seed=5)
    asked = []
    monkeypatch.setattr(fused, "prepare", lambda n, kinds=None, force=False: asked.append(n))
    texts = {}
    for on in ("1", "0"):
        monkeypatch.setenv("RNN_COMPOSER_FUSED", on)
        stepper = Stepper(graph, params, "float32")
        texts[on] = generate(stepper, find_feedback(graph), [1, 2, 3], 40, temperature=0.0)
    assert asked == [3 + 40, 3 + 40]
    # token ids, each the argmax of probabilities the two paths give to float32 rounding:
    # equal wherever the two most likely tokens are further apart than that rounding
    probs = run(graph, params, np.array([1, 2, 3, *texts["0"][0][:-1]]), dtype="float32")["y"]
    top = np.sort(probs[2:], axis=-1)
    assert (top[:, -1] - top[:, -2]).min() > tolerance(np.float32, run_depth(43))
    np.testing.assert_array_equal(texts["1"], texts["0"])


TRAINING = {  # the training tape's LSTM steps, every path they take
    "plain": ([layer("l", "lstm", size=16, output=readout(3))], {}),
    "backward": ([layer("l", "lstm", size=16, direction="backward", output=readout(3))], {}),
    "bidirectional, stacked": (
        [
            layer("a", "lstm", size=8, bidirectional=True),
            layer("b", "lstm", input="a", size=8, output=readout(3)),
        ],
        {},
    ),
    "dilated": ([layer("l", "lstm", size=8, delay=2, output=readout(3))], {}),
    "recurrent dropout": (
        [layer("l", "lstm", size=16, recurrent_dropout=0.3, output=readout(3))],
        {"train": "masks"},
    ),
    "truncated": ([layer("l", "lstm", size=16, output=readout(3))], {"bptt": 4}),
}


def _gradients(net, params, x, y, on: bool, monkeypatch, lengths=None, **options):
    from composer.training.backprop import grad
    from composer.training.padded import grad_padded

    monkeypatch.setenv("RNN_COMPOSER_FUSED", "1" if on else "0")
    graph = build(net)
    if lengths is not None:
        return grad_padded(graph, params, {"x": x}, {"y": y}, {"x": lengths}, **options)
    plan = compile_plan(unroll(graph, x.shape[1]))
    return grad(plan, params, {"x": x}, {"y": y}, **options)


@pytest.mark.parametrize("case", [*TRAINING, "padded"])
def test_fused_training_steps_give_numpy_s_loss_and_gradients(case, monkeypatch):
    """float32 training with the compiled elementwise steps of the tape (forward and
    backward) against the NumPy passes: the same loss and gradients to float32 rounding
    (the kernels' tanh differs from NumPy's by up to 4e-7)."""
    from composer.training.dropout import Dropout

    layers, options = TRAINING.get(case, TRAINING["plain"])
    if options.get("train"):
        options = {"train": Dropout(seed=7)}  # one set of masks for both paths
    lengths = np.array([9, 4, 7, 1, 9]) if case == "padded" else None
    net = spec(layers, inputs=[{"name": "x", "size": 5}])
    params = init_params(build(net), seed=3, dtype="float32")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 9, 5)).astype(np.float32)
    y = rng.standard_normal((5, 9, 3)).astype(np.float32)
    fast = _gradients(net, params, x, y, True, monkeypatch, lengths, **options)
    plain = _gradients(net, params, x, y, False, monkeypatch, lengths, **options)
    assert fast[0] == pytest.approx(plain[0], rel=1e-5)
    assert fast[1].keys() == plain[1].keys()
    for key, value in plain[1].items():
        scale = np.abs(value).max()
        assert np.abs(fast[1][key] - value).max() <= 2e-5 * scale + 1e-7, key
    assert any(not np.array_equal(fast[1][k], plain[1][k]) for k in plain[1])  # it ran


def test_a_long_training_run_loads_the_kernels(monkeypatch):
    from composer.training.loop import train

    net = spec([layer("l", "lstm", size=4, output=readout(2))], inputs=[{"name": "x", "size": 3}])
    graph = build(net)
    asked = []

    def prepare(item_steps=0, force=False, kinds=None):
        asked.append((item_steps, {kind.name for kind in kinds}))
        return False

    monkeypatch.setattr(fused, "prepare", prepare)
    rng = np.random.default_rng(0)
    data = {"x": rng.standard_normal((6, 5, 3)), "y": rng.standard_normal((6, 5, 2))}
    train(graph, init_params(graph, seed=0), data, epochs=3, batch_size=2)
    assert asked == [(6 * 5 * (3 + 1), {"lstm"})]  # items x steps x passes over the data
