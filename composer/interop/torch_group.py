"""Joining a `torchrun` process group: a bounded wait for the peers that a signal stops.

`torch.distributed.init_process_group` waits for the missing peers inside native code for
30 minutes, deaf to SIGINT and SIGTERM. Here the wait is ours: rank 0 serves the store
without waiting (or, under `torchrun`, every rank joins the agent's store), the others
wait in short tries until something listens there, and each process counts itself in
and polls the count, so a signal stops the wait between polls. After
`RNN_COMPOSER_PEER_TIMEOUT` seconds (default 300; `composer.interop.launch`) the wait
ends in one line (`PeersMissing`, exit code 5). The group then starts on that store,
every peer there, with the same timeout for its collectives.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

from composer.errors import ComposerError, ResourceError
from composer.interop import need
from composer.interop.launch import Group, LaunchError, peer_timeout

torch = need("torch")

__all__ = ["PeersMissing", "join_group"]

#: the key each process adds itself to, once per torchrun attempt
JOINED = "rnn-composer/joined"
#: how long one connection try to the store may block (seconds)
TRY = 1.0
#: how often the count of joined processes is polled (seconds)
POLL = 0.05


class PeersMissing(ComposerError):
    """The rest of the group did not come within the timeout (a resource: exit code 5)."""

    exit_code = 5


def join_group(backend: str, group: Group) -> None:
    """Start the default process group, waiting at most the peer timeout for the peers."""
    timeout = peer_timeout()
    deadline = time.monotonic() + timeout
    host, port = _master()
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = _store(host, port, group, serve=group.rank == 0 and not agent, deadline=deadline)
    key = f"{JOINED}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    store.add(key, 1)
    while (joined := store.add(key, 0)) < group.world:
        if time.monotonic() > deadline:
            raise PeersMissing(_missing(group, joined, timeout))
        time.sleep(POLL)
    store.set_timeout(timedelta(seconds=timeout))
    torch.distributed.init_process_group(
        backend,
        store=store,
        rank=group.rank,
        world_size=group.world,
        timeout=timedelta(seconds=timeout),
    )


def _missing(group: Group, joined: int, timeout: float) -> str:
    return (
        f"process group: {joined} of WORLD_SIZE={group.world} processes joined within "
        f"{timeout:g} s; start the others (torchrun starts them all) or raise "
        "RNN_COMPOSER_PEER_TIMEOUT"
    )


def _master() -> tuple[str, int]:
    host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    for name, value in (("MASTER_ADDR", host), ("MASTER_PORT", port)):
        if not value:
            raise LaunchError(
                f"{name} is not set: a process group meets at MASTER_ADDR:MASTER_PORT "
                "(torchrun sets both)"
            )
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise LaunchError(f"MASTER_PORT: expected a port number, 1 to 65535, got {port!r}")
    return host, int(port)


def _store(host: str, port: int, group: Group, serve: bool, deadline: float):
    """The group's store: served here (rank 0 outside torchrun), else connected to, in
    short tries until the deadline."""
    store_type = torch.distributed.TCPStore
    if serve:
        try:
            return store_type(
                host, port, group.world, True, timedelta(seconds=TRY),
                wait_for_workers=False, multi_tenant=True,
            )  # fmt: skip
        except (RuntimeError, ValueError) as err:  # a port in use, an address not ours
            raise ResourceError(
                f"MASTER_ADDR:MASTER_PORT {host}:{port}: cannot serve the process group "
                f"there ({_first_line(err)})"
            ) from None
    while not _listening(host, port):  # a plain socket first: a failed store try logs
        if time.monotonic() > deadline:
            raise PeersMissing(
                f"process group: no store at MASTER_ADDR:MASTER_PORT {host}:{port} within "
                f"{peer_timeout():g} s; start rank 0 there or raise RNN_COMPOSER_PEER_TIMEOUT"
            )
        time.sleep(POLL)
    remaining = max(deadline - time.monotonic(), TRY)
    try:
        return store_type(host, port, group.world, False, timedelta(seconds=remaining))
    except (RuntimeError, ValueError) as err:
        raise PeersMissing(
            f"process group: cannot join the store at MASTER_ADDR:MASTER_PORT {host}:{port} "
            f"({_first_line(err)})"
        ) from None


def _listening(host: str, port: int) -> bool:
    """Whether something accepts connections at host:port (within one try)."""
    try:
        with socket.create_connection((host, port), timeout=TRY):
            return True
    except OSError:
        return False


def _first_line(err: Exception) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
