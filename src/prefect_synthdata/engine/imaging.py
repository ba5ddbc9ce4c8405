"""Image building blocks shared by the generators: textures, colours and the sensor model.

Everything is a whole-array numpy (or Pillow C) operation over a frame or a
texture, and every random draw comes from the caller's `numpy.random.Generator`,
so the same seed gives the same bytes.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rgb = np.full((3, 8, 8), 128.0, np.float32)
    >>> out = apply_sensor(rgb, blur=0.5, noise_std=3.0, rng=rng)
    >>> out.dtype, out.shape
    (dtype('uint8'), (8, 8, 3))
"""

from __future__ import annotations

from functools import lru_cache
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageFilter

TEXTURES = ["noise", "checker", "stripes", "gradient", "solid"]


def value_noise(
    h: int, w: int, rng: np.random.Generator, cell: int = 16, octaves: int = 3
) -> np.ndarray:
    """Smooth fractal noise in about [-1, 1], shape (h, w), float32."""
    total = np.zeros((h, w), np.float32)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        size = max(cell >> octave, 2)
        coarse = rng.uniform(-1.0, 1.0, size=(h // size + 2, w // size + 2)).astype(np.float32)
        image = Image.fromarray(coarse, mode="F").resize(
            (coarse.shape[1] * size, coarse.shape[0] * size), Image.Resampling.BILINEAR
        )
        total += amplitude * np.asarray(image)[:h, :w]
        weight += amplitude
        amplitude *= 0.5
    return total / weight


def texture(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A planar (3, h, w) float32 texture in 0-255 between two random colours.

    `kind` is one of `TEXTURES`; the pattern swings half way from one colour to the other.
    """
    base = rng.uniform(40, 215, size=3).astype(np.float32)
    other = rng.uniform(40, 215, size=3).astype(np.float32)
    ys, xs = np.ogrid[0:h, 0:w]
    weight: np.ndarray
    if kind == "solid":
        weight = np.zeros((h, w), np.float32)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (xs * np.cos(angle) + ys * np.sin(angle)).astype(np.float32)
        weight = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    elif kind == "checker":
        cell = int(rng.integers(16, 64))
        weight = (((ys // cell) + (xs // cell)) % 2).astype(np.float32)
    elif kind == "stripes":
        period = float(rng.uniform(8, 40))
        angle = rng.uniform(0, np.pi)
        phase = (xs * np.cos(angle) + ys * np.sin(angle)) / period
        weight = (0.5 + 0.5 * np.sin(2 * np.pi * phase)).astype(np.float32)
    elif kind == "noise":
        weight = (0.5 + 0.5 * value_noise(h, w, rng)).astype(np.float32)
    else:
        raise ValueError(f"unknown texture {kind!r}; known: {TEXTURES}")
    weight *= np.float32(0.5)
    out = np.empty((3, h, w), np.float32)
    for c in range(3):
        np.multiply(weight, other[c] - base[c], out=out[c])
        out[c] += base[c]
    return out


def jitter_colour(base: np.ndarray, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """`base` RGB (0-255) moved towards a random colour by `jitter` (0 = base, 1 = random)."""
    random_colour = rng.uniform(0, 255, size=3)
    return ((1.0 - jitter) * np.asarray(base, np.float64) + jitter * random_colour).astype(
        np.float32
    )


def object_colours(
    kinds: np.ndarray,
    palette: np.ndarray,
    class_colours: bool,
    jitter: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n, 3) float32 RGB colours of objects of categories `kinds`.

    With `class_colours`, each is its category's `palette` colour moved by `jitter`
    (colour then gives the class away); otherwise a random hue, saturation and value,
    drawn the same way whatever the category.

    Example:
        >>> object_colours(np.array([0, 1]), np.zeros((2, 3)), False, 0.0, np.random.default_rng(0)).shape
        (2, 3)
    """
    if class_colours:
        return np.stack([jitter_colour(palette[k], jitter, rng) for k in kinds]).reshape(-1, 3)
    n = len(kinds)
    hue = rng.uniform(0, 6, size=n)
    saturation, value = rng.uniform(0.25, 0.9, size=n), rng.uniform(90, 245, size=n)
    # HSV -> RGB: each channel's distance from its own hue sector
    k = np.mod(np.array([5.0, 3.0, 1.0])[None, :] + hue[:, None], 6)
    weight = np.clip(np.minimum(k, 4 - k), 0, 1)
    rgb = value[:, None] * (1 - saturation[:, None] * weight)
    return rgb.astype(np.float32)


def log_uniform(low: float, high: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` draws spread evenly in log scale over [low, high] (in either order): as many
    objects between 10 and 20 pixels across as between 100 and 200.

    Example:
        >>> bool(np.all(log_uniform(1.0, 8.0, 5, np.random.default_rng(0)) <= 8.0))
        True
    """
    lo, hi = sorted((low, high))
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))


@lru_cache(maxsize=64)
def _noise_table(noise_std: float) -> np.ndarray:
    """Gaussian quantiles at the 256 byte values: `table[u]` is noise for random byte `u`."""
    quantiles = [NormalDist().inv_cdf((u + 0.5) / 256) for u in range(256)]
    return (np.array(quantiles) * noise_std).astype(np.float32)


def apply_sensor(
    planar: np.ndarray, blur: float, noise_std: float, rng: np.random.Generator
) -> np.ndarray:
    """Camera model for a planar (3, H, W) float32 image in 0-255, which it consumes:
    optical blur (box filter, radius in px), sensor noise, then 8-bit quantisation.
    Returns (H, W, 3) uint8.

    Noise is zero-mean Gaussian with `noise_std` (0-255 scale), drawn by inverse-CDF
    lookup from random bytes, which is much faster than `rng.normal` per pixel.
    """
    if blur > 0:
        quantised = np.clip(planar, 0, 255, out=planar).astype(np.uint8)
        blurred = Image.fromarray(np.dstack(list(quantised))).filter(ImageFilter.BoxBlur(blur))
        planar = np.asarray(blurred).transpose(2, 0, 1).astype(np.float32)
    if noise_std > 0:
        draws = np.frombuffer(rng.bytes(planar.size), np.uint8).reshape(planar.shape)
        planar += _noise_table(round(noise_std, 3)).take(draws)
    np.rint(planar, out=planar)
    return np.dstack(list(np.clip(planar, 0, 255, out=planar).astype(np.uint8)))
