"""Assemble per-job result folders into one dataset folder with one merged COCO file.

Layout of the assembled folder (the published layout, minus `_SUCCESS`):

    annotations.coco.json          images/<job index>/image.NNNNNN.rgb.png ...
    manifest.json

Job folders are named by the job's position in the batch (`000000`, ...), not by the
provider's job id, so the same request gives byte-identical files on any server.
Image, annotation and category ids are renumbered so they are unique across jobs;
`file_name` (and the `iseg_file`, `cseg_file`, `depth_file` extras) are relative to
the dataset folder, so pycocotools loads the file as is.

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.engine.render import render_job
    >>> from prefect_synthdata.engine.generators import get_generator
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> params = {**get_generator("shapes").spec.defaults(), "width": 64, "height": 64}
    >>> _ = render_job("shapes", params, True, tmp / "jobs" / "j1")
    >>> merged = merge_coco([("j1", tmp / "jobs" / "j1")])
    >>> merged["images"][0]["file_name"]
    'images/000000/image.000000.rgb.png'
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from prefect_synthdata.dataset.manifest import ANNOTATIONS, MANIFEST, Manifest, file_entry

FILE_FIELDS = ("file_name", "iseg_file", "cseg_file", "depth_file")


def merge_coco(jobs: list[tuple[str, Path]]) -> dict[str, Any]:
    """Merge the `labels.json` of each `(job_id, folder)` into one COCO dict.

    Images carry their job's position (`job_index`), not the provider's job id, so the
    file is the same whichever batch rendered the same jobs.
    """
    categories: dict[str, int] = {}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index, (_, folder) in enumerate(jobs):
        labels = json.loads((folder / "labels.json").read_text())
        category_map = {}
        for cat in labels["categories"]:
            category_map[cat["id"]] = categories.setdefault(cat["name"], len(categories) + 1)
        image_map = {}
        for image in labels["images"]:
            merged = dict(image, id=len(images) + 1, job_index=index)
            for field in FILE_FIELDS:
                if field in image:
                    merged[field] = f"images/{index:06d}/{image[field]}"
            image_map[image["id"]] = merged["id"]
            images.append(merged)
        for ann in labels["annotations"]:
            annotations.append(
                dict(
                    ann,
                    id=len(annotations) + 1,
                    image_id=image_map[ann["image_id"]],
                    category_id=category_map[ann["category_id"]],
                )
            )
    return {
        "info": {"description": "prefect-synthdata dataset"},
        "categories": [
            {"id": i, "name": n, "supercategory": "object"} for n, i in categories.items()
        ],
        "images": images,
        "annotations": annotations,
    }


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def assemble_dataset(
    jobs: list[tuple[str, Path]],
    out_dir: Path,
    *,
    name: str,
    version: str,
    provider: str,
    generator: str,
    batch_id: str,
    is_preview: bool,
) -> Manifest:
    """Build the dataset folder `out_dir` (recreated) and write its `manifest.json`."""
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "images").mkdir(parents=True)
    job_params = []
    for index, (_, folder) in enumerate(jobs):
        target = out_dir / "images" / f"{index:06d}"
        target.mkdir()
        for path in sorted(folder.iterdir()):
            if path.suffix == ".png":
                _link_or_copy(path, target / path.name)
        job_params.append(json.loads((folder / "job.json").read_text())["params"])
    coco = merge_coco(jobs)
    (out_dir / ANNOTATIONS).write_text(json.dumps(coco, separators=(",", ":")))
    files = sorted(
        (p for p in out_dir.rglob("*") if p.is_file() and p.name != MANIFEST),
        key=lambda p: p.relative_to(out_dir).as_posix(),
    )
    manifest = Manifest(
        name=name,
        version=version,
        provider=provider,
        generator=generator,
        batch_id=batch_id,
        is_preview=is_preview,
        num_jobs=len(jobs),
        num_images=len(coco["images"]),
        num_annotations=len(coco["annotations"]),
        categories=[c["name"] for c in coco["categories"]],
        job_ids=[job_id for job_id, _ in jobs],
        job_params=job_params,
        files=[file_entry(p, p.relative_to(out_dir).as_posix()) for p in files],
    )
    (out_dir / MANIFEST).write_bytes(manifest.to_bytes())
    return manifest
