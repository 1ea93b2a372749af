"""The torch engine on long sequences (issue 25, item 17): a recurrent layer runs its
`torch.nn` module in chunks of steps with the state carried over, so oneDNN's limit on one
call ("could not create a primitive" past 2 GiB of gates) is never reached; both
directions at once, or a packed batch, fall back to the cell loop past one chunk.
Forced to small chunks, every form gives what one call gives."""

from __future__ import annotations

import numpy as np
import pytest

from composer import build, init_params
from composer.spec.model import NetworkSpec

pytest.importorskip("torch")
from composer.interop import torch_module, torch_pass  # noqa: E402
from composer.interop.torch_engine import run_torch  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def network(kind: str, bidirectional: bool = False, size: int = 5) -> object:
    return build(
        NetworkSpec.model_validate(
            {
                "version": 1,
                "name": "long",
                "inputs": [{"name": "x", "size": 3}],
                "layers": [
                    {"name": "r", "kind": kind, "input": "x", "state_size": size,
                     "bidirectional": bidirectional, "output": {"size": 2}},
                ],
                "outputs": [{"name": "y", "from": "r"}],
            }
        )
    )  # fmt: skip


def both_ways(monkeypatch, graph, x, dtype, **options):
    params = init_params(graph, 3, dtype)
    whole = run_torch(graph, params, {"x": x}, dtype=dtype, **options)
    monkeypatch.setattr(torch_pass, "NATIVE_ELEMENTS", 7)  # a chunk of 1 or 2 steps
    chunked = run_torch(graph, params, {"x": x}, dtype=dtype, **options)
    monkeypatch.undo()
    return whole, chunked


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_chunks_give_what_one_call_gives(monkeypatch, kind, dtype):
    x = np.random.default_rng(0).normal(size=(1, 23, 3)).astype(dtype)
    whole, chunked = both_ways(monkeypatch, network(kind), x, dtype, steps=23)
    np.testing.assert_allclose(chunked["y"], whole["y"], rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_both_directions_and_packed_batches_fall_back_to_the_cell_loop(monkeypatch, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 17, 3))
    whole, chunked = both_ways(
        monkeypatch, network(kind, bidirectional=True), x, "float64", steps=17
    )
    np.testing.assert_allclose(chunked["y"], whole["y"], rtol=0, atol=1e-12)
    lengths = {"x": np.array([17, 9, 4])}
    whole, chunked = both_ways(monkeypatch, network(kind), x, "float64", lengths=lengths)
    np.testing.assert_allclose(chunked["y"], whole["y"], rtol=0, atol=1e-12)


def test_training_in_chunks_gives_the_same_gradients(monkeypatch):
    torch = pytest.importorskip("torch")
    graph = network("lstm")
    params = init_params(graph, 3, "float64")
    x = torch.as_tensor(np.random.default_rng(2).normal(size=(2, 19, 3)))

    def gradients(bptt):
        module = torch_module.to_torch(graph, params, "float64")
        out = module({"x": x}, bptt=bptt)["y"]
        (out**2).sum().backward()
        return {name: p.grad.clone() for name, p in module.named_parameters()}

    for bptt in (None, 5):
        whole = gradients(bptt)
        monkeypatch.setattr(torch_pass, "NATIVE_ELEMENTS", 7)
        chunked = gradients(bptt)
        monkeypatch.undo()
        for name in whole:
            np.testing.assert_allclose(chunked[name], whole[name], rtol=0, atol=1e-12)


def test_a_sequence_past_onednn_s_limit_runs():
    """LSTM H = 256 over 560,000 steps: one call fails in oneDNN; the chunks run it, and
    its last step is the NumPy engine's."""
    graph = network("lstm", size=256)
    params = init_params(graph, 0, "float32")
    x = np.zeros((1, 560_000, 3), np.float32)
    x[0, -40:] = np.random.default_rng(3).normal(size=(40, 3))
    y = run_torch(graph, params, {"x": x}, steps=560_000)["y"]
    assert y.shape == (1, 560_000, 2) and np.isfinite(y).all()
    from composer import run

    tail = run(graph, params, {"x": x[:, -200:]}, steps=200)["y"]  # the state forgets: the
    np.testing.assert_allclose(y[:, -1], tail[:, -1], rtol=0, atol=1e-4)  # zeros before hold it
