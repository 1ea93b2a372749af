"""The root of the command line: the `rnn-composer` Typer app, its settings and its global
options; every command registers on it."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    name="rnn-composer",
    help="Compose recurrent neural networks from one spec file: validate, explain, run, draw.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click errors: one line each, easy to grep
)


def _print_version(asked: bool) -> None:
    if asked:
        from composer import __version__

        typer.echo(f"rnn-composer {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    show_tracebacks: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    ctx.ensure_object(dict)["debug"] = show_tracebacks
