"""`python -m composer` runs the `rnn-composer` command line."""

from composer.cli import main

main()
