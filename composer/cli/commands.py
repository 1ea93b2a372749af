"""The commands that read a spec: validate, summary, deps, run, render, schema, new."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from composer.arrays import atomic_write, declared_bytes, read_arrays, write_arrays
from composer.cli.common import (
    AsJson,
    DType,
    MaxMemory,
    SpecPath,
    Steps,
    Threads,
    check_output,
    read_checked,
    reports_errors,
    unrolled_from,
    unused_warnings,
)
from composer.cli.engines import DeviceOption, RunEngineName, RunEngineOption, check_device
from composer.cli.files import Read, declared_inputs, file_arguments, lengths_file
from composer.cli.outputs import check_outputs
from composer.cli.pictures import (
    page_values,
    write_gradient_view,
    write_page,
    write_trace_view,
)
from composer.cli.report import (
    format_dependencies,
    output_report,
    padded_report,
    summary_data,
    summary_text,
)
from composer.cli.root import app
from composer.cli.state import StateIn, StateOut, run_with_state
from composer.draw.diagrams import (
    FORMATS,
    folded_cone,
    folded_dot,
    parse_highlight,
    render_options,
    unfolded_dot,
    write_diagrams,
)
from composer.draw.style import Style, parse_weight_names
from composer.engine.batches import output_steps, run_padded
from composer.engine.executor import execute
from composer.engine.inputs import check_inputs, infer_steps, input_bytes, read_inputs
from composer.engine.lengths import check_lengths, item_steps, parse_lengths
from composer.engine.memory import (
    check_memory,
    deps_bytes,
    deps_json_bytes,
    drawing_bytes,
    execute_bytes,
    params_bytes,
)
from composer.engine.pipeline import plan_for_steps
from composer.errors import ComposerError, DataError, SpecError, SpecErrors
from composer.finite import check_representable
from composer.graph.deps import dependencies
from composer.graph.weights import init_params, load_params
from composer.outputs import shown
from composer.spec.reader import read_spec_text
from composer.spec.schema import spec_schema
from composer.spec.starters import STARTERS, starter
from composer.text import format_steps
from composer.threads import apply as apply_threads
from composer.threads import work_of
from composer.training.trace import write_trace

__all__ = ["validate", "summary", "deps", "run", "render", "schema", "new"]


@app.command()
@reports_errors
@file_arguments(inputs={"specs": Read.spec})
def validate(
    specs: Annotated[
        list[Path],
        typer.Argument(
            help="One or more spec files.", exists=True, dir_okay=False, metavar="SPEC..."
        ),
    ],
    steps: Steps = None,
    max_memory: MaxMemory = "4G",
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse unused inputs, layers and weights (exit 3).")
    ] = False,
) -> None:
    """Check specs and report every problem with its location.

    Each problem is one line `file:line:col: path: message` on stderr (exit code 3). An
    input, layer or weight that no output depends on at any T is a warning (`warning:`
    after the path), or with `--strict` an error.
    """
    failed: list[SpecError] = []
    for path in specs:
        try:
            sourced, unrolled = unrolled_from(path, steps, max_memory)
        except SpecErrors as err:
            failed += err.errors
        except SpecError as err:
            failed.append(err)
        else:
            found = unused_warnings(sourced, unrolled.folded, "" if strict else "warning: ")
            for warning in [] if strict else found:
                typer.echo(shown(str(warning)), err=True)
            failed += found if strict else []
            if not strict or not found:
                typer.echo(f"{shown(path)}: ok" + (f" ({len(found)} warning(s))" if found else ""))
    if failed:
        raise SpecErrors(failed)


@app.command()
@reports_errors
@file_arguments(inputs={"spec": Read.spec})
def summary(
    spec: SpecPath, steps: Steps = None, as_json: AsJson = False, max_memory: MaxMemory = "4G"
) -> None:
    """Layers, weights and parameter counts (the same for every T)."""
    sourced, unrolled = unrolled_from(spec, steps, max_memory)
    data = summary_data(sourced.spec, unrolled)
    if data["name"] is None:
        data["name"] = spec.stem
    typer.echo(json.dumps(data, indent=2) if as_json else summary_text(data))


@app.command()
@reports_errors
@file_arguments(inputs={"spec": Read.spec})
def deps(
    spec: SpecPath,
    steps: Steps = None,
    as_json: AsJson = False,
    at: Annotated[
        str | None, typer.Option("--at", help="Only this output step, such as `o[7]`.")
    ] = None,
    max_memory: MaxMemory = "4G",
) -> None:
    """Which input steps each output step depends on, as `o[7] <- x[0..7]`."""
    _, unrolled = unrolled_from(spec, steps, max_memory)
    need = deps_bytes(unrolled) + (deps_json_bytes(unrolled) if as_json else 0)
    check_memory(need, max_memory, f"the dependencies at T = {unrolled.steps}")
    found = dependencies(unrolled)
    if at is not None:
        found = _select(found, at, unrolled.steps)
    if as_json:
        typer.echo(json.dumps({o: {str(t): d for t, d in s.items()} for o, s in found.items()}))
        return
    for line in format_dependencies(found):
        typer.echo(line)


def _select(found: dict, at: str, steps: int) -> dict:
    try:
        name, t = parse_highlight(at)  # the same syntax as --highlight: y[-1] is the last step
    except ComposerError:
        raise typer.BadParameter(
            f"expected NAME[t] such as o[7] or o[-1], got {at!r}", param_hint="--at"
        ) from None
    t = t + steps if t < 0 else t
    if name not in found:
        raise typer.BadParameter(
            f"no output {name!r}; outputs: {', '.join(found)}", param_hint="--at"
        )
    if t not in found[name]:
        emitted = ", ".join(map(str, found[name])) or "none"
        raise typer.BadParameter(
            f"{name} is not emitted at step {t}; emitted at {emitted}", param_hint="--at"
        )
    return {name: {t: found[name][t]}}


@app.command()
@reports_errors
@file_arguments(
    inputs={
        "spec": Read.spec,
        "input": Read.arrays,
        "weights": Read.arrays,
        "lengths": Read.lengths,
        "model": Read.model,
        "state_in": Read.arrays,
    },
    outputs=("output", "save_weights", "state_out", "trace_path"),
)
def run(
    spec: SpecPath,
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            exists=True,
            dir_okay=False,
            help="Inputs: .npy (B, T_in, F) or (T_in, F), .npz by input name, .csv.",
        ),
    ],
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            "-w",
            exists=True,
            dir_okay=False,
            help="Weights .npz (keys `layer.param`); default: seeded initial weights.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the initial weights (without --weights).")
    ] = 0,
    steps: Steps = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the outputs to this .npz.")
    ] = None,
    save_weights: Annotated[
        Path | None, typer.Option(help="Also write the weights used to this .npz.")
    ] = None,
    lengths: Annotated[
        str | None,
        typer.Option(
            "--lengths",
            metavar="N,N,...|FILE.npy",
            help="A padded batch's real lengths, one per item, for a network with one input "
            "(an inputs .npz says `<input>.lengths` instead).",
        ),
    ] = None,
    dtype: Annotated[DType, typer.Option(help="Computation precision.")] = DType.float32,
    allow_nonfinite: Annotated[
        bool, typer.Option("--allow-nonfinite", help="Accept NaN and Inf in inputs and weights.")
    ] = False,
    max_memory: MaxMemory = "4G",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            exists=True,
            dir_okay=False,
            help="With --engine onnx: an exported .onnx to run (default: export SPEC now).",
        ),
    ] = None,
    state_in: StateIn = None,
    state_out: StateOut = None,
    engine: RunEngineOption = RunEngineName.numpy,
    device: DeviceOption = None,
    threads: Threads = None,
    trace_path: Annotated[
        Path | None,
        typer.Option(
            "--trace",
            help="Also write every vector at every step, with gates and cell states, to "
            "this .npz (keys in docs/diagrams.md).",
        ),
    ] = None,
) -> None:
    """Run the network forward on input arrays and report or save its outputs.

    A padded batch of sequences of different lengths gives each item what it gives alone.
    """
    check_device(engine, device)
    sourced, folded = read_checked(spec)
    if engine is not RunEngineName.numpy and (state_in is not None or state_out is not None):
        raise typer.BadParameter(
            "states are carried over on the numpy engine only", param_hint="--state-in/--state-out"
        )
    if model is not None and (engine is not RunEngineName.onnx or weights is not None):
        raise typer.BadParameter(
            "a model file runs with --engine onnx, and holds its own weights: drop --weights",
            param_hint="--model",
        )
    if model is not None and save_weights is not None:
        raise typer.BadParameter(
            "a model file holds its own weights; --save-weights would write seeded weights "
            "the model does not use: drop it",
            param_hint="--save-weights",
        )
    if trace_path is not None and (
        engine is not RunEngineName.numpy or state_in is not None or state_out is not None
    ):
        raise typer.BadParameter(
            "a trace is taken on the numpy engine, from the initial state", param_hint="--trace"
        )
    outputs_named = {
        "--output": output,
        "--save-weights": save_weights,
        "--state-out": state_out,
        "--trace": trace_path,
    }
    check_outputs(outputs_named, force)
    check_memory(input_bytes(input), max_memory, f"reading {shown(input)}")
    arrays, flat, given = read_inputs(
        input,
        folded,
        allow_nonfinite=allow_nonfinite,
        without_starts="--state-in" if state_in is not None else None,
    )
    check_representable(arrays, dtype.value, shown(input))
    if lengths is not None:
        given = _lengths_option(lengths, list(arrays), given)
    padded = bool(given)
    if padded and flat:
        raise DataError(f"{input}: lengths describe a batch; give (B, T_in, F) inputs with them")
    try:
        if padded:
            given = check_lengths(
                folded, arrays, given, str(input) if lengths is None else "lengths"
            )
            per_item = item_steps(folded, arrays, given, steps)
            steps = int(per_item.max())
        plan = plan_for_steps(folded, steps or infer_steps(folded, arrays), max_memory=max_memory)
    except SpecError as err:
        raise sourced.locate(err) from err
    batch = next(iter(arrays.values())).shape[0]
    weights_need = params_bytes(folded, dtype.value)  # as made, or as read and cast
    if weights is not None:
        weights_need += declared_bytes(weights)
    check_memory(
        execute_bytes(plan, batch, dtype.value) + weights_need,
        max_memory,
        f"running {spec} at T = {plan.steps}, B = {batch}",
    )
    if weights is not None:
        params = load_params(weights, folded, dtype.value, allow_nonfinite=allow_nonfinite)
    else:
        params = init_params(folded, seed, dtype.value)
    if trace_path is not None:
        if padded:
            raise typer.BadParameter(
                "a padded batch has no one trace; run items alone", param_hint="--trace"
            )
        written = write_trace(trace_path, plan, params, arrays, dtype.value, flat, force)
        typer.echo(f"wrote {shown(trace_path)} ({written} arrays)", err=True)
    apply_threads(threads, work_of(folded, batch), torch=engine is RunEngineName.torch)
    stepped = state_in is not None or state_out is not None  # engines other than numpy refused
    if engine is RunEngineName.torch:
        from composer.interop.torch_engine import run_torch

        outputs = run_torch(
            folded, params, arrays, None if padded else plan.steps, dtype.value, device,
            lengths=given if padded else None,
        )  # fmt: skip
    elif engine is RunEngineName.onnx:
        from composer.interop.onnx import run_onnx

        if not padded:  # the inputs against T (and --steps), as the other engines check them
            check_inputs(plan, arrays)
        try:
            outputs = run_onnx(folded, params, arrays, given, dtype.value, plan.steps, model)
        except SpecError as err:
            raise sourced.locate(err) from err
    elif stepped:
        outputs = run_with_state(
            folded, params, arrays, state_in, state_out, dtype.value, force,
            item_steps=per_item if padded else None,
        )  # fmt: skip
    elif padded:
        outputs = run_padded(folded, params, arrays, given, None, dtype.value)
    else:
        outputs = execute(plan, params, arrays, dtype.value)
    if flat:
        outputs = {name: value[0] for name, value in outputs.items()}
    if save_weights is not None:
        write_arrays(save_weights, params, overwrite=force)
        typer.echo(f"wrote {shown(save_weights)} ({len(params)} weights)", err=True)
    if output is not None:
        write_arrays(output, outputs, overwrite=force)
        typer.echo(
            f"wrote {shown(output)}: "
            + ", ".join(f"{name} {tuple(value.shape)}" for name, value in outputs.items()),
            err=True,
        )
        return
    origin = f"weights {weights}" if weights else f"seeded weights (seed {seed})"
    if engine is RunEngineName.onnx:
        origin = f"model {model}" if model else origin + ", exported"
        origin += ", on ONNX Runtime"
    if padded:
        typer.echo(
            f"ran {spec} on a padded batch of {batch} (T = {format_steps(sorted(set(per_item)))}"
            f" per item), {dtype.value}, {origin}"
        )
        for name in plan.outputs:
            # stepped, every output is taken at every step
            steps_of = (
                [range(t) for t in per_item] if stepped else output_steps(folded, name, per_item)
            )
            lengths_of = outputs[f"{name}.lengths"]
            typer.echo(padded_report(name, outputs[name], lengths_of, steps_of))
        return
    typer.echo(f"ran {spec} at T = {plan.steps}, batch {batch}, {dtype.value}, {origin}")
    for name, value in outputs.items():
        typer.echo(output_report(name, value, plan.window(name), flat))


def _lengths_option(text: str, inputs: list[str], given: dict) -> dict:
    """`--lengths` for the one input: `10,7,4`, or a .npy file of them."""
    if len(inputs) != 1:
        raise typer.BadParameter(
            f"this network has inputs {', '.join(inputs)}; put each one's lengths in the "
            "inputs .npz as `<input>.lengths`",
            param_hint="--lengths",
        )
    if given:
        raise typer.BadParameter(
            "the inputs file already holds lengths; give them once", param_hint="--lengths"
        )
    path = lengths_file(text)
    if path is not None:
        values = read_arrays(path, default_key="lengths")["lengths"]
    else:
        values = parse_lengths(text)
    return {inputs[0]: values}


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
    texts = {}  # every picture is drawn before any file is written
    try:
        for name in views:
            if name == "folded":
                cone = folded_cone(unrolled, target) if target else None
                texts[name] = folded_dot(
                    unrolled.folded, style=style, cone=cone, title=_title(target, unrolled.steps)
                )
                continue
            texts[name] = unfolded_dot(
                unrolled, max_columns=max_columns, highlight=target, style=style
            )
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


def _title(target, steps: int) -> str:
    if target is None:
        return "folded"
    name, t = target
    return f"folded; shaded: what {name}[{t + steps if t < 0 else t}] depends on"


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


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema, for editors and their YAML language server."""
    typer.echo(json.dumps(spec_schema(), indent=2))


@app.command()
@reports_errors
@file_arguments(inputs={}, outputs=("output",))
def new(
    preset: Annotated[
        str, typer.Argument(help=f"One of: {', '.join(STARTERS)}.", metavar="PRESET")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter spec for an alignment preset or a design."""
    if preset not in STARTERS:
        raise typer.BadParameter(
            f"{preset!r} is not a preset; choose one of {', '.join(STARTERS)}",
            param_hint="PRESET",
        )
    text = starter(preset)
    read_spec_text(text, f"<new {preset}>", "yaml")  # a starter that does not load is our bug
    if output is None:
        sys.stdout.write(text)
        return
    check_output(output, force)
    atomic_write(output, lambda handle: handle.write(text.encode()), overwrite=force)
    typer.echo(f"wrote {shown(output)}", err=True)
