"""The spec: its Pydantic model and JSON Schema, the reader that locates every error in
the file, windows."""

from composer.spec.model import NetworkSpec
from composer.spec.reader import SourcedSpec, load_spec, read_spec, read_spec_text
from composer.spec.schema import spec_schema
from composer.spec.starters import starter
from composer.spec.windows import fitting_steps, parse_window

__all__ = [
    "NetworkSpec",
    "SourcedSpec",
    "load_spec",
    "read_spec",
    "read_spec_text",
    "spec_schema",
    "starter",
    "parse_window",
    "fitting_steps",
]
