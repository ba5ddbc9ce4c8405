"""A loss curve as a small PNG (Pillow only), and as a data URI a markdown artifact shows.

Example:
    >>> loss_curve_png([3.0, 2.0, 1.5, 1.2])[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
"""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw

WIDTH, HEIGHT, MARGIN = 480, 240, 30


def _smoothed(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def loss_curve_png(losses: list[float]) -> bytes:
    """Loss per step (grey) and its running mean over 5% of the steps (blue), y from 0 to max."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([MARGIN, 10, WIDTH - 10, HEIGHT - MARGIN], outline="black")
    top = max(max(losses, default=1.0), 1e-9)
    draw.text((2, 10), f"{top:.2f}", fill="black")
    draw.text((2, HEIGHT - MARGIN - 10), "0", fill="black")
    draw.text((WIDTH - 90, HEIGHT - MARGIN + 8), f"{len(losses)} steps", fill="black")

    def point(i: int, value: float) -> tuple[float, float]:
        x = MARGIN + (WIDTH - 10 - MARGIN) * i / max(len(losses) - 1, 1)
        return x, HEIGHT - MARGIN - (HEIGHT - MARGIN - 10) * value / top

    for series, colour in (
        (losses, "#bbbbbb"),
        (_smoothed(losses, max(len(losses) // 20, 1)), "#1f5fbf"),
    ):
        if len(series) > 1:
            draw.line([point(i, v) for i, v in enumerate(series)], fill=colour, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """`data:image/png;base64,...` for a markdown image."""
    return "data:image/png;base64," + base64.b64encode(png).decode()
