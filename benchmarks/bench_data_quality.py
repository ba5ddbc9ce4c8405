"""Shortcut bias and object sizes of the default `shapes` and `tabletop` datasets.

For each generator it renders `--jobs` default scenes (512 x 512, the seeds a dataset
request draws) and measures, over every labelled object:

- **colour-only accuracy**: a classifier that sees nothing but the object's mean hue
  (the hue circle cut into 24 bins, each bin predicting the class most common in it on
  the training half) scored on the other half, against the majority-class baseline on
  that half. Goal: within 10 points of the baseline.
- **COCO size shares**: the fraction of objects whose `area` (visible mask pixels, what
  COCOeval uses) is small (< 32^2), medium (< 96^2) or large.

The same is measured with `class_colours=True` (colour by category, the old default)
side by side, as the baseline the defaults are compared with.

    PYTHONPATH=src python benchmarks/bench_data_quality.py [--jobs 60]
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from typing import Any

import numpy as np

from prefect_synthdata.engine.annotate import instance_annotations
from prefect_synthdata.engine.generators import get_generator

HUE_BINS = 24
SMALL, MEDIUM = 32**2, 96**2


def mean_hue(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Hue (0-1) of the mean colour of the masked pixels."""
    r, g, b = rgb[mask].reshape(-1, 3).mean(axis=0) / 255.0
    high, low = max(r, g, b), min(r, g, b)
    if high == low:
        return 0.0
    if high == r:
        hue = ((g - b) / (high - low)) % 6
    elif high == g:
        hue = (b - r) / (high - low) + 2
    else:
        hue = (r - g) / (high - low) + 4
    return float(hue / 6)


def objects(generator: str, jobs: int, **overrides: Any) -> list[tuple[float, int, int]]:
    """(mean hue, category id, area) of every labelled object of `jobs` default scenes."""
    gen = get_generator(generator)
    rows = []
    for index in range(jobs):
        seed = random.Random(f"bench-data-quality:{index}").randint(0, 2**31 - 1)
        params = {**gen.spec.defaults(), **overrides, "seed": seed}
        for frame in gen.render_frames(params, is_preview=True):
            labelled = instance_annotations(
                frame.iseg,
                frame.instances,
                params["min_visible_pixels"],
                params["min_visibility"],
            )
            for ann in labelled:
                if ann["iscrowd"]:
                    continue
                mask = frame.iseg == ann["iseg_id"]
                rows.append((mean_hue(frame.rgb, mask), ann["category_id"], ann["area"]))
    return rows


def colour_only_accuracy(rows: list[tuple[float, int, int]]) -> tuple[float, float]:
    """(hue-bin classifier accuracy, majority baseline) on the second half, trained on the first."""
    train, test = rows[::2], rows[1::2]
    by_bin: dict[int, Counter[int]] = {}
    for hue, category, _ in train:
        by_bin.setdefault(int(hue * HUE_BINS) % HUE_BINS, Counter())[category] += 1
    majority = Counter(c for _, c, _ in train).most_common(1)[0][0]
    predict = {b: counts.most_common(1)[0][0] for b, counts in by_bin.items()}
    hits = sum(predict.get(int(h * HUE_BINS) % HUE_BINS, majority) == c for h, c, _ in test)
    baseline = sum(c == majority for _, c, _ in test)
    return hits / len(test), baseline / len(test)


def size_shares(rows: list[tuple[float, int, int]]) -> tuple[float, float, float]:
    """Shares of COCO small, medium and large objects."""
    areas = np.array([a for _, _, a in rows])
    small, medium = np.mean(areas < SMALL), np.mean((areas >= SMALL) & (areas < MEDIUM))
    return float(small), float(medium), float(1 - small - medium)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60, help="scenes per generator and variant")
    args = parser.parse_args()
    print(
        "| generator | colours | objects | colour-only accuracy | majority baseline | gap "
        "| small | medium | large |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for generator in ("shapes", "tabletop"):
        for label, overrides in (("default", {}), ("class_colours=True", {"class_colours": True})):
            rows = objects(generator, args.jobs, **overrides)
            accuracy, baseline = colour_only_accuracy(rows)
            small, medium, large = size_shares(rows)
            print(
                f"| `{generator}` | {label} | {len(rows)} | {accuracy:.1%} | {baseline:.1%} "
                f"| {100 * (accuracy - baseline):+.1f} pts | {small:.0%} | {medium:.0%} | {large:.0%} |"
            )


if __name__ == "__main__":
    main()
