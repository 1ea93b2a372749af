"""Hostile and unusual state_dict files for `import-weights`: values a network cannot take
(NaN, Inf, beyond float32), tensors that are not plain (nn.Parameter taken; sparse,
quantized, nested, meta refused), files whose unused tensors are huge (never read), and
the messages (bfloat16, pickles, many unused keys, embeddings)."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.graph.folded import build
from composer.graph.weights import init_params
from composer.interop.torch_keys import to_state
from tests import rss
from tests.builders import input_, layer, output, spec, write_spec

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::UserWarning")]
runner = CliRunner()
SPEC = spec(
    [layer("l0", "lstm", "x", 5, output={"size": 4})],
    inputs=[input_("x", 3)],
    outputs=[output("o", "l0")],
)
GRAPH = build(SPEC)


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _state(dtype=torch.float32) -> dict:
    """Our module's state_dict with random weights, as tensors."""
    state = to_state(GRAPH, init_params(GRAPH, seed=0, dtype="float64"))
    return {k: torch.from_numpy(v).to(dtype) for k, v in state.items()}


def _save(state, path):
    if path.suffix == ".safetensors":
        safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)


def _import(tmp_path, path, *extra):
    spec_path = write_spec(tmp_path, SPEC)
    out = tmp_path / "w.npz"
    return (*invoke("import-weights", spec_path, path, "-o", out, *extra), out)


def _one_line(code, text, out, expected=4):
    assert code == expected, text
    assert len(text.strip().splitlines()) == 1, text
    assert "Traceback" not in text and not out.exists()


# Item 8: NaN, Inf and values beyond float32 are refused, naming the file and the key.


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_inf_weights_are_refused(tmp_path, suffix, bad):
    state = _state()
    state["l0.rnn.weight_hh_l0"][3, 1] = bad
    path = tmp_path / f"s{suffix}"
    _save(state, path)
    code, text, out = _import(tmp_path, path)
    _one_line(code, text, out)
    assert path.name in text and "'l0.rnn.weight_hh_l0'" in text and "NaN or Inf" in text


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_float64_beyond_float32_among_float32_is_refused_without_a_warning(tmp_path, suffix):
    state = _state()
    state["l0.readout.bias"] = state["l0.readout.bias"].double()
    state["l0.readout.bias"][2] = 1e300
    path = tmp_path / f"s{suffix}"
    _save(state, path)
    code, text, out = _import(tmp_path, path)
    _one_line(code, text, out)
    assert "'l0.readout.bias'" in text and "1e+300" in text and "beyond float32" in text
    assert "Warning" not in text


def test_float64_throughout_keeps_large_finite_values(tmp_path):
    state = _state(torch.float64)
    state["l0.readout.bias"][2] = 1e300
    path = tmp_path / "s.safetensors"
    _save(state, path)
    code, text, out = _import(tmp_path, path)
    assert code == 0, text
    assert np.load(out)["l0.by"][2] == 1e300 and np.load(out)["l0.by"].dtype == np.float64


# Item 10: nn.Parameter is taken; sparse, quantized, nested and meta tensors are refused.


def test_a_dict_of_parameters_imports_as_its_state_dict_does(tmp_path):
    module = torch.nn.Module()
    for name, value in _state().items():
        *parents, leaf = name.split(".")
        owner = module
        for part in parents:
            if not hasattr(owner, part):
                owner.add_module(part, torch.nn.Module())
            owner = getattr(owner, part)
        owner.register_parameter(leaf, torch.nn.Parameter(value.clone()))
    torch.save(dict(module.named_parameters()), tmp_path / "p.pt")
    torch.save(module.state_dict(), tmp_path / "s.pt")
    code, text, out = _import(tmp_path, tmp_path / "p.pt")
    assert code == 0, text
    got = dict(np.load(out))
    code, text, out = _import(tmp_path, tmp_path / "s.pt", "--force")
    assert code == 0, text
    expected = dict(np.load(out))
    assert got.keys() == expected.keys()
    for key in got:
        np.testing.assert_array_equal(got[key], expected[key])


NOT_PLAIN = {
    "sparse": lambda t: t.to_sparse(),
    "sparse_csr": lambda t: t.to_sparse_csr(),
    "quantized": lambda t: torch.quantize_per_tensor(t, 0.1, 0, torch.qint8),
    "meta": lambda t: torch.empty(t.shape, device="meta"),
    "nested": lambda t: torch.nested.nested_tensor([t, t]),
}


@pytest.mark.parametrize("kind", sorted(NOT_PLAIN))
def test_tensors_that_are_not_plain_are_refused_in_one_line(tmp_path, kind):
    state = _state()
    state["l0.rnn.weight_hh_l0"] = NOT_PLAIN[kind](state["l0.rnn.weight_hh_l0"])
    torch.save(state, tmp_path / "s.pt")
    code, text, out = _import(tmp_path, tmp_path / "s.pt")
    _one_line(code, text, out)
    assert "'l0.rnn.weight_hh_l0'" in text and kind.split("_")[0] in text


# Item 11: memory is estimated from declared shapes, and unused tensors are never read.


def test_a_huge_stride_zero_view_is_not_materialised(tmp_path):
    state = _state()
    state["big"] = torch.zeros(1, dtype=torch.float16).expand(100_000, 100_000)
    torch.save(state, tmp_path / "s.pt")
    assert (tmp_path / "s.pt").stat().st_size < 20_000
    spec_path = write_spec(tmp_path, SPEC)
    args = ["import-weights", spec_path, tmp_path / "s.pt", "-o", tmp_path / "w.npz"]
    done = rss.finish(rss.start([*args, "--allow-unused"]))
    assert done.code == 0, done.stderr
    assert done.peak < rss.baseline() + (400 << 20)
    (tmp_path / "w.npz").unlink()
    code, text, out = _import(tmp_path, tmp_path / "s.pt")  # not used: refused by name
    _one_line(code, text, out)
    assert "'big'" in text
    state["l0.rnn.weight_hh_l0"] = state.pop("big")  # used: its shape is refused unread
    torch.save(state, tmp_path / "s.pt")
    done = rss.finish(rss.start(args))
    assert done.code == 4 and "(100000, 100000)" in done.stderr, done.stderr
    assert done.peak < rss.baseline() + (400 << 20)


def _safetensors_with(tmp_path, state, name, dtype, shape) -> object:
    """A .safetensors file of `state` and one more tensor declared, its bytes a hole."""
    header, at, parts = {}, 0, []
    for key, value in state.items():
        data = value.contiguous().numpy().tobytes()
        header[key] = {
            "dtype": "F32",
            "shape": list(value.shape),
            "data_offsets": [at, at + len(data)],
        }
        parts.append(data)
        at += len(data)
    size = int(np.prod(shape)) * 4
    header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + size]}
    text = json.dumps(header).encode()
    path = tmp_path / "s.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text + b"".join(parts))
        handle.truncate(8 + len(text) + at + size)  # a sparse file: no disk, no reading
    return path


def test_an_unused_3_gib_tensor_is_never_read(tmp_path):
    path = _safetensors_with(tmp_path, _state(), "huge", "F32", (3 << 28,))
    spec_path = write_spec(tmp_path, SPEC)
    args = ["import-weights", spec_path, path, "-o", tmp_path / "w.npz"]
    base = rss.baseline()
    done = rss.finish(rss.start([*args, "--max-memory", "100M"]))
    assert done.code == 4 and "'huge'" in done.stderr and "--allow-unused" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = rss.finish(rss.start([*args, "--allow-unused", "--max-memory", "100M"]))
    assert done.code == 0, done.stderr
    assert done.peak < base + (200 << 20)


def test_memory_for_the_tensors_used_is_estimated_before_reading(tmp_path):
    path = tmp_path / "s.safetensors"
    _save(_state(), path)
    code, text, out = _import(tmp_path, path, "--max-memory", "1K")
    _one_line(code, text, out, expected=5)
    assert "--max-memory" in text


# Item 22: messages.


def test_bfloat16_safetensors_is_read_as_bfloat16_pt_is(tmp_path):
    state = _state(torch.bfloat16)
    _save(state, tmp_path / "s.safetensors")
    _save(state, tmp_path / "s.pt")
    code, text, out = _import(tmp_path, tmp_path / "s.safetensors")
    assert code == 0, text
    got = dict(np.load(out))
    code, text, out = _import(tmp_path, tmp_path / "s.pt", "--force")
    assert code == 0, text
    for key, value in np.load(out).items():
        assert got[key].dtype == value.dtype == np.float32
        np.testing.assert_array_equal(got[key], value)
    exact = to_state(GRAPH, {k: v.astype(np.float32) for k, v in got.items()})
    for key, value in state.items():
        np.testing.assert_array_equal(exact[key], value.float().numpy())


class _Plant:
    def __reduce__(self):
        return (print, ("ran",))


def test_the_pickle_refusal_does_not_advise_running_the_file(tmp_path):
    torch.save({"x": _Plant()}, tmp_path / "evil.pt")
    (tmp_path / "evil2.pt").write_bytes(pickle.dumps({"x": _Plant()}))
    for name in ("evil.pt", "evil2.pt"):
        code, text, out = _import(tmp_path, tmp_path / name, "--force")
        _one_line(code, text, out)
        assert "weights_only=False" not in text and "weights_only` set to `False" not in text
        assert "trust" not in text and "ran" not in text.split(":")[0]


def test_many_unused_keys_give_a_short_line(tmp_path):
    header, names = {}, [f"extra.{k}" for k in range(200_000)]
    header.update({name: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for name in names})
    for key, value in _state().items():
        header[key] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [0, 0]}
    data, at = b"", 0
    for key, value in _state().items():
        raw = value.numpy().tobytes()
        header[key]["data_offsets"] = [at, at + len(raw)]
        data, at = data + raw, at + len(raw)
    text = json.dumps(header).encode()
    path = tmp_path / "s.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    code, out_text, out = _import(tmp_path, path)
    _one_line(code, out_text, out)
    assert len(out_text) < 1000 and "'extra.0'" in out_text and "199,990 more" in out_text
    assert "200,000 keys not used" in out_text
    code, out_text, out = _import(tmp_path, path, "--max-memory", "100M")  # parsing costs
    _one_line(code, out_text, out, expected=5)
    assert "the header of" in out_text


def test_a_missing_embedding_key_does_not_suggest_map(tmp_path):
    tokens = spec(
        [layer("l0", "gru", "x", 5, output={"size": 4})],
        inputs=[{"name": "x", "vocab": 7, "embed": 3}],
        outputs=[output("o", "l0")],
    )
    graph = build(tokens)
    state = to_state(graph, init_params(graph, seed=0))
    state["emb.weight"] = state.pop("x.embedding.weight")
    path = tmp_path / "s.safetensors"
    _save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    code, text = invoke(
        "import-weights", write_spec(tmp_path, tokens), path, "-o", tmp_path / "w.npz"
    )
    _one_line(code, text, tmp_path / "w.npz")
    assert "'x.embedding.weight'" in text and "LAYER=MODULE" not in text
    assert "save it under the name 'x.embedding.weight'" in text
