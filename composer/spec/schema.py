"""The JSON Schema of a spec file, from the spec's model (`rnn-composer schema` prints it)."""

from __future__ import annotations

from composer.spec.model import NetworkSpec

__all__ = ["spec_schema"]


def spec_schema() -> dict:
    """The JSON Schema of a spec file."""
    document = NetworkSpec.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "rnn-composer spec"
    return document
