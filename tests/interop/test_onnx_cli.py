"""`export --format onnx` and `run --engine onnx` as a user runs them: the written file,
its metadata and opset, the refusals (one line, the documented exit code), and the
serving example of docs/interop.md."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from composer import build, init_params, load_spec, save_params
from composer.cli import app
from composer.errors import SpecError
from composer.interop.native import ONNX_OPERATORS
from composer.interop.onnx import MIN_OPSET, build_model, default_opset
from composer.kinds import KINDS, Kind
from tests.conftest import ROOT
from tests.kinds.minimal import MINIMAL, MinimalSpec

onnx = pytest.importorskip("onnx")

SENTIMENT = ROOT / "specs" / "sentiment.yaml"
JORDAN = ROOT / "specs" / "jordan.yaml"
SEQ2SEQ = ROOT / "specs" / "encoder-decoder.yaml"
GENERATE = ROOT / "specs" / "generate.yaml"
DOC = (ROOT / "docs" / "interop.md").read_text()
ONNX_SECTION = DOC[DOC.index("## ONNX") :]


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Weights for two example specs, an input batch, and the sentiment model exported."""
    where = tmp_path_factory.mktemp("onnx")
    for path in (SENTIMENT, JORDAN, SEQ2SEQ, GENERATE):
        graph = build(load_spec(path))
        save_params(where / f"{path.stem}.npz", init_params(graph, seed=4))
    rng = np.random.default_rng(0)
    np.save(where / "x.npy", rng.normal(size=(3, 12, 50)))
    np.save(where / "x4.npy", rng.normal(size=(2, 8, 4)))
    model = where / "sentiment.onnx"
    result = invoke("export", SENTIMENT, "-w", where / "sentiment.npz", "-f", "onnx", "-o", model)
    assert result.exit_code == 0, result.output
    return where


def test_the_written_model_is_checked_and_says_where_it_came_from(files):
    result = invoke(
        "export", SENTIMENT, "-w", files / "sentiment.npz", "-f", "onnx", "-o", files / "m.onnx"
    )
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"wrote .*m\.onnx: ONNX opset \d+, ONNX recurrent operators, dynamic batch and T, "
        r"float32, [\d,]+ bytes",
        one_line(result),
    )
    model = onnx.load(files / "m.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.name == "sentiment"
    assert "sentiment" in model.doc_string and model.producer_name == "rnn-composer"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["rnn-composer.spec"] == SENTIMENT.read_text()
    weights = (files / "sentiment.npz").read_bytes()
    assert meta["rnn-composer.weights.sha256"] == hashlib.sha256(weights).hexdigest()
    assert meta["rnn-composer.version"] == model.producer_version != ""
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["o"]


def test_the_default_opset_is_the_newest_both_libraries_run_and_another_can_be_chosen(files):
    model = onnx.load(files / "sentiment.onnx")
    assert model.opset_import[0].version == default_opset() >= MIN_OPSET
    assert default_opset() <= onnx.defs.onnx_opset_version()
    result = invoke(
        "export", SENTIMENT, "-w", files / "sentiment.npz", "-f", "onnx",
        "-o", files / "m17.onnx", "--opset", MIN_OPSET,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert onnx.load(files / "m17.onnx").opset_import[0].version == MIN_OPSET
    ran = invoke("run", SENTIMENT, "-i", files / "x.npy", "--engine", "onnx", "--model",
                 files / "m17.onnx", "-o", files / "o17.npz")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    ours = invoke("run", SENTIMENT, "-i", files / "x.npy", "-w", files / "sentiment.npz",
                  "-o", files / "o.npz", "--force")  # fmt: skip
    assert ours.exit_code == 0, ours.output
    np.testing.assert_allclose(
        np.load(files / "o17.npz")["o"], np.load(files / "o.npz")["o"], atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("opset", ["12", "999"])
def test_an_opset_outside_the_range_is_a_usage_error(files, opset):
    out = files / f"bad{opset}.onnx"
    result = invoke(
        "export", SENTIMENT, "-w", files / "sentiment.npz", "-f", "onnx", "-o", out,
        "--opset", opset,
    )  # fmt: skip
    assert result.exit_code == 2
    assert one_line(result) == (
        f"--opset: expected {MIN_OPSET} to {default_opset()} (the newest the installed onnx "
        f"and onnxruntime both run), got {opset}"
    )
    assert not out.exists()


def test_a_network_that_needs_a_fixed_t_says_which_feature_and_asks_for_steps(files):
    out = files / "s2s.onnx"
    result = invoke("export", SEQ2SEQ, "-w", files / "encoder-decoder.npz", "-f", "onnx", "-o", out)
    assert result.exit_code == 2
    line = one_line(result)
    assert "--steps T" in line and "`dec` starting from `enc`'s last state" in line
    assert "the active steps of `enc` (`0:5`)" in line
    assert not out.exists()
    result = invoke(
        "export", SEQ2SEQ, "-w", files / "encoder-decoder.npz", "-f", "onnx", "-o", out,
        "--steps", 8,
    )  # fmt: skip
    assert result.exit_code == 0 and "unrolled at T = 8" in one_line(result)
    rng = np.random.default_rng(6)
    src, prev = rng.normal(size=(2, 5, 16)), rng.normal(size=(2, 3, 12))
    np.savez(files / "s2s_in.npz", src=src, prev=prev)
    ran = invoke("run", SEQ2SEQ, "-i", files / "s2s_in.npz", "--engine", "onnx", "--model", out,
                 "-o", files / "s2s_onnx.npz")  # fmt: skip
    ours = invoke("run", SEQ2SEQ, "-i", files / "s2s_in.npz", "-w", files / "encoder-decoder.npz",
                  "-o", files / "s2s_ours.npz")  # fmt: skip
    assert ran.exit_code == ours.exit_code == 0, ran.output + ours.output
    np.testing.assert_allclose(
        np.load(files / "s2s_onnx.npz")["y"], np.load(files / "s2s_ours.npz")["y"], atol=1e-5
    )


def test_a_feedback_loop_keeps_a_dynamic_t(files):
    out = files / "jordan.onnx"
    result = invoke("export", JORDAN, "-w", files / "jordan.npz", "-f", "onnx", "-o", out)
    assert result.exit_code == 0, result.output
    assert "Scan loops, dynamic batch and T" in one_line(result)
    for steps in (1, 3, 8):
        np.save(files / "xj.npy", np.random.default_rng(steps).normal(size=(2, steps, 4)))
        outputs = {}
        for engine in ("numpy", "onnx"):
            target = files / f"j_{engine}.npz"
            extra = ["--model", out] if engine == "onnx" else ["-w", files / "jordan.npz"]
            ran = invoke("run", JORDAN, "-i", files / "xj.npy", "--engine", engine, *extra,
                         "-o", target, "--force")  # fmt: skip
            assert ran.exit_code == 0, ran.output
            outputs[engine] = np.load(target)["y"]
        np.testing.assert_allclose(outputs["onnx"], outputs["numpy"], atol=1e-5, rtol=0)


def test_lengths_on_an_unrolled_network_are_refused_as_an_unsupported_feature(files):
    out = files / "dl.onnx"
    result = invoke(
        "export", SEQ2SEQ, "-w", files / "encoder-decoder.npz", "-f", "onnx", "-o", out,
        "--steps", 8, "--lengths",
    )  # fmt: skip
    assert result.exit_code == 3
    assert re.fullmatch(
        rf"{re.escape(str(SEQ2SEQ))}:\d+:\d+: inputs\[0\]\.window: --lengths is exported only "
        r"with a dynamic T, and this network is exported unrolled because of the window "
        r"`0:5` of input `src`, .*",
        one_line(result),
    )
    assert not out.exists()


class _Stepless(type(MINIMAL)):
    """A kind that runs in NumPy but has not written its `step`."""

    step = Kind.step


def test_a_kind_without_a_step_is_refused_naming_the_layer(monkeypatch):
    monkeypatch.setitem(KINDS, "minimal", _Stepless())
    network = MinimalSpec.model_validate(
        {
            "inputs": [{"name": "x", "size": 3}],
            "layers": [{"name": "m", "kind": "minimal", "input": "x", "state_size": 4}],
            "outputs": [{"name": "y", "from": "m"}],
        }
    )
    graph = build(network)
    with pytest.raises(SpecError, match="layer `m`: kind `minimal` has no ONNX export yet") as err:
        build_model(graph, init_params(graph), steps=4)
    assert err.value.exit_code == 3 and err.value.path == ("layers", 0)


def test_an_existing_file_is_kept_unless_forced(files):
    out = files / "kept.onnx"
    out.write_bytes(b"precious")
    args = ["export", SENTIMENT, "-w", files / "sentiment.npz", "-f", "onnx", "-o", out]
    assert invoke(*args).exit_code == 2 and out.read_bytes() == b"precious"
    assert invoke(*args, "--force").exit_code == 0
    onnx.checker.check_model(onnx.load(out), full_check=True)


def test_float64_models_take_and_give_float64(files):
    out = files / "m64.onnx"
    result = invoke(
        "export", SENTIMENT, "-w", files / "sentiment.npz", "-f", "onnx", "-o", out,
        "--dtype", "float64",
    )  # fmt: skip
    assert result.exit_code == 0 and "Scan loops" in one_line(result)
    model = onnx.load(out)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


@pytest.mark.parametrize("lengths", [None, "5,12,1"])
def test_run_on_onnx_runtime_writes_what_the_numpy_engine_writes(files, lengths):
    extra = ["--lengths", lengths] if lengths else []
    outputs = {}
    for engine in ("numpy", "onnx"):
        out = files / f"run-{engine}-{bool(lengths)}.npz"
        result = invoke(
            "run", SENTIMENT, "-i", files / "x.npy", "-w", files / "sentiment.npz",
            "--engine", engine, "-o", out, *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs[engine] = dict(np.load(out))
    assert sorted(outputs["onnx"]) == sorted(outputs["numpy"])
    for name, value in outputs["numpy"].items():
        np.testing.assert_allclose(outputs["onnx"][name], value, atol=1e-5, rtol=0)


def test_run_reports_the_engine_and_refuses_a_model_with_weights(files):
    result = invoke("run", SENTIMENT, "-i", files / "x.npy", "--engine", "onnx",
                    "--model", files / "sentiment.onnx")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "on ONNX Runtime" in result.stdout.splitlines()[0]
    model, weights = files / "sentiment.onnx", files / "sentiment.npz"
    refused = invoke("run", SENTIMENT, "-i", files / "x.npy", "--engine", "onnx",
                     "--model", model, "-w", weights)  # fmt: skip
    assert refused.exit_code == 2 and "--model" in refused.output
    padded = invoke("run", SENTIMENT, "-i", files / "x.npy", "--engine", "onnx",
                    "--model", files / "sentiment.onnx", "--lengths", "3,4,5")  # fmt: skip
    assert padded.exit_code == 4
    assert one_line(padded) == f"{model}: the model takes no lengths; export it with --lengths"


def test_a_model_that_does_not_fit_the_inputs_is_one_line(files):
    out = files / "fixed.onnx"
    args = ["export", SENTIMENT, "-w", files / "sentiment.npz", "-f", "onnx", "-o", out]
    assert invoke(*args, "--steps", 6).exit_code == 0
    result = invoke("run", SENTIMENT, "-i", files / "x.npy", "--engine", "onnx", "--model", out)
    assert result.exit_code == 4
    assert one_line(result).startswith(f"{out}: ONNX Runtime refused the inputs: ")


def test_without_the_extra_the_command_says_what_to_install(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # an import of it now fails
    result = invoke(
        "export", SENTIMENT, "-w", files / "sentiment.npz", "-f", "onnx", "-o", files / "n.onnx"
    )
    assert result.exit_code == 2
    assert "pip install 'rnn-composer[onnx]'" in one_line(result)


def test_the_core_never_imports_onnx():
    code = (
        "import sys, composer, composer.cli, composer.interop, composer.kinds\n"
        "assert not {'onnx', 'onnxruntime'} & set(sys.modules), sorted(sys.modules)"
    )
    env = {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)


def test_the_docs_serving_example_runs(files, monkeypatch, capsys):
    (code,) = re.findall(r"```python\n(.*?)```", ONNX_SECTION, re.S)
    assert len(code.strip().splitlines()) == 5
    monkeypatch.chdir(files)
    exec(compile(code, "docs/interop.md", "exec"), {})
    assert capsys.readouterr().out.startswith("(2, 1, 3)")


def test_the_docs_run_command_runs(files, monkeypatch):
    (command,) = re.findall(r"^rnn-composer run .*$", ONNX_SECTION, re.M)
    monkeypatch.chdir(files)
    args = [str(ROOT / a) if a.startswith("specs/") else a for a in command.split()[1:]]
    result = invoke(*args)
    assert result.exit_code == 0, result.output


def test_the_docs_table_agrees_with_the_kinds():
    """The table's gate orders are what the export writes: ours permuted by each kind's
    operator's `gates` (`composer.interop.native`) reads as ONNX's row (g is ONNX's c, n
    its h)."""
    table = ONNX_SECTION[ONNX_SECTION.index("### Gate order") :]
    header = next(line for line in table.splitlines() if line.startswith("| |"))
    columns = [c.strip() for c in header.split("|")[2:-1]]
    assert columns == ["ours (`.npz`)", "PyTorch", "Keras (TF 2)", "ONNX"]
    lines = [line.split("|") for line in table.splitlines() if line.startswith("|")]
    rows = {cells[1].strip(): cells[2:-1] for cells in lines}
    renamed = {"g": "c", "n": "h"}
    for kind, row in (("lstm", "LSTM gate order"), ("gru", "GRU gate order")):
        ours, onnx_order = rows[row][0].strip().split(", "), rows[row][3].strip().split(", ")
        written = [renamed.get(ours[k], ours[k]) for k in ONNX_OPERATORS[kind].gates]
        assert written == onnx_order, (kind, written, onnx_order)
    operators = [ONNX_OPERATORS[k].operator for k in ("elman", "lstm", "gru")]
    assert operators == ["RNN", "LSTM", "GRU"]


def test_a_model_too_large_for_one_file_is_refused_before_it_is_built(files):
    out = files / "huge.onnx"
    result = invoke(
        "export", GENERATE, "-w", files / "generate.npz", "-f", "onnx", "-o", out,
        "--steps", 3_000_000,
    )  # fmt: skip
    assert result.exit_code == 5
    assert one_line(result).startswith("the ONNX model unrolled at T = 3,000,000 would take")
    assert not out.exists()
