"""Where the unfolded picture's nodes sit: a column per step, a row per vector, pinned.

`dot` lays a grid out badly as soon as an edge passes a row (a bidirectional layer's
two copies, a skip connection): whole columns shift out of line. So positions are
computed here, and `neato` keeps pinned nodes where they are.
"""

from __future__ import annotations

import math

from composer.draw.view import Edge, Node, UnfoldedView

__all__ = ["Grid", "ROW_GAP", "LANE", "AXIS_GAP", "CELL_LIFT"]

ROW_GAP, LANE, AXIS_GAP = 0.9, 0.45, 0.55  # inches between rows and lanes; to the axis
BESIDE_AT = 0.6  # a slanted edge's label: this far from its head, of its visible length
CELL_LIFT = 0.6  # inches above h where `--cell-state` draws an LSTM's c
MIN_WIDTH = 0.75  # inches: Graphviz's least node width (`width`), which short names get


class Grid:
    """Node centres in inches (`where[vector, column]`) and column centres (`xs`).

    A row whose delay-k recurrence would run straight through its own nodes is split
    into k lanes: the chain t = c, c + k, c + 2k, ... runs along lane c.
    """

    def __init__(
        self, view: UnfoldedView, names: dict[str, str], lags: dict[str, int], label_chars: int
    ) -> None:
        """`names`: vectors as drawn; `lags`: each state's recurrence lag; `label_chars`:
        the longest edge label, which the gap between columns must hold."""
        self.view, self.names = view, names
        steps: dict[str, list[int]] = {v: [] for v in view.rows}
        for n in view.nodes:
            if n.step is not None:
                steps.setdefault(n.vector, []).append(n.step)
        self.lanes = {v: _lanes(sorted(steps[v]), abs(lags.get(v) or 1)) for v in view.rows}
        self.rank = {v: i for i, v in enumerate(view.rows)}
        self.xs = self._column_x(gap=0.35 + 0.07 * label_chars)
        ys = self._row_y()
        self.where = {
            (n.vector, n.column): (self.xs[n.column], ys[n.vector] + self._lane(n) * LANE)
            for n in view.nodes
        }

    def column_gap(self, column: int) -> float:
        """Inches from a column's centre to the next one's (to the previous one's for the
        last column)."""
        if column + 1 < len(self.xs):
            return self.xs[column + 1] - self.xs[column]
        return self.xs[column] - self.xs[column - 1] if column else 1.0

    def pos(self, node: Node) -> str:
        """The node's pinned position for neato."""
        return "{:.2f},{:.2f}!".format(*self.where[node.vector, node.column])

    def axis_pos(self, column: int) -> str:
        return f"{self.xs[column]:.2f},{-AXIS_GAP:.2f}!"

    def width(self, node: Node) -> float:
        """About how wide a node is drawn, in inches (12 pt DejaVu Sans, subscripted step)."""
        if node.step is None:
            return 0.5
        chars = len(self.names[node.vector]) + 0.7 * len(str(node.step))
        chars += 4 if node.role == "init" else 0  # ` = 0`
        return max(MIN_WIDTH, 0.3 + 0.105 * chars)

    def crossing(self) -> bool:
        """Whether some edge drawn straight would pass through a node other than its ends.

        Each edge is sampled at 23 points; a point is tested only against the nodes in its
        cell of a coarse grid, so the work grows with the edges, not edges times nodes.
        """
        buckets: dict[tuple[int, int], list] = {}
        for n in self.view.nodes:
            (x, y), half = self.where[n.vector, n.column], self.width(n) / 2
            box = (x, y, half, (n.vector, n.column))
            for cell in _cells(x - half, x + half, y - _HALF_HEIGHT, y + _HALF_HEIGHT):
                buckets.setdefault(cell, []).append(box)
        for edge in self.view.edges:
            ends = _cell(edge.tail), _cell(edge.head)
            (x0, y0), (x1, y1) = self.where[ends[0]], self.where[ends[1]]
            for k in range(1, 24):
                px, py = x0 + (x1 - x0) * k / 24, y0 + (y1 - y0) * k / 24
                for x, y, half, cell in buckets.get(_bucket(px, py), ()):
                    if abs(px - x) < half and abs(py - y) < _HALF_HEIGHT and cell not in ends:
                        return True
        return False

    def midway(self, edge: Edge) -> dict[str, float]:
        """`labeldistance` and `labelangle` that put a head label above the middle of an
        edge along a row (neato would put a plain label at either end)."""
        (x0, _), (x1, _) = self.where[_cell(edge.tail)], self.where[_cell(edge.head)]
        visible = abs(x1 - x0) - (self.width(edge.tail) + self.width(edge.head)) / 2
        along = max(visible, 0.2) * 72 / 2  # points from the arrowhead to the middle
        angle = math.degrees(math.atan2(7, along))
        return {"labeldistance": round(along / 10, 2), "labelangle": -round(angle, 1)}

    def beside(self, edge: Edge, chars: int) -> dict[str, float]:
        """`labeldistance` and `labelangle` that put the head label of a slanted edge
        beside it, clear of its line and of the nodes: a label of `chars` characters
        (9 pt) sits on the upper side, moved off the line by as much as its box reaches
        across it, `BESIDE_AT` of the way from the head; an edge spanning several columns
        or rows is named half a column (or row) from its tail, between the nodes rather
        than next to one it passes."""
        (x0, y0), (x1, y1) = self.where[_cell(edge.tail)], self.where[_cell(edge.head)]
        length = math.hypot(x1 - x0, y1 - y0)
        ux, uy = (x0 - x1) / length, (y0 - y1) / length  # from the head towards the tail
        visible = length - (self.width(edge.tail) + self.width(edge.head)) / 2 * abs(ux)
        visible -= 2 * _HALF_HEIGHT * abs(uy)
        along = max(visible, 0.2) * 72 * BESIDE_AT  # points from the arrowhead
        columns = abs(edge.head.column - edge.tail.column)
        rows = abs(self.rank[edge.head.vector] - self.rank[edge.tail.vector])
        if max(columns, rows) > 1:
            head = self.width(edge.head) / 2 * abs(ux) + _HALF_HEIGHT * abs(uy)
            along = max(length * (1 - 0.5 / max(columns, rows)) - head, 0.2) * 72
        width, height = 5.0 * chars + 2, 11.0  # points: the label's box
        nx_, ny_ = -uy, ux  # a normal; the one pointing up
        if ny_ < 0 or (ny_ == 0 and nx_ < 0):
            nx_, ny_ = -nx_, -ny_
        if rows > 1:  # past a row: on the side away from the column it leaves
            nx_, ny_ = (-nx_, -ny_) if nx_ * (x1 - x0) < 0 else (nx_, ny_)
        off = abs(nx_) * width / 2 + abs(ny_) * height / 2 + 2
        # the angle from the edge's direction to the label, negative clockwise
        turn = ux * ny_ - uy * nx_  # > 0: the normal is counterclockwise of the direction
        angle = math.degrees(math.atan2(off, along)) * (1 if turn > 0 else -1)
        return {
            "labeldistance": round(math.hypot(along, off) / 10, 2),
            "labelangle": round(angle, 1),
        }

    def passed(self, edge: Edge) -> bool:
        """Whether an edge up one column passes nodes drawn in the rows between its ends."""
        column = edge.tail.column
        if column != edge.head.column:
            return False
        low, high = sorted((self.rank[edge.tail.vector], self.rank[edge.head.vector]))
        return any((v, column) in self.where for v in self.view.rows[low + 1 : high])

    def _lane(self, node: Node) -> int:
        lanes = self.lanes[node.vector]
        return 0 if node.step is None or lanes == 1 else node.step % lanes

    def _row_y(self) -> dict[str, float]:
        ys, y = {}, 0.0
        for vector in self.view.rows:
            ys[vector] = y
            y += ROW_GAP + (self.lanes[vector] - 1) * LANE
        return ys

    def _column_x(self, gap: float) -> list[float]:
        """Each column as wide as its widest node, then `gap` for an edge's label."""
        widths = [0.5] * len(self.view.columns)
        for node in self.view.nodes:
            widths[node.column] = max(widths[node.column], self.width(node))
        xs = [0.0]
        for left, right in zip(widths, widths[1:]):
            xs.append(xs[-1] + (left + right) / 2 + gap)
        return xs


_HALF_HEIGHT = 0.2  # inches above and below a node's centre that an edge must not cross
_BUCKET = 1.0  # inches: the side of a square of `crossing`'s grid


def _bucket(x: float, y: float) -> tuple[int, int]:
    return math.floor(x / _BUCKET), math.floor(y / _BUCKET)


def _cells(x0: float, x1: float, y0: float, y1: float):
    (i0, j0), (i1, j1) = _bucket(x0, y0), _bucket(x1, y1)
    return ((i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1))


def _cell(node: Node) -> tuple[str, int]:
    return node.vector, node.column


def _lanes(steps: list[int], lag: int) -> int:
    if lag == 1 or all(b - a >= lag for a, b in zip(steps, steps[1:])):
        return 1
    return lag
