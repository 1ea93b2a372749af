"""NaN, Inf and values beyond the computation's dtype are refused where they enter: a
weights file, a `--state-in` file, `generate --start`, naming the file, the key and the
cause, exit 4, nothing written. With `--dtype float64`, 1e300 is a value like another."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from composer.cli import app
from composer.graph.folded import build
from composer.graph.weights import init_params, save_params
from composer.spec.model import NetworkSpec

runner = CliRunner()
VOCAB = 5
SPEC = {
    "inputs": [{"name": "x", "vocab": VOCAB, "embed": 3}],
    "layers": [{"name": "g", "kind": "gru", "input": "x", "state_size": 4,
                "output": {"size": VOCAB, "activation": "softmax"}}],
    "outputs": [{"name": "y", "from": "g"}],
}  # fmt: skip
BAD = {"nan": np.nan, "inf": np.inf, "big": 1e300}


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A token model with its weights and a vocabulary of VOCAB characters, and the same
    model starting from an input `h0`."""
    root = tmp_path_factory.mktemp("lm")
    (root / "a.txt").write_text("abcde" * 3, encoding="utf-8")
    code, out = invoke("data", "text", root / "a.txt", "-o", root / "d.npz", "--seq-len", 4)
    assert code == 0, out
    started = json.loads(json.dumps(SPEC))
    started["inputs"].append({"name": "h0", "size": 4})
    started["layers"][0]["initial_state"] = "h0"
    for name, content in (("lm", SPEC), ("started", started)):
        (root / f"{name}.json").write_text(json.dumps(content))
        graph = build(NetworkSpec.model_validate(content))
        save_params(root / f"{name}.npz", init_params(graph, seed=1))
    np.save(root / "x.npy", np.zeros((2, 3), dtype=np.int64))
    return root


def _refused(code, out, *needles):
    assert code == 4, out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_state_file_with_bad_values_is_refused(lm, tmp_path, bad):
    np.savez(tmp_path / "s.npz", **{"g.h": np.full((2, 4), BAD[bad])})
    out_path = tmp_path / "o.npz"
    code, out = invoke("run", lm / "lm.json", "-w", lm / "lm.npz", "-i", lm / "x.npy",
                       "--state-in", tmp_path / "s.npz", "--output", out_path)  # fmt: skip
    cause = "beyond float32" if bad == "big" else "NaN or Inf"
    _refused(code, out, "s.npz", "'g.h'", cause)
    assert not out_path.exists()


def test_a_large_state_runs_in_float64(lm, tmp_path):
    np.savez(tmp_path / "s.npz", **{"g.h": np.full((2, 4), 1e300)})
    code, out = invoke("run", lm / "lm.json", "-w", lm / "lm.npz", "-i", lm / "x.npy",
                       "--state-in", tmp_path / "s.npz", "--dtype", "float64")  # fmt: skip
    assert code == 0, out


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_start_state_with_bad_values_is_refused_before_any_text(lm, tmp_path, bad):
    np.save(tmp_path / "h0.npy", np.full(4, BAD[bad]))
    code, out = invoke("generate", lm / "started.json", "-w", lm / "started.npz",
                       "--vocab", lm / "d.vocab.json", "--prompt", "ab", "--length", 5,
                       "--start", tmp_path / "h0.npy")  # fmt: skip
    cause = "beyond float32" if bad == "big" else "NaN or Inf"
    _refused(code, out, "h0.npy", "'h0'", cause)
    assert not out.startswith("ab")


def test_weights_beyond_float32_name_the_file_and_the_cause(lm, tmp_path):
    weights = dict(np.load(lm / "lm.npz"))
    weights["g.by"] = weights["g.by"].astype(np.float64)
    weights["g.by"][1] = 1e300
    save_params(tmp_path / "big.npz", weights)
    code, out = invoke("generate", lm / "lm.json", "-w", tmp_path / "big.npz",
                       "--vocab", lm / "d.vocab.json", "--prompt", "ab", "--length", 5)  # fmt: skip
    _refused(code, out, "big.npz", "'g.by'", "1e+300", "beyond float32")
    code, out = invoke("generate", lm / "lm.json", "-w", tmp_path / "big.npz",
                       "--vocab", lm / "d.vocab.json", "--prompt", "ab", "--length", 5,
                       "--dtype", "float64")  # fmt: skip
    assert code == 0, out
