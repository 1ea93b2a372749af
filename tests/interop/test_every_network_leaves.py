"""What runs here also leaves: every example spec and every starter (`rnn-composer new`),
`narx` and `tdnn` included, as a PyTorch module (float64 outputs to 1e-10 against `run`,
gradients to 1e-8 against `grad`), through `export --format torch` and `import-weights`
(exact), and as ONNX run by ONNX Runtime (1e-10, unrolled where no operator fits). The
example specs' module tests are in `test_torch_module.py` and their ONNX ones in
`test_onnx.py`; the command lines the issue reports failing are run here."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.engine.batches import run
from composer.engine.pipeline import plan_for_steps
from composer.graph.folded import build
from composer.graph.weights import init_params, save_params
from composer.kinds import KINDS
from composer.spec.model import NetworkSpec
from composer.spec.reader import load_spec
from composer.spec.starters import STARTERS, starter
from composer.training.backprop import grad
from tests.builders import random_input
from tests.conftest import ROOT
from tests.kinds.minimal import MINIMAL, MinimalSpec
from tests.kinds.test_step import LAYERS

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from composer.interop.onnx import build_model, run_model  # noqa: E402
from composer.interop.torch_keys import grads_from_state  # noqa: E402
from composer.interop.torch_module import to_torch  # noqa: E402

pytestmark = pytest.mark.torch
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module", params=STARTERS)
def started(request, tmp_path_factory):
    """A starter spec written by `new`, and its graph, T, weights and a batch."""
    path = tmp_path_factory.mktemp("starter") / f"{request.param}.yaml"
    path.write_text(starter(request.param))
    graph = build(load_spec(path))
    steps = graph.graph["steps"] or 6
    rng = np.random.default_rng(0)
    params = init_params(graph, seed=1, dtype="float64")  # their own scale: no chaos
    plan = plan_for_steps(graph, steps)
    inputs = {n: random_input(graph, n, 3, len(plan.window(n)), rng) for n in plan.inputs}
    return path, graph, steps, params, inputs


def test_every_starter_is_a_pytorch_module(started):
    _, graph, steps, params, inputs = started
    module = to_torch(graph, params, "float64")
    got = module({k: torch.from_numpy(v) for k, v in inputs.items()}, steps=steps)
    expected = run(graph, params, inputs, steps, "float64")
    rng = np.random.default_rng(1)
    targets = {k: rng.normal(size=v.shape) for k, v in expected.items()}
    for key, value in expected.items():
        np.testing.assert_allclose(got[key].detach().numpy(), value, atol=1e-10, rtol=0)
    sum(((got[k] - torch.from_numpy(y)) ** 2).mean() for k, y in targets.items()).backward()
    ours = grads_from_state(
        graph, {k: p.grad.numpy() for k, p in module.named_parameters() if p.grad is not None}
    )
    _, want = grad(plan_for_steps(graph, steps), params, inputs, targets, dtype="float64")
    for key, value in want.items():
        np.testing.assert_allclose(ours[key], value, atol=1e-8, rtol=1e-8, err_msg=key)


def test_every_starter_goes_to_pytorch_and_back_exactly(started, tmp_path):
    path, _, _, params, _ = started
    save_params(tmp_path / "w.npz", params)
    state = tmp_path / "s.safetensors"
    result = invoke("export", path, "-w", tmp_path / "w.npz", "--format", "torch", "-o", state,
                    "--dtype", "float64")  # fmt: skip
    assert result.exit_code == 0, result.output
    result = invoke("import-weights", path, state, "-o", tmp_path / "back.npz")
    assert result.exit_code == 0, result.output
    back = dict(np.load(tmp_path / "back.npz"))
    assert sorted(back) == sorted(params)
    for key, value in params.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_every_starter_runs_the_same_in_onnx_runtime(started):
    _, graph, steps, params, inputs = started
    model, _ = build_model(graph, params, dtype="float64", steps=steps)
    got, expected = run_model(model, inputs), run(graph, params, inputs, steps, "float64")
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=1e-10, rtol=0, err_msg=key)


@pytest.mark.parametrize("name", ["narx", "tdnn"])
def test_the_tapped_examples_leave_by_the_command_line(name, tmp_path):
    """The commands a new user tried: export to PyTorch and ONNX, `run --engine torch`
    and `run --engine onnx`, each as `run` gives; and the tapped weights' names."""
    path = ROOT / "specs" / f"{name}.yaml"
    graph = build(load_spec(path))
    steps = graph.graph["steps"]
    params = init_params(graph, seed=2, dtype="float64")
    save_params(tmp_path / "w.npz", params)
    x = random_input(graph, _first(graph), 2, steps, np.random.default_rng(3))
    np.save(tmp_path / "x.npy", x)
    state = tmp_path / "s.pt"
    result = invoke("export", path, "-w", tmp_path / "w.npz", "--format", "torch", "-o", state)
    assert result.exit_code == 0, result.output
    names = set(torch.load(state, weights_only=True))
    tapped = "h.W@1.weight" if name == "narx" else "tdnn1.W@-2.weight"
    assert tapped in names  # the rule: a weight no torch.nn module holds, by its key
    model = tmp_path / "m.onnx"
    result = invoke("export", path, "-w", tmp_path / "w.npz", "--format", "onnx", "-o", model,
                    "--steps", steps, "--dtype", "float64")  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = run(graph, params, {_first(graph): x}, steps, "float64")
    for engine in ("torch", "onnx"):
        out = tmp_path / f"{engine}.npz"
        given = ["--model", model] if engine == "onnx" else ["-w", tmp_path / "w.npz"]
        result = invoke("run", path, *given, "--input", tmp_path / "x.npy", "--engine", engine,
                        "--dtype", "float64", "-o", out)  # fmt: skip
        assert result.exit_code == 0, result.output
        got = dict(np.load(out))
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, atol=1e-10, rtol=0, err_msg=engine)


def _first(graph) -> str:
    return next(n for n, d in graph.nodes(data=True) if d["role"] == "input")


@pytest.mark.parametrize("name", ["narx", "tdnn"])
def test_the_tapped_examples_train_on_the_torch_engine_as_on_numpy(name):
    """`train --engine torch`: the same losses and weights, epoch by epoch (float64)."""
    from composer.interop.torch_engine import TorchEngine
    from composer.network import Network

    net = Network.from_file(ROOT / "specs" / f"{name}.yaml")
    steps = net.graph.graph["steps"]
    plan = plan_for_steps(net.graph, steps)
    rng = np.random.default_rng(5)
    data = {n: random_input(net.graph, n, 32, len(plan.window(n)), rng) for n in plan.inputs}
    for n in plan.outputs:
        data[n] = rng.normal(0, 0.3, size=(32, len(plan.window(n)), plan.vectors[n].size))
    start = net.init_params(seed=0, dtype="float64")
    common = dict(epochs=2, batch_size=8, dtype="float64", validation=0.25, seed=3, lr=0.01)
    ours = net.train(start, data, **common)
    theirs = net.train(start, data, engine=TorchEngine(net.graph, "float64"), **common)
    for a, b in zip(ours.history, theirs.history):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-9)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-9)
    for key, value in ours.params.items():
        np.testing.assert_allclose(theirs.params[key], value, rtol=1e-7, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_kind_and_variant_leaves_with_no_interop_code_of_its_own(name, monkeypatch):
    """Each kind and variant, the test kind (`tests/kinds/minimal.py`) included, bidirectional
    under a second layer: the PyTorch module (outputs and gradients), its state_dict and
    back, and ONNX (a dynamic T, float64 and float32), all from the kind's one step."""
    monkeypatch.setitem(KINDS, "minimal", MINIMAL)
    kind, fields = LAYERS[name]
    model = MinimalSpec if kind == "minimal" else NetworkSpec
    first = {"name": "a", "kind": kind, "input": "x", "state_size": 5, "bidirectional": True}
    top = {"name": "b", "kind": kind, "input": "a", "state_size": 4, "output": {"size": 2}}
    graph = build(
        model.model_validate(
            {
                "inputs": [{"name": "x", "size": 3}],
                "layers": [first | fields, top | fields],
                "outputs": [{"name": "y", "from": "b"}],
                "steps": 6,
            }
        )
    )
    params = init_params(graph, seed=1, dtype="float64")
    rng = np.random.default_rng(2)
    x, target = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 2))
    module = to_torch(graph, params, "float64")
    got = module(torch.from_numpy(x))["y"]
    expected = run(graph, params, {"x": x}, 6, "float64")["y"]
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-10, rtol=0)
    ((got - torch.from_numpy(target)) ** 2).mean().backward()
    ours = grads_from_state(
        graph, {k: p.grad.numpy() for k, p in module.named_parameters() if p.grad is not None}
    )
    _, want = grad(plan_for_steps(graph, 6), params, {"x": x}, {"y": target}, dtype="float64")
    for key, value in want.items():
        np.testing.assert_allclose(ours[key], value, atol=1e-8, rtol=1e-8, err_msg=key)
    back = to_torch(graph, None, "float64")
    back.load_state_dict(module.state_dict())
    for key, value in back.params().items():
        np.testing.assert_array_equal(value, params[key], err_msg=key)
    for dtype, tolerance in (("float64", 1e-10), ("float32", 1e-5)):
        onnx_model, _ = build_model(graph, params, dtype=dtype)
        (got,) = run_model(onnx_model, {"x": x}).values()
        expected = run(graph, params, {"x": x}, 6, dtype)["y"]
        np.testing.assert_allclose(got, expected, atol=tolerance, rtol=0)


def test_a_kind_without_a_step_is_refused_by_the_module_in_one_line(monkeypatch):
    from composer.errors import SpecError
    from composer.kinds.base import Kind

    class Stepless(type(MINIMAL)):
        step = Kind.step

    monkeypatch.setitem(KINDS, "minimal", Stepless())
    graph = build(
        MinimalSpec.model_validate(
            {
                "inputs": [{"name": "x", "size": 3}],
                "layers": [{"name": "m", "kind": "minimal", "input": "x", "state_size": 4}],
                "outputs": [{"name": "y", "from": "m"}],
            }
        )
    )
    with pytest.raises(SpecError) as caught:
        to_torch(graph)
    assert caught.value.path == ("layers", 0) and "\n" not in str(caught.value)
    assert "kind `minimal` has no PyTorch module yet: it writes no `step`" in str(caught.value)
