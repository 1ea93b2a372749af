"""`rnn-composer data text`: text files as next-token training data and a vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from composer.arrays import atomic_write, write_arrays
from composer.cli.common import MaxMemory, reports_errors
from composer.cli.files import Read, file_arguments
from composer.cli.outputs import check_outputs
from composer.cli.root import app
from composer.engine.memory import check_memory, text_data_bytes
from composer.errors import DataError
from composer.output_files import shown
from composer.training.text import (
    LEVELS,
    build_vocab,
    encode_text,
    read_text,
    text_windows,
    token_count,
    unigram_bits,
    vocab_json,
    window_count,
)

__all__ = ["data_app", "text"]

data_app = typer.Typer(
    help="Make training data: `data text` turns text files into token ids, `data series` "
    "a numeric series into forecasting windows.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")


@data_app.command()
@reports_errors
@file_arguments(inputs={"files": Read.text}, outputs=("output", "vocab"))
def text(
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="UTF-8 text files.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The data .npz to write.")],
    vocab: Annotated[
        Path | None,
        typer.Option(help="The vocabulary .json to write; default: next to --output."),
    ] = None,
    seq_len: Annotated[
        int, typer.Option(min=1, help="Steps per window: at most the text's tokens less one.")
    ] = 64,
    vocab_size: Annotated[
        int | None,
        typer.Option(min=2, help="Exactly N tokens: the N-1 most frequent and one for the rest."),
    ] = None,
    level: Annotated[str, typer.Option(help="Tokens: `char` or `word`.")] = "char",
    names: Annotated[
        str, typer.Option(metavar="INPUT,TARGET", help="The keys of the ids and the targets.")
    ] = "x,y",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    max_memory: MaxMemory = "4G",
) -> None:
    """Write text as token ids: inputs and next-token targets in windows of --seq-len
    (the last one ragged, with its length), and the vocabulary, whose size is what a
    spec's `vocab:` must say. A window holds at most the text's next-token pairs (its
    tokens less one), so the data takes about 16 bytes per token."""
    if level not in LEVELS:
        raise typer.BadParameter(f"expected one of {', '.join(LEVELS)}", param_hint="--level")
    keys = names.split(",")
    if len(keys) != 2 or not all(k.isidentifier() for k in keys) or keys[0] == keys[1]:
        raise typer.BadParameter(
            f"expected two different names such as x,y, got {names!r}", param_hint="--names"
        )
    vocab = vocab or output.with_name(output.stem + ".vocab.json")
    check_outputs({"--output": output, "--vocab": vocab}, force)
    texts = [read_text(path) for path in files]
    where = shown(files[0]) + (f" and {len(files) - 1} more" if len(files) > 1 else "")
    sizes = [token_count(t, level) for t in texts]
    try:
        windows = window_count(sum(sizes), seq_len)
    except DataError as err:
        raise DataError(f"{where}: {err}") from None
    shared = level == "char" and all(not t or max(t) < "\u0100" for t in texts)
    need = text_data_bytes(sum(sizes), max(sizes), windows, seq_len, shared)
    what = f"turning {where} ({sum(sizes):,} tokens) into {windows:,} windows of {seq_len:,}"
    check_memory(need, max_memory, what, advice="give less text")
    table = build_vocab(texts, level, vocab_size)
    ids = np.concatenate([encode_text(t, table, str(p)) for t, p in zip(texts, files)])
    x, y, lengths = text_windows(ids, seq_len)
    arrays = {keys[0]: x, keys[1]: y}
    if lengths[-1] != seq_len:
        arrays[f"{keys[0]}.lengths"] = lengths
    write_arrays(output, arrays, overwrite=force)
    encoded = vocab_json(table).encode("utf-8")
    atomic_write(vocab, lambda handle: handle.write(encoded), overwrite=force)
    typer.echo(
        f"wrote {shown(output)}: {keys[0]} {x.shape}, {keys[1]} {y.shape} from {len(ids):,} "
        f"tokens; {shown(vocab)}: {len(table['tokens'])} tokens ({level})",
        err=True,
    )
    typer.echo(f"vocab: {len(table['tokens'])}")
    typer.echo(f"unigram baseline: {unigram_bits(table):.3f} bits per token")
