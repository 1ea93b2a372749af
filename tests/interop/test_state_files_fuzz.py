"""Hostile `.pt` and `.safetensors` files for `import-weights`, generated: every file is
refused in one line (a ComposerError) or read, and what is read agrees with the
libraries' own readers (PyTorch's `torch.load`, `safetensors.torch`); nothing in a
pickle runs. `make test` runs a few dozen of each; `make fuzz` sets FUZZ_EXAMPLES for
thousands."""

from __future__ import annotations

import json
import os
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.interop.torch import import_state
from composer.interop.torch_keys import from_state, to_state, used_keys
from tests.builders import input_, layer, output, spec

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.torch
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
GRAPH = build(
    spec(
        [layer("l0", "gru", "x", 3, output={"size": 2})],
        inputs=[input_("x", 2)],
        outputs=[output("o", "l0")],
    )
)
OURS = {k: v for k, v in to_state(GRAPH, init_params(GRAPH, seed=0, dtype="float64")).items()}
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
}
SPECIAL = [np.nan, np.inf, -np.inf, 1e300, -1e39, 7e4, 1e-320, 0.0]


@st.composite
def tensors(draw, pt: bool):
    """(a state_dict, hostile): our keys with values to read, or, when hostile, some
    missing, mis-shaped, of other dtypes or kinds, holding NaN, Inf or 1e300, and extra
    keys (a huge stride-0 view among them)."""
    hostile = draw(st.booleans())
    odds = 4 if hostile else 0
    state = {}
    for name, value in OURS.items():
        if odds and draw(st.integers(0, 3 * odds)) == 0:
            continue  # a missing key
        shape = value.shape
        if odds and draw(st.integers(0, 3 * odds)) == 0:
            shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtypes = list(DTYPES) if odds and draw(st.booleans()) else ["F32", "F64", "F16", "BF16"]
        dtype = draw(st.sampled_from(dtypes))
        array = value if shape == value.shape else np.ones(shape)
        array = np.array(array, dtype=np.float64)
        if odds and array.size and draw(st.integers(0, 2 * odds)) == 0:
            array.flat[draw(st.integers(0, array.size - 1))] = draw(st.sampled_from(SPECIAL))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tensor = torch.from_numpy(array).to(DTYPES[dtype])
        if pt:
            tensor = draw(st.sampled_from(VARIANTS if odds else VARIANTS[:4]))(tensor)
        state[name] = tensor
    for k in range(draw(st.integers(0, 3))):
        shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
        state[f"extra.{k}"] = torch.zeros(shape)
    if pt and draw(st.integers(0, 5)) == 0:
        state["big"] = torch.zeros(1, dtype=torch.float16).expand(100_000, 100_000)
    return state, hostile


def _variants():
    def plain(t):
        return t

    def parameter(t):
        return torch.nn.Parameter(t, requires_grad=t.is_floating_point())

    def transposed(t):
        return t.T.contiguous().T if t.dim() == 2 else t

    def sparse(t):
        return t.to_sparse() if t.dtype not in (torch.float8_e4m3fn, torch.bool) else t

    def meta(t):
        return torch.empty(t.shape, dtype=t.dtype, device="meta")

    def quantized(t):
        if t.dtype != torch.float32:
            return t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.quantize_per_tensor(t.nan_to_num(), 0.1, 0, torch.qint8)

    def offset(t):  # a view into a larger storage
        return torch.cat([t.flatten(), t.flatten()])[t.numel() :].view(t.shape)

    return [plain, parameter, transposed, offset, sparse, meta, quantized]


VARIANTS = _variants()


def _check(path: Path, oracle, allow_unused: bool) -> None:
    """Read `path`: a one-line refusal, or the oracle's tensors (the library's reading)."""
    try:
        got = import_state(GRAPH, path, allow_unused=allow_unused)
    except ComposerError as err:
        assert "\n" not in str(err) and str(err), repr(str(err))
        event(f"refused, exit {err.exit_code}")
        return
    event("read")
    state = oracle(path)  # what we read, the library reads too, the same
    used = used_keys(GRAPH, state)
    as_read = {}
    for ours, theirs in used.items():
        tensor = state[theirs].detach()
        assert tensor.layout == torch.strided and not tensor.is_quantized
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        as_read[ours] = tensor.numpy()
    assert allow_unused or set(used.values()) == set(state)
    dtype = "float64" if all(v.dtype == np.float64 for v in as_read.values()) else "float32"
    expected = from_state(GRAPH, as_read)
    assert got.keys() == expected.keys()
    for key, value in got.items():
        assert value.dtype == dtype and np.isfinite(value).all()
        np.testing.assert_array_equal(value, expected[key].astype(dtype))


def _torch_oracle(path: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, weights_only=True)


class _Plant:
    """A pickle that creates a file when it is loaded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@FUZZ
@given(
    state=tensors(pt=True),
    how=st.sampled_from(["zip", "zip", "legacy", "code", "code-zip", "plain-pickle"]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    cut=st.none() | st.integers(0, 10**6),
    allow_unused=st.booleans(),
    junk=st.sampled_from([None, 3, "text", [1, 2], {"a": 1}]),
)
def test_fuzz_hostile_pt_files_are_read_or_refused_in_one_line(
    tmp_path_factory, state, how, flips, cut, allow_unused, junk
):
    state, hostile = state
    if not hostile:
        how, flips, cut, junk = how if how in ("zip", "legacy") else "zip", [], None, None
    tmp = tmp_path_factory.mktemp("pt")
    planted = tmp / "planted"
    path = tmp / "s.pt"
    if junk is not None and how != "legacy":
        state = {**state, "junk": junk}
    if how.startswith("code"):
        state = {**state, "evil": _Plant(str(planted))}
    if how == "plain-pickle":
        path.write_bytes(pickle.dumps({"x": _Plant(str(planted)), **state}))
    else:
        torch.save(state, path, _use_new_zipfile_serialization=how != "legacy")
    data = bytearray(path.read_bytes())
    for at, byte in flips:
        data[at % len(data)] = byte
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path.write_bytes(bytes(data))
    _check(path, _torch_oracle, allow_unused)
    assert not planted.exists()


def _safetensors(state: dict) -> tuple[dict, bytes]:
    header, blobs, at = {}, [], 0
    for name, tensor in state.items():
        flat = tensor.contiguous().reshape(-1)
        raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        dtype = next(k for k, v in DTYPES.items() if v == tensor.dtype)
        header[name] = {
            "dtype": dtype,
            "shape": list(tensor.shape),
            "data_offsets": [at, at + len(raw)],
        }
        blobs.append(raw)
        at += len(raw)
    return header, b"".join(blobs)


ODD = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(-3, 2**40), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def header_edits(draw):
    """Edits of a header: a field replaced or dropped, a key added, metadata."""
    edits = []
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["shape", "data_offsets", "dtype", "drop", "add", "meta"]))
        edits.append((what, draw(st.integers(0, 50)), draw(ODD)))
    return edits


def _edit(header: dict, edits) -> dict:
    names = list(header)
    for what, index, value in edits:
        if what == "meta":
            header["__metadata__"] = value if not isinstance(value, dict) else {"a": value}
            continue
        if what == "add":
            header[f"added{index}"] = {"dtype": "F32", "shape": [1], "data_offsets": value}
            continue
        if not names:
            continue
        entry = header[names[index % len(names)]]
        if what == "drop":
            entry.pop(["dtype", "shape", "data_offsets"][index % 3], None)
        else:
            entry[what] = value
    return header


@FUZZ
@given(
    state=tensors(pt=False),
    edits=header_edits(),
    length=st.none() | st.integers(-20, 20) | st.sampled_from([2**63, 2**64 - 1, 10**8 + 1]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    cut=st.none() | st.integers(0, 10**6),
    tail=st.binary(max_size=8),
    spaces=st.integers(0, 9),
    allow_unused=st.booleans(),
)
def test_fuzz_hostile_safetensors_files_are_read_or_refused_in_one_line(
    tmp_path_factory, state, edits, length, flips, cut, tail, spaces, allow_unused
):
    state, hostile = state
    if not hostile:
        edits, length, flips, cut, tail = [], None, [], None, b""
    header, data = _safetensors(state)
    text = json.dumps(_edit(header, edits)).encode() + b" " * spaces
    prefix = len(text) if length is None else max(0, min(2**64 - 1, len(text) + length))
    if length is not None and abs(length) > 20:
        prefix = length
    blob = bytearray(struct.pack("<Q", prefix) + text + data + tail)
    for at, byte in flips:
        blob[at % len(blob)] = byte
    if cut is not None:
        blob = blob[: cut % (len(blob) + 1)]
    path = tmp_path_factory.mktemp("st") / "s.safetensors"
    path.write_bytes(bytes(blob))
    _check(path, lambda p: safetensors_torch.load_file(str(p)), allow_unused)
