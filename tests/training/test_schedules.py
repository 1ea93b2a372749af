"""Learning-rate schedules against `torch.optim.lr_scheduler`, rate for rate at every
epoch, and SGD's momentum options in the loop."""

from __future__ import annotations

import numpy as np
import pytest

from composer.errors import DataError
from composer.training.optim import SGD, make_optimizer
from composer.training.schedules import parse_schedule

torch = pytest.importorskip("torch")
sched = torch.optim.lr_scheduler

BASE, EPOCHS = 0.1, 12
#: a loss that falls, stalls, falls a little, then stalls: plateau must act twice
LOSSES = [1.0, 0.8, 0.7, 0.7, 0.71, 0.7, 0.69995, 0.6, 0.6, 0.6, 0.6, 0.6]


def _torch_rates(make, losses=None) -> list[float]:
    weight = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([weight], lr=BASE)
    scheduler = make(opt)
    rates = []
    for epoch in range(EPOCHS):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step(*([losses[epoch]] if losses else []))
    return rates


def _ours(text: str, losses=None) -> list[float]:
    schedule = parse_schedule(text)
    schedule.start(BASE, EPOCHS)
    rates = []
    for epoch in range(1, EPOCHS + 1):
        rates.append(schedule.rate(epoch))
        schedule.after(epoch, losses[epoch - 1] if losses else 0.0)
    return rates


def _sequential(warm: int, then):
    def make(opt):
        linear = sched.LinearLR(opt, start_factor=1 / warm, end_factor=1.0, total_iters=warm - 1)
        return sched.SequentialLR(opt, [linear, then(opt)], milestones=[warm])

    return make


CASES = [
    ("constant", lambda opt: sched.ConstantLR(opt, factor=1.0, total_iters=0), None),
    ("step:3:0.5", lambda opt: sched.StepLR(opt, step_size=3, gamma=0.5), None),
    ("step:1:0.9", lambda opt: sched.StepLR(opt, step_size=1, gamma=0.9), None),
    ("cosine", lambda opt: sched.CosineAnnealingLR(opt, T_max=EPOCHS), None),
    ("cosine:0.01", lambda opt: sched.CosineAnnealingLR(opt, T_max=EPOCHS, eta_min=0.01), None),
    ("plateau:1:0.5", lambda opt: sched.ReduceLROnPlateau(opt, factor=0.5, patience=1), LOSSES),
    ("plateau:0:0.1", lambda opt: sched.ReduceLROnPlateau(opt, factor=0.1, patience=0), LOSSES),
    ("warmup:3", _sequential(3, lambda opt: sched.ConstantLR(opt, 1.0, total_iters=0)), None),
    ("warmup:4,cosine", _sequential(4, lambda o: sched.CosineAnnealingLR(o, EPOCHS - 4)), None),
    ("warmup:2,step:3:0.5", _sequential(2, lambda o: sched.StepLR(o, 3, 0.5)), None),
]


@pytest.mark.parametrize(("text", "make", "losses"), CASES, ids=[c[0] for c in CASES])
def test_each_schedule_gives_torchs_rate_at_every_epoch(text, make, losses):
    expected = _torch_rates(make, losses)
    np.testing.assert_allclose(_ours(text, losses), expected, rtol=1e-12, atol=0)
    if text.startswith("plateau"):
        assert len(set(expected)) >= 2  # the losses did make it act


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("linear", "does not parse; expected constant, step:EVERY:FACTOR"),
        ("step:3", "does not parse"),
        ("step:0:0.5", "EVERY must be an int > 0, got '0'"),
        ("step:2:x", "FACTOR must be a number > 0, got 'x'"),
        ("plateau:2:1.5", r"FACTOR must be a number in \(0, 1\)"),
        ("cosine,step:1:0.5", "does not parse"),
        ("warmup:2,warmup:3", "one warm-up only"),
        ("warmup:2,", "does not parse"),
    ],
)
def test_a_schedule_that_does_not_parse_is_one_line(text, message):
    with pytest.raises(DataError, match=message):
        parse_schedule(text)


def test_sgd_momentum_and_nesterov_reach_the_optimizer():
    params = {"w": np.zeros(2)}
    opt = make_optimizer("sgd", params, 0.1, momentum=0.5, nesterov=True)
    assert isinstance(opt, SGD) and opt.momentum == 0.5 and opt.nesterov
    with pytest.raises(DataError, match="Nesterov momentum needs a momentum > 0"):
        make_optimizer("sgd", params, 0.1, momentum=0.0, nesterov=True)
    with pytest.raises(DataError, match="Nesterov momentum is for sgd, not adam"):
        make_optimizer("adam", params, 0.1, nesterov=True)


def test_the_loop_sets_each_epochs_rate_and_records_it():
    from composer.arrays import read_arrays
    from composer.graph.folded import build
    from composer.graph.weights import init_params
    from composer.spec.reader import load_spec
    from composer.training.loop import train
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "specs" / "sine.yaml")
    data = {k: v[:64] for k, v in read_arrays(ROOT / "specs" / "data" / "sine.npz").items()}
    start = init_params(build(spec), 0)
    options = dict(epochs=4, batch_size=32, lr=0.02, optimizer="sgd", momentum=0.5)
    result = train(spec, start, data, schedule="step:2:0.5", **options)
    assert [e.lr for e in result.history] == [0.02, 0.02, 0.02, 0.01, 0.01]
    # the same run with a constant rate moves differently from epoch 3 on
    flat = train(spec, start, data, **options)
    assert [e.train_loss for e in flat.history[:3]] == [e.train_loss for e in result.history[:3]]
    assert flat.history[3].train_loss != result.history[3].train_loss
