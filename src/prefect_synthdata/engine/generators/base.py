"""What a generator is: a parameter spec, a category list and a frame renderer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prefect_synthdata.params import GeneratorSpec


@dataclass
class Frame:
    """One rendered frame and the ground truth that belongs to it.

    `iseg` holds instance ids (0 = background), `cseg` category ids, `depth`
    millimetres as uint16; `instances` maps instance id to (category id, track id).
    """

    rgb: np.ndarray
    iseg: np.ndarray
    cseg: np.ndarray
    depth: np.ndarray
    instances: dict[int, tuple[int, int]]
    metadata: dict[str, Any] = field(default_factory=dict)


class Generator(ABC):
    """A procedural scene generator. Subclasses set `spec` and `categories`."""

    spec: GeneratorSpec
    categories: list[str]

    def frame_count(self, params: dict[str, Any], is_preview: bool) -> int:
        """Frames a job renders: one for previews, else the `frames` parameter (default 1)."""
        return 1 if is_preview else int(params.get("frames", 1))

    @abstractmethod
    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        """Yield the job's frames in order; must be deterministic in `params`."""
