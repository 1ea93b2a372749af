"""`run --engine onnx --model` on models the tool did not write (issue 25, items 1, 2, 7
and 13): external data is refused and never read, outputs are checked against the spec
before anything is written, the network digest must match, and a run that never ends
stops on SIGINT and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.interop.onnx_check import DIGEST_KEY
from tests.conftest import ROOT

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from tests.interop import hostile_onnx as h  # noqa: E402


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def tagger(tmp_path):
    spec = tmp_path / "tagger.yaml"
    spec.write_text(h.TAGGER)
    np.save(tmp_path / "x.npy", h.X)
    return tmp_path


def run_model(where, model: bytes, *extra, name="m.onnx"):
    (where / name).write_bytes(model)
    return invoke(
        "run", where / "tagger.yaml", "-i", where / "x.npy", "--engine", "onnx",
        "--model", where / name, *extra,
    )  # fmt: skip


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def cli(*args, cwd, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "composer", *map(str, args)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


# -- item 1: external data --------------------------------------------------------------


@pytest.mark.parametrize("where", ["initializer", "constant"])
def test_external_data_under_the_current_folder_is_refused_and_never_read(tmp_path, where):
    home, models = tmp_path / "home", tmp_path / "models"
    (home / ".ssh").mkdir(parents=True)
    models.mkdir()
    (tmp_path / "tagger.yaml").write_text(h.TAGGER)
    np.save(tmp_path / "x.npy", h.X)
    os.mkfifo(home / ".ssh" / "id_rsa")  # opening it to read would block: the run would hang
    (models / "ext.onnx").write_bytes(h.external(".ssh/id_rsa", where=where))
    child = cli("run", "../tagger.yaml", "-i", "../x.npy", "--engine", "onnx", "--model",
                "../models/ext.onnx", "--output", "leak.npz", cwd=home)  # fmt: skip
    try:
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 4, stderr
    line = stderr.strip()
    assert "\n" not in line and line.startswith("../models/ext.onnx: "), stderr
    assert "`w`" in line and "'.ssh/id_rsa'" in line and "external" in line
    assert sorted(p.name for p in home.iterdir()) == [".ssh"]  # no leak.npz


def test_external_data_beside_the_model_is_refused_from_anywhere(tagger):
    (tagger / "w.bin").write_bytes(bytes(16))
    for cwd in (tagger, tagger.parent):  # the same rule wherever the run starts
        os.chdir(cwd)
        result = run_model(tagger, h.external("w.bin"), "--output", tagger / "o.npz")
        assert result.exit_code == 4
        assert "initializer `w` keeps its data in an external file ('w.bin')" in one_line(result)
        assert not (tagger / "o.npz").exists()
    os.chdir(ROOT)


def test_a_genuine_model_that_fits_the_spec_runs(tagger):
    result = run_model(tagger, h.genuine(), "--output", tagger / "o.npz")
    assert result.exit_code == 0, result.output
    with np.load(tagger / "o.npz") as written:
        assert list(written) == ["tags"]
        np.testing.assert_array_equal(written["tags"], h.X[..., :3])


# -- item 13: outputs and inputs checked against the spec --------------------------------


def _out(name, elem, shape, value):
    return [h.constant(name, value)], [helper.make_tensor_value_info(name, elem, shape)]


F32, FLOAT = np.float32, TensorProto.FLOAT
HOSTILE = {
    "scalar": _out("tags", FLOAT, [], np.array(1.0, F32)),
    "rank 5": _out("tags", FLOAT, [2, 12, 3, 1, 1], np.zeros((2, 12, 3, 1, 1), F32)),
    "int": _out("tags", TensorProto.INT64, [2, 12, 3], np.zeros((2, 12, 3), np.int64)),
    "string": _out("tags", TensorProto.STRING, [1], np.array(["a"], dtype=object)),
    "undeclared scalar": _out("tags", FLOAT, None, np.array(1.0, F32)),
    "undeclared wrong size": _out("tags", FLOAT, None, np.zeros((2, 12, 5), F32)),
    "undeclared wrong batch": _out("tags", FLOAT, None, np.zeros((3, 12, 3), F32)),
    "undeclared wrong steps": _out("tags", FLOAT, None, np.zeros((2, 11, 3), F32)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_outputs_that_are_not_the_spec_s_are_one_line_and_write_nothing(tagger, case):
    nodes, outputs = HOSTILE[case]
    for extra in ([], ["--output", tagger / "o.npz"]):
        result = run_model(tagger, h.make(nodes, outputs), *extra)
        assert result.exit_code == 4, result.output
        assert one_line(result).startswith(f"{tagger / 'm.onnx'}: output `tags`")
        assert not (tagger / "o.npz").exists()


def test_a_sequence_output_is_refused(tagger):
    nodes = [h.constant("a", np.zeros((2, 12, 3), np.float32))]
    nodes.append(helper.make_node("SequenceConstruct", ["a"], ["tags"]))
    info = helper.make_tensor_sequence_value_info("tags", TensorProto.FLOAT, None)
    result = run_model(tagger, h.make(nodes, [info]))
    assert result.exit_code == 4
    assert (
        "output `tags`: expected a float tensor (B, T_out, 3), the model declares a sequence"
        in (one_line(result))
    )


def test_wrongly_named_extra_and_forged_outputs_are_refused(tagger):
    genuine = helper.make_tensor_value_info("tags", TensorProto.FLOAT, ["B", "T", 3])
    for name in ("tagz", "extra", "tags\nforged: wrote o.npz"):
        nodes = [*h.sliced(), *h.sliced(out=name)]
        outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["B", "T", 3])]
        if name != "tagz":
            outputs.insert(0, genuine)
        else:
            nodes = h.sliced(out=name)
        result = run_model(tagger, h.make(nodes, outputs), "--output", tagger / "o.npz")
        assert result.exit_code == 4, result.output
        line = one_line(result)  # the newline is shown as \n: no second line
        assert f"output `{name.encode('unicode_escape').decode()}` is not an output" in line
        assert not (tagger / "o.npz").exists()


def test_inputs_that_are_not_the_spec_s_are_refused(tagger):
    cases = {
        "input `y` is not an input of this spec (its inputs: x)": [h.x_input(name="y")],
        "input `x`: expected a float tensor (B, T_in, 4), the model declares tensor(int64)": [
            h.x_input(TensorProto.INT64)
        ],
        "input `x`: expected a float tensor (B, T_in, 4), the model declares tensor(float32) "
        "of rank 2": [h.x_input(shape=("B", 4))],
    }
    for message, inputs in cases.items():
        tags = helper.make_tensor_value_info("tags", TensorProto.FLOAT, None)
        model = h.make([h.constant("tags", np.zeros((2, 12, 3), np.float32))], [tags], inputs)
        result = run_model(tagger, model)
        assert result.exit_code == 4
        assert message in one_line(result)


def test_a_model_of_another_network_is_refused_by_its_digest(tagger):
    other = tagger / "other.yaml"
    other.write_text(h.TAGGER.replace("state_size: 16", "state_size: 8"))
    assert invoke("export", other, "-w", _weights(tagger, other), "-f", "onnx",
                  "-o", tagger / "other.onnx").exit_code == 0  # fmt: skip
    model = onnx.load(tagger / "other.onnx")
    assert {p.key for p in model.metadata_props} >= {DIGEST_KEY}
    result = run_model(tagger, model.SerializeToString())
    assert result.exit_code == 4
    assert one_line(result) == (
        f"{tagger / 'm.onnx'}: exported from another network than this spec (its "
        f"{DIGEST_KEY} differs); run it with the spec it was exported from"
    )
    # comments, layout, names, descriptions and the default T are not the network
    same = tagger / "same.yaml"
    edited = h.TAGGER.replace("name: tagger\n", "name: other\ndescription: d\n")
    same.write_text("# a comment\n" + edited.replace("steps: 12", "steps: 20"))
    ran = invoke(
        "run", same, "-i", tagger / "x.npy", "--engine", "onnx", "--model", tagger / "m.onnx"
    )
    assert ran.exit_code == 4  # still the 8-unit network
    assert invoke("export", same, "-w", _weights(tagger, same), "-f", "onnx",
                  "-o", tagger / "same.onnx").exit_code == 0  # fmt: skip
    ran = invoke("run", tagger / "tagger.yaml", "-i", tagger / "x.npy", "--engine", "onnx",
                 "--model", tagger / "same.onnx")  # fmt: skip
    assert ran.exit_code == 0, ran.output


def _weights(where, spec):
    out = where / f"{spec.stem}.npz"
    assert invoke("run", spec, "-i", where / "x.npy", "--save-weights", out, "-o",
                  where / f"{spec.stem}.out.npz", "--force").exit_code == 0  # fmt: skip
    return out


def test_runtime_logs_never_reach_stderr(tagger):
    """A model ONNX Runtime warns about (an unused initializer) runs with no log line."""
    unused = onnx.numpy_helper.from_array(np.zeros(3, np.float32), "unused")
    model = h.make(h.sliced(), [helper.make_tensor_value_info("tags", TensorProto.FLOAT, None)],
                   initializers=[unused])  # fmt: skip
    (tagger / "m.onnx").write_bytes(model)
    child = cli("run", "tagger.yaml", "-i", "x.npy", "--engine", "onnx", "--model", "m.onnx",
                "-o", "o.npz", cwd=tagger)  # fmt: skip
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 0
    assert stderr == "wrote o.npz: tags (2, 12, 3)\n"


# -- item 7: --steps ----------------------------------------------------------------------


def test_onnx_refuses_steps_that_disagree_with_the_input_as_the_other_engines_do(tagger):
    lines = set()
    for engine in ("numpy", "torch", "onnx"):
        result = invoke("run", tagger / "tagger.yaml", "-i", tagger / "x.npy", "--steps", 5,
                        "--engine", engine, "-o", tagger / "o.npz")  # fmt: skip
        assert result.exit_code == 4, (engine, result.output)
        lines.add(one_line(result))
        assert not (tagger / "o.npz").exists()
    assert lines == {
        "input 'x': expected shape (B, 5, 4) (its window `:` holds 5 of T = 5 steps), "
        "got (2, 12, 4)"
    }


# -- item 2: every run stops on a signal --------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_loop_that_never_ends_stops_on_the_signal(tagger, signum):
    (tagger / "loop.onnx").write_bytes(h.endless())
    child = cli("run", "tagger.yaml", "-i", "x.npy", "--engine", "onnx", "--model", "loop.onnx",
                "-o", "o.npz", cwd=tagger, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _children(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = _children(child.pid)
        assert workers, "the run never started its ONNX Runtime worker"
        time.sleep(1)  # well into the loop
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=20)  # the loop alone would run for ever
    finally:
        child.kill()
    assert child.returncode == (130 if signum == signal.SIGINT else 128 + signum), stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tagger.iterdir()) == ["loop.onnx", "tagger.yaml", "x.npy"]
    for pid in workers:  # the worker went with it
        assert (
            not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]
        )


def test_a_crashing_runtime_is_one_line(tagger, monkeypatch):
    from composer.interop import onnx_worker

    crash = tagger / "crash.py"
    crash.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setattr(onnx_worker, "__file__", str(crash))
    result = run_model(tagger, h.genuine(), "--output", tagger / "o.npz")
    assert result.exit_code == 4
    assert one_line(result) == f"{tagger / 'm.onnx'}: ONNX Runtime ended with signal SIGSEGV"
    assert not (tagger / "o.npz").exists()


def test_the_worker_imports_nothing_from_the_current_folder(tagger, monkeypatch):
    from composer.interop.onnx_worker import run_session

    for name in ("numpy", "onnxruntime", "json"):
        (tagger / f"{name}.py").write_text("open('hijacked', 'w').close()\nraise SystemExit(9)\n")
    monkeypatch.chdir(tagger)
    outputs = run_session(h.genuine(), {"x": h.X})
    np.testing.assert_array_equal(outputs["tags"], h.X[..., :3])
    assert not (tagger / "hijacked").exists()
