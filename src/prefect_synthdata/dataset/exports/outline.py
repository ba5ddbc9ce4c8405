"""A mask's outline as one polygon on the pixel-corner lattice (numpy only).

Vertices are pixel corners, so the polygon's extent is exactly the mask's tight box
(`x0, y0, x0 + w, y0 + h`) and, filled, it covers exactly the mask's pixels. Outer
boundaries run one way round and holes the other; the pieces and holes are joined
into one polygon by bridges walked there and back, which add nothing under either
fill rule (even-odd or non-zero), as single-polygon formats such as YOLO's need.

Example:
    >>> import numpy as np
    >>> mask = np.zeros((4, 5), bool); mask[1:3, 1:4] = True
    >>> outline(mask)
    [(1, 1), (1, 3), (4, 3), (4, 1)]
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

Point = tuple[int, int]


def _boundary_edges(mask: np.ndarray) -> list[tuple[Point, Point]]:
    """Directed pixel-side edges between mask and background, each loop closed."""
    padded = np.pad(mask, 1)
    inside = padded[1:-1, 1:-1]
    edges: list[tuple[Point, Point]] = []
    sides = (  # (neighbour offset (dr, dc), start corner, end corner) of the side facing it
        ((-1, 0), (1, 0), (0, 0)),  # top, walked right to left
        ((0, -1), (0, 0), (0, 1)),  # left, downwards
        ((1, 0), (0, 1), (1, 1)),  # bottom, left to right
        ((0, 1), (1, 1), (1, 0)),  # right, upwards
    )
    height, width = mask.shape
    for (dr, dc), (sx, sy), (ex, ey) in sides:
        neighbour = padded[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width]
        rows, cols = np.nonzero(inside & ~neighbour)
        edges.extend(
            ((int(c) + sx, int(r) + sy), (int(c) + ex, int(r) + ey))
            for r, c in zip(rows, cols, strict=True)
        )
    return edges


def _loops(edges: list[tuple[Point, Point]]) -> list[list[Point]]:
    """Chain directed edges into closed loops of corner points."""
    outgoing: dict[Point, list[Point]] = defaultdict(list)
    for start, end in edges:
        outgoing[start].append(end)
    loops = []
    for start in sorted(outgoing):
        while outgoing[start]:
            loop, point = [start], outgoing[start].pop()
            while point != start:
                loop.append(point)
                point = outgoing[point].pop()
            loops.append(loop)
    return loops


def _corners(loop: list[Point]) -> list[Point]:
    """The loop without points in the middle of straight runs."""
    out = []
    for i, (x, y) in enumerate(loop):
        px, py = loop[i - 1]
        nx, ny = loop[(i + 1) % len(loop)]
        if (x - px) * (ny - y) != (y - py) * (nx - x):
            out.append((x, y))
    return out


def _signed_area(loop: list[Point]) -> int:
    return sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(loop, loop[1:] + loop[:1], strict=True)
    )


def outline(mask: np.ndarray) -> list[Point]:
    """The outline of a bool mask as one polygon of (x, y) corners; [] if empty."""
    loops = sorted(
        (_corners(loop) for loop in _loops(_boundary_edges(mask))),
        key=lambda loop: _signed_area(loop) >= 0,  # outer boundaries first, then holes
    )
    if not loops:
        return []
    first, rest = loops[0], loops[1:]
    if not rest:
        return first
    polygon = [*first, first[0]]
    for loop in rest:  # a bridge out to each loop, walked back at the end
        polygon += [*loop, loop[0]]
    return polygon + [loop[0] for loop in reversed(rest[:-1])]
