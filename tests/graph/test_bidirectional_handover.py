"""A bidirectional encoder hands a decoder its final state: the forward copy's at its last
step and the backward copy's at its first, merged by the encoder's `merge`; the sizes
checked, the unrolled graph, `deps`, lengths and the diagrams agree."""

from __future__ import annotations

import numpy as np
import pytest

from composer.errors import SpecError
from composer.graph.deps import dependencies
from composer.graph.folded import build
from composer.graph.unrolled import unroll, unrolled_graph
from composer.network import Network
from tests.builders import input_, layer, output, readout, spec


def _network(merge="concat", H=None, enc="lstm", dec="lstm", **dec_fields):
    H = H or (8 if merge == "concat" else 4)
    return spec(
        [
            layer("enc", enc, "src", 4, active=":-3", bidirectional=True, merge=merge),
            layer(
                "dec",
                dec,
                "prev",
                H,
                active="-3:",
                initial_state="enc",
                output=readout(2, "softmax"),
                **dec_fields,
            ),
        ],  # fmt: skip
        inputs=[input_("src", 3, ":-3"), input_("prev", 2, "-3:")],
        outputs=[output("o", "dec")],
        alignment={"inputs": ":", "outputs": "-3:"},
        steps=8,
    )


@pytest.mark.parametrize(
    ("merge", "H", "size"), [("concat", 4, 8), ("sum", 8, 4), ("mean", 8, 4), ("mul", 3, 4)]
)
def test_the_decoder_state_size_must_be_the_merged_final_states(merge, H, size):
    with pytest.raises(SpecError) as caught:
        build(_network(merge, H))
    assert caught.value.path == ("layers", 1, "initial_state")
    assert caught.value.message == (
        f"`enc` has a final state of size {size} (bidirectional, `merge: {merge}`) but `dec` "
        f"has state_size {H}; a handed-over state must have the same size"
    )


def test_a_hand_over_to_a_bidirectional_layer_stays_refused():
    network = _network(H=4, bidirectional=True)
    with pytest.raises(SpecError, match="`initial_state` to a bidirectional layer is not"):
        build(network)


def test_the_unrolled_graph_hands_over_both_final_states_and_deps_see_every_input_step():
    unrolled = unroll(build(_network()), 8)
    assert unrolled.handover["dec.s"] == ("enc.s", 4)  # the forward copy's last step
    assert unrolled.handover_rev["dec.s"] == ("enc.s_rev", 0)  # the backward copy's first
    graph = unrolled_graph(unrolled)
    handed = {(u, v) for u, v, role in graph.edges(data="role") if role == "handover"}
    assert handed == {(("enc.s", 4), ("dec.s", 4)), (("enc.s_rev", 0), ("dec.s", 4))}
    deps = dependencies(unrolled)["o"]
    assert deps[5] == {"src": [0, 1, 2, 3, 4], "prev": [5]}
    assert deps[7]["src"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("merge", ["concat", "mul"])
def test_lengths_hand_over_each_items_own_final_state(merge):
    """With lengths, each item's encoder ends at its own last step: a padded batch gives
    what each item gives alone, in NumPy and in the PyTorch module."""
    net = Network.from_spec(_network(merge))
    rng = np.random.default_rng(0)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}
    lengths = np.array([8, 6, 7])
    src, prev = rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 3, 2))
    padded_src = np.zeros((3, 5, 3))
    for b, n in enumerate(lengths):
        padded_src[b, : n - 3] = src[b, : n - 3]
    inputs = {"src": padded_src, "prev": prev}
    given = {"src": lengths - 3, "prev": np.full(3, 3)}
    out = net.run(params, inputs, dtype="float64", lengths=given)
    for b, n in enumerate(lengths):
        alone = net.run(params, {"src": src[b : b + 1, : n - 3], "prev": prev[b : b + 1]},
                        steps=int(n), dtype="float64")  # fmt: skip
        np.testing.assert_allclose(out["o"][b], alone["o"][0], atol=1e-12, rtol=0)
    torch = pytest.importorskip("torch")
    module = net.to_torch(params, dtype="float64")
    with torch.no_grad():
        got = module({k: torch.from_numpy(v) for k, v in inputs.items()}, lengths=given)
    np.testing.assert_allclose(got["o"].numpy(), out["o"], atol=1e-10, rtol=0)


def test_the_diagrams_draw_both_hand_overs(tmp_path):
    from composer.draw.folded_picture import folded_dot
    from composer.draw.unfolded_picture import unfolded_dot

    graph = build(_network("sum"))
    folded = folded_dot(graph)
    assert 'id="enc.s->dec.s", class="handover"' in folded
    assert 'id="enc.s_rev->dec.s", class="handover"' in folded
    unfolded = unfolded_dot(unroll(graph, 8))
    assert 'id="enc.s_rev@0->dec.s@4"' in unfolded and 'id="enc.s@4->dec.s@4"' in unfolded


def test_the_handed_state_is_pytorchs_h_n_and_c_n_concatenated():
    """Against PyTorch's own modules: a bidirectional nn.LSTM's (h_n, c_n), both
    directions concatenated, start an nn.LSTM decoder."""
    torch = pytest.importorskip("torch")
    net = Network.from_spec(_network("concat"))
    rng = np.random.default_rng(5)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in net.init_params().items()}
    src, prev = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 3, 2))
    expected = net.run(params, {"src": src, "prev": prev}, dtype="float64")["o"]
    module = net.to_torch(params, dtype="float64")  # only its nn.LSTMs and nn.Linear
    with torch.no_grad():
        _, (h_n, c_n) = module.enc.rnn(torch.from_numpy(src))
        start = tuple(torch.cat([s[0], s[1]], -1)[None] for s in (h_n, c_n))
        out, _ = module.dec.rnn(torch.from_numpy(prev), start)
        o = module.dec.readout(out).softmax(-1)
    np.testing.assert_allclose(o.numpy(), expected, atol=1e-10, rtol=0)
