"""The arithmetic of a bidirectional layer's merge vector (`merge: mean | mul`).

`merge: sum` needs no vector: its readers' weights share rows (s W + s_rev W), but a mean
or a product of the two directions is a vector of its own, `<layer>.m`, computed at each
step from the two states. Written once for NumPy arrays and PyTorch tensors alike.
"""

from __future__ import annotations

__all__ = ["merge_values", "merge_grads"]


def merge_values(merge: str, forward, backward):
    """`mean`: (forward + backward) / 2; `mul`: forward * backward."""
    if merge == "mul":
        return forward * backward
    if merge == "mean":
        return (forward + backward) * 0.5
    raise ValueError(f"no merge vector for `merge: {merge}`")


def merge_grads(merge: str, g, forward, backward):
    """The gradients of the two states, (d forward, d backward), from the merge vector's."""
    if merge == "mul":
        return g * backward, g * forward
    if merge == "mean":
        half = g * 0.5
        return half, half
    raise ValueError(f"no merge vector for `merge: {merge}`")
