"""`blender`: photoreal tabletop and bin-picking scenes rendered by Blender's Cycles on the CPU.

An optional extra (`pip install 'prefect-synthdata[blender]'`, which brings `bpy`);
registered through the `prefect_synthdata.generators` entry point like any plugin,
so without the extra it is listed as unavailable with the install hint. Importing
this module does not import `bpy`: a render process imports it once, on its first
job, and resets Blender to an empty file for every scene (`scene.Scene.build`).

Ground truth comes from Cycles' passes: instance ids from the object-index pass
(exact integers; a pixel on an object's edge takes the object its first sample hit,
so masks are hard-edged while RGB is antialiased), category ids looked up from the
instance ids, depth in millimetres along the optical axis from the Z pass (0 where
the ray leaves the scene, clipped at 65.535 m). Each image's metadata holds the
intrinsics `K` and the world-to-camera pose (OpenCV axes). Files are written by
the engine's own PNG writer, so a re-render gives byte-identical files, across
processes, thread counts and the order in which a worker renders its scenes, with
the denoiser on or off. That needs exact float input to Cycles: Blender's primitive
operators and its smooth-normal computation differ in the last bit from one process
to the next (measured, cause inside Blender), and OpenImageDenoise spreads
such a difference over a neighbourhood, where it crossed an 8-bit rounding boundary
about once in 10^4 values; so `scene.py` scales the meshes and computes their smooth
normals with numpy (OpenImageDenoise itself is deterministic on identical input).

`Instance.pixels` is the object's amodal area, the pixels it would cover with nothing
in front of it, from its triangles projected through the camera (`amodal.py`; about
1-2% of a frame's CPU time), so `visibility` and `min_visibility` mean what they do
for the built-in generators.

Example:
    >>> BlenderGenerator().spec.name  # doctest: +SKIP
    'blender'
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from prefect_synthdata.engine.generators import RENDER_THREADS_ENV
from prefect_synthdata.engine.generators.base import (
    FRAMES,
    MIN_VISIBILITY,
    MIN_VISIBLE_PIXELS,
    SEED,
    STATE,
    Frame,
    Generator,
    Instance,
    between,
    choices,
    param,
)
from prefect_synthdata.params import GeneratorSpec

SHAPES = ["cube", "sphere", "cylinder", "cone", "torus", "monkey", "rock"]
HDRIS = ["city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset"]
INSTALL_HINT = "needs the 'blender' extra: pip install 'prefect-synthdata[blender]'"
NO_HIT = 1e9  # Cycles' Z pass where a ray leaves the scene is 1e10

SPEC = GeneratorSpec(
    name="blender",
    version="2",  # 2: denoised by default, numpy geometry, real visibility
    description="Photoreal tabletop and bin scenes of primitives and procedural meshes, "
    "rendered by Blender Cycles (CPU) with OpenImageDenoise; exact ground truth from its passes.",
    preview=True,
    params=[
        param("width", "int", 256, "Image width in pixels.", False, min=32, max=2048),
        param("height", "int", 256, "Image height in pixels.", False, min=32, max=2048),
        param("num_objects", "int", 6, "Objects per scene.", between(2, 12), min=1, max=30),
        param(
            "scene",
            "str",
            "tabletop",
            "Objects on a table, or in a bin.",
            choices("tabletop", "bin"),
            choices=["tabletop", "bin"],
        ),
        param(
            "hdri",
            "str",
            "random",
            "Environment map shipped with Blender, 'random', or 'none' (a plain sky).",
            choices("random", *HDRIS),
            choices=["random", "none", *HDRIS],
        ),
        param("samples", "int", 16, "Cycles samples per pixel.", False, min=1, max=4096),
        param(
            "denoise",
            "bool",
            True,
            "Denoise with OpenImageDenoise (clean at 16 samples; without it, noisy below"
            " a few hundred).",
            False,
        ),
        param(
            "normals",
            "bool",
            False,
            "Also write camera-space surface normals (image.NNNNNN.normal.png, 8-bit RGB).",
            False,
        ),
        FRAMES,
        param(
            "motion",
            "float",
            0.02,
            "Object speed in videos, fraction of a grid cell per frame.",
            between(0.0, 0.05),
            min=0.0,
            max=0.2,
        ),
        param(
            "camera_motion",
            "float",
            0.0,
            "Camera orbit speed in videos, degrees per frame.",
            between(0.0, 2.0),
            min=0.0,
            max=10.0,
        ),
        MIN_VISIBLE_PIXELS,
        MIN_VISIBILITY,
        SEED,
        STATE,
    ],
)


def render_threads() -> int:
    """Cycles threads for this process: the render pool's share of the cores
    (`SYNTHDATA_RENDER_THREADS`, set by the job service's workers), else every usable core."""
    share = os.environ.get(RENDER_THREADS_ENV)
    if share and share.isdigit() and int(share) > 0:
        return int(share)
    return len(os.sched_getaffinity(0))


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear scene-referred RGB to 8-bit sRGB (Blender's 'Standard' view transform)."""
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


class BlenderGenerator(Generator):
    """The `blender` generator; constructing it fails with the install hint without `bpy`."""

    spec = SPEC
    categories = SHAPES

    def __init__(self) -> None:
        if importlib.util.find_spec("bpy") is None:
            raise ImportError(INSTALL_HINT)

    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        from prefect_synthdata.engine.generators.blender.scene import Scene

        scene = Scene.build(params, render_threads())
        for index in range(self.frame_count(params, is_preview)):
            passes = scene.render(index)  # poses the frame: camera metadata after it
            metadata = {
                "seed": params["seed"],
                "frame": index,
                "camera": scene.camera_metadata(),
                "renderer": {
                    "engine": "CYCLES",
                    "samples": params["samples"],
                    "denoise": params["denoise"],
                },
            }
            frame = to_frame(passes, scene.category_ids(), scene.amodal_pixels(), metadata)
            if "normal" in passes:
                frame.normals = to_normal8(passes["normal"], scene.world_to_camera())
            yield frame


def to_normal8(world: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Cycles' world-space normal pass (averaged over a pixel's samples, 0 where none hit)
    to unit camera-space normals in 8 bits: round((n + 1) * 127.5), 0, 0, 0 for no surface."""
    camera = world.astype(np.float64) @ rotation.T
    length = np.linalg.norm(camera, axis=-1, keepdims=True)
    hit = length[..., 0] > 1e-6
    unit = np.divide(camera, length, out=np.zeros_like(camera), where=length > 1e-6)
    encoded = np.rint((unit + 1.0) * 127.5).astype(np.uint8)
    encoded[~hit] = 0
    return encoded


def to_frame(
    passes: dict[str, np.ndarray],
    categories: np.ndarray,
    amodal: np.ndarray,
    metadata: dict[str, Any],
) -> Frame:
    """A `Frame` from the passes of `Scene.render`; `categories[i]` and `amodal[i]` are
    instance i's category id and unoccluded pixel count (`Scene.amodal_pixels`)."""
    iseg = np.rint(passes["index"]).astype(np.uint16)
    depth = passes["depth"]
    depth_mm = np.where(depth < NO_HIT, np.clip(np.rint(depth * 1000.0), 0, 65535), 0)
    return Frame(
        rgb=to_srgb8(passes["rgb"]),
        iseg=iseg,
        cseg=categories[iseg],
        depth=depth_mm.astype(np.uint16),
        instances=_instances(iseg, categories, amodal),
        metadata=metadata,
    )


def _instances(iseg: np.ndarray, categories: np.ndarray, amodal: np.ndarray) -> dict[int, Instance]:
    """A record per instance id in the map: its amodal pixels and its visible region."""
    counts = np.bincount(iseg.ravel(), minlength=categories.size)
    instances = {}
    for instance_id in np.flatnonzero(counts[1:]) + 1:
        mask = iseg == instance_id
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        instances[int(instance_id)] = Instance(
            category_id=int(categories[instance_id]),
            track_id=int(instance_id),
            # never below the visible count: the index pass's edge pixels follow its
            # first sample, the amodal count pixel centres (see amodal.py)
            pixels=int(max(amodal[instance_id], counts[instance_id])),
            region=(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1),
        )
    return instances
