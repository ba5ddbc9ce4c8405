"""Helpers for the engine tests: small renders and readers of the per-job folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.engine.render import render_job


def small_params(generator: str, **overrides: Any) -> dict[str, Any]:
    """A generator's defaults at 96 x 80 pixels, with `overrides`."""
    return {**get_generator(generator).spec.defaults(), "width": 96, "height": 80, **overrides}


def render(generator: str, out: Path, is_preview: bool = False, **overrides: Any) -> dict[str, Any]:
    """Render a small job into `out` and return its labels.json."""
    render_job(generator, small_params(generator, **overrides), is_preview, out)
    labels: dict[str, Any] = json.loads((out / "labels.json").read_text())
    return labels


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))
