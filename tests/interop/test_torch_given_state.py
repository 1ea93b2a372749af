"""A start state given with the data (`initial_state: h0`) in PyTorch: `to_torch` passes
it as the `torch.nn` module's h0 (natively) or starts the cell loop from it, and gives
`Network.run`'s outputs and `Network.grad`'s gradients in float64, whole, padded and
unbatched; `run --engine torch` takes it from the inputs file."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.arrays import write_arrays
from composer.cli import app
from composer.engine.pipeline import plan_for_steps
from composer.graph.weights import save_params
from composer.network import Network
from tests.builders import connection, layer, readout, spec, write_spec
from tests.conftest import ROOT

torch = pytest.importorskip("torch")

from composer.interop.torch_keys import grads_from_state  # noqa: E402
from composer.interop.torch_pass import TorchPass  # noqa: E402

pytestmark = pytest.mark.torch
runner = CliRunner()
RNG = np.random.default_rng(0)
X, H0 = RNG.normal(size=(3, 6, 3)), RNG.normal(size=(3, 4))
TARGETS = {"y": RNG.normal(size=(3, 6, 2))}


def _spec(kind: str, loop: bool):
    layers = [
        layer("a", kind, "x", 4, initial_state="h0"),
        layer("b", "gru", "a", 3, output=readout(2)),
    ]
    extra = {"connections": [connection("b", "a")]} if loop else {}
    inputs = [{"name": "x", "size": 3}, {"name": "h0", "size": 4}]
    return spec(layers, inputs=inputs, **extra)


def _network(kind: str, loop: bool) -> Network:
    return Network.from_spec(_spec(kind, loop))


def _random(net, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params(dtype="float64").items()}


CASES = [("elman", False), ("lstm", False), ("gru", False), ("lstm", True), ("gru", True)]


@pytest.mark.parametrize(("kind", "loop"), CASES)
def test_forward_and_gradients_match_the_numpy_engine(kind, loop):
    net = _network(kind, loop)
    params = _random(net)
    module = net.to_torch(params, "float64")
    assert TorchPass.all_native(module, plan_for_steps(net.graph, 6)) == (not loop)
    got = module({"x": torch.from_numpy(X), "h0": torch.from_numpy(H0)})
    expected = net.run(params, {"x": X, "h0": H0}, dtype="float64")
    np.testing.assert_allclose(got["y"].detach().numpy(), expected["y"], atol=1e-10, rtol=0)
    zero = net.run(params, {"x": X, "h0": 0 * H0}, dtype="float64")["y"]
    assert np.abs(zero - expected["y"]).max() > 1e-3  # h0 matters
    ((got["y"] - torch.from_numpy(TARGETS["y"])) ** 2).mean().backward()
    grads = {k: p.grad.numpy() for k, p in module.named_parameters() if p.grad is not None}
    ours = grads_from_state(net.graph, grads)
    _, expected_grads = net.grad(params, {"x": X, "h0": H0}, TARGETS)
    assert sorted(ours) == sorted(expected_grads)
    for key, value in expected_grads.items():
        np.testing.assert_allclose(ours[key], value, atol=1e-10, rtol=1e-10, err_msg=key)


@pytest.mark.parametrize(
    ("direction", "loop"),
    [("forward", False), ("forward", True), ("backward", False)],
    ids=["packed", "grouped", "backward"],  # a backward layer starts at each item's end
)
def test_padded_batch_as_run_does(direction, loop):
    layers = [
        layer("a", "lstm", "x", 4, initial_state="h0", direction=direction),
        layer("b", "gru", "a", 3, output=readout(2)),
    ]
    extra = {"connections": [connection("b", "a")]} if loop else {}
    inputs = [{"name": "x", "size": 3}, {"name": "h0", "size": 4}]
    net = Network.from_spec(spec(layers, inputs=inputs, **extra))
    params = _random(net)
    lengths = {"x": [6, 2, 4]}
    expected = net.run(params, {"x": X, "h0": H0}, dtype="float64", lengths=lengths)
    with torch.no_grad():
        module = net.to_torch(params, "float64")
        got = module({"x": torch.from_numpy(X), "h0": torch.from_numpy(H0)}, lengths=lengths)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(got[key]), value, atol=1e-10, rtol=0, err_msg=key)


def test_one_sequence_and_its_h_give_unbatched_outputs():
    net = _network("gru", False)
    params = _random(net)
    with torch.no_grad():
        got = net.to_torch(params, "float64")(
            {"x": torch.from_numpy(X[0]), "h0": torch.from_numpy(H0[0])}
        )
    expected = net.run(params, {"x": X[0], "h0": H0[0]}, dtype="float64")["y"]
    np.testing.assert_allclose(got["y"].numpy(), expected, atol=1e-10, rtol=0)


def test_run_engine_torch_reads_it_from_the_inputs_file(tmp_path):
    net = _network("gru", False)
    params = _random(net)
    path = write_spec(tmp_path, _spec("gru", False))
    save_params(tmp_path / "w.npz", params)
    write_arrays(tmp_path / "in.npz", {"x": X, "h0": H0})
    result = runner.invoke(app, [
        "run", str(path), "--weights", str(tmp_path / "w.npz"), "--input",
        str(tmp_path / "in.npz"), "--engine", "torch", "--dtype", "float64",
        "--output", str(tmp_path / "out.npz"),
    ], env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.exit_code == 0, result.output
    got = np.load(tmp_path / "out.npz")["y"]
    expected = net.run(params, {"x": X, "h0": H0}, dtype="float64")["y"]
    np.testing.assert_allclose(got, expected, atol=1e-10, rtol=0)
