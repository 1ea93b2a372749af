"""Benchmark: generation, tokens per second, our `Network.stepper` against PyTorch stepping
`nn.GRU` one token at a time, and our cost per token early and late in a long text.

Run with `make bench` (or `.venv/bin/python bench/bench_generate.py`). Not a test: it
prints medians and ratios measured in this run. The model is a character model: an
embedding of 64 tokens into 32, two GRU layers of H = 256, a softmax readout over the 64
tokens; batch 1, float32, the chosen token (greedy) fed back in. Both sides run the same
weights in one process, one thread each, in turns. The targets (issue: language models):

- the time per token at token 1,000 about that at token 10 (ratio near 1): no prefix is
  re-run;
- tokens per second printed against PyTorch's, as a ratio.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before NumPy loads its BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB, EMBED, H = 64, 32, 256
SPEC = {
    "inputs": [{"name": "x", "vocab": VOCAB, "embed": EMBED}],
    "layers": [
        {"name": "g1", "kind": "gru", "input": "x", "state_size": H},
        {"name": "g2", "kind": "gru", "input": "g1", "state_size": H,
         "output": {"size": VOCAB, "activation": "softmax"}},
    ],
    "outputs": [{"name": "y", "from": "g2"}],
}  # fmt: skip


def ours(params, tokens: int) -> list[float]:
    """Seconds of each of `tokens` greedy steps."""
    from composer.network import Network

    stepper = Network.from_spec(SPEC).stepper(params)
    token, times = np.array([1]), []
    for _ in range(tokens):
        start = time.perf_counter()
        probs = stepper.step({"x": token})["y"]
        token = probs.argmax(axis=1)
        times.append(time.perf_counter() - start)
    return times


def pytorch(params, tokens: int) -> list[float] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    embedding = torch.nn.Embedding(VOCAB, EMBED)
    gru = torch.nn.GRU(EMBED, H, num_layers=2)
    with torch.no_grad():
        embedding.weight.copy_(torch.tensor(params["x.E"]))
        for layer, name in enumerate(("g1", "g2")):
            getattr(gru, f"weight_ih_l{layer}").copy_(torch.tensor(params[f"{name}.Wx"].T))
            getattr(gru, f"weight_hh_l{layer}").copy_(torch.tensor(params[f"{name}.Ws"].T))
            getattr(gru, f"bias_ih_l{layer}").copy_(torch.tensor(params[f"{name}.bx"]))
            getattr(gru, f"bias_hh_l{layer}").copy_(torch.tensor(params[f"{name}.bs"]))
    Wy, by = torch.tensor(params["g2.Wy"]), torch.tensor(params["g2.by"])
    state, token, times = None, torch.tensor([[1]]), []
    with torch.inference_mode():
        for _ in range(tokens):
            start = time.perf_counter()
            out, state = gru(embedding(token), state)
            probs = torch.softmax(out[-1] @ Wy + by, dim=-1)
            token = probs.argmax(dim=-1, keepdim=True)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    from composer.network import Network

    params = Network.from_spec(SPEC).init_params(0)
    tokens = 1_010
    ours(params, 50)  # warm up
    mine = ours(params, tokens)
    early = statistics.median(mine[10:30])
    late = statistics.median(mine[990:1010])
    rate = 1 / statistics.median(mine)
    print(f"generation, 2-layer GRU H={H}, vocab {VOCAB}, embed {EMBED}, batch 1, float32")
    print(f"  ours:    {rate:8.0f} tokens/s; per token at 10-30: {early * 1e6:.0f} us, "
          f"at 990-1010: {late * 1e6:.0f} us (ratio {late / early:.2f})")  # fmt: skip
    theirs = pytorch(params, tokens)
    if theirs is None:
        print("  PyTorch: not installed (pip install '.[torch]')")
        return
    their_rate = 1 / statistics.median(theirs)
    print(f"  PyTorch: {their_rate:8.0f} tokens/s (nn.GRU stepped one token at a time)")
    print(f"  ours / PyTorch: {rate / their_rate:.2f} of its tokens per second")


if __name__ == "__main__":
    main()
