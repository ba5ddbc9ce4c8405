"""A fast lossless PNG writer for the engine's four outputs.

Pillow's encoder tries every PNG filter on every row and deflates at a fixed
strategy; most of a frame's time went there. Each output here has one fixed
filter and zlib strategy chosen for its content (noisy RGB, flat id maps,
row-constant depth), computed with whole-array numpy operations. The files are
ordinary 8/16-bit grayscale or RGB PNGs that any decoder reads back exactly.

Example:
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> depth = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    >>> data = encode_png(depth, DEPTH)
    >>> bool((np.asarray(Image.open(io.BytesIO(data))) == depth).all())
    True
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILTER_NONE, FILTER_SUB, FILTER_UP = 0, 1, 2


@dataclass(frozen=True)
class PngProfile:
    """How one kind of image is filtered and deflated."""

    filter_type: int
    strategy: int
    level: int = 1


RGB = PngProfile(FILTER_UP, zlib.Z_HUFFMAN_ONLY)  # sensor noise: matching strings are rare
INSTANCES = PngProfile(FILTER_UP, zlib.Z_RLE)  # flat regions of 16-bit ids
CATEGORIES = PngProfile(FILTER_NONE, zlib.Z_RLE)  # flat regions of 8-bit ids
DEPTH = PngProfile(FILTER_SUB, zlib.Z_RLE)  # planes without camera roll are constant along rows
NORMALS = PngProfile(FILTER_SUB, zlib.Z_RLE)  # flat faces are constant, curved ones smooth


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _filtered_rows(raw: np.ndarray, filter_type: int, bpp: int) -> np.ndarray:
    """Rows of `raw` (uint8, one image row each) prefixed by their filter byte."""
    height, row_bytes = raw.shape
    out = np.empty((height, row_bytes + 1), np.uint8)
    out[:, 0] = filter_type
    if filter_type == FILTER_UP:
        out[0, 1:] = raw[0]
        np.subtract(raw[1:], raw[:-1], out=out[1:, 1:])
    elif filter_type == FILTER_SUB:
        out[:, 1 : 1 + bpp] = raw[:, :bpp]
        np.subtract(raw[:, bpp:], raw[:, :-bpp], out=out[:, 1 + bpp :])
    else:
        out[:, 1:] = raw
    return out


def encode_png(array: np.ndarray, profile: PngProfile) -> bytes:
    """PNG bytes of a `uint8` (H, W) or (H, W, 3) array or a `uint16` (H, W) array."""
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        colour_type, depth, channels = 2, 8, 3
    elif array.dtype == np.uint8 and array.ndim == 2:
        colour_type, depth, channels = 0, 8, 1
    elif array.dtype == np.uint16 and array.ndim == 2:
        colour_type, depth, channels = 0, 16, 1
    else:
        raise ValueError(f"cannot write a {array.dtype} array of shape {array.shape} as PNG")
    height, width = array.shape[:2]
    big_endian = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">"))
    raw = big_endian.view(np.uint8).reshape(height, -1)
    rows = _filtered_rows(raw, profile.filter_type, channels * depth // 8)
    compressor = zlib.compressobj(profile.level, zlib.DEFLATED, 15, 9, profile.strategy)
    data = compressor.compress(rows.data) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def write_png(path: Path, array: np.ndarray, profile: PngProfile) -> None:
    """Write `array` to `path` as a PNG (see `encode_png`)."""
    path.write_bytes(encode_png(array, profile))
