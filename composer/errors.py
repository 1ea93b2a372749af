"""One error family: every failure a user can cause is a ComposerError with an exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = [
    "ComposerError",
    "SpecError",
    "SpecErrors",
    "DataError",
    "ResourceError",
    "WriteError",
    "OutputExistsError",
    "RenderError",
    "key_mismatch",
]


class ComposerError(ValueError):
    """Base of every error the tool reports to a user; `exit_code` is the documented code
    (docs/errors.md)."""

    exit_code = 1


class SpecError(ComposerError):
    """An invalid spec; `path` is the field path inside the spec (a tuple of keys and indexes).

    `line` and `column` (1-based) are filled in by the loader when the spec came from a file.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        path: tuple[str | int, ...] = (),
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = tuple(path)
        self.file = file
        self.line = line
        self.column = column

    @property
    def dotted_path(self) -> str:
        """The path as `layers[1].state_size`."""
        out = ""
        for part in self.path:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else str(part)
        return out

    def located(self, file: str | None, line: int | None, column: int | None) -> SpecError:
        """A copy of this error placed in a file at a line and column."""
        return SpecError(self.message, self.path, file=file, line=line, column=column)

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file + ":"
            if self.line is not None:
                where += f"{self.line}:{self.column or 1}:"
            where += " "
        path = self.dotted_path
        return f"{where}{path + ': ' if path else ''}{self.message}"


class SpecErrors(SpecError):
    """Several spec errors found at once; each is reported on its own line."""

    def __init__(self, errors: list[SpecError]) -> None:
        first = errors[0]
        super().__init__(
            first.message, first.path, file=first.file, line=first.line, column=first.column
        )
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(err) for err in self.errors)


class DataError(ComposerError):
    """Invalid weights, inputs or training data (exit code 4)."""

    exit_code = 4


class ResourceError(ComposerError):
    """A run or an unrolling would exceed a resource limit (exit code 5)."""

    exit_code = 5


class WriteError(ResourceError):
    """An output file could not be written (a full disk, a quota, permissions): exit code 5.

    The old file, if any, is untouched: outputs are renamed into place only when whole.
    """


class OutputExistsError(ComposerError):
    """An output file appeared while the command ran, and `--force` was not given: the
    result is not written over it (exit code 2, like an output that existed before)."""

    exit_code = 2


class RenderError(ComposerError):
    """Rendering a diagram failed; the `.dot` file is still written (exit code 6)."""

    exit_code = 6


def key_mismatch(
    expected: Iterable[str],
    received: Iterable[str],
    show: Callable[[str], str] = repr,
    show_extra: Callable[[str], str] | None = None,
) -> str:
    """`missing 'a', 'b'; unexpected 'c'`: the keys expected but not received (in order)
    and received but not expected (sorted), each shown by `show`; empty when they agree.

    Examples
    --------
    >>> key_mismatch(["x", "y"], ["y", "z"])
    "missing 'x'; unexpected 'z'"
    >>> key_mismatch(["x"], ["x"])
    ''
    """
    expected, received = list(expected), list(received)
    missing = [key for key in expected if key not in received]
    extra = sorted(key for key in received if key not in expected)
    parts = [f"missing {', '.join(map(show, missing))}"] if missing else []
    parts += [f"unexpected {', '.join(map(show_extra or show, extra))}"] if extra else []
    return "; ".join(parts)
