"""The process group a command runs in, from the environment `torchrun` sets.

A command is one process of a group only when `WORLD_SIZE` says so: without it, `RANK`,
`LOCAL_RANK` and the rest are strays from another tool's set-up and mean nothing here (a
stray `RANK=1` must not stop the one process from writing its results). With it, the
variables must agree: `WORLD_SIZE` a whole number >= 1, `RANK` set (when more than one
process) and below it, `LOCAL_RANK` a whole number. Anything else is one line naming the
variable (`LaunchError`, a usage error: exit code 2).

`RNN_COMPOSER_PEER_TIMEOUT` (seconds, default 300) bounds how long a process waits for
the rest of its group (`composer.interop.torch_group`).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from composer.errors import ComposerError

__all__ = ["Group", "LaunchError", "PEER_TIMEOUT", "process_group", "peer_timeout"]

#: how long a process of a group waits for the others, by default (seconds)
PEER_TIMEOUT = 300.0
#: the variable that changes it
PEER_TIMEOUT_VARIABLE = "RNN_COMPOSER_PEER_TIMEOUT"


class LaunchError(ComposerError):
    """An environment that describes no consistent process group (a usage error)."""

    exit_code = 2


class Group(NamedTuple):
    """This process's place: its rank among `world` processes, and its local rank."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this process reports and writes files: rank 0, or the only one."""
        return self.rank == 0


def process_group(environ=None) -> Group:
    """This process's group, checked; one process when `WORLD_SIZE` is not set."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return Group()
    world = _whole(env, "WORLD_SIZE", 1)
    if "RANK" not in env:
        if world > 1:
            raise LaunchError(
                f"WORLD_SIZE={world} but RANK is not set: each process of a group needs its "
                "rank (torchrun sets both)"
            )
        return Group(0, 1, 0)
    rank = _whole(env, "RANK", 0)
    if rank >= world:
        raise LaunchError(f"RANK={rank} but WORLD_SIZE={world}: a rank is 0 to WORLD_SIZE - 1")
    local = _whole(env, "LOCAL_RANK", 0) if "LOCAL_RANK" in env else 0
    return Group(rank, world, local)


def _whole(env, name: str, least: int) -> int:
    text = env[name]
    if not (text.isascii() and text.strip().isdigit()) or len(text.strip()) > 9:
        raise LaunchError(f"{name}: expected a whole number >= {least}, got {text!r}")
    value = int(text)
    if value < least:
        raise LaunchError(f"{name}: expected a whole number >= {least}, got {text!r}")
    return value


def peer_timeout(environ=None) -> float:
    """Seconds a process waits for the rest of its group (RNN_COMPOSER_PEER_TIMEOUT)."""
    env = os.environ if environ is None else environ
    text = env.get(PEER_TIMEOUT_VARIABLE)
    if text is None:
        return PEER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value <= 86400 * 7):
        raise LaunchError(
            f"{PEER_TIMEOUT_VARIABLE}: expected seconds, more than 0 and at most a week "
            f"(604800), got {text!r}"
        )
    return value
