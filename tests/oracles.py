"""Hand-written reference loops: what the executor must compute, straight from the equations.

Written independently of `composer.kinds.base`, `composer.engine.plan` and
`composer.engine.executor`: plain per-step loops over PyTorch-order weights as our
parameter table names them, with sigmoid and softmax written the textbook way. Arrays are
(B, T, F) like the executor's; an absent input (outside its window) is simply not added.

`SCENARIOS` pairs each spec that PyTorch cannot express with its loop.
"""

from __future__ import annotations

import numpy as np

from composer.spec.model import NetworkSpec
from tests import builders
from tests.builders import connection, input_, layer, output, spec

__all__ = [
    "sigmoid",
    "softmax",
    "ACT",
    "elman",
    "lstm",
    "gru",
    "gru_reset_before",
    "readout",
    "SCENARIOS",
]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACT = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": sigmoid,
    "identity": lambda x: x,
    "softmax": softmax,
}


def elman(pre, s_prev, p, name, act="tanh", sfx=""):
    """s = phi(x Wx + s_prev Ws + b), with `pre` = the input part x Wx (and any extras)."""
    return ACT[act](pre + s_prev @ p[f"{name}.Ws{sfx}"] + p[f"{name}.b{sfx}"])


def lstm(pre, h, c, p, name, sfx=""):
    """PyTorch's LSTM step: gates i, f, g, o in the 4H columns of `pre + h Ws + b`."""
    z = pre + h @ p[f"{name}.Ws{sfx}"] + p[f"{name}.b{sfx}"]
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def lstm_proj(pre, h, c, p, name, sfx=""):
    """PyTorch's LSTM step with `proj_size`: h (P) = (o * tanh(c)) Wp, Wp = weight_hr.T."""
    z = pre + h @ p[f"{name}.Ws{sfx}"] + p[f"{name}.b{sfx}"]
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return (sigmoid(o) * np.tanh(c)) @ p[f"{name}.Wp{sfx}"], c


def gru(pre, h, p, name, sfx=""):
    """PyTorch's GRU step: gates r, z, n; `pre` is the input part x W_i (without bx)."""
    gh = h @ p[f"{name}.Ws{sfx}"] + p[f"{name}.bs{sfx}"]
    gx = np.broadcast_to(pre + p[f"{name}.bx{sfx}"], gh.shape)  # `pre` may be 0: no input
    H = h.shape[-1]
    r = sigmoid(gx[:, :H] + gh[:, :H])
    z = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
    n = np.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
    return (1 - z) * n + z * h


def gru_reset_before(pre, h, p, name, sfx=""):
    """The GRU of Cho et al. 2014 (Keras `reset_after=False`, ONNX `linear_before_reset=0`):
    n = tanh(x W_in + bx_n + (r * h) Ws_n + bs_n)."""
    Ws, bx, bs = p[f"{name}.Ws{sfx}"], p[f"{name}.bx{sfx}"], p[f"{name}.bs{sfx}"]
    H = h.shape[-1]
    gx = np.broadcast_to(pre + bx, (h.shape[0], 3 * H))
    r = sigmoid(gx[:, :H] + h @ Ws[:, :H] + bs[:H])
    z = sigmoid(gx[:, H : 2 * H] + h @ Ws[:, H : 2 * H] + bs[H : 2 * H])
    n = np.tanh(gx[:, 2 * H :] + (r * h) @ Ws[:, 2 * H :] + bs[2 * H :])
    return (1 - z) * n + z * h


def layer_norm(a, eps=1e-5):
    """(a - mean) / sqrt(var + eps) over the last axis, the textbook way."""
    mean = a.mean(axis=-1, keepdims=True)
    var = ((a - mean) ** 2).mean(axis=-1, keepdims=True)
    return (a - mean) / np.sqrt(var + eps)


def lstm_layer_norm(pre, h, c, p, name, sfx=""):
    """Ba et al. 2016's LSTM: LN(x Wx) gx + LN(h Ws) gs + b, gates i, f, g, o, and
    h = o tanh(LN(c) gc + bc); `pre` is x Wx."""
    q = {k: p[f"{name}.{k}{sfx}"] for k in ("Ws", "b", "gx", "gs", "gc", "bc")}
    pre = np.broadcast_to(pre, (h.shape[0], q["b"].shape[0]))
    z = layer_norm(pre) * q["gx"] + layer_norm(h @ q["Ws"]) * q["gs"] + q["b"]
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(layer_norm(c) * q["gc"] + q["bc"]), c


def gru_layer_norm(pre, h, p, name, sfx=""):
    """The layer-normalised GRU: a = LN(x Wx) gx + bx, s = LN(h Ws) gs + bs, then
    PyTorch's gates r, z, n; `pre` is x Wx."""
    q = {k: p[f"{name}.{k}{sfx}"] for k in ("Ws", "bx", "bs", "gx", "gs")}
    H = h.shape[-1]
    pre = np.broadcast_to(pre, (h.shape[0], 3 * H))
    a = layer_norm(pre) * q["gx"] + q["bx"]
    s = layer_norm(h @ q["Ws"]) * q["gs"] + q["bs"]
    r = sigmoid(a[:, :H] + s[:, :H])
    z = sigmoid(a[:, H : 2 * H] + s[:, H : 2 * H])
    n = np.tanh(a[:, 2 * H :] + r * s[:, 2 * H :])
    return (1 - z) * n + z * h


def readout(s, p, name, act):
    return ACT[act](s @ p[f"{name}.Wy"] + p[f"{name}.by"])


def _zeros(x, size):
    return np.zeros((x.shape[0], size))


# ---------------------------------------------------------------- scenarios


def _softmax_readout(p, x, T):
    s, ys = _zeros(x["x"], 5), []
    for t in range(T):
        s = elman(x["x"][:, t] @ p["rnn.Wx"], s, p, "rnn")
        ys.append(readout(s, p, "rnn", "softmax"))
    return {"y": np.stack(ys, 1)}


def _jordan(p, x, T):
    s, y, ys = _zeros(x["x"], 5), None, []
    for t in range(T):
        pre = x["x"][:, t] @ p["rnn.Wx"]
        if y is not None:  # y_{t-1}: absent at t = 0
            pre = pre + y @ p["rnn.W_rnn"]
        s = elman(pre, s, p, "rnn")
        y = readout(s, p, "rnn", "softmax")
        ys.append(y)
    return {"y": np.stack(ys, 1)}


def _jordan_two(p, x, T):
    s1, h2, c2, y2, ys = _zeros(x["x"], 4), _zeros(x["x"], 3), _zeros(x["x"], 3), None, []
    for t in range(T):
        pre = x["x"][:, t] @ p["a.Wx"]
        if y2 is not None:
            pre = pre + y2 @ p["a.W_b"]
        s1 = elman(pre, s1, p, "a", "relu")
        h2, c2 = lstm(s1 @ p["b.Wx"], h2, c2, p, "b")
        y2 = readout(h2, p, "b", "sigmoid")
        ys.append(y2)
    return {"o": np.stack(ys, 1)}


def _dilation(p, x, T):
    k, s = 2, [_zeros(x["x"], 4), _zeros(x["x"], 4)]  # s_{-2}, s_{-1}
    hc = [(_zeros(x["x"], 3), _zeros(x["x"], 3))] * 3
    states = []
    for t in range(T):
        s.append(elman(x["x"][:, t] @ p["e.Wx"], s[-k], p, "e"))
        h, c = lstm(s[-1] @ p["l.Wx"], *hc[-3], p, "l")
        hc.append((h, c))
        states.append(h)
    return {"o": states[-1][:, None], "s": np.stack(s[2:], 1)}


def _delayed_m2m(p, x, T):
    h, hs = _zeros(x["x"], 4), []
    for t in range(T):
        pre = x["x"][:, t] @ p["g.Wx"] if t < T - 3 else 0.0  # input window `:-3`
        h = gru(pre, h, p, "g")
        hs.append(h)
    return {"o": np.stack(hs[3:], 1)}


def _one_to_many(p, x, T):
    s, ys = _zeros(x["x"], 4), []
    for t in range(T):
        pre = x["x"][:, 0] @ p["rnn.Wx"] if t == 0 else 0.0
        s = elman(pre, s, p, "rnn")
        ys.append(readout(s, p, "rnn", "identity"))
    return {"y": np.stack(ys, 1)}


def _encoder_decoder(p, x, T, enc="lstm", dec="lstm"):
    h, c = _zeros(x["x"], 4), _zeros(x["x"], 4)
    for t in range(4):
        pre = x["x"][:, t] @ p["enc.Wx"]
        if enc == "lstm":
            h, c = lstm(pre, h, c, p, "enc")
        else:
            h = gru(pre, h, p, "enc")
    if enc != "lstm" or dec != "lstm":
        c = _zeros(x["x"], 4)  # only an LSTM hands its cell over to an LSTM
    ys = []
    for t in range(4, 7):
        pre = x["d"][:, t - 4] @ p["dec.Wx"]
        if dec == "lstm":
            h, c = lstm(pre, h, c, p, "dec")
        else:
            h = elman(pre, h, p, "dec")
        ys.append(readout(h, p, "dec", "softmax"))
    return {"o": np.stack(ys, 1)}


_MERGE = {
    "concat": lambda a, b: np.concatenate([a, b], -1),
    "sum": np.add,
    "mean": lambda a, b: (a + b) / 2,
    "mul": np.multiply,
}


def _bidirectional_encoder(p, x, T, merge, enc="lstm", dec="lstm"):
    """A bidirectional encoder over steps 0..3 hands the decoder its final state: the
    forward copy's at step 3 and the backward copy's at step 0, merged by `merge` (an
    LSTM's cell state too, when the decoder is an LSTM)."""
    finals = []
    for sfx, steps in (("", range(4)), ("_rev", reversed(range(4)))):
        h, c = _zeros(x["x"], 3), _zeros(x["x"], 3)
        for t in steps:
            pre = x["x"][:, t] @ p[f"enc.Wx{sfx}"]
            if enc == "lstm":
                h, c = lstm(pre, h, c, p, "enc", sfx)
            else:
                h = gru(pre, h, p, "enc", sfx)
        finals.append((h, c))
    (hf, cf), (hb, cb) = finals
    h = _MERGE[merge](hf, hb)
    c = _MERGE[merge](cf, cb) if enc == dec == "lstm" else np.zeros_like(h)
    ys = []
    for t in range(4, 7):
        pre = x["d"][:, t - 4] @ p["dec.Wx"]
        if dec == "lstm":
            h, c = lstm(pre, h, c, p, "dec")
        elif dec == "gru":
            h = gru(pre, h, p, "dec")
        else:
            h = elman(pre, h, p, "dec")
        ys.append(readout(h, p, "dec", "softmax"))
    return {"o": np.stack(ys, 1)}


def _backward(p, x, T):
    s, states = _zeros(x["x"], 4), [None] * T
    for t in reversed(range(T)):
        s = elman(x["x"][:, t] @ p["rnn.Wx"], s, p, "rnn")
        states[t] = s
    return {"all": np.stack(states, 1), "first": states[0][:, None]}


def _skips(p, x, T):
    s1, h2, prev1, ys = _zeros(x["x"], 4), _zeros(x["x"], 3), [], []
    for t in range(T):
        s1 = elman(x["x"][:, t] @ p["l1.Wx"], s1, p, "l1")
        prev1.append(s1)
        pre = s1 @ p["l2.Wx"] + x["x"][:, t] @ p["l2.W_x"]  # delay-0 skip from the input
        if t >= 2:
            pre = pre + prev1[t - 2] @ p["l2.W_l1"]  # delay-2 skip
        h2 = gru(pre, h2, p, "l2")
        d = h2 @ p["d.W"] + s1 @ p["d.W_l1"] + p["d.b"]  # delay-0 skip into a dense layer
        ys.append(np.tanh(d))
    return {"o": np.stack(ys, 1)}


def _generated_feedback(p, x, T):
    s, y, ys = _zeros(x["x"], 4), None, []
    for t in range(T):
        pre = x["x"][:, t] @ p["l.Wx"]
        if y is not None:
            pre = pre + y @ p["l.W_d"]
        s = elman(pre, s, p, "l")
        y = softmax(s @ p["d.W"] + p["d.b"])
        ys.append(y)
    return {"o": np.stack(ys, 1)}


def _bidirectional_readout(p, x, T):
    f, b = [], [None] * T
    h = _zeros(x["x"], 3)
    for t in range(T):
        h = gru(x["x"][:, t] @ p["bi.Wx"], h, p, "bi")
        f.append(h)
    h = _zeros(x["x"], 3)
    for t in reversed(range(T)):
        h = gru(x["x"][:, t] @ p["bi.Wx_rev"], h, p, "bi", "_rev")
        b[t] = h
    ys = [readout(np.concatenate([f[t], b[t]], -1), p, "bi", "softmax") for t in range(T)]
    return {"o": np.stack(ys, 1)}


def _concatenated(p, x, T):
    s, ys = _zeros(x["a"], 4), []
    Wa, Wb = p["l.Wx"][:2], p["l.Wx"][2:]
    for t in range(T):
        pre = x["a"][:, t] @ Wa
        if t >= 2:  # b's window is `2:`
            pre = pre + x["b"][:, t - 2] @ Wb
        s = elman(pre, s, p, "l", "sigmoid")
        ys.append(s)
    return {"o": np.stack(ys, 1)}


def _self_connection(p, x, T):
    s = [_zeros(x["x"], 4)]
    for t in range(T):
        pre = x["x"][:, t] @ p["rnn.Wx"]
        if t >= 2:
            pre = pre + s[t - 1] @ p["rnn.W_rnn"]  # s_{t-2}; list index t - 1 (s[0] = s_{-1})
        s.append(elman(pre, s[-1], p, "rnn", "identity"))
    return {"o": np.stack(s[1:], 1)}


def _active_window(p, x, T):
    h = _zeros(x["x"], 4)
    for t in range(2, T):  # the layer exists from step 2 on, starting from zeros
        h = gru(x["x"][:, t] @ p["g.Wx"], h, p, "g")
    return {"o": h[:, None]}


def _dense_stack(p, x, T):
    s, outs = _zeros(x["x"], 4), []
    for t in range(T):
        d = np.maximum(x["x"][:, t] @ p["d.W"] + p["d.b"], 0)
        s = elman(d @ p["e.Wx"], s, p, "e")
        outs.append(sigmoid(s @ p["out.W"] + p["out.b"]))
    return {"o": np.stack(outs, 1)}


def _delayed_input(p, x, T):
    s, outs = _zeros(x["x"], 4), []
    for t in range(T):
        pre = x["x"][:, t - 1] @ p["rnn.Wx"] if t >= 1 else 0.0  # x's window is `1:`
        if t - 3 >= 1:
            pre = pre + x["x"][:, t - 4] @ p["rnn.W_x"]  # x at step t - 3
        s = elman(pre, s, p, "rnn")
        outs.append(s)
    return {"o": np.stack(outs, 1)}


def _taps(x, t, p, key, delays):
    """The sum of x[t - d] @ W@d over the taps whose step exists (absent steps add 0)."""
    total = 0.0
    for d in delays:
        if 0 <= t - d < x.shape[1]:
            total = total + x[:, t - d] @ p[key + (f"@{d}" if d else "")]
    return total


def _narx(p, x, T):
    s, ys = _zeros(x["x"], 4), []
    for t in range(T):
        pre = _taps(x["x"], t, p, "r.Wx", (1, 2, 3))
        for d in (1, 2):  # output feedback y_{t-1}, y_{t-2}, each with its own weight
            if t - d >= 0:
                pre = pre + ys[t - d] @ p[f"r.W_r@{d}"]
        s = elman(pre, s, p, "r")
        ys.append(readout(s, p, "r", "tanh"))
    return {"y": np.stack(ys, 1)}


def _tdnn(p, x, T):
    d = [np.tanh(_taps(x["x"], t, p, "d.W", range(-2, 3)) + p["d.b"]) for t in range(T)]
    f, b = [], [None] * T
    h = _zeros(x["x"], 3)
    for t in range(T):
        h = gru(d[t] @ p["bi.Wx"], h, p, "bi")
        f.append(h)
    h = _zeros(x["x"], 3)
    for t in reversed(range(T)):
        h = gru(d[t] @ p["bi.Wx_rev"], h, p, "bi", "_rev")
        b[t] = h
    ys = [readout(np.concatenate([f[t], b[t]], -1), p, "bi", "softmax") for t in range(T)]
    return {"o": np.stack(ys, 1)}


def _backward_taps(p, x, T):
    s, states = _zeros(x["x"], 4), [None] * T
    for t in reversed(range(T)):
        s = elman(_taps(x["x"], t, p, "rnn.Wx", (-2, 1)), s, p, "rnn")
        states[t] = s
    return {"o": np.stack(states, 1)}


def _inputless_decoder(p, x, T):
    h = _zeros(x["x"], 4)
    for t in range(4):
        h = elman(x["x"][:, t] @ p["enc.Wx"], h, p, "enc")
    y, ys = None, []
    for _ in range(4, T):  # no input: the handed-over state and the fed-back output only
        pre = y @ p["dec.W_dec"] if y is not None else np.zeros((h.shape[0], 12))
        h = gru(pre, h, p, "dec")
        y = readout(h, p, "dec", "softmax")
        ys.append(y)
    return {"o": np.stack(ys, 1)}


def _summed(p, x, T):
    """A bidirectional LSTM whose directions are summed (`merge: sum`), read by a dense
    layer, and a bidirectional Elman layer summed into a readout."""
    hs, h, c = [], _zeros(x["x"], 3), _zeros(x["x"], 3)
    for t in range(T):
        h, c = lstm(x["x"][:, t] @ p["a.Wx"], h, c, p, "a")
        hs.append(h)
    h, c = _zeros(x["x"], 3), _zeros(x["x"], 3)
    for t in reversed(range(T)):
        h, c = lstm(x["x"][:, t] @ p["a.Wx_rev"], h, c, p, "a", "_rev")
        hs[t] = hs[t] + h
    d = [np.tanh(hs[t] @ p["d.W"] + p["d.b"]) for t in range(T)]
    f, b, s = [], [None] * T, _zeros(x["x"], 4)
    for t in range(T):
        s = elman(d[t] @ p["e.Wx"], s, p, "e")
        f.append(s)
    s = _zeros(x["x"], 4)
    for t in reversed(range(T)):
        s = elman(d[t] @ p["e.Wx_rev"], s, p, "e", sfx="_rev")
        b[t] = s
    ys = [readout(f[t] + b[t], p, "e", "sigmoid") for t in range(T)]
    return {"o": np.stack(ys, 1), "sa": np.stack(hs, 1)}


def _merged(p, x, T):
    """A bidirectional GRU whose directions are averaged (`merge: mean`), read by a dense
    layer, and a bidirectional LSTM multiplied (`merge: mul`) into a readout."""
    f, b, h = [], [None] * T, _zeros(x["x"], 3)
    for t in range(T):
        h = gru(x["x"][:, t] @ p["a.Wx"], h, p, "a")
        f.append(h)
    h = _zeros(x["x"], 3)
    for t in reversed(range(T)):
        h = gru(x["x"][:, t] @ p["a.Wx_rev"], h, p, "a", "_rev")
        b[t] = h
    mean = [(f[t] + b[t]) / 2 for t in range(T)]
    d = [np.tanh(mean[t] @ p["d.W"] + p["d.b"]) for t in range(T)]
    f, b, h, c = [], [None] * T, _zeros(x["x"], 4), _zeros(x["x"], 4)
    for t in range(T):
        h, c = lstm(d[t] @ p["e.Wx"], h, c, p, "e")
        f.append(h)
    h, c = _zeros(x["x"], 4), _zeros(x["x"], 4)
    for t in reversed(range(T)):
        h, c = lstm(d[t] @ p["e.Wx_rev"], h, c, p, "e", "_rev")
        b[t] = h
    ys = [readout(f[t] * b[t], p, "e", "tanh") for t in range(T)]
    return {"o": np.stack(ys, 1), "ma": np.stack(mean, 1)}


def _two_pass(p, x, T):
    s = _zeros(x["x"], 3)
    for t in range(T):  # the first pass: all of r
        s = elman(x["x"][:, t] @ p["r.Wx"], s, p, "r")
    d, ds = s, []  # the second pass starts from r's last state
    for t in range(T):
        d = elman(x["x"][:, t] @ p["d.Wx"], d, p, "d")
        ds.append(d)
    return {"y": np.stack(ds, 1)}


_SOFTMAX4 = builders.readout(4, "softmax")
_TANH2 = builders.readout(2, "tanh")
_SOFTMAX2 = builders.readout(2, "softmax")
TANH = "tanh"


def _encoder_decoder_spec(
    enc: str = "lstm", dec: str = "lstm", merge: str | None = None
) -> NetworkSpec:
    """An encoder over steps 0..3 hands its state to a decoder over 4..6; with `merge`, a
    bidirectional encoder of H = 3 merged so (a decoder of 6 for `concat`, else 3)."""
    if merge is None:
        encoder, H = layer("enc", enc, "x", 4, active="0:4"), 4
    else:
        H = 6 if merge == "concat" else 3
        encoder = layer("enc", enc, "x", 3, active="0:4", bidirectional=True, merge=merge)
    return spec(
        [
            encoder,
            layer("dec", dec, "d", H, active="4:7", initial_state="enc", output=_SOFTMAX4),
        ],
        inputs=[input_("x", 3), input_("d", 2, window="4:7")],
        outputs=[output("o", "dec")],
        alignment={"inputs": "0:4", "outputs": "4:7"},
    )


#: name -> (spec, T, oracle(params, inputs, T) -> {output: (B, T_out, size)}).
SCENARIOS = {
    "softmax-readout": (
        spec([layer("rnn", "elman", "x", 5, output=_SOFTMAX4)]),
        6,
        _softmax_readout,
    ),
    "jordan": (
        spec(
            [layer("rnn", "elman", "x", 5, output=_SOFTMAX4)],
            connections=[connection("rnn", "rnn", 1)],
        ),
        6,
        _jordan,
    ),
    "jordan-two-layers": (
        spec(
            [
                layer("a", "elman", "x", 4, activation="relu"),
                layer("b", "lstm", "a", 3, output=builders.readout(2, "sigmoid")),
            ],
            outputs=[output("o", "b")],
            connections=[connection("b", "a", 1)],
        ),
        5,
        _jordan_two,
    ),
    "dilation": (
        spec(
            [layer("e", "elman", "x", 4, delay=2), layer("l", "lstm", "e", 3, delay=3)],
            outputs=[output("o", "l", "-1:"), output("s", "e")],
        ),
        7,
        _dilation,
    ),
    "many-to-many-delay-3": (
        spec(
            [layer("g", "gru", "x", 4)],
            outputs=[output("o", "g")],
            alignment={"preset": "many-to-many", "delay": 3},
        ),
        8,
        _delayed_m2m,
    ),
    "one-to-many": (
        spec([layer("rnn", "elman", "x", 4, output=builders.readout(2))], alignment="one-to-many"),
        5,
        _one_to_many,
    ),
    "encoder-decoder-lstm-lstm": (_encoder_decoder_spec(), 7, _encoder_decoder),
    "narx": (
        spec(
            [layer("r", "elman", {"from": "x", "delays": [1, 2, 3]}, 4, output=_TANH2)],
            connections=[{"from": "r", "to": "r", "delays": [1, 2]}],
        ),
        7,
        _narx,
    ),
    "tdnn": (
        spec(
            [
                layer("d", "dense", {"from": "x", "delays": [-2, -1, 0, 1, 2]}, 5, activation=TANH),
                layer("bi", "gru", "d", 3, bidirectional=True, output=_SOFTMAX2),
            ],
            outputs=[output("o", "bi")],
        ),
        6,
        _tdnn,
    ),
    "backward-taps": (
        spec(
            [layer("rnn", "elman", {"from": "x", "delays": [-2, 1]}, 4, direction="backward")],
            outputs=[output("o", "rnn")],
        ),
        6,
        _backward_taps,
    ),
    "bidirectional-sum": (
        spec(
            [
                layer("a", "lstm", "x", 3, bidirectional=True, merge="sum"),
                layer("d", "dense", "a", 2, activation=TANH),
                layer(
                    "e",
                    "elman",
                    "d",
                    4,
                    bidirectional=True,
                    merge="sum",
                    output=builders.readout(2, "sigmoid"),
                ),
            ],
            outputs=[output("o", "e"), output("sa", "a")],
        ),
        5,
        _summed,
    ),
    "bidirectional-mean-mul": (
        spec(
            [
                layer("a", "gru", "x", 3, bidirectional=True, merge="mean"),
                layer("d", "dense", "a", 2, activation=TANH),
                layer(
                    "e",
                    "lstm",
                    "d",
                    4,
                    bidirectional=True,
                    merge="mul",
                    output=builders.readout(2, "tanh"),
                ),
            ],
            outputs=[output("o", "e"), output("ma", "a")],
        ),
        5,
        _merged,
    ),
    "two-pass": (
        spec(
            [
                layer("r", "elman", "x", 3),
                layer("d", "elman", "x", 3, initial_state={"from": "r", "at": "end"}),
            ]
        ),
        5,
        _two_pass,
    ),
    "inputless-decoder": (
        spec(
            [
                layer("enc", "elman", "x", 4, active="0:4"),
                {
                    "name": "dec",
                    "kind": "gru",
                    "state_size": 4,
                    "active": "4:7",
                    "initial_state": "enc",
                    "output": builders.readout(3, "softmax"),
                },
            ],
            outputs=[output("o", "dec", "4:7")],
            connections=[connection("dec", "dec", 1)],
        ),
        7,
        _inputless_decoder,
    ),
    "encoder-decoder-gru-lstm": (
        _encoder_decoder_spec(enc="gru"),
        7,
        lambda p, x, T: _encoder_decoder(p, x, T, enc="gru"),
    ),
    **{
        f"bidirectional-encoder-{merge}-{enc}-{dec}": (
            _encoder_decoder_spec(enc, dec, merge),
            7,
            lambda p, x, T, m=merge, e=enc, d=dec: _bidirectional_encoder(p, x, T, m, e, d),
        )
        for merge, enc, dec in (
            ("concat", "lstm", "lstm"),
            ("sum", "gru", "elman"),
            ("mean", "lstm", "lstm"),
            ("mul", "lstm", "gru"),
        )
    },
    "encoder-decoder-lstm-elman": (
        _encoder_decoder_spec(dec="elman"),
        7,
        lambda p, x, T: _encoder_decoder(p, x, T, dec="elman"),
    ),
    "backward": (
        spec(
            [layer("rnn", "elman", "x", 4, direction="backward")],
            outputs=[output("all", "rnn"), output("first", "rnn", "0:1")],
        ),
        6,
        _backward,
    ),
    "skip-connections": (
        spec(
            [
                layer("l1", "elman", "x", 4),
                layer("l2", "gru", "l1", 3),
                layer("d", "dense", "l2", 2, activation="tanh"),
            ],
            outputs=[output("o", "d")],
            connections=[
                connection("x", "l2", 0),
                connection("l1", "l2", 2),
                connection("l1", "d", 0),
            ],
        ),
        6,
        _skips,
    ),
    "generated-output-fed-back": (
        spec(
            [
                layer("l", "elman", "x", 4),
                layer("d", "dense", "l", 3, activation="softmax"),
            ],
            outputs=[output("o", "d")],
            connections=[connection("d", "l", 1)],
        ),
        6,
        _generated_feedback,
    ),
    "bidirectional-readout": (
        spec(
            [layer("bi", "gru", "x", 3, bidirectional=True, output=_SOFTMAX4)],
            outputs=[output("o", "bi")],
        ),
        5,
        _bidirectional_readout,
    ),
    "concatenated-inputs": (
        spec(
            [layer("l", "elman", ["a", "b"], 4, activation="sigmoid")],
            inputs=[input_("a", 2), input_("b", 3, window="2:")],
            outputs=[output("o", "l")],
        ),
        6,
        _concatenated,
    ),
    "self-connection": (
        spec(
            [layer("rnn", "elman", "x", 4, activation="identity")],
            outputs=[output("o", "rnn")],
            connections=[connection("rnn", "rnn", 2)],
        ),
        6,
        _self_connection,
    ),
    "active-window": (
        spec(
            [layer("g", "gru", "x", 4, active="2:")],
            outputs=[output("o", "g")],
            alignment="many-to-one",
        ),
        6,
        _active_window,
    ),
    "delayed-input": (
        spec(
            [layer("rnn", "elman", "x", 4)],
            inputs=[input_("x", 3, window="1:")],
            outputs=[output("o", "rnn")],
            connections=[connection("x", "rnn", 3)],
        ),
        7,
        _delayed_input,
    ),
    "dense-stack": (
        spec(
            [
                layer("d", "dense", "x", 5, activation="relu"),
                layer("e", "elman", "d", 4),
                layer("out", "dense", "e", 2, activation="sigmoid"),
            ],
            outputs=[output("o", "out")],
        ),
        5,
        _dense_stack,
    ),
}
