"""How a bidirectional layer's two directions merge (`merge`), in values and gradients.

`merge: sum` needs no vector: its readers' weights share rows (s W + s_rev W), but a mean
or a product of the two directions is a vector of its own, `<layer>.m`, computed at each
step from the two states. A bidirectional encoder's final state, handed to a decoder's
`initial_state`, merges the same way, `concat` included. Written once in the step
vocabulary (`composer.kinds.ops`): NumPy arrays, torch tensors and ONNX nodes alike.
"""

from __future__ import annotations

from composer.kinds.ops import NUMPY, Ops

__all__ = ["merge_values", "merge_grads"]


def merge_values(merge: str, forward, backward, ops: Ops = NUMPY):
    """`concat`: [forward, backward]; `sum`; `mean`: (forward + backward) / 2; `mul`:
    forward * backward; in the operations `ops`."""
    if merge == "concat":
        return ops.concat([forward, backward])
    if merge == "sum":
        return ops.add(forward, backward)
    if merge == "mul":
        return ops.mul(forward, backward)
    if merge == "mean":
        return ops.scale(ops.add(forward, backward), 0.5)
    raise ValueError(f"unknown merge `{merge}`")


def merge_grads(merge: str, g, forward, backward):
    """The gradients of the two states, (d forward, d backward), from the merge vector's."""
    if merge == "concat":
        size = forward.shape[-1]
        return g[..., :size], g[..., size:]
    if merge == "sum":
        return g, g
    if merge == "mul":
        return g * backward, g * forward
    if merge == "mean":
        half = g * 0.5
        return half, half
    raise ValueError(f"unknown merge `{merge}`")
