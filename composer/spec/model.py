"""The spec: Pydantic models of a network description (docs/architecture.md), no I/O."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from composer.spec.windows import MAX_STEPS, WINDOW_PATTERN

__all__ = [
    "Name",
    "InputSpec",
    "Readout",
    "Uniform",
    "Normal",
    "Identity",
    "Scheme",
    "BiasScheme",
    "RecurrentInit",
    "LSTMInit",
    "GRUInit",
    "DenseInit",
    "Tap",
    "LayerBase",
    "HandOver",
    "RecurrentLayer",
    "ElmanLayer",
    "LSTMLayer",
    "GRULayer",
    "DenseLayer",
    "Layer",
    "Connection",
    "OutputSpec",
    "Alignment",
    "NetworkSpec",
    "PRESETS",
]

PRESETS = ("one-to-one", "one-to-many", "many-to-one", "many-to-many")

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64),
    Field(description="An identifier: letters, digits and `_`, not starting with a digit."),
]
Size = Annotated[int, Field(gt=0, le=1_000_000, description="A vector size, > 0.")]
Window = Annotated[
    str,
    StringConstraints(pattern=WINDOW_PATTERN, max_length=32),
    Field(
        description=(
            "A Python slice over the unrolled steps 0..T-1, such as `:`, `0:1`, `-1:` or `5:8`; "
            "negative numbers count from T."
        )
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class InputSpec(_Model):
    """An input sequence x: its name, feature size (or vocabulary) and its own window."""

    name: Name
    size: Size | None = Field(None, description="F, the size of each step's feature vector.")
    vocab: Size | None = Field(
        None,
        description=(
            "Token inputs: the number of token ids, instead of `size`; the arrays then hold "
            "integer ids, one-hot encoded unless `embed` is given."
        ),
    )
    embed: Size | None = Field(
        None, description="With `vocab`: learn an embedding `<input>.E` of shape (vocab, embed)."
    )
    padding_id: int | None = Field(
        None,
        ge=0,
        description="With `vocab`: an item ends at its first padding id (its length).",
    )
    window: Window | None = Field(
        None, description="Steps where this input is present; default from `alignment`."
    )
    description: str | None = Field(None, description="Free text for readers.")

    @model_validator(mode="after")
    def _size_or_vocab(self):
        if (self.size is None) == (self.vocab is None):
            raise ValueError("give the input a `size` (features) or a `vocab` (token ids)")
        if self.vocab is None and (self.embed is not None or self.padding_id is not None):
            raise ValueError("`embed` and `padding_id` belong to a token input with `vocab`")
        if self.padding_id is not None and self.padding_id >= self.vocab:
            raise ValueError(
                f"`padding_id` {self.padding_id} is not an id of a vocab of {self.vocab}"
            )
        return self

    @property
    def width(self) -> int:
        """The size of the vector a layer reads: F, the embedding's E, or vocab (one-hot)."""
        return self.size or self.embed or self.vocab


class Readout(_Model):
    """A layer's readout y = psi(s Wy + by)."""

    size: Size
    activation: Literal["identity", "softmax", "sigmoid", "tanh"] = Field(
        "identity", description="psi, the readout's activation."
    )


#: how far back (or, negative, ahead) a tap reads its source
Delay = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


def _unique_delays(delays: list[int] | None) -> None:
    if delays is None:
        return
    twice = sorted({d for d in delays if delays.count(d) > 1})
    if twice:
        raise ValueError(f"`delays` lists {twice[0]} more than once; each tap has its own weight")


class Tap(_Model):
    """An input read at several delays: `{from: x, delays: [0, 1, 2]}` reads x_t, x_{t-1},
    x_{t-2}, each tap with its own weight (`Wx` for delay 0, `Wx@d` for delay d)."""

    source: Name = Field(alias="from", description="An input or layer name.")
    delays: Annotated[list[Delay], Field(min_length=1, max_length=1024)] = Field(
        description=(
            "Steps back in time of each tap; 0 is the present step, a negative delay reads "
            "ahead (future context: only a dense, backward or bidirectional layer may)."
        )
    )

    @model_validator(mode="after")
    def _distinct(self):
        _unique_delays(self.delays)
        return self


InputItem = Union[Name, Tap]
LayerInput = Union[Name, Tap, Annotated[list[InputItem], Field(min_length=1)]]

Probability = Annotated[
    float, Field(ge=0, lt=1, description="A dropout probability p, 0 <= p < 1; 0: none.")
]


class Uniform(_Model):
    """U(-a, a)."""

    uniform: float = Field(gt=0, le=1e6, description="a: the bound of U(-a, a).")


class Normal(_Model):
    """N(0, s^2)."""

    normal: float = Field(gt=0, le=1e6, description="s: the standard deviation of N(0, s^2).")


class Identity(_Model):
    """g times the identity matrix (a square weight: the IRNN of Le et al. 2015)."""

    identity: float = Field(gt=0, le=1e6, description="g: the scale of g * I.")


Scheme = Union[
    Literal["default", "orthogonal", "xavier", "glorot", "zeros", "identity"],
    Uniform,
    Normal,
    Identity,
]
BiasScheme = Union[Literal["default", "zeros"], Uniform, Normal]
_SCHEME = (
    "`default` (PyTorch's U(-1/sqrt(H), 1/sqrt(H))), `orthogonal` (each gate's block; "
    "Saxe et al. 2013), `xavier` or `glorot` (Glorot & Bengio 2010, uniform), `zeros`, "
    "`{uniform: a}` or `{normal: s}`, `identity` or `{identity: g}` (g I, square weights "
    "only; Le et al. 2015)."
)


_BIAS_SCHEME = "`default` (PyTorch's), `zeros`, `{uniform: a}` or `{normal: s}`."


def _scheme(what: str):
    return Field(None, description=f"How {what} starts: {_SCHEME}")


def _bias_scheme(what: str):
    return Field(None, description=f"How {what} starts: {_BIAS_SCHEME}")


class RecurrentInit(_Model):
    """How an Elman layer's weights start, weight by weight; unnamed ones as PyTorch's."""

    Wx: Scheme | None = _scheme("the input weight Wx")
    Ws: Scheme | None = _scheme("the recurrent weight Ws")
    b: BiasScheme | None = _bias_scheme("the bias b")
    Wy: Scheme | None = _scheme("the readout weight Wy")
    by: BiasScheme | None = _bias_scheme("the readout bias by")


class LSTMInit(RecurrentInit):
    """An LSTM layer's weights, and optionally its forget gate's bias."""

    Wp: Scheme | None = _scheme("the projection Wp (a layer with `proj_size`)")

    forget_bias: float | None = Field(
        None,
        ge=-1e6,
        le=1e6,
        description=(
            "The forget gate's block of b, set to this value after `b`'s scheme "
            "(1.0: Jozefowicz et al. 2015; Gers et al. 2000)."
        ),
    )


class GRUInit(_Model):
    """How a GRU layer's weights start, weight by weight; unnamed ones as PyTorch's."""

    Wx: Scheme | None = _scheme("the input weight Wx")
    Ws: Scheme | None = _scheme("the recurrent weight Ws")
    bx: BiasScheme | None = _bias_scheme("the input bias bx")
    bs: BiasScheme | None = _bias_scheme("the recurrent bias bs")
    Wy: Scheme | None = _scheme("the readout weight Wy")
    by: BiasScheme | None = _bias_scheme("the readout bias by")


class DenseInit(_Model):
    """How a dense layer's weights start; unnamed ones as PyTorch's nn.Linear."""

    W: Scheme | None = _scheme("the weight W")
    b: BiasScheme | None = _bias_scheme("the bias b")


class LayerBase(_Model):
    """What every layer has: a name, its input, the steps where it is active."""

    name: Name = Field(description="The layer's name, unique across inputs, layers and outputs.")
    input: LayerInput | None = Field(
        None,
        description=(
            "An input or layer name, `{from: name, delays: [...]}` for a tapped delay line, or "
            "a list of them (concatenated in that order). Optional for a layer that has an "
            "`initial_state` or an incoming connection."
        ),
    )
    active: Window | None = Field(
        None, description="Steps where the layer exists (encoder/decoder); default all steps."
    )
    description: str | None = Field(None, description="Free text for readers.")
    bias: bool = Field(
        True, description="`false`: the layer has no biases of its own (a readout keeps `by`)."
    )
    dropout: Probability = Field(
        0.0,
        description=(
            "Dropout on the layer's input (its `input` feeds), a fresh mask at every step; "
            "training only."
        ),
    )

    @model_validator(mode="after")
    def _no_init_for_absent_biases(self):
        init = getattr(self, "init", None)
        if self.bias or init is None:
            return self
        own = {"b", "bx", "bs", "forget_bias"}  # a readout's `by` stays
        named = sorted(k for k, v in init.model_dump(exclude_none=True).items() if k in own)
        if named:
            raise ValueError(
                f"`init` sets {', '.join(f'`{k}`' for k in named)} but the layer has "
                "`bias: false`; drop one of them"
            )
        return self


class HandOver(_Model):
    """`initial_state: {from: r, at: end}`: start from the last state of `r` even though `r`
    runs over the same steps: a two-pass design (all of `r` first, then this layer), said
    explicitly because the first steps then depend on later ones."""

    source: Name = Field(
        alias="from", description="The recurrent layer whose last state starts this one."
    )
    at: Literal["end"] = Field(
        description="`end`: the source's last state, even when it comes after this layer starts."
    )


class RecurrentLayer(LayerBase):
    """What every recurrent kind's layer has: a state, a readout, direction and delay."""

    state_size: Size = Field(description="H, the size of the state vector s.")
    output: Readout | None = Field(
        None, description="Optional readout y = psi(s Wy + by); consumers then see y, not s."
    )
    direction: Literal["forward", "backward"] = Field(
        "forward", description="`backward`: s_t depends on s_{t+1}."
    )
    bidirectional: bool = Field(
        False, description="A forward and a backward copy whose states are concatenated."
    )
    delay: int = Field(1, ge=1, le=1_000_000, description="k in s_t = f(s_{t-k}): dilation.")
    initial_state: Name | HandOver | None = Field(
        None,
        description=(
            "Start from this layer's last state instead of zeros (seq2seq); or from an "
            "input's (B, H) arrays, a start state given with the data (no time axis; an "
            "LSTM's c starts at zero); or `learn`: from a trained vector `<layer>.s0`; "
            "`{from: r, at: end}` when `r` ends after this layer starts (two passes)."
        ),
    )

    @property
    def initial_source(self) -> str | None:
        """The name of the layer (or input) whose state starts this one, if any, or `learn`."""
        state = self.initial_state
        return state.source if isinstance(state, HandOver) else state

    merge: Literal["concat", "sum", "mean", "mul"] = Field(
        "concat",
        description=(
            "How a bidirectional layer's two states combine for its readers: `concat` "
            "(size 2H, forward first), or `sum`, `mean` ((fwd + bwd) / 2) or `mul` "
            "(fwd * bwd), each of size H."
        ),
    )
    recurrent_dropout: Probability = Field(
        0.0,
        description=(
            "Variational dropout on the state the recurrence reads (s_{t-k} before Ws): one "
            "mask per sequence, the same at every step (Gal & Ghahramani 2016); training only."
        ),
    )
    output_dropout: Probability = Field(
        0.0,
        description=(
            "Dropout on the readout's input (s before Wy), a fresh mask at every step; "
            "needs `output`; training only."
        ),
    )
    init: RecurrentInit | None = Field(
        None, description="How the layer's weights start; default PyTorch's."
    )

    @model_validator(mode="after")
    def _direction_and_bidirectional(self):
        if self.bidirectional and self.direction != "forward":
            raise ValueError("`bidirectional: true` already runs both directions; drop `direction`")
        if self.merge != "concat" and not self.bidirectional:
            raise ValueError("`merge` combines the two directions of a `bidirectional: true` layer")
        return self

    @model_validator(mode="after")
    def _output_dropout_needs_a_readout(self):
        if self.output_dropout and self.output is None:
            raise ValueError("`output_dropout` drops the readout's input; give `output` or drop it")
        return self


class ElmanLayer(RecurrentLayer):
    """s_t = phi(x_t Wx + s_{t-k} Ws + b): the lecture's simple recurrent layer."""

    kind: Literal["elman"]
    activation: Literal["tanh", "relu", "sigmoid", "identity"] = Field(
        "tanh", description="phi, the state's activation."
    )


class LSTMLayer(RecurrentLayer):
    """A long short-term memory layer, PyTorch's equations, gate order i, f, g, o."""

    kind: Literal["lstm"]
    init: LSTMInit | None = Field(
        None, description="How the layer's weights start; default PyTorch's."
    )
    layer_norm: bool = Field(
        False,
        description=(
            "Layer normalisation (Ba et al. 2016): gates = LN(x Wx) * gx + LN(s Ws) * gs + b, "
            "each LN over all 4H pre-activations, and s = o * tanh(LN(c) * gc + bc); "
            "adds the gains `gx`, `gs`, `gc` (start at 1) and the shift `bc` (starts at 0)."
        ),
    )

    proj_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description=(
            "P, a projected state (Sak et al. 2014; PyTorch's `proj_size`): the cell c keeps "
            "H units, the state is s = (o * tanh(c)) Wp with Wp (H, P), so the recurrence "
            "(Ws is (P, 4H)), the readout and every reader see size P; 1 <= P < state_size."
        ),
    )

    @model_validator(mode="after")
    def _layer_norm_keeps_its_shifts(self):
        if self.layer_norm and not self.bias:
            raise ValueError("`layer_norm: true` needs the layer's biases; drop `bias: false`")
        return self

    @field_validator("proj_size")
    @classmethod
    def _projection_is_smaller(cls, value, info):
        size = info.data.get("state_size")
        if value is not None and size is not None and value >= size:
            raise ValueError(
                f"must be smaller than `state_size` ({size}), got {value}: it projects the "
                "state down"
            )
        if value is not None and info.data.get("layer_norm"):
            raise ValueError("does not combine with `layer_norm: true` yet; drop one of them")
        return value

    @model_validator(mode="after")
    def _projection_init_needs_a_projection(self):
        if self.init is not None and self.init.Wp is not None and self.proj_size is None:
            raise ValueError("`init` sets `Wp`, the projection, but the layer has no `proj_size`")
        return self


class GRULayer(RecurrentLayer):
    """A gated recurrent unit layer, PyTorch's equations, gate order r, z, n."""

    kind: Literal["gru"]
    reset_after: bool = Field(
        True,
        description=(
            "`true` (PyTorch, Keras 2+): n = tanh(x Wx_n + bx_n + r * (s Ws_n + bs_n)). "
            "`false`, the GRU of Cho et al. 2014 (ONNX `linear_before_reset=0`): "
            "n = tanh(x Wx_n + bx_n + (r * s) Ws_n + bs_n)."
        ),
    )
    init: GRUInit | None = Field(
        None, description="How the layer's weights start; default PyTorch's."
    )
    layer_norm: bool = Field(
        False,
        description=(
            "Layer normalisation of the input and the recurrent pre-activations "
            "(Ba et al. 2016): a = LN(x Wx) * gx + bx, s = LN(s_prev Ws) * gs + bs, each LN "
            "over all 3H; adds the gains `gx`, `gs` (start at 1)."
        ),
    )

    @model_validator(mode="after")
    def _layer_norm_options(self):
        if self.layer_norm and not self.bias:
            raise ValueError("`layer_norm: true` needs the layer's biases; drop `bias: false`")
        if self.layer_norm and not self.reset_after:
            raise ValueError("`layer_norm: true` computes PyTorch's GRU; drop `reset_after: false`")
        return self


class DenseLayer(LayerBase):
    """A stateless layer y = psi(x W + b), applied at every step."""

    kind: Literal["dense"]
    size: Size
    activation: Literal["identity", "tanh", "relu", "sigmoid", "softmax"] = Field(
        "identity", description="psi, the activation."
    )
    init: DenseInit | None = Field(
        None, description="How the layer's weights start; default PyTorch's nn.Linear."
    )


Layer = Annotated[
    Union[ElmanLayer, LSTMLayer, GRULayer, DenseLayer],
    Field(discriminator="kind"),
]


class Connection(_Model):
    """An extra edge with its own weight: `from`'s output at t-delay feeds `to` at t."""

    source: Name = Field(alias="from", description="An input or layer name.")
    target: Name = Field(alias="to", description="A layer name (its state or dense sum).")
    delay: Delay = Field(
        1, description="Steps back in time; negative reads ahead (future context)."
    )
    delays: Annotated[list[Delay], Field(min_length=1, max_length=1024)] | None = Field(
        None,
        description=(
            "Several taps at once, each with its own weight (`to.W_from@d`); instead of `delay`."
        ),
    )

    @model_validator(mode="after")
    def _delay_or_delays(self):
        if self.delays is not None and "delay" in self.model_fields_set:
            raise ValueError("give `delay` or `delays`, not both")
        _unique_delays(self.delays)
        return self

    def taps(self) -> list[int]:
        """The delays this connection reads its source at."""
        return list(self.delays) if self.delays is not None else [self.delay]


class OutputSpec(_Model):
    """An emitted output o: a layer's output at the steps of its window."""

    name: Name
    source: Name = Field(alias="from", description="The layer whose output is emitted.")
    window: Window | None = Field(
        None, description="Steps where the output is emitted; default from `alignment`."
    )


class Alignment(_Model):
    """How inputs and outputs line up over time: a preset, or explicit windows."""

    preset: Literal["one-to-one", "one-to-many", "many-to-one", "many-to-many"] | None = Field(
        None, description="One of Karpathy's patterns."
    )
    delay: int = Field(
        0, ge=0, le=1_000_000, description="many-to-many only: outputs lag inputs by this."
    )
    inputs: Window | None = Field(None, description="Default window of every input.")
    outputs: Window | None = Field(None, description="Default window of every output.")

    @model_validator(mode="after")
    def _preset_or_windows(self):
        if self.preset is None and self.inputs is None and self.outputs is None:
            raise ValueError("give a `preset` or explicit `inputs`/`outputs` windows")
        if self.delay and self.preset != "many-to-many":
            raise ValueError("`delay` belongs to the `many-to-many` preset")
        return self

    def windows(self) -> tuple[str, str]:
        """The default (inputs, outputs) windows."""
        ins, outs = {
            None: (":", ":"),
            "one-to-one": ("0:1", "0:1"),
            "one-to-many": ("0:1", ":"),
            "many-to-one": (":", "-1:"),
            "many-to-many": (f":-{self.delay}", f"{self.delay}:") if self.delay else (":", ":"),
        }[self.preset]
        return self.inputs or ins, self.outputs or outs


AlignmentField = Union[
    Literal["one-to-one", "one-to-many", "many-to-one", "many-to-many"], Alignment
]


class NetworkSpec(_Model):
    """A whole network: inputs, layers stacked by name, emitted outputs, alignment over time."""

    version: Literal[1] = Field(1, description="The spec format's version.")
    name: Name | None = Field(None, description="The network's name.")
    description: str | None = Field(None, description="Free text for readers.")
    steps: int = Field(8, ge=1, le=MAX_STEPS, description="Default unroll depth T.")
    inputs: list[InputSpec] = Field(min_length=1, description="The input sequences.")
    layers: list[Layer] = Field(min_length=1, description="The layers, by name.")
    outputs: list[OutputSpec] = Field(min_length=1, description="The emitted outputs.")
    connections: list[Connection] = Field(
        default_factory=list, description="Extra edges: feedback, skips."
    )
    alignment: AlignmentField = Field(
        "many-to-many", description="A preset name, or `{preset, delay}`, or explicit windows."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_the_integer_one(cls, value: Any) -> Any:
        # A Literal compares by equality even in strict mode, so `true` and `1.0` would pass.
        if type(value) is not int:
            raise PydanticCustomError("literal_error", "Input should be 1", {"expected": "1"})
        return value

    def aligned(self) -> Alignment:
        """The alignment as an `Alignment` object."""
        if isinstance(self.alignment, str):
            return Alignment(preset=self.alignment)
        return self.alignment
