"""Amodal areas: how many pixels an object would cover with nothing in front of it.

Cycles' object-index pass only holds what is visible, and a render per object to get
the rest would double the cost of a frame. The object's triangles, projected through
the frame's camera, give it exactly and cheaply instead: a pixel counts when its
centre lies inside one of the object's projected triangles (the union, so a mesh's
front and back faces count once). Pure numpy, one bounded box of pixels per triangle.

The index pass decides an edge pixel by where its first sample landed (anywhere in the
pixel filter's footprint), this by the pixel centre, so an object nothing hides gets a
visible/amodal ratio within a few edge pixels of 1 either way (the annotator clips it
at 1.0); small objects see that most.

Example:
    >>> import numpy as np
    >>> project(np.array([[0.0, 0.0, 2.0]]), np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]))
    array([[32., 32.]])
    >>> square = np.array([[[0, 0], [8, 0], [8, 8]], [[0, 0], [8, 8], [0, 8]]], float)
    >>> int(covered_pixels(square, 16, 16).sum())
    64
"""

from __future__ import annotations

import numpy as np

NEAR = 1e-3  # metres: a triangle reaching this close to the camera plane is clipped whole


def project(points_camera: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N, 3) points in OpenCV camera axes (z forward) to (N, 2) pixel coordinates (x, y),
    where pixel (row r, column c) spans [c, c + 1] x [r, r + 1]."""
    homogeneous = points_camera @ intrinsics.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


def covered_pixels(triangles: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of the pixels whose centre lies inside any of `triangles`, an
    (N, 3, 2) array of pixel coordinates; a centre on an edge counts, either winding, and
    a triangle seen edge-on (no area) covers nothing."""
    mask = np.zeros((height, width), bool)
    lows = np.clip(np.ceil(triangles.min(axis=1) - 0.5), 0, [width, height]).astype(int)
    highs = np.clip(np.floor(triangles.max(axis=1) - 0.5) + 1, 0, [width, height]).astype(int)
    first, second = triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    areas = first[:, 0] * second[:, 1] - first[:, 1] * second[:, 0]
    for (a, b, c), (x0, y0), (x1, y1), area in zip(triangles, lows, highs, areas, strict=True):
        if x0 >= x1 or y0 >= y1 or area == 0:  # off the frame, or seen edge-on
            continue
        xs = np.arange(x0, x1) + 0.5
        ys = (np.arange(y0, y1) + 0.5)[:, None]
        edges = [
            (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])
            for p, q in ((a, b), (b, c), (c, a))
        ]
        inside = ((edges[0] >= 0) & (edges[1] >= 0) & (edges[2] >= 0)) | (
            (edges[0] <= 0) & (edges[1] <= 0) & (edges[2] <= 0)
        )
        mask[y0:y1, x0:x1] |= inside
    return mask


def amodal_pixels(
    triangles_camera: np.ndarray, intrinsics: np.ndarray, height: int, width: int
) -> int:
    """Pixels of an (H, W) frame covered by an object's (N, 3, 3) triangles given in
    OpenCV camera axes; triangles reaching behind `NEAR` are left out."""
    in_front = triangles_camera[:, :, 2].min(axis=1) > NEAR
    kept = triangles_camera[in_front]
    pixels = project(kept.reshape(-1, 3), intrinsics).reshape(-1, 3, 2)
    return int(covered_pixels(pixels, height, width).sum())
