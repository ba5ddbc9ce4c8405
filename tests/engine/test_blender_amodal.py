"""The blender generator's amodal areas (`blender/amodal.py`): pure numpy, so these run
without the extra; `test_blender.py` checks them against Cycles rendering each object alone."""

from __future__ import annotations

import numpy as np

from prefect_synthdata.engine.generators.blender.amodal import (
    amodal_pixels,
    covered_pixels,
    project,
)

K = np.array([[50.0, 0.0, 20.0], [0.0, 50.0, 15.0], [0.0, 0.0, 1.0]])


def rectangle(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Two triangles covering [x0, x1] x [y0, y1], wound opposite ways."""
    return np.array([[[x0, y0], [x1, y0], [x1, y1]], [[x0, y0], [x0, y1], [x1, y1]]])


def test_covered_pixels_are_those_whose_centre_is_inside() -> None:
    mask = covered_pixels(rectangle(2.2, 3.0, 9.6, 6.4), 12, 16)
    expected = np.zeros((12, 16), bool)
    expected[3:6, 2:10] = True  # centres 3.5..5.5 and 2.5..9.5; 2.5 and 6.5 rows fall outside
    assert np.array_equal(mask, expected)


def test_overlapping_triangles_count_once_and_the_frame_clips() -> None:
    both = np.concatenate([rectangle(0, 0, 6, 6), rectangle(3, 3, 9, 9), rectangle(0, 0, 6, 6)])
    assert covered_pixels(both, 20, 20).sum() == 36 + 36 - 9
    assert covered_pixels(rectangle(-5, -5, 4, 30), 10, 10).sum() == 4 * 10


def test_degenerate_and_outside_triangles_cover_nothing() -> None:
    line = np.array([[[0.0, 0.0], [5.0, 5.0], [10.0, 10.0]]])
    outside = rectangle(20, 20, 30, 30)
    assert covered_pixels(np.concatenate([line, outside]), 10, 10).sum() == 0


def test_projection_follows_the_pinhole_model() -> None:
    points = np.array([[0.0, 0.0, 2.0], [1.0, -0.5, 1.0]])
    assert np.allclose(project(points, K), [[20.0, 15.0], [70.0, -10.0]])


def test_amodal_pixels_of_a_square_facing_the_camera() -> None:
    # a 0.2 m square 1 m in front: 10 x 10 pixels centred on the principal point
    corners = np.array([[-0.1, -0.1, 1.0], [0.1, -0.1, 1.0], [0.1, 0.1, 1.0], [-0.1, 0.1, 1.0]])
    square = corners[[[0, 1, 2], [0, 2, 3]]]
    assert amodal_pixels(square, K, 30, 40) == 100
    behind = square * np.array([1.0, 1.0, -1.0])  # mirrored behind the camera: left out
    assert amodal_pixels(np.concatenate([square, behind]), K, 30, 40) == 100
