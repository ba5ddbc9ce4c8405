"""Object motion for video jobs: straight lines that reflect off the walls of a box.

Closed form in time, so frame N is computed directly without stepping through
earlier frames, and every frame of a job is independent of the others.
"""

from __future__ import annotations

import numpy as np


def bounce(start: np.ndarray, velocity: np.ndarray, t: float, limit: np.ndarray) -> np.ndarray:
    """Positions at time `t` of points moving at `velocity` inside [0, limit], reflecting at the walls.

    Example:
        >>> bounce(np.array([8.0]), np.array([3.0]), 1, np.array([10.0])).tolist()
        [9.0]
    """
    q = np.mod(start + velocity * t, 2 * limit)
    return np.where(q <= limit, q, 2 * limit - q)
