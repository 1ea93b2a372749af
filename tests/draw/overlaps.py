"""Where Graphviz put each node and each label, read from `dot -Tjson`, and which label
boxes overlap a node or another label: the layout checked by geometry, not by eye.

A node is its drawn outline (an ellipse as an ellipse, any other shape as its bounding
box); a label is the box of its text runs (`T` operations: baseline, alignment, width
and font size). Coordinates are Graphviz's points, y upwards.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

__all__ = ["Box", "Shape", "layout_json", "node_shapes", "label_boxes", "overlaps"]

#: how far text reaches above and below its baseline, in font sizes (Helvetica's caps and
#: descenders, as Graphviz measures a line)
ASCENT, DESCENT = 0.75, 0.22
#: boxes that only touch, by less than this many points, do not overlap
SLACK = 0.5


@dataclass(frozen=True)
class Box:
    what: str
    x0: float
    y0: float
    x1: float
    y1: float

    def meets(self, other: Box) -> bool:
        return (
            min(self.x1, other.x1) - max(self.x0, other.x0) > SLACK
            and min(self.y1, other.y1) - max(self.y0, other.y0) > SLACK
        )


@dataclass(frozen=True)
class Shape:
    """A node's outline: an ellipse (centre, radii) or a box."""

    what: str
    box: Box
    ellipse: tuple[float, float, float, float] | None = None

    def meets(self, box: Box) -> bool:
        if not self.box.meets(box):
            return False
        if self.ellipse is None:
            return True
        cx, cy, rx, ry = self.ellipse
        # the point of the box nearest the centre, inside the ellipse shrunk by the slack?
        px, py = min(max(cx, box.x0), box.x1), min(max(cy, box.y0), box.y1)
        rx, ry = max(rx - SLACK, 0.1), max(ry - SLACK, 0.1)
        return ((px - cx) / rx) ** 2 + ((py - cy) / ry) ** 2 < 1


def layout_json(dot_text: str) -> dict:
    """`dot -Tjson` of DOT text (the layout engine the text names, neato or dot)."""
    done = subprocess.run(["dot", "-Tjson"], input=dot_text.encode(), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def _text_boxes(ops: list[dict], what: str) -> list[Box]:
    boxes, size = [], 14.0
    for op in ops:
        if op["op"] == "F":
            size = op["size"]
        elif op["op"] == "T" and op["text"].strip():
            (x, y), width = op["pt"], op["width"]
            x0 = {"l": x, "c": x - width / 2, "r": x - width}[op["align"]]
            boxes.append(Box(what, x0, y - DESCENT * size, x0 + width, y + ASCENT * size))
    return boxes


def _union(boxes: list[Box], what: str) -> Box | None:
    if not boxes:
        return None
    return Box(
        what,
        min(b.x0 for b in boxes),
        min(b.y0 for b in boxes),
        max(b.x1 for b in boxes),
        max(b.y1 for b in boxes),
    )


def node_shapes(layout: dict) -> list[Shape]:
    """Every node's outline; a plain-text node (an axis tick, `⋯`) is its text's box."""
    found = []
    for node in layout.get("objects", []):
        if "pos" not in node:
            continue  # a subgraph
        what = node.get("id") or node["name"]
        ellipses = [op["rect"] for op in node.get("_draw_", []) if op["op"] in ("E", "e")]
        points = [p for op in node.get("_draw_", []) if op["op"] in ("P", "p", "L", "b", "B")
                  for p in op["points"]]  # fmt: skip
        if ellipses:
            cx, cy, rx, ry = max(ellipses, key=lambda r: r[2])  # the outer of a double
            box = Box(what, cx - rx, cy - ry, cx + rx, cy + ry)
            found.append(Shape(what, box, (cx, cy, rx, ry)))
        elif points:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            found.append(Shape(what, Box(what, min(xs), min(ys), max(xs), max(ys))))
        else:
            box = _union(_text_boxes(node.get("_ldraw_", []), what), what)
            if box is not None:
                found.append(Shape(what, box))
    return found


_LABEL_OPS = {"_ldraw_": "label", "_hldraw_": "headlabel", "_tldraw_": "taillabel",
              "_xldraw_": "xlabel"}  # fmt: skip


def label_boxes(layout: dict) -> list[Box]:
    """The box of every edge label (label, head, tail and external labels)."""
    found = []
    for edge in layout.get("edges", []):
        name = edge.get("id") or f"{edge['tail']}->{edge['head']}"
        for key, kind in _LABEL_OPS.items():
            box = _union(_text_boxes(edge.get(key, []), ""), f"{kind} of {name}")
            if box is not None:
                found.append(box)
    return found


def overlaps(dot_text: str) -> list[str]:
    """Each label box that meets a node or another label, said in words ([] when clear)."""
    layout = layout_json(dot_text)
    shapes, labels = node_shapes(layout), label_boxes(layout)
    found = [
        f"{label.what} {_text(label)} meets node {shape.what}"
        for label in labels
        for shape in shapes
        if shape.meets(label)
    ]
    for i, one in enumerate(labels):
        for other in labels[i + 1 :]:
            if one.meets(other):
                found.append(f"{one.what} {_text(one)} meets {other.what} {_text(other)}")
    return found


def _text(box: Box) -> str:
    return f"[{box.x0:.0f}..{box.x1:.0f} x {box.y0:.0f}..{box.y1:.0f}]"


def _bezier(points: list[list[float]], samples: int = 12) -> list[tuple[float, float]]:
    """Points along a piecewise cubic Bézier path (Graphviz's `b` operation)."""
    found = []
    for i in range(0, len(points) - 3, 3):
        p0, p1, p2, p3 = points[i : i + 4]
        for k in range(samples + 1):
            t = k / samples
            a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3
            found.append(tuple(a * p0[j] + b * p1[j] + c * p2[j] + d * p3[j] for j in (0, 1)))
    return found


def edge_paths(layout: dict) -> dict[str, list[tuple[float, float]]]:
    """Each edge's line as points, by its id."""
    found = {}
    for edge in layout.get("edges", []):
        name = edge.get("id") or f"{edge['tail']}->{edge['head']}"
        points = [p for op in edge.get("_draw_", []) if op["op"] in ("b", "B")
                  for p in _bezier(op["points"])]  # fmt: skip
        found[name] = points
    return found


def crossings(dot_text: str) -> list[str]:
    """Each label box an edge's line passes through, its own edge's included."""
    layout = layout_json(dot_text)
    found = []
    for label in label_boxes(layout):
        for name, points in edge_paths(layout).items():
            inside = [
                (x, y)
                for x, y in points
                if label.x0 + SLACK < x < label.x1 - SLACK
                and label.y0 + SLACK < y < label.y1 - SLACK
            ]
            if inside:
                found.append(f"{label.what} {_text(label)} is crossed by {name}")
    return found
