"""MOTChallenge ground truth: one sequence per video, for tracking tools and evaluators.

Written into the dataset folder:

    mot/<split>/<video>/gt/gt.txt     frame, id, left, top, width, height, conf, class, visibility
    mot/<split>/<video>/seqinfo.ini   name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    mot/<split>/<video>/frames.txt    the dataset-relative RGB file of frame 1, 2, ...
    mot/seqmaps/<split>.txt           "name", then one sequence a line (TrackEval's seqmap)

A video is a job (or a COCO-VID `video_id` where the COCO file has no job index), named
`video-NNNNNN`; frames are numbered from 1 in frame order, `id` is the annotation's
`track_id` (stable through the video), `left`/`top` the COCO box's corner counted from
1 as MOTChallenge does (COCO counts from 0), `class` the COCO category id, `visibility`
the visible share of the object. `conf` is 1, or 0 for crowd/ignore annotations (MOT's
"ignore" marker). A still image is a one-frame sequence. The RGB frames stay where they
are: `imDir` points at the job's folder, where frame n is `image.{n-1:06d}.rgb.png`
(`frames.txt` lists them), not MOT's `img1/000001.jpg`. `frameRate` is nominal (the
generators have no clock).

Example:
    >>> import motmetrics as mm  # doctest: +SKIP
    >>> gt = mm.io.loadtxt("datasets/shapes/v1/mot/train/video-000000/gt/gt.txt", fmt="mot15-2D")  # doctest: +SKIP
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from pathlib import Path
from typing import Any

from prefect_synthdata.dataset.exports.source import Split, frame_index, video_key

FOLDER = "mot"
FRAME_RATE = 30


def sequences(split: Split) -> dict[str, list[dict[str, Any]]]:
    """Each video's images in frame order, by sequence name."""
    videos: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for image in split.images:
        videos[video_key(image)].append(image)
    return {
        f"video-{key:06d}": sorted(images, key=frame_index)
        for key, images in sorted(videos.items())
    }


def gt_lines(split: Split, frames: list[dict[str, Any]]) -> list[str]:
    """The `gt.txt` lines of one sequence, by frame then track id."""
    rows = []
    for number, image in enumerate(frames, start=1):
        for ann in split.by_image[image["id"]]:
            x, y, w, h = ann["bbox"]
            x, y = x + 1, y + 1  # MOTChallenge pixels count from 1
            conf = 0 if ann.get("iscrowd", 0) else 1
            rows.append(
                (
                    number,
                    int(ann["track_id"]),
                    f"{x:g},{y:g},{w:g},{h:g}",
                    conf,
                    ann["category_id"],
                    float(ann.get("visibility", 1.0)),
                )
            )
    return [f"{f},{t},{box},{c},{k},{v:g}" for f, t, box, c, k, v in sorted(rows)]


def seqinfo(name: str, frames: list[dict[str, Any]], seq_dir: str) -> str:
    """The text of `seqinfo.ini`; `seq_dir` is the sequence folder relative to the dataset."""
    first = frames[0]
    image_dir = posixpath.dirname(first["file_name"])
    return (
        "[Sequence]\n"
        f"name={name}\n"
        f"imDir={posixpath.relpath(image_dir, seq_dir)}\n"
        f"frameRate={FRAME_RATE}\n"
        f"seqLength={len(frames)}\n"
        f"imWidth={first['width']}\n"
        f"imHeight={first['height']}\n"
        "imExt=.rgb.png\n"
    )


def write(folder: Path, splits: list[Split]) -> list[Path]:
    """Write every split's sequences and seqmaps into the dataset `folder`."""
    written = []
    (folder / FOLDER / "seqmaps").mkdir(parents=True, exist_ok=True)
    for split in splits:
        seqs = sequences(split)
        for name, frames in seqs.items():
            seq_dir = f"{FOLDER}/{split.name}/{name}"
            (folder / seq_dir / "gt").mkdir(parents=True, exist_ok=True)
            files = {
                "gt/gt.txt": "".join(line + "\n" for line in gt_lines(split, frames)),
                "seqinfo.ini": seqinfo(name, frames, seq_dir),
                "frames.txt": "".join(image["file_name"] + "\n" for image in frames),
            }
            for relative, text in files.items():
                (folder / seq_dir / relative).write_text(text)
                written.append(folder / seq_dir / relative)
        seqmap = folder / FOLDER / "seqmaps" / f"{split.name}.txt"
        seqmap.write_text("name\n" + "".join(f"{name}\n" for name in seqs))
        written.append(seqmap)
    return written
