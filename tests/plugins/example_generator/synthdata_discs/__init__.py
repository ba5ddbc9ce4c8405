"""`discs`: coloured discs over a gradient, nearer discs hiding farther ones; they drift in videos."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from prefect_synthdata.engine.generators import Frame, Generator, Instance
from prefect_synthdata.params import GeneratorSpec, ParamOptions, ParamSpec

CATEGORIES = ["red_disc", "blue_disc"]
COLOURS = np.array([[210, 50, 40], [40, 80, 210]], np.uint8)


def _param(name: str, type_: str, default: Any, **options: Any) -> ParamSpec:
    return ParamSpec(name=name, type=type_, default_value=default, options=ParamOptions(**options))


class DiscsGenerator(Generator):
    spec = GeneratorSpec(
        name="discs",
        description="Coloured discs over a gradient.",
        params=[
            _param("width", "int", 128, min=32, max=1024),
            _param("height", "int", 128, min=32, max=1024),
            _param("num_objects", "int", 5, min=1, max=20),
            _param("frames", "int", 1, min=1, max=100),
            _param("seed", "int", 0, min=0, max=2**31 - 1),
            _param("state", "uuid", None),
        ],
    )
    categories = CATEGORIES

    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        height, width = params["height"], params["width"]
        rng = np.random.default_rng(params["seed"])  # every random draw comes from the seed
        n = params["num_objects"]
        centres = rng.uniform(0, 1, (n, 2)) * (height, width)
        velocities = rng.uniform(-2, 2, (n, 2))
        radii = rng.uniform(0.05, 0.2, n) * min(height, width)
        categories = rng.integers(1, len(CATEGORIES) + 1, n)
        depths_mm = np.sort(rng.uniform(1000, 5000, n))[::-1]  # painted far to near
        ys, xs = np.mgrid[0:height, 0:width]
        for index in range(self.frame_count(params, is_preview)):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[...] = (np.linspace(40, 200, width, dtype=np.float32)[None, :, None]).astype(
                np.uint8
            )
            iseg = np.zeros((height, width), np.uint16)
            cseg = np.zeros((height, width), np.uint8)
            depth = np.full((height, width), 10000, np.uint16)
            instances = {}
            for i in range(n):
                cy, cx = centres[i] + index * velocities[i]
                disc = (ys - cy) ** 2 + (xs - cx) ** 2 <= radii[i] ** 2
                if not disc.any():
                    continue
                rows, cols = np.flatnonzero(disc.any(1)), np.flatnonzero(disc.any(0))
                instance_id = i + 1
                rgb[disc] = COLOURS[categories[i] - 1]
                iseg[disc], cseg[disc], depth[disc] = instance_id, categories[i], depths_mm[i]
                instances[instance_id] = Instance(
                    category_id=int(categories[i]),
                    track_id=instance_id,
                    pixels=int(disc.sum()),
                    region=(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1),
                )
            yield Frame(rgb, iseg, cseg, depth, instances, {"seed": params["seed"], "frame": index})
