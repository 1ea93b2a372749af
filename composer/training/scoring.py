"""Scoring weights on a data set: the loss and the declared metrics, nothing updated
(`rnn-composer evaluate`, `Network.evaluate`).

Examples
--------
>>> from composer.spec.model import NetworkSpec
>>> from composer.graph.folded import build
>>> from composer.graph.weights import init_params
>>> spec = NetworkSpec.model_validate({
...     "inputs": [{"name": "x", "size": 1}],
...     "layers": [{"name": "rnn", "kind": "elman", "input": "x", "state_size": 4,
...                 "output": {"size": 1}}],
...     "outputs": [{"name": "o", "from": "rnn"}], "alignment": "many-to-one"})
>>> x = np.zeros((8, 5, 1))
>>> figures = score(spec, init_params(build(spec)), {"x": x, "o": x[:, :1]}, metrics=["rmse"])
>>> sorted(figures), bool(np.isclose(figures["o.rmse"] ** 2, figures["loss"], rtol=1e-5))
(['loss', 'o.rmse'], True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from composer.training.loop import train

__all__ = ["score"]


def score(
    graph_or_spec,
    params: Mapping[str, np.ndarray],
    data: Mapping[str, np.ndarray],
    *,
    loss: str | Mapping[str, str] = "mse",
    metrics: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    batch_size: int = 256,
    dtype: str = "float32",
    where: str = "data",
    engine=None,
    allow_unnormalised: bool = False,
) -> dict[str, float]:
    """`{"loss": value, "<output>.<metric>": value, ...}` of `params` on the whole of
    `data` (checked as `train` checks it): the loss as training measures it, the metrics
    as `composer.training.metrics` defines them."""
    result = train(
        graph_or_spec, params, data, epochs=0, batch_size=batch_size, loss=loss,
        validation=0.0, metrics=metrics, dtype=dtype, where=where, engine=engine,
        allow_unnormalised=allow_unnormalised,
    )  # fmt: skip
    first = result.history[0]
    return {"loss": first.train_loss, **first.metrics}
