"""The command line, `rnn-composer`: thin commands that parse, call the library and report.

Every command registers on `app` (`composer.cli.app`) in its module: `commands` (validate,
summary, deps, run, render, schema, new) and `train`.
"""

from composer.cli import commands, train  # noqa: F401  (registers the commands)
from composer.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `rnn-composer` script."""
    app()
