"""How many threads a call's matrix products and PyTorch use: chosen per call from the
work's size and how busy the machine is, so that a run beside other work never collapses.

Why: BLAS and OpenMP pools spin their threads while they wait for each other. On a quiet
2-core machine two threads gain 1.1x to 1.5x on an LSTM at B = 32, H = 256; beside two
busy processes they lose 4x (a forward pass) to 40x (training), because a thread that
does not get its core holds up every product (docs/performance.md, "Threads").

The rule (`choose`, a pure function of its arguments):

1. `threads=` in the Python API or `--threads N` on the command line: that many.
2. Else, if the user set `OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS` or `MKL_NUM_THREADS`:
   nothing is changed; the libraries follow the user's setting (`user_setting`).
3. Else, work below `PARALLEL_AT` (batch rows x the widest vector): one thread; a product
   that small is not worth waking a second one.
4. Else, the cores this process may use (its CPU affinity; under `torchrun`, its share of
   them, `LOCAL_WORLD_SIZE` processes to a machine) less the other work that runs now
   (`busy`), rounded, at least one.

The limits are set with threadpoolctl, which finds the BLAS and OpenMP libraries loaded in
the process and calls their own thread-count functions (a few microseconds a call), and
with `torch.set_num_threads` when PyTorch is loaded.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from composer.errors import ComposerError

__all__ = [
    "ENV_NAMES",
    "PARALLEL_AT",
    "choose",
    "user_setting",
    "core_share",
    "busy_from",
    "machine_busy",
    "usable_cores",
    "for_call",
    "limited",
    "apply",
    "work_of",
]

#: the environment variables by which a user sets the libraries' thread counts themselves
ENV_NAMES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: batch rows x the widest vector from which a second thread pays on a quiet machine
#: (LSTM forward, OpenBLAS, 2 cores: docs/performance.md, "Threads")
PARALLEL_AT = 2048

_started = time.monotonic()  # about when the process started: its imports came first
_controller = None  # threadpoolctl's view of the loaded libraries, made once
_seen = frozenset()  # the modules loaded when it was made


def user_setting(environ: Mapping[str, str]) -> str | None:
    """The first of `ENV_NAMES` the user set (to anything but blank), else None.

    `torchrun` sets `OMP_NUM_THREADS=1` in its processes when the user did not set it
    (`TORCHELASTIC_RUN_ID` tells its processes), so under it that value is its default,
    not the user's, and each process takes its share of the cores instead: `--threads 1`
    keeps one thread."""
    for name in ENV_NAMES:
        value = environ.get(name, "").strip()
        torchrun_default = (
            name == "OMP_NUM_THREADS" and value == "1" and "TORCHELASTIC_RUN_ID" in environ
        )
        if value and not torchrun_default:
            return name
    return None


def core_share(cores: int, environ: Mapping[str, str]) -> int:
    """This process's share of `cores`: all of them, or under `torchrun` (which sets
    `LOCAL_WORLD_SIZE`) an equal part for each of its processes on this machine, at least 1."""
    try:
        local = int(environ.get("LOCAL_WORLD_SIZE", "1"))
    except ValueError:
        local = 1
    return max(1, cores // max(1, local))


def busy_from(load: float, running: int, own_running: int, own_rate: float) -> float:
    """Other processes' work in cores: the larger of what runs now (`running` threads in
    the machine, `own_running` of them ours) and the last minute's load average less our
    own share of it (`own_rate` cores)."""
    return max(0.0, running - own_running, load - own_rate)


def choose(
    work: int,
    cores: int,
    busy: float,
    given: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int | None:
    """The thread count for a call of `work` (batch rows x widest vector) on `cores` cores
    (all this process may use, before a `torchrun` share) with `busy` cores' worth of other
    work, `given` by the user or None; None when the user's environment sets the counts
    (left as they are).

    >>> unset = {}  # no OMP_NUM_THREADS and the like
    >>> choose(32 * 256, cores=2, busy=0.0, environ=unset)
    2
    >>> choose(32 * 256, cores=2, busy=2.0, environ=unset)
    1
    >>> choose(1 * 64, cores=2, busy=0.0, environ=unset)
    1
    >>> choose(32 * 256, cores=2, busy=0.0, environ={"OMP_NUM_THREADS": "2"}) is None
    True
    >>> choose(1 * 64, cores=2, busy=5.0, given=2)
    2
    """
    if given is not None:
        return given
    environ = os.environ if environ is None else environ
    if user_setting(environ):
        return None
    if work < PARALLEL_AT:
        return 1
    free = math.floor(cores - busy + 0.5)  # the other ranks of a torchrun count as busy
    return max(1, min(core_share(cores, environ), free))


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _running_now() -> tuple[int, int]:
    """(threads running in the machine, of them ours), from Linux's /proc; (0, 0) elsewhere."""
    try:
        with open("/proc/loadavg") as file:
            running = int(file.read().split()[3].split("/")[0])
        own = 0
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as file:
                    own += file.read().rpartition(")")[2].split()[0] == "R"
            except OSError:  # the thread ended meanwhile
                pass
        return running, own
    except (OSError, ValueError, IndexError):
        return 0, 0


def machine_busy() -> float:
    """Other processes' work now, in cores (`busy_from` on this machine's figures)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    running, own = _running_now()
    elapsed = time.monotonic() - _started
    # the load average follows a process with a one-minute time constant
    own_rate = time.process_time() / max(elapsed, 1e-3) * (1 - math.exp(-elapsed / 60))
    return busy_from(load, running, own, own_rate)


def for_call(given: int | None, work: int) -> int | None:
    """`choose` for a call of `work` on this machine, now; reads the machine's state only
    when the answer depends on it."""
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise ComposerError(f"threads: expected a whole number >= 1, got {given!r}")
        return given
    if user_setting(os.environ):
        return None
    if work < PARALLEL_AT:
        return 1
    return choose(work, usable_cores(), machine_busy(), environ=os.environ)


def _libraries():
    """threadpoolctl's controller of the loaded BLAS and OpenMP libraries, made again when
    PyTorch or numba were loaded since (they bring their own); None if threadpoolctl is
    missing (a broken install: the counts are then left as they are)."""
    global _controller, _seen
    seen = frozenset(name for name in ("torch", "numba") if name in sys.modules)
    if _controller is None or seen != _seen:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        _controller, _seen = ThreadpoolController(), seen
    return _controller


def _torch_threads(count: int) -> int | None:
    """Set PyTorch's intra-op thread count if PyTorch is loaded; the previous count."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "set_num_threads"):
        return None
    before = torch.get_num_threads()
    if before != count:
        torch.set_num_threads(count)
    return before


def _set(count: int) -> list:
    """Set every loaded library's pool to `count` threads; what each had, to restore.
    Straight through threadpoolctl's per-library controllers: a few microseconds, where
    its `limit` takes about 40 (a B = 1 call takes about a millisecond)."""
    before = []
    libraries = _libraries()
    for library in libraries.lib_controllers if libraries is not None else ():
        had = library.get_num_threads()
        if had != count:
            library.set_num_threads(count)
            before.append((library, had))
    return before


@contextmanager
def limited(given: int | None, work: int) -> Iterator[int | None]:
    """Within the block, the thread count `for_call` chooses (None: left as they are);
    restored after."""
    count = for_call(given, work)
    if count is None:
        yield None
        return
    before = _set(count)
    torch_before = _torch_threads(count)
    try:
        yield count
    finally:
        for library, had in before:
            library.set_num_threads(had)
        if torch_before is not None and torch_before != count:
            sys.modules["torch"].set_num_threads(torch_before)


def apply(given: int | None, work: int, torch: bool = False) -> int | None:
    """Set the chosen count for the rest of the process (a command line's one call),
    loading PyTorch first when it will run (`torch`); the count, or None."""
    count = for_call(given, work)
    if count is not None:
        if torch:
            try:  # its OpenMP pool is then among the libraries
                import torch as _  # noqa: F401
            except ImportError:  # the engine says so itself, in one line, when it starts
                pass
        _set(count)
        _torch_threads(count)
    return count


def work_of(graph, batch: int) -> int:
    """A call's work for `choose`: batch rows x the widest vector of the folded graph."""
    width = max((data.get("size", 0) for _, data in graph.nodes(data=True)), default=0)
    return batch * int(width)
