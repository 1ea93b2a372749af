"""The command line, `rnn-composer`: thin commands that parse, call the library and report.

Every command registers on `app` (`composer.cli.root`) in its module: `commands` (validate,
summary, deps, run, render, schema, new), `export`, `import_weights`, `train`, `data`
(`data text`), `series` (`data series`), `generate` and `evaluate`.
"""

import sys

import typer

from composer.cli import (  # noqa: F401  (registers the commands)
    commands,
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
