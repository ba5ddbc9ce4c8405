"""Generators that each break one rule of the contract; all are variations of one scene."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from prefect_synthdata.engine.generators import Frame, Generator, Instance
from prefect_synthdata.params import GeneratorSpec, ParamOptions, ParamSpec

CATEGORIES = ["square"]


def _spec(name: str) -> GeneratorSpec:
    size = {"type": "int", "default_value": 64, "options": ParamOptions(min=32, max=256)}
    return GeneratorSpec(
        name=name,
        params=[ParamSpec(name="width", **size), ParamSpec(name="height", **size)],
    )


class Square(Generator):
    """A 10x10 square of instance 1 (a valid frame, which subclasses break)."""

    spec = _spec("square")
    categories = CATEGORIES

    def frame(self, params: dict[str, Any]) -> Frame:
        h, w = params["height"], params["width"]
        rgb = np.zeros((h, w, 3), np.uint8)
        iseg = np.zeros((h, w), np.uint16)
        iseg[5:15, 5:15] = 1
        cseg = iseg.astype(np.uint8)
        depth = np.full((h, w), 1000, np.uint16)
        return Frame(rgb, iseg, cseg, depth, {1: Instance(1, 1, 100, (5, 15, 5, 15))})

    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        yield self.frame(params)


class Misnamed(Square):
    spec = _spec("not_its_entry_point_name")


class FloatDepth(Square):
    spec = _spec("float_depth")

    def frame(self, params: dict[str, Any]) -> Frame:
        frame = super().frame(params)
        frame.depth = frame.depth.astype(np.float32)
        return frame


class Unrecorded(Square):
    spec = _spec("unrecorded")

    def frame(self, params: dict[str, Any]) -> Frame:
        frame = super().frame(params)
        frame.iseg[20:22, 20:22] = 7
        frame.cseg[20:22, 20:22] = 1
        return frame


class Flaky(Square):
    spec = _spec("flaky")

    def frame(self, params: dict[str, Any]) -> Frame:
        frame = super().frame(params)
        frame.rgb[0, 0] = np.frombuffer(os.urandom(3), np.uint8)
        return frame
