"""Assemble per-job result folders into one dataset folder with one merged COCO file.

Layout of the assembled folder (the published layout, minus `_SUCCESS`):

    annotations.coco.json          images/<job index>/image.NNNNNN.rgb.png ...
    annotations.<split>.coco.json  one per split, if the request asks for splits
    manifest.json

Job folders are named by the job's position in the batch (`000000`, ...), not by the
provider's job id, so the same request gives byte-identical files on any server.
Image, annotation and category ids are renumbered so they are unique across jobs;
`file_name` (and the `iseg_file`, `cseg_file`, `depth_file`, `normal_file` extras) are relative to
the dataset folder, so pycocotools loads the file as is.

Every job is a video (a still job a video of one frame), in COCO-VID / TAO form:
a `videos` section, `video_id` and `frame_id` on each image, `video_id` and a
dataset-unique `track_id` on each annotation, and a `tracks` section (TAO). Splits
hold whole jobs, so a video never spans two of them; each split file keeps the ids
of the full file.

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

from prefect_synthdata.dataset.manifest import (
    ANNOTATIONS,
    MANIFEST,
    Manifest,
    SplitEntry,
    file_entry,
)
from prefect_synthdata.dataset.quality import QualityGate, count

FILE_FIELDS = ("file_name", "iseg_file", "cseg_file", "depth_file", "normal_file")


def merge_coco(jobs: list[tuple[str, Path]]) -> dict[str, Any]:
    """Merge the `labels.json` of each `(job_id, folder)` into one COCO(-VID) dict.

    Images carry their job's position (`job_index`), not the provider's job id, so the
    file is the same whichever batch rendered the same jobs.
    """
    categories: dict[str, int] = {}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    tracks: dict[tuple[int, int], dict[str, Any]] = {}
    for index, (_, folder) in enumerate(jobs):
        labels = json.loads((folder / "labels.json").read_text())
        category_map = {}
        for cat in labels["categories"]:
            category_map[cat["id"]] = categories.setdefault(cat["name"], len(categories) + 1)
        video_id = index + 1
        image_map = {}
        for frame_id, image in enumerate(labels["images"]):
            merged = dict(
                image,
                id=len(images) + 1,
                job_index=index,
                video_id=video_id,
                frame_id=image.get("frame_number", frame_id),
            )
            for field in FILE_FIELDS:
                if field in image:
                    merged[field] = f"images/{index:06d}/{image[field]}"
            image_map[image["id"]] = merged["id"]
            images.append(merged)
        if labels["images"]:
            first = labels["images"][0]
            videos.append(
                {
                    "id": video_id,
                    "name": f"{index:06d}",
                    "width": first["width"],
                    "height": first["height"],
                    "frames": len(labels["images"]),
                }
            )
        for ann in labels["annotations"]:
            category_id = category_map[ann["category_id"]]
            local_track = ann.get("track_id", ann["id"])
            track = tracks.setdefault(
                (index, local_track),
                {"id": len(tracks) + 1, "category_id": category_id, "video_id": video_id},
            )
            annotations.append(
                dict(
                    ann,
                    id=len(annotations) + 1,
                    image_id=image_map[ann["image_id"]],
                    category_id=category_id,
                    video_id=video_id,
                    track_id=track["id"],
                )
            )
    return {
        "info": {"description": "prefect-synthdata dataset"},
        "categories": [
            {"id": i, "name": n, "supercategory": "object"} for n, i in categories.items()
        ],
        "videos": videos,
        "images": images,
        "annotations": annotations,
        "tracks": list(tracks.values()),
    }


def split_coco(coco: dict[str, Any], job_splits: list[str]) -> dict[str, dict[str, Any]]:
    """One COCO dict per split name, each holding the jobs (videos) assigned to it, ids unchanged.

    Example:
        >>> coco = {"info": {}, "categories": [], "videos": [{"id": 1}, {"id": 2}], "tracks": [],
        ...     "images": [{"id": 1, "job_index": 0}, {"id": 2, "job_index": 1}], "annotations": []}
        >>> [s["images"] for s in split_coco(coco, ["val", "train"]).values()]
        [[{'id': 2, 'job_index': 1}], [{'id': 1, 'job_index': 0}]]
    """
    parts = {}
    for name in sorted(set(job_splits)):
        jobs = {index for index, split in enumerate(job_splits) if split == name}
        images = [image for image in coco["images"] if image["job_index"] in jobs]
        image_ids = {image["id"] for image in images}
        video_ids = {index + 1 for index in jobs}
        parts[name] = {
            **coco,
            "info": {**coco["info"], "split": name},
            "videos": [v for v in coco["videos"] if v["id"] in video_ids],
            "images": images,
            "annotations": [a for a in coco["annotations"] if a["image_id"] in image_ids],
            "tracks": [t for t in coco["tracks"] if t["video_id"] in video_ids],
        }
    return parts


def split_file(name: str) -> str:
    """The file name of split `name`: `annotations.<split>.coco.json`."""
    return ANNOTATIONS.replace(".coco.json", f".{name}.coco.json")


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
    quality: QualityGate | None = None,
    job_splits: list[str] | None = None,
) -> Manifest:
    """Build the dataset folder `out_dir` (recreated) and write its `manifest.json`.

    With `quality`, the merged annotations must pass that gate first
    (DatasetQualityError otherwise, and no manifest is written); with `job_splits`
    (a split name per job), each split gets its own COCO file.
    """
    coco = merge_coco(jobs)
    if quality is not None:
        quality.check(coco)
    counts = count(coco)
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
    (out_dir / ANNOTATIONS).write_text(json.dumps(coco, separators=(",", ":")))
    splits = []
    for split, part in split_coco(coco, job_splits or []).items():
        (out_dir / split_file(split)).write_text(json.dumps(part, separators=(",", ":")))
        part_counts = count(part)
        splits.append(
            SplitEntry(
                name=split,
                file=split_file(split),
                num_jobs=len(part["videos"]),
                num_images=part_counts.images,
                num_annotations=part_counts.labelled,
            )
        )
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
        num_annotations=counts.labelled,
        num_ignore_regions=counts.unlabelled,
        splits=splits,
        categories=[c["name"] for c in coco["categories"]],
        job_ids=[job_id for job_id, _ in jobs],
        job_params=job_params,
        files=[file_entry(p, p.relative_to(out_dir).as_posix()) for p in files],
    )
    (out_dir / MANIFEST).write_bytes(manifest.to_bytes())
    return manifest
