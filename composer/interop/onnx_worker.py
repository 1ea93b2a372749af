"""ONNX Runtime in a child process, so that every run stops on a signal.

A session's `run` is native code that never returns to Python until it ends: a `Loop`
with no trip count, or one long LSTM kernel, would hold SIGINT and SIGTERM for as long
as it runs. `run_session` hands the model and its inputs to a fresh interpreter running
this file (`python -P`, so nothing is imported from the current folder or from this
package's folder) and waits on its pipe; a signal then interrupts the wait, the child is
killed, and the signal goes on as everywhere else (exit code 130 or 128 + its number,
nothing written).

The pipe carries a JSON header line, then raw array bytes: no pickle either way. The
child sends back numeric tensors only; any other value (a sequence, a map, strings) is
described in the header instead, for the caller to refuse.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np

__all__ = ["WorkerError", "run_session"]

#: the child's flags: no script folder (this package's `onnx.py` and `torch.py` would hide
#: the libraries) and no current folder on its path; before 3.11, isolated mode does it
SAFE_PATH = ("-P",) if sys.version_info >= (3, 11) else ("-I",)
#: ONNX Runtime's log level for the child's sessions: fatal only (its errors come back as
#: exceptions, reported in one line; its warnings are not ours to show)
QUIET = 4


class WorkerError(Exception):
    """What the child reported instead of outputs: `stage` is `load`, `run` or `crash`."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def run_session(model: bytes, feeds: dict[str, np.ndarray]) -> dict[str, object]:
    """The model's outputs by name, computed in a child process: numeric arrays, or a
    string that says what else came (`a sequence`, `a tensor of strings`, ...)."""
    with tempfile.TemporaryDirectory(prefix="rnn-composer-onnx-") as empty:
        child = subprocess.Popen(
            [sys.executable, *SAFE_PATH, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=empty,  # nothing a relative path could name (external data is refused before)
        )
        return _talk(child, model, feeds)


def _talk(child: subprocess.Popen, model: bytes, feeds: dict[str, np.ndarray]) -> dict:
    try:
        try:
            _send(child.stdin, {"model": len(model)}, [memoryview(model)], feeds)
            child.stdin.close()
        except BrokenPipeError:  # it died reading: what it says, or how it ended, below
            pass
        header, arrays = _receive(child.stdout)
        child.wait()
    except (EOFError, ValueError):
        child.kill()
        code = child.wait()
        how = f"exit code {code}"
        if -code in signal.valid_signals():
            how = f"signal {signal.Signals(-code).name}"
        raise WorkerError("crash", f"ended with {how}") from None
    finally:
        if child.returncode is None:  # a signal or an error here: stop it now
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout):
            try:
                stream.close()
            except OSError:  # pragma: no cover - a pipe already broken
                pass
    if "error" in header:
        raise WorkerError(header["error"], header["message"])
    return {**header["other"], **arrays}


def _send(stream, header: dict, blobs: list, arrays: dict[str, np.ndarray]) -> None:
    """A header line, then the blobs' bytes, then each array's bytes."""
    arrays = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    header = {
        **header,
        "arrays": [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()],
    }
    stream.write(json.dumps(header).encode() + b"\n")
    for blob in [*blobs, *(memoryview(a).cast("B") for a in arrays.values() if a.size)]:
        stream.write(blob)
    stream.flush()


def _receive(stream) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays `_send` wrote (EOFError when the stream ends early)."""
    line = stream.readline()
    if not line.endswith(b"\n"):
        raise EOFError
    header = json.loads(line)
    arrays = {}
    for name, dtype, shape in header["arrays"]:
        array = np.empty(shape, dtype=np.dtype(dtype))
        if array.size:
            _read_into(stream, memoryview(array).cast("B"))
        arrays[name] = array
    return header, arrays


def _read_into(stream, view: memoryview) -> None:
    done = 0
    while done < len(view):
        got = stream.readinto(view[done:])
        if not got:
            raise EOFError
        done += got


def _describe(value) -> str | None:
    """None for a numeric tensor; else what the value is, for a message."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            return None
        return "a tensor of strings" if value.dtype.kind in "OUS" else f"a {value.dtype} tensor"
    if isinstance(value, list):
        return "a sequence"
    if isinstance(value, dict):
        return "a map"
    return f"a {type(value).__name__}"


def _child() -> None:  # pragma: no cover - runs in the child process (tested through it)
    """Read a model and inputs from stdin, run them, write the outputs to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; it reports
    _die_with_parent()
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    header = json.loads(source.readline())
    model = source.read(header["model"])
    arrays = {}
    for name, dtype, shape in header["arrays"]:
        array = np.empty(shape, dtype=np.dtype(dtype))
        if array.size:
            _read_into(source, memoryview(array).cast("B"))
        arrays[name] = array
    import onnxruntime as ort

    ort.set_default_logger_severity(QUIET)
    options = ort.SessionOptions()
    options.log_severity_level = QUIET
    stage = "load"
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        del model
        stage = "run"
        run_options = ort.RunOptions()
        run_options.log_severity_level = QUIET
        names = [spec.name for spec in session.get_outputs()]
        values = session.run(None, arrays, run_options)
    except Exception as err:  # noqa: BLE001 - ONNX Runtime's error types vary by version
        lines = str(err).strip().splitlines()
        reply = {"error": stage, "message": lines[0] if lines else type(err).__name__}
        _send(sink, {**reply}, [], {})
        return
    other = {name: _describe(value) for name, value in zip(names, values)}
    tensors = {name: value for name, value in zip(names, values) if other[name] is None}
    _send(sink, {"other": {k: v for k, v in other.items() if v is not None}}, [], tensors)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child process
    """On Linux, be killed when the parent dies, whatever kills it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl
        os._exit(1)


if __name__ == "__main__":
    _child()
