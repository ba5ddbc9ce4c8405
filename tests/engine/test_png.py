"""The engine's PNG writer is lossless for every output type and filter."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from prefect_synthdata.engine import png

PROFILES = [
    png.RGB,
    png.INSTANCES,
    png.CATEGORIES,
    png.DEPTH,
    png.PngProfile(png.FILTER_SUB, zlib.Z_DEFAULT_STRATEGY, 6),
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(
    ("dtype", "shape", "mode"),
    [(np.uint8, (33, 47, 3), "RGB"), (np.uint8, (33, 47), "L"), (np.uint16, (33, 47), "I;16")],
)
def test_decoders_read_back_exactly_what_was_written(
    profile: png.PngProfile, dtype: type, shape: tuple, mode: str
) -> None:
    rng = np.random.default_rng(7)
    array = rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    array[5:20, 5:30] = array[5, 5]  # flat regions too, as in id maps
    image = Image.open(io.BytesIO(png.encode_png(array, profile)))
    assert image.mode == mode
    assert np.array_equal(np.asarray(image), array)


def test_unsupported_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot write a float32 array"):
        png.encode_png(np.zeros((4, 4), np.float32), png.RGB)
