"""`rnn-composer generate`: a trained language model writes text, token by token."""

from __future__ import annotations

import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from composer.arrays import declared_bytes, read_arrays
from composer.cli.common import DType, MaxMemory, SpecPath, Threads, read_checked, reports_errors
from composer.cli.files import Read, file_arguments
from composer.cli.root import app
from composer.engine.generation import beam_search, find_feedback, generate, generation_bytes
from composer.engine.memory import check_memory, params_bytes
from composer.engine.stepper import Stepper, check_steppable
from composer.errors import DataError, SpecError
from composer.finite import check_values
from composer.graph.handover import given_states
from composer.graph.weights import load_params
from composer.output_files import shown
from composer.threads import apply as apply_threads
from composer.threads import work_of
from composer.training.example_data import ACCEPTORS
from composer.training.text import decode_ids, encode_text, read_vocab

Grammar = Enum("Grammar", {name: name for name in ACCEPTORS}, type=str)

__all__ = ["generate_text"]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise typer.BadParameter(f"expected a finite number >= 0, got {value}")
    return value


@app.command("generate")
@reports_errors
@file_arguments(
    inputs={"spec": Read.spec, "weights": Read.arrays, "vocab": Read.vocab, "start": Read.arrays}
)
def generate_text(
    spec: SpecPath,
    weights: Annotated[
        Path, typer.Option("--weights", "-w", exists=True, dir_okay=False, help="Weights .npz.")
    ],
    vocab: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="The vocabulary `data text` wrote."),
    ],
    prompt: Annotated[str, typer.Option(help="The text to start from.")] = "",
    length: Annotated[int, typer.Option(min=1, help="Tokens to generate.")] = 200,
    temperature: Annotated[
        float,
        typer.Option(
            min=0.0,
            callback=_finite,
            help="Sharpness: below 1 surer, 0 the likeliest token (first of ties); any "
            "finite value above 0 is honoured, so a tiny one draws among the likeliest.",
        ),
    ] = 0.8,
    top_k: Annotated[
        int | None, typer.Option(min=1, help="Draw among the K likeliest tokens only.")
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Draw among the likeliest tokens holding P."),
    ] = None,
    beam: Annotated[
        int | None, typer.Option(min=1, help="Beam search: the N best, with log-probabilities.")
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed: the same text each run.")] = None,
    count: Annotated[int, typer.Option(min=1, help="How many texts to sample.")] = 1,
    dtype: Annotated[DType, typer.Option(help="Computation precision.")] = DType.float32,
    accept: Annotated[
        Grammar | None,
        typer.Option(help="End each text where the grammar does, and count the ones it accepts."),
    ] = None,
    start: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Start states given with the data (`initial_state` naming an input): a .npz "
            "with one (H,) array per such input, or a .npy for the only one.",
        ),
    ] = None,
    max_memory: MaxMemory = "4G",
    threads: Threads = None,
) -> None:
    """Generate text: the prompt, then one token at a time, each fed back in (the text
    appears as it is written). Each token costs one step of the network."""
    sourced, folded = read_checked(spec)
    try:
        check_steppable(folded)
        feedback = find_feedback(folded)
    except SpecError as err:
        raise sourced.locate(err) from err
    table = read_vocab(vocab)
    if len(table["tokens"]) != feedback.vocab:
        raise DataError(
            f"{vocab}: {len(table['tokens'])} tokens, but {spec} generates over "
            f"{feedback.vocab} (output `{feedback.output}`); use the vocabulary the model "
            "was trained with"
        )
    ids = encode_text(prompt, table, "--prompt").tolist()
    if feedback.input is not None and not ids:
        raise typer.BadParameter("give at least one token to start from", param_hint="--prompt")
    held = count if accept is not None else int(count > 1)  # texts at once; else streamed
    need = generation_bytes(
        folded, feedback, table["tokens"], length, count=count, beam=beam, held=held,
        dtype=dtype.value,
    ) + params_bytes(folded, dtype.value) + declared_bytes(weights)  # fmt: skip
    if beam is not None:
        what = f"a beam search of {beam:,} beams over {length:,} tokens"
    else:
        what = f"generating {count:,} text{'s' if count != 1 else ''} of {length:,} tokens"
    check_memory(need, max_memory, f"{what} with {spec}", advice="generate less")
    params = load_params(weights, folded, dtype.value)
    starts = _starts(start, folded, spec, dtype.value)
    apply_threads(threads, work_of(folded, beam or max(held, 1)))
    stepper = Stepper(folded, params, dtype.value)
    options = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, inputs=starts)
    if beam is not None:
        for tokens, logp in beam_search(stepper, feedback, ids, length, beam, inputs=starts):
            typer.echo(f"{logp:10.3f}  {prompt + decode_ids(tokens, table)!r}")
        return
    if accept is not None:
        _accepted(stepper, feedback, ids, length, table, prompt, accept.value, count, options)
        return
    if count == 1:  # stream: each token as it comes
        sys.stdout.write(prompt)
        sys.stdout.flush()

        def show(tokens) -> None:
            sys.stdout.write(decode_ids(tokens, table))
            sys.stdout.flush()

        generate(stepper, feedback, ids, length, on_token=show, **options)
        sys.stdout.write("\n")
        return
    for tokens in generate(stepper, feedback, ids, length, count=count, **options):
        typer.echo(prompt + decode_ids(tokens, table))


def _starts(path: Path | None, folded, spec: Path, dtype: str) -> dict[str, np.ndarray]:
    """The start states a spec's layers take from inputs, one (H,) vector each, checked
    (shapes, NaN, Inf, values beyond `dtype`) before anything is written."""
    wanted = given_states(folded)
    if not wanted:
        if path is not None:
            raise DataError(f"{path}: {spec} has no layer whose `initial_state` is an input")
        return {}
    if path is None:
        named = ", ".join(f"`{name}` ({size} numbers)" for name, size in wanted.items())
        raise DataError(f"{spec} starts from {named}: give it with --start FILE")
    arrays = read_arrays(path, default_key=next(iter(wanted)))
    check_values(arrays, dtype, shown(path))
    starts = {}
    for name, size in wanted.items():
        if name not in arrays:
            raise DataError(f"{path}: missing key {name!r} (a start state of {size} numbers)")
        value = np.asarray(arrays[name])
        if value.shape not in ((size,), (1, size)) or not np.issubdtype(value.dtype, np.number):
            raise DataError(
                f"{path}: key {name!r}: expected a start state of shape ({size},), got "
                f"{value.dtype} of shape {value.shape}"
            )
        starts[name] = value.reshape(size)
    extra = sorted(set(arrays) - set(wanted))
    if extra:
        raise DataError(f"{path}: unexpected key {extra[0]!r}; start states: {', '.join(wanted)}")
    return starts


def _accepted(stepper, feedback, ids, length, table, prompt, grammar, count, options) -> None:
    """Texts cut where the grammar ends them, and the share it accepts."""
    accepts, complete = ACCEPTORS[grammar]
    texts = []
    for tokens in generate(stepper, feedback, ids, length, count=count, **options):
        text = prompt
        for token in tokens:
            if complete(text):
                break
            text += decode_ids([token], table)
        texts.append(text)
    rate = sum(map(accepts, texts)) / len(texts)
    how = "greedy" if options["temperature"] == 0 else "sampled"
    typer.echo(f"{rate:.1%} of {len(texts)} {how} strings are {grammar} strings")
    typer.echo("examples: " + " ".join(texts[:5]))
