"""Messages that point past the first guess: fixed activations, unquoted windows, taps."""

from __future__ import annotations

import pytest

from composer.errors import SpecError, SpecErrors
from composer.graph.folded import build
from composer.spec.reader import read_spec_text

BASE = """\
inputs: [{name: x, size: 2}]
layers:
  - {name: r, kind: KIND, input: INPUT, state_size: 3EXTRA}
outputs:
  - name: o
    from: r
    window: WINDOW
"""


def _errors(kind="elman", extra="", window='":"', source="x") -> list[str]:
    text = BASE.replace("KIND", kind).replace("EXTRA", extra)
    text = text.replace("WINDOW", window).replace("INPUT", source)
    try:
        sourced = read_spec_text(text, "s.yaml")
        build(sourced.spec)
    except SpecErrors as err:
        return [str(e) for e in err.errors]
    except SpecError as err:  # from the graph: placed in the file as the commands do
        return [str(sourced.locate(err))]
    raise AssertionError("no error")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_activation_on_a_gated_layer_says_it_is_fixed_and_lists_the_fields(kind):
    """It used to say: unknown field `activation` (did you mean `active`?)."""
    (error,) = _errors(kind, ", activation: relu")
    column = 48 + len(kind)
    assert error.startswith(f"s.yaml:3:{column}: layers[0].activation: `{kind}` layers take no ")
    assert "activations are fixed" in error and "did you mean" not in error
    assert "they take: name, input, active" in error and "state_size" in error


@pytest.mark.parametrize("window", ["6:", "-1:", "10 :"])
def test_an_unquoted_window_gets_a_hint_to_quote_it(window):
    """It used to be only YAML's `mapping values are not allowed here`."""
    (error,) = _errors(window=window)
    assert error.startswith("s.yaml:7:")
    assert error.endswith(f'(a window such as `{window}` must be quoted: `window: "{window}"`)')


def test_other_yaml_errors_get_no_window_hint():
    (error,) = _errors(extra=", [")
    assert "invalid YAML" in error and "quoted" not in error


@pytest.mark.parametrize(
    ("source", "where", "message"),
    [
        ("{from: x, delays: [1, 1]}", "layers[0].input", "`delays` lists 1 more than once"),
        ("{from: x, delays: []}", "layers[0].input.delays", "at least one"),
        ("{from: x}", "layers[0].input", "missing required field `delays`"),
        ("{from: x, delay: [1]}", "layers[0].input.delay", "did you mean `delays`"),
        ("{from: y, delays: [1]}", "layers[0].input.from", "unknown name `y`"),
    ],
)
def test_tapped_inputs_are_checked_where_they_are_written(source, where, message):
    errors = _errors(source=source)
    assert any(f": {where}: " in e and message in e for e in errors), errors


def test_merge_belongs_to_a_bidirectional_layer_and_names_its_choices():
    (error,) = _errors(extra=", merge: sum")
    assert error.endswith(
        "layers[0]: `merge` combines the two directions of a `bidirectional: true` layer"
    )
    (error,) = _errors(extra=", bidirectional: true, merge: max")
    assert "layers[0].merge:" in error
    assert all(choice in error for choice in ("concat", "sum", "mean", "mul"))


def test_a_bad_tap_inside_a_list_is_reported_once_where_it_is():
    """It also said `layers[0].input: expected a name, ... got a list`."""
    errors = _errors(source="[x, {from: x, delay: [1]}]")
    assert all("layers[0].input[1]" in e for e in errors), errors
