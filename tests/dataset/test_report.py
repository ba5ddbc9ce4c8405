"""The dataset report: a sample grid with masks and boxes drawn, counts and histograms."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from prefect_synthdata.dataset.report import CLASS_COLOURS, report_markdown, sample_grid
from tests.dataset.test_assemble import assemble, render_jobs


def test_report_shows_samples_counts_histograms_and_unlabelled_images(tmp_path: Path) -> None:
    jobs = render_jobs(tmp_path, "shapes", 3, min_objects=6, num_objects=8)
    jobs += render_jobs(tmp_path / "empty", "shapes", 1, min_visible_pixels=100000)
    assemble(jobs, tmp_path / "ds")
    coco = json.loads((tmp_path / "ds" / "annotations.coco.json").read_text())
    labelled = [a for a in coco["annotations"] if not a["iscrowd"]]

    report = report_markdown(tmp_path / "ds", "d 1")
    uri = re.search(r"!\[samples\]\(data:image/png;base64,([^)]+)\)", report)
    assert uri is not None
    grid = Image.open(io.BytesIO(base64.b64decode(uri.group(1))))
    assert grid.format == "PNG" and grid.size == (4 * 196, 196)  # four images, one row
    for category in coco["categories"]:
        count = sum(a["category_id"] == category["id"] for a in labelled)
        assert re.search(rf"\| {category['name']} \| `#[0-9a-f]{{6}}` \| {count} \|", report)
    # each histogram counts every labelled object once
    for title in ("size", "area", "visibility"):
        section = report.split(f"| {title} | objects | |")[1].split("\n\n")[0]
        counts = [int(row.split("|")[2]) for row in section.strip().splitlines()[1:]]
        assert sum(counts) == len(labelled), title
    assert "## Images without labels (1)" in report
    assert "`images/000003/image.000000.rgb.png`" in report


def test_sample_tiles_show_masks_in_class_colours(tmp_path: Path) -> None:
    jobs = render_jobs(tmp_path, "tabletop", 1, min_objects=4, num_objects=4, noise_std=0.0)
    assemble(jobs, tmp_path / "ds")
    coco = json.loads((tmp_path / "ds" / "annotations.coco.json").read_text())
    tile = np.asarray(
        Image.open(io.BytesIO(sample_grid(tmp_path / "ds", coco, samples=1, size=96)))
    )
    original = np.asarray(Image.open(tmp_path / "ds" / coco["images"][0]["file_name"]))
    # at full size (the test images are 96 wide) each labelled object is tinted halfway
    # towards its class colour
    ann = max((a for a in coco["annotations"] if not a["iscrowd"]), key=lambda a: a["area"])
    x, y, w, h = ann["bbox"]
    inside = tile[2 + y : 2 + y + h, 2 + x : 2 + x + w].astype(int)
    before = original[y : y + h, x : x + w].astype(int)
    colour = np.array(CLASS_COLOURS[ann["category_id"] - 1])
    assert np.abs(inside - (before + colour) // 2).min() <= 1
    assert not np.array_equal(inside, before)
