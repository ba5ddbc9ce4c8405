"""Train/val/test splits assigned by job, so the frames of one video never span two splits.

Jobs are shuffled with a seed made from the dataset's name and seed, then cut by the
fractions (largest remainders get the leftover jobs), so a re-run of one request
gives the same splits and every split gets its share of jobs.

Example:
    >>> assign_splits(10, {"train": 0.8, "val": 0.1, "test": 0.1}, "demo", 0).count("train")
    8
"""

from __future__ import annotations

import math
import random


def check_fractions(fractions: dict[str, float]) -> list[str]:
    """Problems with split fractions: names must be plain words, fractions positive summing to 1."""
    problems = []
    for name, fraction in fractions.items():
        if not name.isidentifier():
            problems.append(f"split name {name!r} must be a plain word (letters, digits, _)")
        if not 0 < fraction <= 1:
            problems.append(f"split {name!r} needs a fraction in (0, 1], got {fraction}")
    if fractions and abs(sum(fractions.values()) - 1) > 1e-6:
        problems.append(f"split fractions must sum to 1, got {sum(fractions.values()):g}")
    return problems


def assign_splits(num_jobs: int, fractions: dict[str, float], dataset: str, seed: int) -> list[str]:
    """The split of each job position of dataset `dataset` made with `seed`, in order
    (empty without fractions); every job gets one."""
    if not fractions:
        return []
    quotas = {name: num_jobs * fraction for name, fraction in fractions.items()}
    counts = {name: math.floor(quota) for name, quota in quotas.items()}
    leftover = num_jobs - sum(counts.values())
    for name in sorted(quotas, key=lambda n: counts[n] - quotas[n])[:leftover]:
        counts[name] += 1
    labels = [name for name in fractions for _ in range(counts[name])]
    order = list(range(num_jobs))
    random.Random(f"splits:{dataset}:{seed}").shuffle(order)
    assigned = [""] * num_jobs
    for position, label in zip(order, labels, strict=True):
        assigned[position] = label
    return assigned
