"""`shapes`: flat 2D scenes of six shape categories over textured backgrounds.

Objects are painted far to near, so nearer ones occlude farther ones; each casts
a drop shadow away from the light and is shaded along the light direction. In
video jobs objects drift, spin and bounce off the image borders, keeping their
track ids. Colour is composed in planar (3, H, W) float32 and converted once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from prefect_synthdata.engine.generators.base import (
    Frame,
    Generator,
    Instance,
    Region,
    between,
    choices,
    common_params,
    object_count,
    param,
)
from prefect_synthdata.engine.generators.motion import bounce
from prefect_synthdata.engine.imaging import (
    TEXTURES,
    apply_sensor,
    log_uniform,
    object_colours,
    texture,
)
from prefect_synthdata.params import GeneratorSpec

CATEGORIES = ["circle", "ellipse", "rectangle", "triangle", "star", "ring"]
PALETTE = np.array(
    [[220, 60, 50], [240, 170, 40], [60, 160, 80], [50, 110, 220], [170, 80, 200], [40, 190, 200]],
    np.float32,
)
BACKGROUND_DEPTH_MM = 10000
MIN_RADIUS_PX = 4.0  # objects are at least 8 pixels across, whatever the scale and image size

SPEC = GeneratorSpec(
    name="shapes",
    version="3",
    description="2D shapes (circle, ellipse, rectangle, triangle, star, ring) with occlusion, "
    "shadows, lighting, textures, noise, blur and motion.",
    preview=True,
    params=[
        *common_params(max_objects=64, default_objects=10),
        param(
            "min_scale",
            "float",
            0.03,
            "Smallest object size, fraction of the short side (sizes are log-uniform; "
            "never under 8 pixels across).",
            between(0.02, 0.06),
            min=0.02,
            max=0.5,
        ),
        param(
            "max_scale",
            "float",
            0.5,
            "Largest object size, fraction of the short side.",
            between(0.25, 0.6, at_least="min_scale"),
            min=0.02,
            max=0.9,
        ),
        param(
            "background",
            "str",
            "noise",
            "Background texture.",
            choices(*TEXTURES),
            choices=TEXTURES,
        ),
        param(
            "shadows", "bool", True, "Cast drop shadows away from the light.", choices(True, False)
        ),
    ],
)


def shape_mask(kind: int, size: float, angle: float, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Mask of shape `kind` of radius `size`, centred on the origin of the (ys, xs) grid."""
    if kind == 0:
        return xs * xs + ys * ys <= size * size
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = xs * cos + ys * sin
    v = ys * cos - xs * sin
    if kind == 1:
        return (u / size) ** 2 + (v / (0.55 * size)) ** 2 <= 1.0
    if kind == 2:
        return (np.abs(u) <= 0.9 * size) & (np.abs(v) <= 0.6 * size)
    if kind == 3:  # equilateral triangle: three half-planes
        inside = u <= 0.5 * size
        for a in (2 * np.pi / 3, 4 * np.pi / 3):
            inside &= u * np.float32(np.cos(a)) + v * np.float32(np.sin(a)) <= 0.5 * size
        return inside
    rho2 = u * u + v * v
    if kind == 4:  # five-pointed star
        return np.sqrt(rho2) <= size * (0.62 + 0.38 * np.cos(5 * np.arctan2(v, u)))
    return (rho2 <= size * size) & (rho2 >= (0.55 * size) ** 2)  # ring


class ShapesGenerator(Generator):
    """Renders `shapes` jobs."""

    spec = SPEC
    categories = CATEGORIES
    supercategory = "shape"

    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        h, w = int(params["height"]), int(params["width"])
        seed = int(params["seed"])
        rng = np.random.default_rng(seed)
        n = object_count(params, rng)
        short = min(h, w)
        kinds = rng.integers(0, len(CATEGORIES), size=n)
        scales = log_uniform(float(params["min_scale"]), float(params["max_scale"]), n, rng)
        sizes = np.maximum(scales * short / 2, MIN_RADIUS_PX)
        limit = np.array([h - 1, w - 1], np.float64)
        starts = rng.uniform(0, 1, size=(n, 2)) * limit
        headings = rng.uniform(0, 2 * np.pi, size=n)
        speeds = float(params["motion"]) * short * rng.uniform(0.5, 1.5, size=n)
        velocities = np.stack([np.sin(headings), np.cos(headings)], axis=1) * speeds[:, None]
        angles = rng.uniform(0, np.pi, size=n)
        spins = rng.normal(0, 0.05, size=n) * (speeds > 0)
        colours = object_colours(
            kinds, PALETTE, bool(params["class_colours"]), float(params["colour_jitter"]), rng
        )
        depths = np.sort(rng.uniform(500, 5000, size=n))[::-1].astype(np.uint16)  # far first
        background = texture(str(params["background"]), h, w, rng)
        azimuth = np.radians(float(params["light_azimuth"]))
        power = float(params["light_power"])
        towards_light = np.array(
            [-np.sin(azimuth), np.cos(azimuth)], np.float32
        )  # (dy, dx), y down
        shadow_darkness = 0.45 * min(power, 1.0) if params["shadows"] else 0.0
        for index in range(self.frame_count(params, is_preview)):
            rgb = background.copy()
            iseg = np.zeros((h, w), np.uint16)
            cseg = np.zeros((h, w), np.uint8)
            depth = np.full((h, w), BACKGROUND_DEPTH_MM, np.uint16)
            centres = bounce(starts, velocities, index, limit)
            instances: dict[int, Instance] = {}
            for i in range(n):
                kind, r, angle = int(kinds[i]), float(sizes[i]), float(angles[i] + spins[i] * index)
                cy, cx = centres[i]
                if shadow_darkness > 0:
                    sy, sx = -towards_light * r * 0.35 * power
                    self._paint(rgb, kind, r, angle, cy + sy, cx + sx, darken=1.0 - shadow_darkness)
                painted = self._paint(
                    rgb,
                    kind,
                    r,
                    angle,
                    cy,
                    cx,
                    colour=colours[i],
                    light=towards_light * 0.35 * power,
                )
                if painted is None:
                    continue
                region, mask = painted
                y0, y1, x0, x1 = region
                iseg[y0:y1, x0:x1][mask] = i + 1
                cseg[y0:y1, x0:x1][mask] = kind + 1
                depth[y0:y1, x0:x1][mask] = depths[i]
                instances[i + 1] = Instance(kind + 1, i + 1, int(np.count_nonzero(mask)), region)
            frame_rng = np.random.default_rng([seed, index, 1])
            yield Frame(
                rgb=apply_sensor(rgb, float(params["blur"]), float(params["noise_std"]), frame_rng),
                iseg=iseg,
                cseg=cseg,
                depth=depth,
                instances=instances,
                metadata={
                    "seed": seed,
                    "frame": index,
                    "camera": {"model": "orthographic", "width": w, "height": h},
                    "light": {"azimuth_deg": float(params["light_azimuth"]), "power": power},
                    "background": str(params["background"]),
                },
            )

    @staticmethod
    def _paint(
        rgb: np.ndarray,
        kind: int,
        r: float,
        angle: float,
        cy: float,
        cx: float,
        colour: np.ndarray | None = None,
        light: np.ndarray | None = None,
        darken: float = 1.0,
    ) -> tuple[Region, np.ndarray] | None:
        """Paint one shape (lit `colour`, or a `darken` factor for shadows) into planar `rgb`.

        Returns the painted region and the shape's mask within it, or None if off-frame.
        """
        _, h, w = rgb.shape
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, h)
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, w)
        if y0 >= y1 or x0 >= x1:
            return None
        ys = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
        xs = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]
        mask = shape_mask(kind, r, angle, ys, xs)
        view = rgb[:, y0:y1, x0:x1]
        if colour is None:
            view[:, mask] *= np.float32(darken)
        else:
            assert light is not None
            shade = 1.0 + (ys * light[0] + xs * light[1]) / np.float32(r)
            view[:, mask] = colour[:, None] * shade[mask][None, :]
        return (y0, y1, x0, x1), mask
