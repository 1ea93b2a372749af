"""The interactive page: the folded and unfolded pictures side by side in one HTML file.

Graphviz lays out every picture here, as it does the PNGs, so the page and the files agree:
the unfolded network is drawn once for each T of a range and the page switches between the
drawings. Clicking an unrolled node shades what it depends on and, in another colour, what
depends on it; clicking a folded vector or weight shades every unrolled copy of it.
Everything is inlined: the page makes no request.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import networkx as nx
import numpy as np

from composer.draw.folded_picture import folded_dot
from composer.draw.style import Style, merged_readouts
from composer.draw.unfolded_picture import unfolded_dot
from composer.draw.view import (
    StepTemplate,
    display_names,
    folded_edge_id,
    kept_columns,
    same_steps,
    tapped_pairs,
    weight_label,
)
from composer.errors import ComposerError, DataError
from composer.graph.deps import dependencies
from composer.graph.unrolled import Unrolled
from composer.graph.weights import param_table
from composer.kinds import KINDS
from composer.readable import format_steps

__all__ = [
    "page_html",
    "page_data",
    "page_steps",
    "fingerprint",
    "page_stamp",
    "embedded_json",
    "PAGE_COLUMNS",
]

#: the most steps a page draws: every T from the smallest that unrolls up to this many
PAGE_COLUMNS = 12

_ASSETS = Path(__file__).with_name("page_assets")

#: the page's content-security policy: nothing is fetched, sent or re-based (`form-action`
#: and `base-uri` do not fall back to `default-src`, so they are named)
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; form-action 'none'; base-uri 'none'"
)


def page_steps(steps: int, unroll: Callable[[int], Unrolled]) -> list[tuple[int, Unrolled]]:
    """The unrollings a page offers: each T from 1 to min(steps, PAGE_COLUMNS) that the
    network accepts (some need a few steps), and `steps` itself when larger (drawn with
    its middle steps elided)."""
    found = []
    for t in [*range(1, min(steps, PAGE_COLUMNS) + 1), *([steps] if steps > PAGE_COLUMNS else [])]:
        try:
            found.append((t, unroll(t)))
        except ComposerError:
            continue
    if not found:
        raise ComposerError(f"the network does not unroll to any T from 1 to {steps}")
    return found


def page_html(
    name: str,
    unrollings: list[tuple[int, Unrolled]],
    svg: Callable[[str], str],
    *,
    style: Style = Style(),
    values: Mapping[str, np.ndarray] | None = None,
    start: int | None = None,
) -> str:
    """The page's HTML for a network unrolled at several T (`page_steps`). `svg` turns DOT
    text into SVG text (`dot -Tsvg`). `values` (a trace of one sequence, by key, arrays
    (T, size), or such traces by T) shows each vector's values on its nodes, at each T
    traced. `start` is
    the T shown first (default: the largest)."""
    data = page_data(name, unrollings, style=style, values=values, start=start)
    stamp = fingerprint(data)
    data["folded"] = _clean(svg(data["folded"]))
    for drawing in data["drawings"]:
        drawing["svg"] = _clean(svg(drawing["svg"]))
    script = (_ASSETS / "page.js").read_text(encoding="utf-8")
    style_sheet = (_ASSETS / "page.css").read_text(encoding="utf-8")
    payload = embedded_json(data)
    title = _escape(f"{name}: folded and unfolded")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
        f'<meta name="generator" content="rnn-composer; source {stamp}">\n'
        f"<title>{title}</title>\n<style>\n{style_sheet}</style>\n</head>\n<body>\n"
        f"<header><h1>{_escape(name)}</h1>\n"
        '<p id="help">Click (or tab to and press Enter on) a node of the unfolded network: '
        '<span class="key anc">what it depends on</span> and <span class="key desc">what '
        "depends on it</span>. Click a folded vector or weight: "
        '<span class="key copy">every unrolled copy</span>. Esc clears.</p>\n'
        '<label id="steps-label">T = <output id="steps-value"></output> '
        '<input id="steps" type="range" aria-label="number of steps T"></label>\n'
        '<span id="zoom" role="group" aria-label="zoom the unfolded network">'
        '<button id="zoom-out" type="button" aria-label="zoom out">−</button>'
        '<button id="zoom-fit" type="button" aria-label="fit the width">fit</button>'
        '<button id="zoom-in" type="button" aria-label="zoom in">+</button></span>\n'
        '<p id="status" role="status" aria-live="polite"></p></header>\n'
        '<main><section id="folded-view" aria-label="the folded network"></section>\n'
        '<section id="unfolded-view" aria-label="the unfolded network"></section></main>\n'
        '<div id="tip" role="tooltip" hidden></div>\n'
        f'<script id="data" type="application/json">{payload}</script>\n'
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )


def page_data(
    name: str,
    unrollings: list[tuple[int, Unrolled]],
    *,
    style: Style = Style(),
    values: Mapping[str, np.ndarray] | None = None,
    start: int | None = None,
) -> dict:
    """What the page holds, with each picture still as DOT text (`folded`, `svg`)."""
    folded = unrollings[0][1].folded
    merge = merged_readouts(folded) if style.readout == "merged" else {}
    drawings = [
        {
            "T": steps,
            "svg": unfolded_dot(unrolled, style=style),
            **_graph(unrolled, same_steps(unrolled, merge)),
        }
        for steps, unrolled in unrollings
    ]
    return {
        "name": name,
        "folded": folded_dot(folded, style=style),
        "foldedEdges": _folded_edges(folded, merge, style),
        "info": _info(folded, merge, unrollings),
        "drawings": drawings,
        "start": start if start is not None else unrollings[-1][0],
        "values": _values(values, unrollings, merge) if values is not None else None,
    }


def fingerprint(data: dict) -> str:
    """A digest of a page's sources (its data with the DOT texts, script and style sheet):
    a page is current when the digest it carries is the one its sources give now, which
    needs no Graphviz to check. The policy counts too."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    digest.update(POLICY.encode())
    for asset in ("page.js", "page.css"):
        digest.update((_ASSETS / asset).read_bytes())
    return digest.hexdigest()[:16]


def page_stamp(html: str) -> str | None:
    """The source digest a written page carries (`fingerprint`), or None."""
    match = re.search(r'<meta name="generator" content="rnn-composer; source (\w+)">', html)
    return match.group(1) if match else None


#: characters the HTML parser reads inside a script block (`</script`, `<!--`) and `&`,
#: written as JSON escapes, which JSON.parse reads back as the same characters
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def embedded_json(data: dict) -> str:
    """`data` as JSON text safe inside `<script type="application/json">`: no `<`, `>` or
    `&` (so no name can end the block or open a comment in it), and no NaN or Infinity,
    which JSON.parse refuses (`_values` refuses them first, with a message)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).translate(_HTML_SAFE)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _clean(svg_text: str) -> str:
    """SVG text fit to inline: no XML prolog, doctype or comments."""
    return _COMMENT.sub("", _PROLOG.sub("", svg_text, count=1)).strip()


def _node_id(node: tuple[str, int], renamed: dict[str, str]) -> str:
    vector, t = node
    return f"{renamed.get(vector, vector)}@{t}"


def _graph(unrolled: Unrolled, renamed: dict[str, str]) -> dict:
    """The drawn nodes and every edge between them: (tail, head, weight) by index. Without
    elided columns these are the whole unrolled DAG; with them, each node's cone is listed
    too (`cones`), since paths run through steps that are not drawn."""
    template = StepTemplate(unrolled)
    columns = kept_columns(unrolled)
    kept = [c.first for c in columns if not c.elided]
    nodes: list[str] = []
    index: dict[str, int] = {}
    cells = [(v, t) for t in sorted({*kept, *_initial_steps(unrolled)}) for v in unrolled.folded
             if template.role((v, t))]  # fmt: skip
    drawn = set()
    for cell in cells:
        if cell[1] not in kept and template.role(cell) not in ("init", "given"):
            continue
        drawn.add(cell)
        key = _node_id(cell, renamed)
        if key not in index:
            index[key] = len(nodes)
            nodes.append(key)
    edges, weights = [], []
    for cell in sorted(drawn, key=lambda c: (c[1], c[0])):
        for source, attrs in template.in_edges(cell):
            if source not in drawn:
                continue
            tail, head = _node_id(source, renamed), _node_id(cell, renamed)
            if tail == head:
                continue
            weights.append(attrs["weight"])
            edges.append([index[tail], index[head], attrs["weight"]])
    found = {"nodes": nodes, "edges": edges, "deps": _deps_text(unrolled, template, drawn, renamed)}
    if any(c.elided for c in columns):
        found["cones"] = {
            nodes[index[_node_id(cell, renamed)]]: sorted(
                {index[_node_id(n, renamed)] for n in template.cone(cell) if n in drawn}
            )
            for cell in sorted(drawn, key=lambda c: (c[1], c[0]))
        }
    return found


def _deps_text(unrolled: Unrolled, template: StepTemplate, drawn, renamed) -> dict[str, str]:
    """What each drawn node depends on, written as `deps` writes it (`y[3] <- x[0..3]`):
    an emitted output's line is `deps`' own; any other node's lists the input steps of its
    whole cone, drawn or elided, inputs in the network's order."""
    folded = unrolled.folded
    shown = {_node_id(cell, renamed) for cell in drawn}
    lines = {
        f"{output}@{t}": f"{output}[{t}] <- {_inputs_text(found)}"
        for output, per_step in dependencies(unrolled).items()
        for t, found in per_step.items()
        if f"{output}@{t}" in shown
    }
    order = nx.get_node_attributes(folded, "order")
    for cell in sorted(drawn, key=lambda c: (c[1], order[c[0]])):
        key = _node_id(cell, renamed)
        if key in lines or folded.nodes[cell[0]]["role"] == "input":
            continue
        found: dict[str, list[int]] = {}
        for vector, t in template.cone(cell):
            data = folded.nodes[vector]
            if data["role"] == "input":
                steps = found.setdefault(vector, [])
                if not data.get("given_state"):
                    steps.append(t)
        ordered = {v: sorted(found[v]) for v in sorted(found, key=order.get)}
        name, step = key.rpartition("@")[::2]
        lines[key] = f"{name}[{step}] <- {_inputs_text(ordered)}"
    return lines


def _inputs_text(found: Mapping[str, list[int]]) -> str:
    parts = [f"{name}[{format_steps(steps)}]" if steps else name for name, steps in found.items()]
    return ", ".join(parts) or "(no input)"


def _initial_steps(unrolled: Unrolled) -> set[int]:
    return {t for ts in unrolled.initial.values() for t in ts}


def _folded_edges(
    folded: nx.MultiDiGraph, merge: dict[str, str], style: Style
) -> dict[str, list[str]]:
    """The folded picture's edge ids -> the weights they draw (a shaded weight's copies;
    all of a pair's taps when they are drawn as one edge)."""
    found: dict[str, list[str]] = {}
    tapped = tapped_pairs(folded) if style.taps == "apart" else set()
    for tail, head, data in folded.edges(data=True):
        if data["weight"] is None:
            continue
        key = folded_edge_id(merge.get(tail, tail), merge.get(head, head), data,
                             {(merge.get(t, t), merge.get(h, h)) for t, h in tapped})  # fmt: skip
        found.setdefault(key, [])
        if data["weight"] not in found[key]:
            found[key].append(data["weight"])
    return found


def _info(folded: nx.MultiDiGraph, merge: dict[str, str], unrollings) -> dict:
    """What hovering shows: each vector's size, formula and steps, each weight's shape."""
    names = display_names(folded)
    shown_as = {output: readout for readout, output in merge.items()}
    vectors = {}
    for node, data in folded.nodes(data=True):
        if node in merge:
            continue
        source = shown_as.get(node, node)
        source_data = folded.nodes[source]
        steps = {t: format_steps(u.steps_of(node), limit=3) or "none" for t, u in unrollings}
        vectors[node] = {
            "name": names[node],
            "role": data["role"],
            "size": data["size"],
            "formula": _formula(folded, source, names, source_data, names[node])
            + (f" (the readout {names[source]}, emitted as {node})" if source != node else ""),
            "steps": steps,
        }
    weights = {info.key: list(info.shape) for info in param_table(folded)}
    return {"vectors": vectors, "weights": weights}


def _formula(
    folded: nx.MultiDiGraph, node: str, names: dict, data: dict, shown: str | None = None
) -> str:
    """The lecture's formula, read off the folded graph's in-edges:
    `s_t = tanh(x_t Wx + s_{t-1} Ws + b)`, `y_t = softmax(s_t Wy + by)`. Each term names its
    weight as the diagrams do, with the block of a weight read in parts (`Wy[0:24]`, a
    bidirectional layer's two halves), and the bias by its key (`b`, `by`). `shown`: the
    name on the left when another node draws this one (an output drawing its readout)."""
    role = data["role"]
    if role == "input" and data.get("given_state"):
        return f"{names[node]}: a start state, given with the data (no steps)"
    if role == "input":
        return f"{names[node]}_t: given"
    terms = []
    edges = sorted(folded.in_edges(node, data=True), key=lambda e: (folded.nodes[e[0]]["order"],
                                                                      -e[2]["lag"]))  # fmt: skip
    for source, _, edge in edges:
        lag = edge["lag"]
        step = "t" if lag == 0 else f"{{t{-lag:+d}}}"
        term = f"{names[source]}_{step}"
        if edge["weight"]:
            weight = weight_label(folded, edge["weight"])
            shape, rows = edge["shape"], edge["rows"]
            if shape is not None and rows != (0, shape[0]):
                weight += f"[{rows[0]}:{rows[1]}]"
            term += f" {weight}"
        terms.append(term)
    lhs = f"{shown or names[node]}_t = "
    if role == "output":
        return lhs + ", ".join(terms)
    if role == "merge":  # a bidirectional layer's two states, step by step
        return (
            lhs
            + (" * " if data["merge"] == "mul" else " + ").join(terms)
            + (" (elementwise)" if data["merge"] == "mul" else ", halved")
        )
    biases = [weight_label(folded, key) for key in _bias_keys(folded, data)]
    total = " + ".join([*terms, *biases])
    if role == "state":
        kind = KINDS[data["kind"]]
        if not kind.gate_names:  # a plain recurrence: its activation of the sum
            return lhs + f"{data.get('activation') or 'tanh'}({total})"
        cell = kind.picture.tag.split(" (")[0].removesuffix(" h")  # LSTM, GRU
        return (
            lhs
            + f"{cell}({total})"
            + (f", activation {data['activation']}" if data.get("activation") else "")
        )
    activation = data.get("activation") or "identity"
    return lhs + (total if activation == "identity" else f"{activation}({total})")


def _bias_keys(folded: nx.MultiDiGraph, data: dict) -> list[str]:
    """The keys of a vector's biases (`s.b`, `s.b_rev`, a GRU's `bx` and `bs`, `s.by`)."""
    if not data.get("bias") or "layer" not in data:
        return []
    keys = {info.key for info in param_table(folded)}
    layer, suffix = data["layer"], data.get("suffix", "")
    if data["role"] == "state":
        wanted = [f"{layer}.{b}{suffix}" for b in ("b", "bx", "bs")]
    elif data["role"] == "readout":
        wanted = [f"{layer}.by"]
    else:
        wanted = [f"{layer}.b"]
    return [key for key in wanted if key in keys]


def _values(values, unrollings, merge) -> dict:
    """{str(T): {"T": T, "cells": {node id: [numbers of the first sequence]}, "scale":
    max |v|}} for each T traced: `values` is one trace (by key, (T, size) arrays) or
    traces by T (`{T: trace}`, the input's first T steps run at each T the page offers)."""
    if values and all(isinstance(key, int) for key in values):
        return {str(t): _one_trace(found, merge) for t, found in sorted(values.items())}
    found = _one_trace(values, merge)
    return {str(found["T"]): found}


def _one_trace(values: Mapping[str, np.ndarray], merge) -> dict:
    steps = next(iter(values.values())).shape[0]
    cells, biggest = {}, 0.0
    for key, array in values.items():
        if array.ndim != 2 or key in merge:  # a merged readout's values are its output's
            continue
        for t in range(min(steps, array.shape[0])):
            row = array[t]
            if np.isnan(row).all():
                continue
            shown = row[:16]
            bad = np.flatnonzero(~np.isfinite(row))
            if bad.size:  # an overflow: JSON has no Infinity or NaN, and no colour shows it
                raise DataError(
                    f"the traced values overflow: {key} at step {t} holds {row[bad[0]]} "
                    f"(element {bad[0]}); the page shows finite values only, so check the "
                    "weights and the input"
                )
            cells[f"{key}@{t}"] = [round(float(v), 4) for v in shown]
            biggest = max(biggest, float(np.abs(shown).max()) if shown.size else 0.0)
    return {"T": steps, "cells": cells, "scale": biggest if math.isfinite(biggest) else 1.0}
