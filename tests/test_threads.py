"""The thread policy (`composer.threads`): its decisions as a pure function of the work's
size, the cores, the machine's load and the environment, and the overrides. Nothing timed."""

from __future__ import annotations

import numpy as np
import pytest

from composer import threads
from composer.errors import ComposerError
from composer.network import Network
from composer.threads import PARALLEL_AT, busy_from, choose, core_share, user_setting

BIG, SMALL = 32 * 256, 1 * 64
QUIET: dict = {}


@pytest.mark.parametrize(
    "work, cores, busy, expected",
    [
        (BIG, 2, 0.0, 2),  # quiet, large products: every core
        (BIG, 2, 0.4, 2),  # a little background noise does not cost a core
        (BIG, 2, 0.6, 1),  # most of a core taken: one thread
        (BIG, 2, 2.0, 1),  # two busy processes beside it
        (BIG, 2, 40.0, 1),  # never fewer than one
        (BIG, 8, 3.0, 5),  # the free cores
        (SMALL, 2, 0.0, 1),  # a B = 1 product is not worth a second thread
        (PARALLEL_AT - 1, 16, 0.0, 1),
        (PARALLEL_AT, 16, 0.0, 16),
    ],
)
def test_choice_follows_work_cores_and_load(work, cores, busy, expected):
    assert choose(work, cores, busy, environ=QUIET) == expected


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"])
def test_the_users_environment_is_left_alone(name):
    environ = {name: "3"}
    assert user_setting(environ) == name
    for work, busy in [(BIG, 0.0), (BIG, 5.0), (SMALL, 0.0)]:
        assert choose(work, 2, busy, environ=environ) is None
    assert choose(BIG, 2, 5.0, given=2, environ=environ) == 2  # an explicit count wins


def test_a_blank_variable_is_not_a_setting():
    assert user_setting({"OMP_NUM_THREADS": " "}) is None
    assert choose(BIG, 2, 0.0, environ={"OMP_NUM_THREADS": ""}) == 2


@pytest.mark.parametrize("given", [1, 2, 7])
def test_a_given_count_overrides_the_choice(given):
    for work, busy in [(BIG, 0.0), (BIG, 9.0), (SMALL, 0.0)]:
        assert choose(work, 2, busy, given=given, environ=QUIET) == given


def test_under_torchrun_each_process_takes_its_share():
    ranks = {"LOCAL_WORLD_SIZE": "4"}
    assert core_share(8, ranks) == 2 and core_share(2, ranks) == 1
    assert core_share(8, {}) == 8 and core_share(8, {"LOCAL_WORLD_SIZE": "x"}) == 8
    assert choose(BIG, 8, 0.0, environ=ranks) == 2
    # the other ranks' threads show as load: 3 ranks x 2 threads on 8 cores leave 2
    assert choose(BIG, 8, 6.0, environ=ranks) == 2
    assert choose(BIG, 8, 7.0, environ=ranks) == 1


def test_torchruns_own_omp_default_is_not_taken_for_the_users():
    """torchrun sets OMP_NUM_THREADS=1 where the user did not: each process then takes its
    share of the cores; any other value, or one of the other variables, is the user's."""
    ranks = {"LOCAL_WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none", "OMP_NUM_THREADS": "1"}
    assert user_setting(ranks) is None
    assert choose(BIG, 8, 0.0, environ=ranks) == 4
    assert choose(BIG, 8, 0.0, environ={**ranks, "OMP_NUM_THREADS": "3"}) is None
    assert choose(BIG, 8, 0.0, environ={**ranks, "OPENBLAS_NUM_THREADS": "1"}) is None
    assert user_setting({"OMP_NUM_THREADS": "1"}) == "OMP_NUM_THREADS"  # not under torchrun


def test_busy_is_the_larger_of_now_and_the_last_minute_less_our_own():
    assert busy_from(load=0.2, running=3, own_running=1, own_rate=0.0) == 2
    assert busy_from(load=2.5, running=1, own_running=1, own_rate=0.5) == 2.0
    assert busy_from(load=0.5, running=1, own_running=1, own_rate=1.0) == 0.0


def test_the_machines_figures_are_read(monkeypatch):
    for name in threads.ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    assert threads.usable_cores() >= 1 and threads.machine_busy() >= 0.0
    monkeypatch.setattr(threads, "machine_busy", lambda: 9.0)
    assert threads.for_call(None, BIG) == 1
    monkeypatch.setattr(threads, "machine_busy", lambda: 0.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert threads.for_call(None, BIG) == 2
    assert threads.for_call(None, SMALL) == 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert threads.for_call(None, BIG) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_count_that_is_not_a_whole_positive_number_is_refused(bad):
    with pytest.raises(ComposerError, match="threads: expected a whole number >= 1"):
        threads.for_call(bad, BIG)


def test_limits_hold_within_the_call_and_are_restored_after():
    from threadpoolctl import threadpool_info

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    with threads.limited(2, BIG) as count:
        assert count == 2 and set(blas()) == {2}
    with threads.limited(1, BIG) as count:
        assert count == 1 and set(blas()) == {1}
    assert blas() == before


class Recorder:
    """A stand-in for threadpoolctl's controller, with one library: the counts set."""

    def __init__(self):
        self.threads, self.asked = 8, []
        self.lib_controllers = [self]

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, count):
        self.asked.append(count)
        self.threads = count


def test_network_calls_take_threads(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(threads, "_libraries", lambda: recorder)
    net = Network.from_file("specs/lecture-elman.yaml")
    params = net.init_params(0)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    expected = net.run(params, x, threads=1)
    np.testing.assert_array_equal(net.run(params, x, threads=3)["y"], expected["y"])
    y = np.zeros((5, 3), np.float32)
    net.grad(params, x, {"y": y}, threads=2)
    net.train(params, {"x": x[None].repeat(4, 0), "y": y[None].repeat(4, 0)}, epochs=1, threads=4)
    assert recorder.asked == [1, 8, 3, 8, 2, 8, 4, 8]  # each call's count, then restored
    with pytest.raises(ComposerError, match="got 0"):
        net.run(params, x, threads=0)


def test_apply_sets_the_count_for_the_process(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(threads, "_libraries", lambda: recorder)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.apply(None, BIG) is None and recorder.asked == []
    assert threads.apply(3, BIG) == 3 and recorder.asked == [3]


def test_work_is_batch_rows_times_the_widest_vector():
    net = Network.from_file("specs/lecture-elman.yaml")  # x 4, s 8, y 3
    assert threads.work_of(net.graph, 5) == 5 * 8


def test_network_calls_size_their_work_by_batch(monkeypatch):
    """The work a call reports is batch rows x the widest vector: (B, T, F) arrays and
    (B, T) token ids count B rows, one sequence counts one."""
    import contextlib

    import composer.network as network

    seen = []

    @contextlib.contextmanager
    def recording(given, work):
        seen.append(work)
        yield None

    monkeypatch.setattr(network, "limited", recording)
    net = Network.from_file("specs/lecture-elman.yaml")  # widest vector: s, 8
    params = net.init_params(0)
    x = np.zeros((6, 5, 4), np.float32)
    net.run(params, x)
    net.run(params, {"x": x[0]})
    tokens = Network.from_spec(
        {
            "inputs": [{"name": "w", "vocab": 5}],
            "layers": [{"name": "r", "kind": "gru", "input": "w", "state_size": 3}],
            "outputs": [{"name": "o", "from": "r"}],
        }
    )
    tokens.run(tokens.init_params(0), {"w": np.zeros((7, 4), np.int64)})
    assert seen == [6 * 8, 1 * 8, 7 * 5]
