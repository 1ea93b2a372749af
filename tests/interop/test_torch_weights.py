"""PyTorch state_dicts in and out: `import-weights` from user-shaped modules (.safetensors
and .pt), `export --format torch` then `import-weights` exact for every example, the
errors (keys, shapes, unused keys, a pickle that runs code), and the core install without
PyTorch."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.engine.inputs import input_sizes
from composer.graph.weights import save_params
from composer.interop.torch_keys import to_state
from composer.network import Network
from tests.builders import input_, layer, output, random_input, spec, write_spec
from tests.conftest import ROOT, SPECS

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

pytestmark = pytest.mark.torch
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


CLASSES = {"elman": "RNN", "lstm": "LSTM", "gru": "GRU"}


class Tagger(torch.nn.Module):
    """What a user writes: a recurrent module and a linear head, their own names."""

    def __init__(self, kind, layers, bidirectional, F=3, H=5, C=4, **options):
        super().__init__()
        cls = getattr(torch.nn, CLASSES[kind])
        self.encoder = cls(
            F, H, num_layers=layers, bidirectional=bidirectional, batch_first=True, **options
        ).double()
        width = options.get("proj_size") or H  # what each direction's outputs hold
        self.head = torch.nn.Linear(width * (2 if bidirectional else 1), C).double()
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0, 0.5)

    def forward(self, x):
        return self.head(self.encoder(x)[0])


def _tagger_spec(kind, layers, bidirectional):
    body = [
        layer(f"l{k}", kind, f"l{k - 1}" if k else "x", 5, bidirectional=bidirectional)
        for k in range(layers)
    ]
    body[-1]["output"] = {"size": 4}
    return spec(body, inputs=[input_("x", 3)], outputs=[output("o", f"l{layers - 1}")])


def _save(state, path):
    if path.suffix == ".safetensors":
        safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_import_from_a_user_module_runs_as_it_does(tmp_path, kind, layers, bidirectional, suffix):
    torch.manual_seed(layers)
    model = Tagger(kind, layers, bidirectional)
    state_path = tmp_path / f"tagger{suffix}"
    _save(model.state_dict(), state_path)
    spec_path = write_spec(tmp_path, _tagger_spec(kind, layers, bidirectional))
    maps = [a for k in range(layers) for a in ("--map", f"l{k}=encoder:{k}")]
    weights = tmp_path / "w.npz"
    result = invoke("import-weights", spec_path, state_path, "-o", weights, *maps,
                    "--map", f"l{layers - 1}.readout=head")  # fmt: skip
    assert result.exit_code == 0, result.output
    params = dict(np.load(weights))
    assert all(v.dtype == np.float64 for v in params.values())
    x = np.random.default_rng(0).normal(size=(2, 6, 3))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = Network.from_file(spec_path).run(params, {"x": x}, dtype="float64")["o"]
    np.testing.assert_allclose(got, expected, atol=1e-10, rtol=0)


def _random_params(net, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_export_then_import_is_exact(tmp_path, path, suffix):
    net = Network.from_file(path)
    params = _random_params(net)
    save_params(tmp_path / "w.npz", params)
    state = tmp_path / f"s{suffix}"
    result = invoke("export", path, "-w", tmp_path / "w.npz", "--format", "torch", "-o", state,
                    "--dtype", "float64")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    back = tmp_path / "back.npz"
    result = invoke("import-weights", path, state, "-o", back)
    assert result.exit_code == 0, result.output
    got = dict(np.load(back))
    assert sorted(got) == sorted(params)
    for key, value in params.items():  # exact: float64 copies (and zero biases added)
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    # and the file is the module's own state_dict
    module = net.to_torch(params, "float64")
    loaded = (
        safetensors_torch.load_file(str(state))
        if suffix == ".safetensors"
        else torch.load(state, weights_only=True)
    )
    module.load_state_dict(loaded)
    rng = np.random.default_rng(1)
    inputs = {
        name: random_input(net.graph, name, 2, n, rng)
        for name, n in zip(input_sizes(net.graph), _input_steps(net))
    }
    with torch.no_grad():
        out = module({k: torch.from_numpy(v) for k, v in inputs.items()})
    for key, value in net.run(params, inputs, dtype="float64").items():
        np.testing.assert_allclose(out[key].numpy(), value, atol=1e-10, rtol=0)


def _input_steps(net):
    from composer.engine.pipeline import plan_for_steps

    plan = plan_for_steps(net.graph, net.graph.graph["steps"])
    return [len(plan.window(name)) for name in input_sizes(net.graph)]


@pytest.fixture(scope="module")
def lstm_case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lstm")
    model = Tagger("lstm", 2, False)
    path = tmp / "tagger.safetensors"
    _save(model.state_dict(), path)
    return tmp, write_spec(tmp, _tagger_spec("lstm", 2, False)), path, model


def _maps(layers=2):
    return [a for k in range(layers) for a in ("--map", f"l{k}=encoder:{k}")] + [
        "--map",
        f"l{layers - 1}.readout=head",
    ]


def test_a_wrong_shape_names_both_keys_and_both_shapes(lstm_case, tmp_path):
    tmp, spec_path, _, model = lstm_case
    state = dict(model.state_dict())
    state["encoder.weight_hh_l1"] = torch.zeros(20, 4, dtype=torch.float64)
    bad = tmp_path / "bad.safetensors"
    _save(state, bad)
    result = invoke("import-weights", spec_path, bad, "-o", tmp_path / "w.npz", *_maps())
    assert result.exit_code == 4
    line = result.output.strip()
    assert "'encoder.weight_hh_l1'" in line and "l1.Ws" in line
    assert "(20, 4)" in line and "(20, 5)" in line and "(5, 20)" in line
    assert len(line.splitlines()) == 1 and not (tmp_path / "w.npz").exists()


def test_a_missing_key_names_it_and_the_weight(lstm_case, tmp_path):
    tmp, spec_path, path, _ = lstm_case
    result = invoke("import-weights", spec_path, path, "-o", tmp_path / "w.npz",
                    "--map", "l0=encoder:0", "--map", "l1=encoder:2")  # fmt: skip
    assert result.exit_code == 4
    assert "'encoder.weight_ih_l2'" in result.output and "l1.Wx" in result.output


def test_unused_keys_are_listed_and_refused_unless_allowed(lstm_case, tmp_path):
    tmp, _, path, model = lstm_case
    one = write_spec(tmp_path, _tagger_spec("lstm", 1, False))
    args = ["import-weights", one, path, "-o", tmp_path / "w.npz", "--map", "l0=encoder"]
    result = invoke(*args, "--map", "l0.readout=head")
    assert result.exit_code == 4
    assert "encoder.weight_ih_l1" in result.output and "--allow-unused" in result.output
    assert not (tmp_path / "w.npz").exists()
    result = invoke(*args, "--map", "l0.readout=head", "--allow-unused")
    assert result.exit_code == 0, result.output
    got = np.load(tmp_path / "w.npz")
    state = model.state_dict()
    # exact: copies, and one float32 addition, correctly rounded on any machine
    np.testing.assert_array_equal(got["l0.Wx"], state["encoder.weight_ih_l0"].numpy().T)
    summed = state["encoder.bias_ih_l0"] + state["encoder.bias_hh_l0"]
    np.testing.assert_array_equal(got["l0.b"], summed.numpy())


def test_without_map_our_own_names_are_expected(lstm_case, tmp_path):
    tmp, spec_path, path, _ = lstm_case
    result = invoke("import-weights", spec_path, path, "-o", tmp_path / "w.npz")
    assert result.exit_code == 4
    assert "'l0.rnn.weight_ih_l0'" in result.output and "--map" in result.output


@pytest.mark.parametrize("text", ["l0", "l0=", "=encoder", "l0=encoder:x", "l0.fc=head"])
def test_a_bad_map_says_the_form(lstm_case, tmp_path, text):
    tmp, spec_path, path, _ = lstm_case
    result = invoke("import-weights", spec_path, path, "-o", tmp_path / "w.npz", "--map", text)
    assert result.exit_code == 4
    assert "LAYER=MODULE[:K]" in result.output


class _Plant:
    """A pickle that creates a file when it is loaded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_that_runs_code_is_refused_and_never_runs(lstm_case, tmp_path):
    tmp, spec_path, _, _ = lstm_case
    planted = tmp_path / "planted"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"l0.rnn.weight_ih_l0": _Plant(str(planted))}))
    torch.save({"x": _Plant(str(planted))}, tmp_path / "evil2.pt")
    assert not planted.exists()  # saving did not load it
    for path in (evil, tmp_path / "evil2.pt"):
        result = invoke("import-weights", spec_path, path, "-o", tmp_path / "w.npz")
        assert result.exit_code == 4, result.output
        assert "refused" in result.output and "weights_only=True" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not planted.exists() and not (tmp_path / "w.npz").exists()


def test_a_state_file_of_another_kind_is_refused(lstm_case, tmp_path):
    tmp, spec_path, _, _ = lstm_case
    for name, content in [("s.npz", b"PK"), ("s.safetensors", b"junk")]:
        (tmp_path / name).write_bytes(content)
        result = invoke("import-weights", spec_path, tmp_path / name, "-o", tmp_path / "w.npz")
        assert result.exit_code in (2, 4), result.output
        assert len(result.output.strip().splitlines()) == 1


def test_export_refuses_onnx_options_and_other_suffixes(tmp_path):
    path = ROOT / "specs" / "gru.yaml"
    net = Network.from_file(path)
    save_params(tmp_path / "w.npz", net.init_params())
    base = ["export", path, "-w", tmp_path / "w.npz", "--format", "torch"]
    for extra, needle in [
        (["-o", tmp_path / "s.onnx"], ".safetensors, .pt or .pth"),
        (["-o", tmp_path / "s.pt", "--opset", "17"], "--opset"),
        (["-o", tmp_path / "s.pt", "--lengths"], "--lengths"),
    ]:
        result = invoke(*base, *extra)
        assert result.exit_code == 2 and needle in result.output, result.output
    assert not list(tmp_path.glob("s.*"))


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "safetensors", "numba"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
sys.argv = ["rnn-composer", *sys.argv[1:]]
from composer.cli import main
main()
"""


def _without_torch(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def test_the_core_install_runs_without_torch(tmp_path):
    spec_path = ROOT / "specs" / "lecture-elman.yaml"
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((4, 4)))
    (tmp_path / "in.pt").write_bytes(b"")
    assert _without_torch("validate", spec_path, cwd=tmp_path).returncode == 0
    ran = _without_torch("run", spec_path, "--input", x, "--save-weights", "w.npz", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    long = tmp_path / "long.npy"  # an LSTM run long enough to ask for the fused kernels
    np.save(long, np.zeros((4, 50_000, 4)))
    lstm = tmp_path / "lstm.yaml"
    lstm.write_text(
        "inputs: [{name: x, size: 4}]\n"
        "layers: [{name: l, kind: lstm, input: x, state_size: 4}]\n"
        "outputs: [{name: y, from: l}]\n"
    )
    ran = _without_torch("run", lstm, "--input", long, "-o", "out.npz", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    for args in [
        ("export", spec_path, "-w", "w.npz", "--format", "torch", "-o", "s.pt"),
        ("run", spec_path, "--input", x, "--engine", "torch"),
        ("import-weights", spec_path, "in.pt", "-o", "back.npz"),
    ]:
        done = _without_torch(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert "pip install 'rnn-composer[torch]'" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "s.pt").exists()
    assert not (tmp_path / "back.npz").exists()
    # a .safetensors is read by its header, with neither library: the core install takes it
    net = Network.from_file(spec_path)
    params = net.init_params(seed=2)
    state = to_state(net.graph, params)
    (tmp_path / "in.safetensors").write_bytes(safetensors_numpy.save(state))
    done = _without_torch("import-weights", spec_path, "in.safetensors", "-o", "back.npz",
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    back = np.load(tmp_path / "back.npz")
    for key, value in params.items():
        np.testing.assert_array_equal(back[key], value.astype(np.float32))
