"""The `run` command: a network forward on input arrays, its outputs reported or saved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from composer.api.engines import run_on
from composer.api.runs import padded_output_steps, plan_run
from composer.arrays import declared_bytes, read_arrays, write_arrays
from composer.cli.common import (
    DType,
    MaxMemory,
    SpecPath,
    Steps,
    Threads,
    read_checked,
    reports_errors,
)
from composer.cli.engines import DeviceOption, RunEngineName, RunEngineOption, check_device
from composer.cli.files import Read, file_arguments, lengths_file
from composer.cli.outputs import check_outputs
from composer.cli.report import (
    output_report,
    padded_report,
)
from composer.cli.root import app
from composer.cli.state import StateIn, StateOut, run_with_state
from composer.engine.inputs import input_bytes, read_inputs
from composer.engine.lengths import parse_lengths
from composer.engine.memory import (
    check_memory,
)
from composer.errors import DataError, SpecError
from composer.finite import check_representable
from composer.graph.weights import init_params, load_params
from composer.output_files import shown
from composer.readable import format_steps
from composer.threads import apply as apply_threads
from composer.threads import work_of
from composer.training.trace import write_trace

__all__ = ["run"]


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
        where = str(input) if lengths is None else "lengths"
        planned = plan_run(folded, arrays, given, steps, dtype.value, max_memory, where)
    except SpecError as err:
        raise sourced.locate(err) from err
    plan, given, per_item, batch = planned.plan, planned.lengths, planned.item_steps, planned.batch
    need = planned.need + (declared_bytes(weights) if weights is not None else 0)
    check_memory(need, max_memory, f"running {spec} at T = {plan.steps}, B = {batch}")
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
    if stepped:
        outputs = run_with_state(
            folded, params, arrays, state_in, state_out, dtype.value, force,
            item_steps=per_item if padded else None,
        )  # fmt: skip
    else:
        try:
            outputs = run_on(
                engine.value, folded, params, arrays, None if padded else plan.steps,
                dtype.value, given if padded else None, device, model,
            )  # fmt: skip
        except SpecError as err:
            if engine is not RunEngineName.onnx:
                raise
            raise sourced.locate(err) from err
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
            steps_of = padded_output_steps(folded, name, per_item, stepped)
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
