"""The contract of a layer kind: what every stage asks of it, and the weight layout it computes in.

A kind is one object (`Kind`) in its own module (`composer.kinds.elman`, `lstm`, `gru`,
`dense`), registered by the spec's `kind` name in `composer.kinds.KINDS`. The stages
ask it instead of branching on the name:

- `composer.graph` asks for its gate count, its weight keys with their shapes,
  formulas and init ranges (`weights`), its biases and `extras`, and the size of a
  layer's state (`width`: H, or an LSTM's `proj_size`);
- `composer.engine` asks it to fold its biases (`fold_biases`), for its scratch arrays
  (`workspace`) and for its forward steps (`forward`);
- `composer.training` asks for its training tape (`tape`, `tape_numbers`), the forward
  steps that keep what the backward needs (`cached_forward`, `factors`) and the backward
  steps (`backward`, `recurrent_gradient`, `bias_gradients`);
- `composer.draw` asks for its picture (`picture`);
- every engine but the NumPy fast paths runs its one `step`, written in the operations
  of `composer.kinds.ops`: the PyTorch module's cell loop on tensors, the ONNX exports
  on nodes. Which `torch.nn` module or ONNX operator computes a kind whole is the
  converters' fact (`composer.interop.native`), not the kind's.

Weight layout. PyTorch keeps a layer's gates side by side in the columns of Wx (in, G*H)
in its own order (LSTM i, f, g, o; GRU r, z, n). The cells compute in one layout,
`prepare`: the gate blocks reordered so the sigmoid gates come first (`order`), and
their columns halved, so that one `tanh` covers every gate and sigmoid(x) =
(tanh(x / 2) + 1) / 2 costs one multiply and one add. The executor holds the same
numbers gate-major, `gate_stack(prepare(...))`: a (G, in, H) stack whose gate blocks
are contiguous, since NumPy is several times slower on column slices of a (B, G*H)
array. `unprepare` maps a gradient back to the file's layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Picture",
    "WeightInfo",
    "Kind",
    "prepare",
    "gate_stack",
    "unprepare",
    "aligned",
    "writes_step",
]


@dataclass(frozen=True)
class Picture:
    """How a kind's state looks in diagrams: a tag in its label (`LSTM h`) and its shape."""

    tag: str
    shape: str
    fill: str
    style: str = "filled"


@dataclass(frozen=True)
class WeightInfo:
    """One weight of a layer: key suffix, shape, count formula, sizes, init bound.

    `summed`: drawn as the sum of two draws, as PyTorch's bias_ih + bias_hh.
    """

    suffix: str
    shape: tuple[int, ...]
    formula: str
    bound: float
    summed: bool = False
    scheme: str = "default"  # how `init` starts it when the spec names no scheme


class Kind:
    """One layer kind: the base of every kind's object. A kind overrides what differs.

    Attributes: `name` (the spec's `kind`); `stateful` (False: a dense layer, no state);
    `gates` (blocks of H columns in Wx and Ws); `order` (the gate blocks' order in the
    compute layout, as indexes into PyTorch's order); `sigmoid_gates` (how many of the
    reordered blocks, first, are sigmoid gates, halved); `carries` (the arrays a step hands
    to the next: `h`, and `c` for an LSTM); `input_weight` and `biases` (key suffixes;
    a bias is `(suffix, summed)`); `tape_numbers` (numbers per unit and step the training
    tape keeps beyond the common ones); `picture`.
    """

    name: str = ""
    stateful: bool = True
    gates: int = 1
    order: tuple[int, ...] = (0,)
    sigmoid_gates: int = 0
    carries: tuple[str, ...] = ("h",)
    input_weight: str = "Wx"
    biases: tuple[tuple[str, bool], ...] = (("b", True),)
    tape_numbers: int = 0
    picture: Picture | None = None
    #: the spec's `kind` this object computes (a variant, such as a GRU that resets before
    #: its recurrent product, is registered under its own name but is still that kind)
    spec_kind: str = ""
    #: the spec option that selects this variant, such as `layer_norm: true` ("" for a kind)
    option: str = ""
    #: whether its training steps honour `recurrent_dropout` (`Track.recurrent_mask`)
    takes_recurrent_dropout: bool = False
    #: its `forward` has a compiled step (`composer.kinds.fused`), worth loading for
    fused_step: bool = False
    #: the gate whose bias `init: {forget_bias: v}` sets, as an index in PyTorch's order
    forget_gate: int | None = None

    #: the layer's own weights beyond its input, recurrent and bias weights that its steps
    #: read (an LSTM's projection `Wp`): bound and handed to `fold_biases` after the
    #: biases, in this order, and kept with `bias: false`
    extras: tuple[str, ...] = ()

    def variant(self, layer) -> Kind:
        """The registered kind that computes a spec layer of this kind with its options
        (`self` unless an option changes the equations)."""
        return self

    def width(self, layer) -> int:
        """The size of a spec layer's state vector s, what its recurrence and its readers
        read: H, its `state_size`, unless the kind projects it (an LSTM's `proj_size`).
        Carried arrays other than s (an LSTM's cell c) and the gate blocks keep H units."""
        return layer.state_size

    #: the gates' names in the compute layout's order (`order`), for traces
    gate_names: tuple[str, ...] = ()

    # -- graph: weights -------------------------------------------------------------------

    def columns(self, size: int) -> int:
        """Columns of every weight feeding this kind: all gates' blocks of H."""
        return self.gates * size

    def columns_formula(self) -> str:
        """The columns of a weight feeding this kind, as a formula: `H`, `4*H` or `out`."""
        return f"{self.gates}*H" if self.gates > 1 else "H"

    def weights(self, fan_in: int, size: int, bias: bool = True) -> list[WeightInfo]:
        """The weights of one copy (one direction) of a layer of H = `size` units: its
        input weight, its recurrent weight and (unless `bias` is False) its biases, with
        PyTorch's default init range U(-k, k), k = 1/sqrt(H). (A kind whose `width` is not
        H also takes `width=`, the state's size.)"""
        cols, formula, bound = self.columns(size), self.columns_formula(), 1 / math.sqrt(size)
        rows = [
            WeightInfo(self.input_weight, (fan_in, cols), f"in*{formula}", bound),
            WeightInfo("Ws", (size, cols), f"H*{formula}", bound),
        ]
        biases = self.biases if bias else ()
        return rows + [
            WeightInfo(suffix, (cols,), formula, bound, summed) for suffix, summed in biases
        ]

    # -- run ------------------------------------------------------------------------------

    def fold_biases(self, biases: Sequence[np.ndarray]) -> tuple[np.ndarray | None, object]:
        """(the bias added to the projected input, the kind's extra bias or None), from
        the biases in `biases` order, each gate-major: (G, ..., H) or (H,) for one gate."""
        return (biases[0] if biases else None), None

    def workspace(self, batch: int, size: int, dtype) -> tuple:
        """The scratch arrays one step needs, allocated once per pass."""
        return ()

    def leading(self, work: tuple, rows: int) -> tuple:
        """The workspace for the first `rows` batch items only (views of `work`)."""
        return work

    def forward(self, xw, prev: tuple, out: tuple, recurrent, extra, work, activation) -> None:
        """Steps in order: from the projected inputs `xw[i]` (bias included; gate-major,
        (G, B, H), for a gated kind) and the carried arrays `prev[k][i]` (one per
        `carries`), write `out[k][i]`. `recurrent` is Ws gate-major, `extra` what
        `fold_biases` gave, `work` the workspace, `activation` the spec's (or None).
        A step may hold fewer rows than the workspace (a packed batch's leading items):
        then it computes with `leading(work, rows)`."""
        raise NotImplementedError

    # -- the step -------------------------------------------------------------------------

    def step(self, ops, xw, prev: tuple, w: dict, activation: str | None = None, read=None):
        """One step, written once in the operations `ops` (`composer.kinds.ops`): from
        `xw`, the summed products of the inputs without bias (None: nothing feeds this
        step), the carried values `prev` (one per `carries`) and the weights `w` by suffix
        (`Ws`, the biases, absent with `bias: false`, and the `extras`; `step_weights`),
        all in the file's layout; the new carried values, h first. `read`, when given, is
        the state the recurrent product reads instead of h_prev (recurrent dropout's
        h_prev * m; the rest of the step still uses h_prev). Every engine runs this: the
        PyTorch module's cell loop on tensors, the ONNX exports on nodes; the NumPy fast
        paths (`forward`, `cached_forward`) are tested against it. A kind without it has
        no export."""
        raise NotImplementedError

    def step_weights(self, recurrent, values) -> dict:
        """`step`'s weights by suffix: `Ws` = `recurrent`, then `values` in a plan's order
        (`Vector.biases`: the biases, none with `bias: false`, then the `extras`)."""
        names = [suffix for suffix, _ in self.biases] + list(self.extras)
        if len(values) < len(names):  # `bias: false`: the extras only
            names = list(self.extras)
        return {"Ws": recurrent, **dict(zip(names, values))}

    # -- trace ----------------------------------------------------------------------------

    def traced(self, track) -> dict[str, np.ndarray]:
        """What a trace shows of a training track beside h, each (L, B, H): the gates'
        values after their activations (`gates.i`, ...; the cached forward leaves them
        in `xw`) and the carried arrays other than h (an LSTM's cell state `c`)."""
        H = track.size
        found = {
            f"gates.{name}": track.xw[..., k * H : (k + 1) * H]
            for k, name in enumerate(self.gate_names)
        }
        for name in self.carries[1:]:
            found[name] = getattr(track, name)
        return found

    # -- train ----------------------------------------------------------------------------

    def tape(self, track, length: int, batch: int, dtype) -> None:
        """Add this kind's own arrays to a training track (`composer.training.tape.Track`)."""

    def tape_bias(self, bias: np.ndarray, batch: int) -> np.ndarray:
        """The bias as the training steps add it, (G*H,) or tiled to (B, G*H)."""
        return bias

    def cached_forward(self, track, a: int, b: int, reverse: bool) -> None:
        """Forward steps with indexes a..b-1 of a track, keeping what `backward` needs."""
        raise NotImplementedError

    def factors(self, track, a: int, b: int) -> None:
        """The derivative factors of steps a..b-1 from the cached forward values (some
        kinds make them in `cached_forward` instead)."""

    def backward(self, track, a: int, b: int, reverse: bool) -> None:
        """The backward of `cached_forward` over the same steps, run in the opposite order:
        reads `g` (the gradient w.r.t. h), writes `dxw`, and adds what flows through the
        recurrence to step t - lag where `keep` allows it."""
        raise NotImplementedError

    def recurrent_gradient(self, track) -> np.ndarray:
        """The gradient w.r.t. h_prev Ws at every step: what Ws's gradient is made of."""
        return track.dxw

    def recurrent_weight_gradient(self, track, a: int, b: int) -> np.ndarray:
        """Ws's gradient from track indexes a..b-1: the sum over steps of (what the
        recurrence read)^T (`recurrent_gradient`), the read state masked when the layer
        has recurrent dropout."""
        lag = track.lag
        read = track.h[a - lag : b - lag]
        if track.recurrent_mask is not None:
            read = read * track.recurrent_mask
        d = self.recurrent_gradient(track)[a:b]
        read, d = read.reshape(-1, read.shape[-1]), d.reshape(-1, d.shape[-1])
        live = None if track.rows is None else live_rows(track.rows[a:b], track.h.shape[1])
        if live is not None:  # a packed batch: only the items still running
            read, d = read[live], d[live]
        return read.T @ d

    def bias_gradients(self, dxw: np.ndarray, drec: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per bias (in `biases` order), the rows whose sum is its gradient."""
        return (dxw,)

    def bias_rows(self, track, a: int, b: int, dxw: np.ndarray, drec: np.ndarray) -> tuple:
        """`bias_gradients` for track indexes a..b-1 (`dxw` and `drec` flattened over them),
        for a kind whose biases need more of its track than those two."""
        return self.bias_gradients(dxw, drec)


def prepare(kind: Kind, weight: np.ndarray, state_size: int) -> np.ndarray:
    """A weight (or bias) feeding `kind` in the compute layout: gate blocks in `kind.order`,
    the sigmoid blocks halved; a new contiguous array, (in, G*H) or (G*H,).

    Examples
    --------
    >>> from composer.kinds import KINDS
    >>> b = np.arange(4.0)  # an LSTM bias with H = 1: i, f, g, o
    >>> prepare(KINDS["lstm"], b, 1)
    array([0. , 0.5, 1.5, 2. ])
    """
    if kind.gates == 1 or weight.shape[-1] != kind.gates * state_size:
        return np.ascontiguousarray(weight)  # one gate, or a per-unit vector (a norm's gain)
    H = state_size
    out = np.concatenate([weight[..., k * H : (k + 1) * H] for k in kind.order], axis=-1)
    out[..., : kind.sigmoid_gates * H] *= 0.5
    return out


def gate_stack(kind: Kind, prepared: np.ndarray, state_size: int) -> np.ndarray:
    """A prepared weight gate-major, for the executor: (G, in, H) for a matrix, (G, 1, H)
    for a bias (it broadcasts over rows); a one-gate kind's weight as it is.

    Examples
    --------
    >>> from composer.kinds import KINDS
    >>> gate_stack(KINDS["lstm"], np.arange(8.0).reshape(2, 4), 1)[:, :, 0]
    array([[0., 4.],
           [1., 5.],
           [2., 6.],
           [3., 7.]])
    """
    if kind.gates == 1 or prepared.shape[-1] != kind.gates * state_size:
        return prepared
    rows = prepared.shape[:-1] or (1,)
    stacked = prepared.reshape(*rows, kind.gates, state_size)
    return np.ascontiguousarray(np.moveaxis(stacked, -2, 0))


def unprepare(kind: Kind | None, grad: np.ndarray, state_size: int) -> np.ndarray:
    """A gradient w.r.t. a prepared weight, as the gradient w.r.t. the file's weight.

    `prepare` reorders gate blocks and halves the sigmoid ones, so the gradient w.r.t. an
    original sigmoid column is half the prepared one, moved back in place.
    """
    if kind is None or kind.gates == 1 or grad.shape[-1] != kind.gates * state_size:
        return grad
    H = state_size
    out = np.empty_like(grad)
    for position, block in enumerate(kind.order):
        scale = 0.5 if position < kind.sigmoid_gates else 1.0
        out[..., block * H : (block + 1) * H] = grad[..., position * H : (position + 1) * H] * scale
    return out


def aligned(arrays, a: int, b: int, reverse: bool, rows=None) -> list:
    """Per-step slices that line up: each (array, shift) as array[a - shift : b - shift],
    reversed in time when `reverse`; a kind's step loops zip them. With `rows` (a training
    track's count of items still running at each index, the longest first), each step
    holds only those leading items."""
    if rows is None:
        out = [array[a - shift : b - shift] for array, shift in arrays]
        return [view[::-1] for view in out] if reverse else out
    steps = range(b - 1, a - 1, -1) if reverse else range(a, b)
    return [
        [array[i - shift][: rows[i]] if array.ndim > 1 else array[i - shift] for i in steps]
        for array, shift in arrays
    ]


def live_rows(counts: np.ndarray | None, batch: int) -> np.ndarray | None:
    """In a packed batch, the (steps * B) flat rows of the items still running at each of
    `counts`'s steps, or None when every item runs at every one of them. A whole-span
    product restricted to these rows skips the padding, as the time loop does."""
    if counts is None or counts.min() >= batch:
        return None
    return np.flatnonzero(np.arange(batch) < counts[:, np.newaxis])


def writes_step(kind: Kind) -> bool:
    """Whether a kind can leave the NumPy engine: it writes its `step`."""
    return not kind.stateful or type(kind).step is not Kind.step
