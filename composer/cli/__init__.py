"""The command line, `rnn-composer`: thin commands that parse, call the library and report.

Every command registers on `app` (`composer.cli.root`) in its module, in the order `--help`
lists them: `inspect` (validate, summary, deps), `run`, `render`, `authoring` (schema, new),
`data` (`data text`), `evaluate`, `export`, `generate`, `import_weights`, `series`
(`data series`) and `train`.
"""

import sys

import typer

# isort: off
from composer.cli import inspect, run, render, authoring  # noqa: F401  (registers, in order)

# isort: on
from composer.cli import (  # noqa: F401  (registers the commands)
    data,
    evaluate,
    export,
    generate,
    import_weights,
    series,
    train,
)
from composer.cli.root import app
from composer.cli.streams import check_stdout
from composer.errors import ComposerError
from composer.output_files import shown
from composer.signals import Terminated
from composer.signals import install as install_signals

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `rnn-composer` script."""
    install_signals()
    check_stdout()
    try:
        app()
    except ComposerError as err:  # raised outside a command's own reporting (stdout)
        typer.echo(shown(str(err)), err=True)
        sys.exit(err.exit_code)
    except Terminated as err:
        typer.echo(str(err), err=True)
        sys.exit(err.exit_code)
