"""Fuzzing the environment of a process group (issue 25): RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT, torchrun's markers and RNN_COMPOSER_PEER_TIMEOUT, with values of every
shape (numbers out of range, signs, words, spaces, other scripts' digits, exponents).

Every environment is either a consistent group, where a stray variable outside a group
never silences the one process, or one line naming a variable (exit code 2). Through
`train` (NumPy engine), the first process writes the weights and the others do not.
`make test` runs a few hundred examples, `make fuzz` FUZZ_EXAMPLES.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from composer.cli import app
from composer.interop.launch import LaunchError, peer_timeout, process_group
from tests.cli.test_launch import LAUNCH, TAGGER

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
HEAVY = int(os.environ.get("FUZZ_EXAMPLES", "6"))
VALUES = st.sampled_from(
    [
        "0",
        "1",
        "2",
        "3",
        "7",
        "-1",
        "+1",
        " 1",
        "1 ",
        "01",
        "1.0",
        "1e3",
        "abc",
        "",
        "0x1",
        "\u0661",
        "\uff11",
        "99999999999",
        "2\n",
        "nan",
        "inf",
        "65536",
        "29555",
        "127.0.0.1",
    ]
) | st.text(  # what an environment can hold: no NUL, no lone surrogate
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=4
)
VARIABLES = [
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
    "TORCHELASTIC_RUN_ID", "GROUP_RANK", "RNN_COMPOSER_PEER_TIMEOUT",
]  # fmt: skip
ENVIRONMENTS = st.dictionaries(st.sampled_from(VARIABLES), VALUES, max_size=6)


def named_variable(message: str, env: dict) -> bool:
    return any(message.startswith(name) for name in env) or message.startswith("WORLD_SIZE=")


@settings(max_examples=max(300, EXAMPLES), deadline=None)
@given(env=ENVIRONMENTS)
def test_every_environment_is_a_group_or_one_line(env):
    try:
        group = process_group(env)
    except LaunchError as err:
        message = str(err)
        assert err.exit_code == 2 and "\n" not in message.replace(repr("\n")[1:-1], "")
        assert named_variable(message, env), message
        assert "WORLD_SIZE" in env  # outside a group nothing is refused
        return
    assert 0 <= group.rank < group.world and group.local_rank >= 0
    if "WORLD_SIZE" not in env:  # a stray RANK never silences the one process
        assert group.main and group.world == 1
    else:
        assert group.rank == int(env.get("RANK", "0"))
    try:
        seconds = peer_timeout(env)
    except LaunchError as err:
        assert str(err).startswith("RNN_COMPOSER_PEER_TIMEOUT: ")
    else:
        assert 0 < seconds <= 7 * 86400


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    where = tmp_path_factory.mktemp("env")
    (where / "tagger.yaml").write_text(TAGGER)
    rng = np.random.default_rng(0)
    x, tags = rng.normal(size=(4, 12, 4)), rng.normal(size=(4, 12, 3))
    np.savez(where / "d.npz", x=x.astype(np.float32), tags=tags.astype(np.float32))
    return where


@settings(
    max_examples=max(6, HEAVY // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(env=ENVIRONMENTS)
def test_train_writes_once_or_refuses_in_one_line(folder, env):
    out = folder / "w.npz"
    out.unlink(missing_ok=True)
    clean = {name: None for name in LAUNCH}  # CliRunner unsets these, then sets env's
    args = ["train", str(folder / "tagger.yaml"), "--data", str(folder / "d.npz"),
            "--epochs", "1", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args, env={**clean, **env})
    assert "Traceback" not in result.output
    try:
        main = process_group(env).main
    except LaunchError as err:
        assert result.exit_code == 2 and result.stderr.strip() == str(err).replace("\n", "\\n")
        assert not out.exists()
        return
    assert result.exit_code == 0, result.output
    assert out.exists() == main
