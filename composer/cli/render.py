"""The `render` command: the folded and unfolded pictures, the html page, traces and
gradients drawn."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from composer.api.pictures import diagrams
from composer.cli.common import (
    MaxMemory,
    SpecPath,
    Steps,
    read_checked,
    reports_errors,
    unrolled_from,
)
from composer.cli.files import Read, declared_inputs, file_arguments
from composer.cli.outputs import check_outputs
from composer.cli.pictures import (
    page_values,
    write_gradient_view,
    write_page,
    write_trace_view,
)
from composer.cli.root import app
from composer.draw.graphviz import FORMATS, render_options, write_diagrams
from composer.draw.highlight import parse_highlight
from composer.draw.style import Style, parse_weight_names
from composer.engine.inputs import input_bytes
from composer.engine.memory import (
    check_memory,
    drawing_bytes,
)
from composer.errors import ComposerError
from composer.output_files import shown

__all__ = ["render"]


class View(str, Enum):
    folded = "folded"
    unfolded = "unfolded"
    both = "both"
    trace = "trace"


class Loss(str, Enum):
    mse = "mse"
    cross_entropy = "cross-entropy"


class Format(str, Enum):
    svg = "svg"
    png = "png"
    pdf = "pdf"
    dot = "dot"
    html = "html"


class Labels(str, Enum):
    none = "none"
    weights = "weights"
    full = "full"


class Readout(str, Enum):
    merged = "merged"
    both = "both"


class Taps(str, Enum):
    folded = "folded"
    apart = "apart"


@app.command()
@reports_errors
@file_arguments(
    inputs={
        "spec": Read.spec,
        "weights": Read.arrays,
        "input": Read.arrays,
        "trace_file": Read.arrays,
        "data": Read.arrays,
    },
    outputs=("output",),
)
def render(
    spec: SpecPath,
    steps: Steps = None,
    view: Annotated[View, typer.Option(help="Which picture to draw.")] = View.both,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="The file format (default: the output's suffix, else svg).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The file to write (default: SPEC.VIEW.FORMAT "
            "here); with --view both, `.folded` and `.unfolded` go before the suffix.",
        ),
    ] = None,
    highlight: Annotated[
        str | None,
        typer.Option(
            help="Shade what one output step depends on, such as `o[7]` (folded: the "
            "vectors and weights it uses)."
        ),
    ] = None,
    max_columns: Annotated[
        int, typer.Option(min=3, help="Unfolded: above this many steps, elide the middle.")
    ] = 12,
    dpi: Annotated[
        int | None, typer.Option(min=10, max=1200, help="PNG resolution (default 150).")
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            metavar="W,H", help="Largest drawing size in inches, such as `8,6` (scaled down)."
        ),
    ] = None,
    legend: Annotated[
        bool, typer.Option("--legend", help="Add a key of node shapes and edge styles.")
    ] = False,
    labels: Annotated[
        Labels, typer.Option(help="Edge labels: none, the weights' names, or with shapes.")
    ] = Labels.weights,
    weight_names: Annotated[
        str | None,
        typer.Option(
            metavar="U,W,V|KEY=NAME,...",
            help="Draw weights under other names: `U,W,V` for Wx, Ws, Wy (the lecture's "
            "letters), or pairs such as `Wx=U,rnn.Ws=W`.",
        ),
    ] = None,
    readout: Annotated[
        Readout,
        typer.Option(
            help="`merged`: an output that emits its readout unchanged is one node; "
            "`both`: the readout and the output apart."
        ),
    ] = Readout.merged,
    taps: Annotated[
        Taps,
        typer.Option(
            help="Folded: `folded` draws a tapped delay line as one edge per pair, named "
            "with its delays; `apart`, one edge per tap."
        ),
    ] = Taps.folded,
    cell_state: Annotated[
        bool,
        typer.Option(
            "--cell-state",
            help="Unfolded: draw each (one-way) LSTM's cell state c as a track above h.",
        ),
    ] = False,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            "-w",
            exists=True,
            dir_okay=False,
            help="html: weights for the values shown (default: seeded initial weights).",
        ),
    ] = None,
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            exists=True,
            dir_okay=False,
            help="html: show each vector's values at each step, run on this input.",
        ),
    ] = None,
    trace_file: Annotated[
        Path | None,
        typer.Option(
            "--trace",
            exists=True,
            dir_okay=False,
            help="With --view trace: heatmaps of this `run --trace` file.",
        ),
    ] = None,
    gradients: Annotated[
        bool,
        typer.Option(
            "--gradients",
            help="Shade each unrolled state by the norm of the loss's gradient w.r.t. it, "
            "with a chart per step (needs --weights and --data).",
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            exists=True,
            dir_okay=False,
            help="--gradients: inputs and targets (.npz, as `train` reads).",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="--gradients: the loss of this output step only, such as `o[-1]`."
        ),
    ] = None,
    loss: Annotated[Loss, typer.Option(help="--gradients: the loss.")] = Loss.mse,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    max_memory: MaxMemory = "4G",
) -> None:
    """Draw the folded network and the network unfolded over T steps, with Graphviz.

    `--format html` writes one self-contained interactive page with both; `--view trace
    --trace T.npz` draws a trace's heatmaps; `--gradients` the gradient through time.
    """
    fmt_value = _render_format(fmt, output)
    if view is View.trace or trace_file is not None or gradients:
        _render_numbers(
            spec,
            view,
            fmt_value,
            output,
            trace_file,
            gradients,
            weights,
            data,
            at,
            loss.value,
            (dpi, size),
            _style(labels, weight_names, readout, legend, taps, cell_state),
            max_columns,
            force,
            max_memory,
        )
        return
    if fmt_value == "html":
        _render_page(
            spec,
            steps,
            output,
            style_options=(labels, weight_names, readout, legend, taps, cell_state),
            weights=weights,
            input=input,
            force=force,
            max_memory=max_memory,
        )
        return
    if data is not None or at is not None:
        raise typer.BadParameter("--data and --at are read by --gradients",
                                 param_hint="--data" if data else "--at")  # fmt: skip
    if weights is not None or input is not None:
        raise typer.BadParameter("--weights and --input show values on the html page; add "
                                 "--format html", param_hint="--input")  # fmt: skip
    try:
        options = render_options(fmt_value, dpi, size)
    except ComposerError as err:
        raise typer.BadParameter(str(err), param_hint="--size" if size else "--dpi") from None
    style = _style(labels, weight_names, readout, legend, taps, cell_state)
    sourced, unrolled = unrolled_from(spec, steps, max_memory)
    target = None
    if highlight is not None:
        try:
            target = parse_highlight(highlight)
        except ComposerError as err:
            raise typer.BadParameter(str(err), param_hint="--highlight") from None
    views = ["folded", "unfolded"] if view is View.both else [view.value]
    if output is not None and not _names_a_file(output):
        raise typer.BadParameter(
            f"{shown(output)!r} is a folder; give a file name", param_hint="--output"
        )
    paths = {v: _diagram_path(spec, output, v, fmt_value, len(views) > 1) for v in views}
    check_outputs([("--output", path) for path in paths.values()], force)
    if "unfolded" in views:
        check_memory(
            drawing_bytes(unrolled, max_columns, highlight is not None),
            max_memory,
            f"drawing {shown(spec)} unfolded to T = {unrolled.steps:,}",
        )
    try:  # every picture is drawn before any file is written
        texts = diagrams(unrolled, views, style, target, max_columns)
    except ComposerError as err:
        raise typer.BadParameter(str(err), param_hint="--highlight") from None
    keep = (*declared_inputs(), *paths.values())  # a `.dot` fallback lands on none of these
    for written in write_diagrams(
        texts, paths, fmt_value, overwrite=force, keep=keep, options=options
    ):
        typer.echo(f"wrote {shown(written)}")


def _render_numbers(spec, view, fmt, output, trace_file, gradients, weights, data, at, loss,
                    sizes, style, max_columns, force, max_memory):  # fmt: skip
    """`--view trace` and `--gradients`: pictures of numbers, one file each."""
    if fmt == "html":
        raise typer.BadParameter("traces and gradients are drawn as svg, png, pdf or dot",
                                 param_hint="--format")  # fmt: skip
    if gradients and (view is View.trace or trace_file is not None):
        raise typer.BadParameter("draw a trace or the gradients, not both",
                                 param_hint="--gradients")  # fmt: skip
    try:
        options = render_options(fmt, *sizes)
    except ComposerError as err:
        raise typer.BadParameter(str(err), param_hint="--size") from None
    sourced, folded = read_checked(spec)
    if not gradients:
        if view is not View.trace:
            raise typer.BadParameter("--trace draws with --view trace", param_hint="--view")
        if trace_file is None:
            raise typer.BadParameter("--view trace draws a `run --trace` file; give --trace",
                                     param_hint="--trace")  # fmt: skip
        path = output or Path(f"{spec.stem}.trace.{fmt}")
        check_outputs([("--output", path)], force)
        written = write_trace_view(sourced, folded, trace_file, path, fmt, options, force)
    else:
        for option, value in (("--weights", weights), ("--data", data)):
            if value is None:
                raise typer.BadParameter(f"--gradients needs {option}", param_hint=option)
        target = None
        if at is not None:
            try:
                target = parse_highlight(at)
            except ComposerError as err:
                raise typer.BadParameter(str(err), param_hint="--at") from None
        path = output or Path(f"{spec.stem}.gradients.{fmt}")
        check_outputs([("--output", path)], force)
        written = write_gradient_view(sourced, folded, weights, data, target, loss, path, fmt,
                                      options, style, max_columns, force, max_memory)  # fmt: skip
    for path in written:
        typer.echo(f"wrote {shown(path)}")


def _render_page(spec, steps, output, style_options, weights, input, force, max_memory):
    style = _style(*style_options)
    path = output or Path(f"{spec.stem}.html")
    check_outputs([("--output", path)], force)
    sourced, folded = read_checked(spec)
    values = None
    if input is not None:
        check_memory(input_bytes(input), max_memory, f"reading {shown(input)}")
        given, values = page_values(folded, weights, input, 0)
        steps = steps or given
    if steps is None:
        steps = unrolled_from(spec, None, max_memory)[1].steps
    write_page(sourced, folded, steps, path, style, force, max_memory, values)
    typer.echo(f"wrote {shown(path)}")


def _render_format(fmt: Format | None, output: Path | None) -> str:
    """The format: --format, else the output's suffix when it names one, else svg; a
    suffix naming another format than --format is a usage error."""
    suffix = output.suffix.lstrip(".").lower() if output is not None else ""
    known = suffix if suffix in (*FORMATS, "html") else None
    if fmt is None:
        return known or "svg"
    if known is not None and known != fmt.value:
        raise typer.BadParameter(
            f"--format {fmt.value} but the output {shown(output)} ends in .{known}; "
            "give one or make them agree",
            param_hint="--format",
        )
    return fmt.value


def _style(
    labels: Labels,
    weight_names: str | None,
    readout: Readout,
    legend: bool,
    taps: Taps = Taps.folded,
    cell_state: bool = False,
) -> Style:
    names = {}
    if weight_names is not None:
        try:
            names = parse_weight_names(weight_names)
        except ComposerError as err:
            raise typer.BadParameter(str(err), param_hint="--weight-names") from None
    return Style(
        readout=readout.value,
        labels=labels.value,
        weight_names=names,
        legend=legend,
        taps=taps.value,
        cell_state=cell_state,
    )


def _names_a_file(output: Path) -> bool:
    return output.name not in ("", ".", "..") and not output.is_dir()


def _diagram_path(spec: Path, output: Path | None, view: str, fmt: str, several: bool) -> Path:
    if output is None:
        return Path(f"{spec.stem}.{view}.{fmt}")
    if several:
        return output.with_name(f"{output.stem}.{view}{output.suffix or '.' + fmt}")
    return output
