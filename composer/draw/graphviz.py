"""Graphviz's `dot` program: diagrams written as DOT, SVG, PNG or PDF files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from composer.arrays import atomic_write
from composer.draw.folded_picture import folded_dot
from composer.draw.unfolded_picture import unfolded_dot
from composer.errors import ComposerError, RenderError, WriteError
from composer.graph.unrolled import Unrolled
from composer.output_files import output_problem, shown

__all__ = ["FORMATS", "write_diagram", "write_diagrams", "render_options", "dot_svg", "svg"]

#: the formats `write_diagram` writes; `dot` is the DOT text itself.
FORMATS = ("dot", "svg", "png", "pdf")


INSTALL_HINT = (
    "install Graphviz, which provides it (Debian/Ubuntu: `apt-get install graphviz`; "
    "macOS: `brew install graphviz`)"
)


DEFAULT_DPI = 150  # Graphviz's own 72 gives PNGs too small to read on a screen


def render_options(fmt: str, dpi: int | None = None, size: str | None = None) -> tuple[str, ...]:
    """`dot` arguments for `--dpi` (PNG only; default 150) and `--size W,H` (inches).

    Examples
    --------
    >>> render_options("png"), render_options("svg", size="8,6")
    (('-Gdpi=150',), ('-Gsize=8,6',))
    """
    options = []
    if dpi is not None and fmt != "png":
        raise ComposerError(f"--dpi sets a PNG's resolution; the format is {fmt}")
    if fmt == "png":
        options.append(f"-Gdpi={dpi or DEFAULT_DPI}")
    if size is not None:
        parts = size.replace("x", ",").split(",")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2) or not all(0 < n <= 1000 for n in numbers):
            raise ComposerError(
                f"expected a size in inches as W,H (such as 8,6) or W, got {size!r}"
            )
        options.append("-Gsize=" + ",".join(f"{n:g}" for n in numbers))
    return tuple(options)


def write_diagrams(
    texts: dict[str, str],
    paths: dict[str, Path],
    fmt: str,
    *,
    overwrite: bool = True,
    keep: Iterable[Path] = (),
    options: tuple[str, ...] = (),
) -> list[Path]:
    """Write several diagrams (`write_diagram` each). When `dot` is missing, every
    picture's DOT source is written beside its path first, then one RenderError says so."""
    if fmt != "dot" and shutil.which("dot") is None:
        written, problems = [], []
        for name, path in paths.items():
            beside = Path(path).with_suffix(".dot")
            problem = output_problem(beside, overwrite, [p for p in keep if p != path])
            if problem is None:
                written.append(shown(_write(beside, texts[name].encode(), overwrite)))
            else:
                problems.append(problem)
        said = f"Graphviz's `dot` program was not found; {INSTALL_HINT}"
        if written:
            said += "; the DOT source" + (" is in " if len(written) == 1 else "s are in ")
            said += ", ".join(written)
        if problems:
            said += "; the DOT source was not written: " + "; ".join(problems)
        raise RenderError(said)
    return [
        write_diagram(texts[name], path, fmt, overwrite=overwrite, keep=keep, options=options)
        for name, path in paths.items()
    ]


def write_diagram(
    dot_text: str,
    path: Path,
    fmt: str,
    *,
    timeout: float = 30,
    overwrite: bool = True,
    keep: Iterable[Path] = (),
    options: tuple[str, ...] = (),
) -> Path:
    """Write a diagram: the DOT text itself (`fmt="dot"`), or `dot -T<fmt>`'s drawing.

    The file is written atomically; with `overwrite=False`, never over an existing file.
    When `dot` is missing, fails or times out, the DOT text is written beside `path`
    (same name, suffix `.dot`), checked as any output is (never over a file in `keep`,
    nor over an existing file without `overwrite`), and a RenderError says why.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if fmt == "dot":
        return _write(path, dot_text.encode(), overwrite)
    try:
        image = _run_dot(dot_text, fmt, timeout=timeout, options=options)
    except RenderError as err:
        beside = path.with_suffix(".dot")
        problem = output_problem(beside, overwrite, [p for p in keep if p != path])
        if problem is not None:
            raise RenderError(f"{err}; the DOT source was not written: {problem}") from err
        _write(beside, dot_text.encode(), overwrite)
        raise RenderError(f"{err}; the DOT source is in {shown(beside)}") from err
    return _write(path, _fixed_dates(image) if fmt == "pdf" else image, overwrite)


_PDF_DATE = re.compile(rb"/(CreationDate|ModDate) \(D:(\d{14})")


def _fixed_dates(pdf: bytes) -> bytes:
    """A PDF with its dates set to SOURCE_DATE_EPOCH (default 0): the same drawing gives
    the same bytes. The replacement has the same length, so the offsets still hold."""
    given = os.environ.get("SOURCE_DATE_EPOCH", "")
    epoch = int(given) if given.isdigit() and len(given) < 12 else 0
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch)).encode()
    return _PDF_DATE.sub(lambda m: b"/" + m.group(1) + b" (D:" + stamp, pdf)


def _write(path: Path, data: bytes, overwrite: bool = True) -> Path:
    try:
        atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)
    except WriteError as err:
        raise RenderError(str(err)) from err
    return path


def _run_dot(dot_text: str, fmt: str, *, timeout: float, options: tuple[str, ...] = ()) -> bytes:
    """The output of `dot -T<fmt>` on the text; RenderError when it cannot be had."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(f"Graphviz's `dot` program was not found; {INSTALL_HINT}")
    try:
        done = subprocess.run(
            [program, *options, f"-T{fmt}"],
            input=dot_text.encode(),
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        raise RenderError(f"`dot -T{fmt}` timed out after {timeout:g} s") from err
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        cause = lines[0] if lines else f"exit status {done.returncode}"
        raise RenderError(f"`dot -T{fmt}` failed: {cause}")
    return done.stdout


def dot_svg(dot_text: str, timeout: float = 30) -> str:
    """`dot -Tsvg` of DOT text, as text; RenderError when it cannot be had."""
    return _run_dot(dot_text, "svg", timeout=timeout).decode()


def svg(graph: nx.MultiDiGraph | Unrolled) -> str:
    """The diagram as SVG text: folded for a graph, unfolded for an `Unrolled` value.

    A notebook shows an object holding a network as its diagram with
    `_repr_svg_ = lambda self: svg(self.graph)`.
    """
    text = unfolded_dot(graph) if isinstance(graph, Unrolled) else folded_dot(graph)
    return _run_dot(text, "svg", timeout=30).decode()
