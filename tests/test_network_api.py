"""`Network` holds the whole surface the command line uses: `run` on every engine,
`export`, the pictures, and `train` with a `TrainOptions` value."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import composer
from composer import Network
from composer.api import TrainOptions
from composer.errors import ComposerError
from composer.training.loop import train
from tests.conftest import ROOT

SPEC = ROOT / "specs" / "lecture-elman.yaml"


def _inputs(net: Network, batch: int = 3, steps: int = 6) -> np.ndarray:
    size = net.graph.nodes["x"]["size"]
    return np.random.default_rng(1).normal(size=(batch, steps, size))


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_run_on_another_engine_gives_the_numpy_engines_outputs(engine):
    pytest.importorskip("torch" if engine == "torch" else "onnxruntime")
    net = Network.from_file(SPEC)
    params = net.init_params(0, "float64")
    x = _inputs(net)
    expected = net.run(params, {"x": x}, dtype="float64")
    found = net.run(params, {"x": x}, dtype="float64", engine=engine)
    assert found.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(found[name], expected[name], rtol=0, atol=1e-10)
    one = net.run(params, x[0], dtype="float64", engine=engine)  # (T, F): unbatched back
    np.testing.assert_allclose(one["y"], expected["y"][0], rtol=0, atol=1e-10)


def test_run_and_export_refuse_what_they_do_not_know_as_the_errors_page_says(tmp_path):
    net = Network.from_file(SPEC)
    params = net.init_params(0)
    x = _inputs(net)
    calls = [
        lambda: net.run(params, x, engine="jax"),
        lambda: net.run(params, x, device="cpu"),
        lambda: net.run(params, x, model="m.onnx"),
        lambda: net.export(params, tmp_path / "net.h5", "keras"),
    ]
    page = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for call in calls:
        with pytest.raises(ComposerError) as caught:
            call()
        assert caught.value.exit_code == 2
        assert f"\n{caught.value}\n" in page, str(caught.value)
    assert not (tmp_path / "net.h5").exists()


def test_export_writes_a_model_that_runs_as_the_network(tmp_path):
    pytest.importorskip("onnxruntime")
    net = Network.from_file(SPEC)
    params = net.init_params(0, "float64")
    path = tmp_path / "net.onnx"
    report = net.export(params, path, "onnx", dtype="float64")
    assert report.startswith(f"wrote {path}") and path.exists()
    x = _inputs(net)
    found = net.run(params, {"x": x}, dtype="float64", engine="onnx", model=path)
    expected = net.run(params, {"x": x}, dtype="float64")
    np.testing.assert_allclose(found["y"], expected["y"], rtol=0, atol=1e-10)


def test_export_to_torch_writes_the_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    net = Network.from_file(SPEC)
    params = net.init_params(0)
    path = tmp_path / "net.pt"
    net.export(params, path, "torch")
    state = torch.load(path)
    assert state.keys() == net.to_torch(params).state_dict().keys()


def test_the_pictures_are_the_stage_functions():
    net = Network.from_file(SPEC)
    assert net.folded_dot() == composer.folded_dot(net.graph)
    assert net.unfolded_dot(4) == composer.unfolded_dot(net.unroll(4))
    assert net.unfolded_dot(4, max_columns=3) != net.unfolded_dot(4)


def test_train_options_default_as_train_does():
    """`TrainOptions` names every keyword of `composer.train`, with its default: a new
    option of `train` without its field here fails this test."""
    keywords = {
        name: p.default
        for name, p in inspect.signature(train).parameters.items()
        if p.kind is p.KEYWORD_ONLY
    }
    assert TrainOptions().keywords() == keywords


def test_train_with_options_is_train_with_keywords():
    net = Network.from_file(SPEC)
    params = net.init_params(0)
    rng = np.random.default_rng(0)
    sizes = {name: net.graph.nodes[name]["size"] for name in ("x", "y")}
    data = {name: rng.normal(size=(8, 5, size)) for name, size in sizes.items()}
    options = TrainOptions(epochs=2, batch_size=4, lr=1e-2, validation=0.0)
    by_options = net.train(params, data, options)
    by_keywords = net.train(params, data, epochs=2, batch_size=4, lr=1e-2, validation=0.0)
    mixed = net.train(params, data, options.but(lr=1.0), lr=1e-2)
    for name, value in by_keywords.params.items():
        np.testing.assert_array_equal(by_options.params[name], value)
        np.testing.assert_array_equal(mixed.params[name], value)
    with pytest.raises(TypeError):
        net.train(params, data, options, epochz=2)
