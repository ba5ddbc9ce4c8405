"""What a generator is: a parameter spec, a category list and a frame renderer.

A generator yields `Frame`s: the RGB image plus pixel-exact ground truth (instance
ids, category ids, depth) and one `Instance` record per object it drew. The
annotations in `labels.json` are computed from those maps by `engine.annotate`,
so a generator never writes boxes or masks itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from prefect_synthdata.params import GeneratorSpec, ParamOptions, ParamSpec, ParamType, SampleRange

Region = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open) of the frame


@dataclass(frozen=True)
class Instance:
    """One object drawn into a frame.

    `pixels` is how many pixels of the frame the object covers before occlusion by
    other objects (its in-frame amodal area); `region` bounds every pixel it drew.
    """

    category_id: int
    track_id: int
    pixels: int
    region: Region


@dataclass
class Frame:
    """One rendered frame and the ground truth that belongs to it.

    `rgb` is (H, W, 3) uint8; `iseg` holds instance ids (0 = background) as uint16,
    `cseg` category ids as uint8 and `depth` millimetres along the optical axis as
    uint16; `instances` maps each instance id found in `iseg` to its record. Optional
    `normals` (H, W, 3) uint8 are unit surface normals in camera axes (OpenCV: x right,
    y down, z forward), each component stored as round((n + 1) * 127.5), and 0, 0, 0
    where no surface was hit.
    """

    rgb: np.ndarray
    iseg: np.ndarray
    cseg: np.ndarray
    depth: np.ndarray
    instances: dict[int, Instance]
    metadata: dict[str, Any] = field(default_factory=dict)
    normals: np.ndarray | None = None


class Generator(ABC):
    """A procedural scene generator. Subclasses set `spec` and `categories`.

    `render_frames` must be a pure function of its arguments: the same parameters
    give the same arrays on every run.
    """

    spec: GeneratorSpec
    categories: list[str]
    supercategory: str = "object"

    def frame_count(self, params: dict[str, Any], is_preview: bool) -> int:
        """Frames a job renders: one for previews, else the `frames` parameter (default 1)."""
        return 1 if is_preview else int(params.get("frames", 1))

    @abstractmethod
    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        """Yield the job's frames in order; must be deterministic in `params`."""


def between(low: float, high: float, at_least: str | None = None) -> SampleRange:
    """The sampling range [low, high] (never below parameter `at_least`, if named)."""
    return SampleRange(min=low, max=high, at_least=at_least)


def param(
    name: str,
    type_: ParamType,
    default: Any,
    description: str,
    sample: SampleRange | Literal[False],
    **options: Any,
) -> ParamSpec:
    """Shorthand for a `ParamSpec` with its sampling range and `options` (min, max, choices).

    Example:
        >>> param("n", "int", 3, "Objects.", between(1, 5), min=1, max=9).options.max
        9.0
    """
    return ParamSpec(
        name=name,
        type=type_,
        default_value=default,
        options=ParamOptions(**options),
        description=description,
        sample=sample,
    )


def choices(*values: Any) -> SampleRange:
    """The sampling range of a parameter drawn from `values`."""
    return SampleRange(choices=list(values))


#: Frames per job: a video when more than one (shared by every generator of the engine).
FRAMES = param(
    "frames",
    "int",
    1,
    "Frames per job (video when > 1); previews render one.",
    False,
    min=1,
    max=600,
)
#: The scene's seed; jobs that leave it out get one drawn from the request's seed.
SEED = param(
    "seed", "int", 0, "Random seed of the scene.", between(0, 2**31 - 1), min=0, max=2**31 - 1
)
#: Label filter shared by every generator: too small a visible fragment is an ignore region.
MIN_VISIBLE_PIXELS = param(
    "min_visible_pixels",
    "int",
    16,
    "Label filter: visible fragments with fewer pixels become ignore regions.",
    False,
    min=1,
    max=100000,
)
#: Label filter shared by every generator: a mostly hidden object is an ignore region.
MIN_VISIBILITY = param(
    "min_visibility",
    "float",
    0.1,
    "Label filter: objects less visible than this fraction become ignore regions.",
    False,
    min=0.0,
    max=1.0,
)
#: Re-render an earlier job (the Infinity `state` parameter).
STATE = param(
    "state",
    "uuid",
    None,
    "Re-render this earlier job's parameters, with this job's values as overrides.",
    False,
)


def common_params(max_objects: int, default_objects: int) -> list[ParamSpec]:
    """Parameters every built-in generator shares: size, count, colour, sensor, video, drops, seed, state.

    Image size, frame count and the label filters are never sampled: they shape the
    dataset, not the scene (see the README, "Randomization").
    """
    return [
        param("width", "int", 512, "Image width in pixels.", False, min=32, max=2048),
        param("height", "int", 512, "Image height in pixels.", False, min=32, max=2048),
        param(
            "min_objects",
            "int",
            2,
            "Fewest objects per scene; each scene draws its count in [min_objects, num_objects].",
            between(1, 4),
            min=1,
            max=max_objects,
        ),
        param(
            "num_objects",
            "int",
            default_objects,
            "Most objects per scene (the count itself when equal to min_objects).",
            between(4, 2 * default_objects, at_least="min_objects"),
            min=1,
            max=max_objects,
        ),
        param(
            "class_colours",
            "bool",
            False,
            "Colour objects by category (a shortcut a model learns instead of shape); "
            "off, colour is independent of class.",
            False,
        ),
        param(
            "colour_jitter",
            "float",
            0.3,
            "With class_colours, how far object colours stray from their category's colour (0-1).",
            between(0.0, 0.5),
            min=0.0,
            max=1.0,
        ),
        param(
            "light_azimuth",
            "float",
            135.0,
            "Direction the light comes from, degrees.",
            between(0.0, 360.0),
            min=0.0,
            max=360.0,
        ),
        param(
            "light_power",
            "float",
            1.0,
            "Strength of the directional light.",
            between(0.6, 1.4),
            min=0.0,
            max=2.0,
        ),
        param(
            "noise_std",
            "float",
            3.0,
            "Sensor noise standard deviation (0-255 scale).",
            between(0.0, 8.0),
            min=0.0,
            max=50.0,
        ),
        param(
            "blur",
            "float",
            0.0,
            "Optical blur radius in pixels (box filter).",
            between(0.0, 1.0),
            min=0.0,
            max=8.0,
        ),
        FRAMES,
        param(
            "motion",
            "float",
            0.01,
            "Object speed in video jobs, fraction of the view per frame.",
            between(0.0, 0.03),
            min=0.0,
            max=0.1,
        ),
        MIN_VISIBLE_PIXELS,
        MIN_VISIBILITY,
        SEED,
        STATE,
    ]


def object_count(params: dict[str, Any], rng: np.random.Generator) -> int:
    """This scene's object count, drawn in [min_objects, num_objects] (in either order)."""
    low, high = sorted(
        (int(params.get("min_objects", params["num_objects"])), int(params["num_objects"]))
    )
    return int(rng.integers(low, high + 1))
