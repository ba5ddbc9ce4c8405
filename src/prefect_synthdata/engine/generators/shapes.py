"""`shapes`: flat 2D scenes of circles, rectangles and triangles over textured backgrounds.

Objects overlap in depth order (nearer objects occlude farther ones); in video jobs
they drift with constant velocity and keep their track ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from prefect_synthdata.engine.generators.base import Frame, Generator
from prefect_synthdata.params import GeneratorSpec, ParamOptions, ParamSpec

CATEGORIES = ["circle", "rectangle", "triangle"]


def _p(name: str, type_: Any, default: Any, description: str, **options: Any) -> ParamSpec:
    return ParamSpec(
        name=name,
        type=type_,
        default_value=default,
        options=ParamOptions(**options),
        description=description,
    )


SPEC = GeneratorSpec(
    name="shapes",
    version="1",
    description="2D shapes (circle, rectangle, triangle) with occlusion, noise and motion.",
    preview=True,
    params=[
        _p("width", "int", 512, "Image width in pixels.", min=32, max=2048),
        _p("height", "int", 512, "Image height in pixels.", min=32, max=2048),
        _p("num_objects", "int", 8, "Objects per scene.", min=1, max=64),
        _p(
            "min_scale",
            "float",
            0.06,
            "Smallest object size, fraction of the short side.",
            min=0.02,
            max=0.5,
        ),
        _p(
            "max_scale",
            "float",
            0.25,
            "Largest object size, fraction of the short side.",
            min=0.02,
            max=0.9,
        ),
        _p(
            "background",
            "str",
            "noise",
            "Background texture.",
            choices=["noise", "gradient", "solid"],
        ),
        _p(
            "noise_std",
            "float",
            4.0,
            "Sensor noise standard deviation (0-255 scale).",
            min=0.0,
            max=50.0,
        ),
        _p(
            "frames",
            "int",
            1,
            "Frames per job (video when > 1); previews render one.",
            min=1,
            max=300,
        ),
        _p(
            "min_visible_pixels",
            "int",
            16,
            "Drop instances with fewer visible pixels.",
            min=1,
            max=100000,
        ),
        _p("seed", "int", 0, "Random seed of the scene.", min=0, max=2**31 - 1),
        _p("state", "uuid", None, "Re-render this earlier job's parameters with overrides."),
    ],
)


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(0, 256, size=3).astype(np.float32)
    if kind == "solid":
        return np.broadcast_to(base, (h, w, 3)).copy()
    if kind == "gradient":
        other = rng.integers(0, 256, size=3).astype(np.float32)
        t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
        return np.broadcast_to(base * (1 - t) + other * t, (h, w, 3)).copy()
    coarse = rng.normal(0.0, 40.0, size=(h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    texture = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:h, :w]
    return np.clip(base + texture, 0, 255)


def _shape_mask(kind: int, size: float, angle: float, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Mask of a shape centred on the origin of the (ys, xs) grid."""
    if kind == 0:
        return xs * xs + ys * ys <= size * size
    cos, sin = np.cos(angle), np.sin(angle)
    u = xs * cos + ys * sin
    v = -xs * sin + ys * cos
    if kind == 1:
        return (np.abs(u) <= size) & (np.abs(v) <= size * 0.6)
    # equilateral triangle: three half-planes
    inside = np.ones(u.shape, dtype=bool)
    for k in range(3):
        a = 2 * np.pi * k / 3
        inside &= u * np.cos(a) + v * np.sin(a) <= size * 0.5
    return inside


class ShapesGenerator(Generator):
    """Renders `shapes` jobs."""

    spec = SPEC
    categories = CATEGORIES

    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        h, w, n = int(params["height"]), int(params["width"]), int(params["num_objects"])
        rng = np.random.default_rng(int(params["seed"]))
        short = min(h, w)
        lo, hi = sorted((float(params["min_scale"]), float(params["max_scale"])))
        kinds = rng.integers(0, len(CATEGORIES), size=n)
        sizes = rng.uniform(lo, hi, size=n) * short / 2
        centres = rng.uniform(0, 1, size=(n, 2)) * [h, w]
        velocity = rng.normal(0, short / 100, size=(n, 2))
        angles = rng.uniform(0, np.pi, size=n)
        colours = rng.integers(0, 256, size=(n, 3)).astype(np.float32)
        depths = np.sort(rng.uniform(500, 5000, size=n))[::-1]  # far first: painter's order
        background = _background(str(params["background"]), h, w, rng)
        for index in range(self.frame_count(params, is_preview)):
            rgb = background.copy()
            iseg = np.zeros((h, w), np.uint16)
            cseg = np.zeros((h, w), np.uint8)
            depth = np.full((h, w), 10000, np.uint16)
            for i in range(n):
                cy, cx = centres[i] + velocity[i] * index
                r = sizes[i]
                y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, h)
                x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, w)
                if y0 >= y1 or x0 >= x1:
                    continue
                ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
                mask = _shape_mask(int(kinds[i]), r, angles[i], ys - cy, xs - cx)
                rgb[y0:y1, x0:x1][mask] = colours[i]
                iseg[y0:y1, x0:x1][mask] = i + 1
                cseg[y0:y1, x0:x1][mask] = kinds[i] + 1
                depth[y0:y1, x0:x1][mask] = int(depths[i])
            noise_std = float(params["noise_std"])
            if noise_std > 0:
                rgb = rgb + rng.normal(0, noise_std, size=rgb.shape).astype(np.float32)
            yield Frame(
                rgb=np.clip(rgb, 0, 255).astype(np.uint8),
                iseg=iseg,
                cseg=cseg,
                depth=depth,
                instances={i + 1: (int(kinds[i]) + 1, i + 1) for i in range(n)},
                metadata={"seed": int(params["seed"]), "frame": index},
            )
