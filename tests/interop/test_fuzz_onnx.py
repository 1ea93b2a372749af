"""Fuzzing `run --engine onnx --model` (issue 25): small ONNX graphs with hostile outputs
(every element type and rank, wrong names, control characters, sequences, declared types
that lie), hostile inputs, foreign digests and tensors kept in external files.

Each run either succeeds with exactly the spec's output, or is refused in one line with
exit code 4 and nothing written; a tensor kept in an external file is always refused and
the file is never read. `make test` runs a few examples, `make fuzz` FUZZ_EXAMPLES // 2.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from composer.cli import app
from composer.interop.onnx_check import DIGEST_KEY

pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from tests.interop import hostile_onnx as h  # noqa: E402

HEAVY = int(os.environ.get("FUZZ_EXAMPLES", "8"))
SETTINGS = settings(
    max_examples=max(8, HEAVY // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NAMES = ["tags", "tags", "tags.lengths", "tagz", "x", "", "tags\nwrote o.npz", "t\x1b[31m", "y.z"]
SHAPES = [(), (2,), (1,), (2, 12), (2, 12, 3), (2, 12, 3), (2, 12, 5), (3, 12, 3), (2, 11, 3),
          (2, 12, 3, 1, 1), (0, 12, 3), (2, 0, 3)]  # fmt: skip
DTYPES = {
    np.float32: TensorProto.FLOAT,
    np.float64: TensorProto.DOUBLE,
    np.int64: TensorProto.INT64,
    np.int32: TensorProto.INT32,
    np.bool_: TensorProto.BOOL,
    object: TensorProto.STRING,
}
ELEMENTS = list(DTYPES.values())
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----"


@st.composite
def outputs(draw, index: int, tame: bool):
    """One output: its nodes and its declared value info; `tame`, close to the spec's."""
    name = "tags" if tame else draw(st.sampled_from(NAMES) | st.text(max_size=6))
    forms = ["genuine", "constant"] if tame else ["genuine", "constant", "constant", "sequence"]
    form = draw(st.sampled_from(forms))
    if form == "genuine":
        nodes = h.sliced(out=name) if name != "x" else []
        value_elem, shape = TensorProto.FLOAT, ["B", "T", 3]
    else:
        dtype = draw(st.sampled_from([np.float32, np.float64] if tame else list(DTYPES)))
        shape = draw(st.sampled_from(SHAPES[4:9] if tame else SHAPES))
        value = np.zeros(shape, dtype=dtype) if dtype is not object else np.full(shape, "a", object)
        inner = f"v{index}" if form == "sequence" else name
        nodes = [h.constant(inner, value)]
        value_elem = DTYPES[dtype]
        if form == "sequence":
            nodes.append(helper.make_node("SequenceConstruct", [inner], [name]))
    ways = ["as is", "no shape"] if tame else ["as is", "no shape", "other type", "other shape"]
    declared = draw(st.sampled_from(ways))
    elem = draw(st.sampled_from(ELEMENTS)) if declared == "other type" else value_elem
    dims = None if declared == "no shape" else list(shape)
    if declared == "other shape":
        dims = list(draw(st.sampled_from(SHAPES)))
    if form == "sequence":
        info = helper.make_tensor_sequence_value_info(name, elem, dims)
    else:
        info = helper.make_tensor_value_info(name, elem, dims)
    return nodes, info


@st.composite
def models(draw):
    """A model's bytes, and whether it keeps a tensor in an external file."""
    tame = draw(st.integers(0, 2)) == 0
    count = 1 if tame else draw(st.integers(1, 3))
    parts = [draw(outputs(i, tame)) for i in range(count)]
    nodes = [node for part, _ in parts for node in part]
    infos = [info for _, info in parts]
    inputs = [h.x_input()]
    if not tame and draw(st.booleans()):
        inputs = [
            draw(
                st.sampled_from(
                    [
                        h.x_input(),
                        h.x_input(TensorProto.INT64),
                        h.x_input(TensorProto.DOUBLE),
                        h.x_input(shape=("B", 4)),
                        h.x_input(shape=None),
                        h.x_input(name="y"),
                        h.x_input(name="x\n"),
                    ]
                )
            )
        ]
        if draw(st.booleans()):
            inputs.append(h.x_input(name=draw(st.sampled_from(["x.lengths", "z", "x"]))))
    initializers, external = [], draw(st.sampled_from([None, None, "initializer", "constant"]))
    external = None if tame and draw(st.booleans()) else external
    if external:
        location = draw(st.sampled_from(["secret.bin", "./secret.bin", "sub/../secret.bin", "w"]))
        extra = h.external(location, length=len(SECRET), where=external)
        from onnx import ModelProto

        proto = ModelProto()
        proto.ParseFromString(extra)
        if external == "initializer":
            initializers = list(proto.graph.initializer)
        else:
            nodes.insert(0, next(n for n in proto.graph.node if n.output == ["w"]))
    metadata = {DIGEST_KEY: "0" * 64} if draw(st.integers(0, 9)) == 0 else None
    metadata = None if tame and draw(st.booleans()) else metadata
    try:
        data = h.make(nodes, infos, inputs, initializers, metadata)
    except Exception:  # noqa: BLE001 - a value helper.make_* itself refuses
        data = b"\x08\x01garbage"
    return data, external is not None, metadata is not None


@SETTINGS
@given(case=models(), output=st.booleans())
def test_hostile_models_run_exactly_or_are_one_line(tmp_path_factory, case, output):
    where = tmp_path_factory.mktemp("fuzz")
    (where / "tagger.yaml").write_text(h.TAGGER)
    np.save(where / "x.npy", h.X)
    (where / "secret.bin").write_bytes(SECRET)
    (where / "m.onnx").write_bytes(case[0])
    before = os.getcwd()
    os.chdir(where)  # relative external paths would resolve here
    try:
        args = ["run", "tagger.yaml", "-i", "x.npy", "--engine", "onnx", "--model", "m.onnx"]
        result = CliRunner().invoke(app, args + (["-o", "o.npz"] if output else []))
    finally:
        os.chdir(before)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert SECRET.decode() not in result.output
    assert result.exit_code in (0, 4), result.output
    event(f"exit code {result.exit_code}")
    stderr = result.stderr.splitlines()
    if result.exit_code == 4:
        assert len(stderr) == 1 and stderr[0].startswith("m.onnx: "), result.stderr
        assert not (where / "o.npz").exists()
        if case[1]:
            assert "external file" in stderr[0]
        return
    assert not case[1] and not case[2], "external data or a foreign digest was run"
    if output:
        assert stderr == ["wrote o.npz: tags (2, 12, 3)"]
        with np.load(where / "o.npz") as written:
            assert list(written) == ["tags"] and written["tags"].shape == (2, 12, 3)
            assert written["tags"].dtype.kind == "f"
    else:
        assert stderr == [] and result.stdout.startswith("ran tagger.yaml at T = 12")
