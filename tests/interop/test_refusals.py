"""Token inputs are refused by every converter in one line, never converted wrongly."""

import pytest

from composer.cli import app
from composer.errors import SpecError
from composer.network import Network
from tests.interop import TOKEN_SPECS

pytest.importorskip("torch")
pytest.importorskip("onnx")

from typer.testing import CliRunner  # noqa: E402

from composer.interop.onnx import build_model  # noqa: E402


@pytest.mark.parametrize("path", TOKEN_SPECS, ids=[p.stem for p in TOKEN_SPECS])
def test_token_inputs_are_refused_by_both_converters(path, tmp_path):
    net = Network.from_file(path)
    params = net.init_params(dtype="float64")
    with pytest.raises(SpecError, match="token ids"):
        net.to_torch(params, "float64")
    with pytest.raises(SpecError, match="token ids"):
        build_model(net.graph, params, dtype="float64", steps=4)
    from composer.graph.weights import save_params

    save_params(tmp_path / "w.npz", params)
    for fmt, out in (("torch", "m.safetensors"), ("onnx", "m.onnx")):
        result = CliRunner().invoke(
            app,
            ["export", str(path), "-w", str(tmp_path / "w.npz"), "--format", fmt,
             "-o", str(tmp_path / out)],
        )  # fmt: skip
        assert result.exit_code == 3, result.output
        assert "token ids" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / out).exists()
