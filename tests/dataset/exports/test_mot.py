"""The `mot` export: read by motmetrics' MOTChallenge loader and scored against itself."""

from __future__ import annotations

import configparser

import motmetrics as mm
import numpy as np

from tests.dataset.exports.conftest import SPLIT_OF_JOB, Exported


def test_sequences_load_in_motmetrics_and_match_the_coco_tracks(exported: Exported) -> None:
    truth = exported.truth
    mot = truth.root / "mot"
    for split in ("train", "val"):
        seqmap = (mot / "seqmaps" / f"{split}.txt").read_text().splitlines()
        jobs = sorted(
            {
                im["job_index"]
                for im in truth.coco["images"]
                if SPLIT_OF_JOB[im["job_index"]] == split
            }
        )
        assert seqmap == ["name", *(f"video-{job:06d}" for job in jobs)]
        for job, name in zip(jobs, seqmap[1:], strict=True):
            seq = mot / split / name
            info = configparser.ConfigParser()
            info.read(seq / "seqinfo.ini")
            frames = sorted(
                (im for im in truth.coco["images"] if im["job_index"] == job),
                key=lambda im: im["frame_number"],
            )
            sequence = info["Sequence"]
            assert sequence["name"] == name
            assert int(sequence["seqLength"]) == len(frames)
            assert (int(sequence["imWidth"]), int(sequence["imHeight"])) == (
                frames[0]["width"],
                frames[0]["height"],
            )
            image_dir = (seq / sequence["imDir"]).resolve()
            for number, image in enumerate(frames, start=1):  # frame n is image.{n-1:06d}.rgb.png
                assert (image_dir / f"image.{number - 1:06d}{sequence['imExt']}") == (
                    truth.root / image["file_name"]
                ).resolve()
            assert (seq / "frames.txt").read_text().split() == [im["file_name"] for im in frames]

            gt = mm.io.loadtxt(str(seq / "gt" / "gt.txt"), fmt="mot15-2D")
            expected = [
                (number, a["track_id"], *a["bbox"], a["visibility"])
                for number, image in enumerate(frames, start=1)
                for a in truth.annotations(image["id"])
            ]
            got = [
                (frame, track, row.X, row.Y, row.Width, row.Height, row.Visibility)
                for (frame, track), row in gt.iterrows()
            ]
            assert sorted(got) == sorted(expected)
            # ignore regions (iscrowd 1) are marked with confidence 0, as MOTChallenge does
            crowd = {
                (number, a["track_id"])
                for number, image in enumerate(frames, start=1)
                for a in truth.annotations(image["id"])
                if a["iscrowd"]
            }
            confidence = {key: row.Confidence for key, row in gt.iterrows()}
            assert all(conf == (0 if key in crowd else 1) for key, conf in confidence.items())
            assert (gt["ClassId"] > 0).all()

            # the ground truth scored against itself by motmetrics' accumulator: every
            # object matched, no switches (its iou_matrix helper predates NumPy 2, so
            # the distances are computed here)
            accumulator = mm.MOTAccumulator(auto_id=True)
            for _, rows in gt.groupby(level="FrameId"):
                ids = rows.index.get_level_values("Id").tolist()
                boxes = rows[["X", "Y", "Width", "Height"]].to_numpy()
                accumulator.update(ids, ids, _iou_distances(boxes))
            summary = mm.metrics.create().compute(
                accumulator, metrics=["mota", "num_switches", "num_objects"]
            )
            assert summary["num_objects"].iloc[0] == len(expected)
            assert summary["num_switches"].iloc[0] == 0
            if expected:
                assert summary["mota"].iloc[0] == 1.0
    video = configparser.ConfigParser()
    video.read(mot / "val" / "video-000001" / "seqinfo.ini")
    assert video["Sequence"]["seqLength"] == "3"


def _iou_distances(boxes: np.ndarray) -> np.ndarray:
    """1 - IoU between xywh boxes, NaN (no match) where IoU is under 0.5."""
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    w = np.clip(np.minimum(x1[:, None], x1) - np.maximum(x0[:, None], x0), 0, None)
    h = np.clip(np.minimum(y1[:, None], y1) - np.maximum(y0[:, None], y0), 0, None)
    inter = w * h
    area = boxes[:, 2] * boxes[:, 3]
    iou = inter / (area[:, None] + area - inter)
    return np.where(iou >= 0.5, 1 - iou, np.nan)
