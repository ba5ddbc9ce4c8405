"""Read the uncompressed scanline OpenEXR files Blender's `save_render` writes.

Only what the blender generator needs: single- or multi-part scanline images,
NO_COMPRESSION, HALF/FLOAT/UINT channels, one scanline per chunk. Each part's pixel
area is one structured numpy view over the file's bytes (no per-line Python work).
Blender 5 writes a multilayer render as one part per pass, with channels named
`<view layer>.<pass>.<channel>`, e.g. `ViewLayer.Object Index.X`.

Example:
    >>> channels = read_exr("/dev/shm/frame.exr")  # doctest: +SKIP
    >>> channels["ViewLayer.Object Index.X"].shape  # doctest: +SKIP
    (512, 512)
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = 20000630
PIXEL_TYPES: dict[int, np.dtype] = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
NO_COMPRESSION = 0
TILED, DEEP, MULTIPART = 0x200, 0x800, 0x1000

Header = dict[str, bytes]


class ExrError(ValueError):
    """The file is not an EXR this reader handles."""


def _header(data: bytes, pos: int) -> tuple[Header, int]:
    """One header's attributes {name: raw value} and the offset just past it."""
    attributes: Header = {}
    while data[pos] != 0:
        name_end = data.index(b"\0", pos)
        type_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack_from("<i", data, type_end + 1)
        value_at = type_end + 5
        attributes[data[pos:name_end].decode()] = data[value_at : value_at + size]
        pos = value_at + size
    return attributes, pos + 1


def _channels(raw: bytes) -> list[tuple[str, np.dtype]]:
    channels, pos = [], 0
    while raw[pos] != 0:
        end = raw.index(b"\0", pos)
        (pixel_type,) = struct.unpack_from("<i", raw, end + 1)
        if pixel_type not in PIXEL_TYPES:
            raise ExrError(f"unknown pixel type {pixel_type}")
        channels.append((raw[pos:end].decode(), PIXEL_TYPES[pixel_type]))
        pos = end + 1 + 16  # pixel type, pLinear + reserved, xSampling, ySampling
    return channels


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of every part as an (H, W) array of its own dtype, by channel name."""
    data = Path(path).read_bytes()
    magic, version = struct.unpack_from("<ii", data, 0)
    if magic != MAGIC or version & (TILED | DEEP):
        raise ExrError(f"{path}: not a scanline OpenEXR file")
    multipart = bool(version & MULTIPART)
    headers, pos = [], 8
    while True:
        header, pos = _header(data, pos)
        headers.append(header)
        if not multipart or data[pos] == 0:
            pos += int(multipart)
            break
    out: dict[str, np.ndarray] = {}
    for header in headers:
        if header["compression"][0] != NO_COMPRESSION:
            raise ExrError(f"{path}: compressed; save it with exr_codec='NONE'")
        x0, y0, x1, y1 = struct.unpack("<iiii", header["dataWindow"])
        width, height = x1 - x0 + 1, y1 - y0 + 1
        offsets = np.frombuffer(data, "<u8", count=height, offset=pos)
        pos += 8 * height
        channels = _channels(header["channels"])
        prefix = [("part", "<i4")] if multipart else []
        line = np.dtype(
            [*prefix, ("y", "<i4"), ("size", "<i4")]
            + [(name, dtype, (width,)) for name, dtype in channels]
        )
        if height > 1 and not np.all(np.diff(offsets.astype(np.int64)) == line.itemsize):
            raise ExrError(f"{path}: scanline chunks are not stored in order")
        lines = np.frombuffer(data, line, count=height, offset=int(offsets[0]))
        if not np.array_equal(lines["y"], np.arange(y0, y1 + 1)):
            raise ExrError(f"{path}: scanlines out of order")
        for name, _ in channels:
            out[name] = np.ascontiguousarray(lines[name])
    return out
