"""The process group from the environment (issue 25, items 2, 4 and 18): a stray RANK
outside a group, inconsistent variables, a missing peer awaited for a bounded time and
stopped by signals, and a missing GPU refused before any group starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from composer.interop.launch import Group, LaunchError, peer_timeout, process_group
from tests.conftest import NEEDS_TORCH, ROOT

TAGGER = """version: 1
name: tagger
steps: 12
inputs:
  - {name: x, size: 4}
layers:
  - {name: tagger, kind: lstm, input: x, state_size: 16, output: {size: 3}}
outputs:
  - {name: tags, from: tagger}
"""
#: the variables a launcher sets, cleared from every test's environment first
LAUNCH = (
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
    "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT",
    "GROUP_RANK", "RNN_COMPOSER_PEER_TIMEOUT",
)  # fmt: skip


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "tagger.yaml").write_text(TAGGER)
    rng = np.random.default_rng(0)
    x, tags = rng.normal(size=(8, 12, 4)), rng.normal(size=(8, 12, 3))
    np.savez(tmp_path / "d.npz", x=x.astype(np.float32), tags=tags.astype(np.float32))
    return tmp_path


def environment(**variables) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **variables}


def train(folder, *extra, env, **kwargs) -> subprocess.Popen:
    args = ["train", "tagger.yaml", "--data", "d.npz", "--epochs", "1", "-o", "w.npz", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "composer", *args], cwd=folder, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


def finished(child, timeout=180) -> tuple[int, str]:
    try:
        _, stderr = child.communicate(timeout=timeout)
    finally:
        child.kill()
    return child.returncode, stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the environment, read -----------------------------------------------------------------


@pytest.mark.parametrize(
    "env, group",
    [
        ({}, Group(0, 1, 0)),
        ({"RANK": "1"}, Group(0, 1, 0)),  # a stray rank, outside any group
        ({"RANK": "abc", "LOCAL_RANK": "x"}, Group(0, 1, 0)),
        ({"WORLD_SIZE": "1"}, Group(0, 1, 0)),
        ({"WORLD_SIZE": "1", "RANK": "0"}, Group(0, 1, 0)),
        ({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}, Group(3, 4, 1)),
    ],
)
def test_the_group_the_environment_describes(env, group):
    assert process_group(env) == group


@pytest.mark.parametrize(
    "env, message",
    [
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE: expected a whole number >= 1, got 'abc'"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE: expected a whole number >= 1, got '0'"),
        ({"WORLD_SIZE": "-2", "RANK": "0"}, "WORLD_SIZE: expected a whole number >= 1, got '-2'"),
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 but RANK is not set: each process of a group needs "
         "its rank (torchrun sets both)"),
        ({"WORLD_SIZE": "2", "RANK": "abc"}, "RANK: expected a whole number >= 0, got 'abc'"),
        ({"WORLD_SIZE": "2", "RANK": "2"},
         "RANK=2 but WORLD_SIZE=2: a rank is 0 to WORLD_SIZE - 1"),
        ({"WORLD_SIZE": "1", "RANK": "1"},
         "RANK=1 but WORLD_SIZE=1: a rank is 0 to WORLD_SIZE - 1"),
        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "x"},
         "LOCAL_RANK: expected a whole number >= 0, got 'x'"),
        ({"WORLD_SIZE": "1e9999", "RANK": "0"},
         "WORLD_SIZE: expected a whole number >= 1, got '1e9999'"),
    ],
)  # fmt: skip
def test_an_inconsistent_environment_is_one_line_naming_the_variable(env, message):
    with pytest.raises(LaunchError) as caught:
        process_group(env)
    assert str(caught.value) == message and caught.value.exit_code == 2


def test_the_peer_timeout_is_checked():
    assert peer_timeout({}) == 300
    assert peer_timeout({"RNN_COMPOSER_PEER_TIMEOUT": "2.5"}) == 2.5
    for bad in ("0", "-1", "nan", "inf", "abc", "1e9"):
        with pytest.raises(LaunchError, match="RNN_COMPOSER_PEER_TIMEOUT: expected seconds"):
            peer_timeout({"RNN_COMPOSER_PEER_TIMEOUT": bad})


# -- through the command line -------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numpy", pytest.param("torch", marks=NEEDS_TORCH)])
@pytest.mark.parametrize("rank", ["1", "abc"])
def test_a_stray_rank_outside_a_group_still_writes_the_weights(folder, engine, rank):
    code, stderr = finished(train(folder, "--engine", engine, env=environment(RANK=rank)))
    assert code == 0, stderr
    assert "wrote w.npz" in stderr
    assert (folder / "w.npz").exists()


@NEEDS_TORCH
@pytest.mark.parametrize(
    "variables, message",
    [
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE: expected a whole number >= 1, got 'abc'"),
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 but RANK is not set"),
        ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "1"}, "MASTER_ADDR is not set"),
        ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "x"},
         "MASTER_PORT: expected a port number, 1 to 65535, got 'x'"),
    ],
)  # fmt: skip
def test_an_inconsistent_environment_through_train_is_one_line(folder, variables, message):
    code, stderr = finished(train(folder, "--engine", "torch", env=environment(**variables)))
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith(message), stderr
    assert not (folder / "w.npz").exists()


@NEEDS_TORCH
@pytest.mark.parametrize("rank", ["0", "1"])
def test_a_missing_peer_is_awaited_for_the_timeout_then_one_line(folder, rank):
    env = environment(WORLD_SIZE="2", RANK=rank, MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(free_port()), RNN_COMPOSER_PEER_TIMEOUT="2")  # fmt: skip
    start = time.monotonic()
    code, stderr = finished(train(folder, "--engine", "torch", env=env))
    assert code == 5, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("process group: "), stderr
    assert "within 2 s" in stderr and "RNN_COMPOSER_PEER_TIMEOUT" in stderr
    assert time.monotonic() - start < 60
    assert not (folder / "w.npz").exists()


@NEEDS_TORCH
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("rank", ["0", "1"])
def test_the_wait_for_peers_stops_on_signals(folder, rank, signum):
    env = environment(WORLD_SIZE="2", RANK=rank, MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(free_port()))  # the default timeout: 300 s  # fmt: skip
    child = train(folder, "--engine", "torch", env=env, start_new_session=True)
    time.sleep(8)  # torch imported, the data read: waiting for the peer
    assert child.poll() is None
    sent = time.monotonic()
    child.send_signal(signum)
    code, stderr = finished(child, timeout=30)
    assert code == (130 if signum == signal.SIGINT else 128 + signum), stderr
    assert time.monotonic() - sent < 10
    assert "Traceback" not in stderr and "frame #" not in stderr
    assert not (folder / "w.npz").exists()


@NEEDS_TORCH
def test_two_processes_meet_without_torchrun(folder):
    port = str(free_port())
    common = dict(WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    first = train(folder, "--engine", "torch", env=environment(RANK="0", **common))
    time.sleep(1)
    second = train(folder, "--engine", "torch", "-o", "w1.npz", env=environment(RANK="1", **common))
    assert finished(second)[0] == 0
    code, stderr = finished(first)
    assert code == 0, stderr
    assert (folder / "w.npz").exists() and not (folder / "w1.npz").exists()


@NEEDS_TORCH
def test_a_missing_gpu_is_refused_before_any_group_starts(folder):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = environment(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(free_port()))  # no peer: a group would wait  # fmt: skip
    start = time.monotonic()
    code, stderr = finished(train(folder, "--engine", "torch", "--device", "cuda", env=env))
    assert code == 4, stderr
    assert stderr == "--device cuda: no CUDA GPU is available to PyTorch here\n"
    assert time.monotonic() - start < 60  # not the 300 s wait for the peer


@NEEDS_TORCH
def test_a_missing_gpu_is_said_once_by_rank_0(folder):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = environment(WORLD_SIZE="2", RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="1")
    code, stderr = finished(train(folder, "--engine", "torch", "--device", "cuda", env=env))
    assert (code, stderr) == (4, "")


@NEEDS_TORCH
def test_a_port_in_use_is_one_line(folder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = environment(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        code, stderr = finished(train(folder, "--engine", "torch", env=env))
    assert code == 5, stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"MASTER_ADDR:MASTER_PORT 127.0.0.1:{port}: cannot serve the process")
