"""Preview flow: render a few single frames of a generator and show them as an artifact.

Each frame is drawn as a thumbnail with its bounding boxes and category names, embedded
in one markdown artifact together with a table of the frames' parameters and object
counts. Nothing is published; use it to check parameters before paying for a dataset.

Example:
    >>> from prefect_synthdata.flows.preview import PreviewRequest, preview_generator
    >>> result = preview_generator(PreviewRequest(num_frames=2))  # doctest: +SKIP
    >>> len(result.frames)  # doctest: +SKIP
    2
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from prefect_synthdata.artifacts import artifact_key, call_sync
from prefect_synthdata.blocks.credentials import CredentialsReference, resolve_provider
from prefect_synthdata.dataset.manifest import ANNOTATIONS
from prefect_synthdata.pipeline import (
    build_run,
    prepare_runs,
    submit_run,
    task_runner,
    wait_for_run,
)
from prefect_synthdata.request import RunSpec, WaitSettings
from prefect_synthdata.settings import SynthDataSettings

BOX_COLOURS = ["#ff3b30", "#34c759", "#007aff", "#ffcc00", "#af52de", "#ff9500"]


class PreviewRequest(WaitSettings):
    """A handful of preview frames of one generator: a preview run that publishes nothing."""

    model_config = ConfigDict(extra="forbid")  # a mistyped field is refused, not ignored

    generator: str = Field(default="shapes", description="Generator name, e.g. 'shapes'.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters applied to every frame."
    )
    num_frames: int = Field(
        default=4, ge=1, le=16, description="Frames to render (one preview job each)."
    )
    seed: int = Field(
        default=0, ge=0, description="Seed from which each frame's scene seed is drawn."
    )
    randomize: bool = Field(
        default=True,
        description="Sample unspecified parameters, so the frames show the generator's range.",
    )
    thumbnail_size: int = Field(
        default=256, ge=32, le=1024, description="Longest side of a thumbnail in pixels."
    )
    credentials: CredentialsReference = Field(
        default=None,
        description="The generation service: a saved credentials block, or 'local'. "
        "Empty: the worker's environment (SYNTHDATA_CREDENTIALS_BLOCK, else SYNTHDATA_PROVIDER).",
    )

    def run_spec(self) -> RunSpec:
        """The preview run: one preview job a frame, named 'preview'."""
        return RunSpec(
            generator=self.generator,
            num_jobs=self.num_frames,
            params=self.params,
            is_preview=True,
            seed=self.seed,
            randomize=self.randomize,
            name="preview",
            **self.model_dump(include=set(WaitSettings.model_fields)),
        )


class PreviewFrame(BaseModel):
    """One rendered preview frame."""

    index: int
    image: str
    num_objects: int
    objects: dict[str, int]
    params: dict[str, Any]


class PreviewResult(BaseModel):
    """What a preview run rendered, and the frames whose jobs failed."""

    batch_id: str
    frames: list[PreviewFrame]
    errors: dict[str, str] = Field(default_factory=dict)


def thumbnail_data_uri(image_path: Path, boxes: list[tuple[list[float], str]], size: int) -> str:
    """A PNG data URI of the image scaled to `size` with its `(bbox, label)` boxes drawn on it."""
    with Image.open(image_path) as source:
        image = source.convert("RGB")
    scale = size / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    labels = sorted({label for _, label in boxes})
    for (x, y, w, h), label in boxes:
        colour = BOX_COLOURS[labels.index(label) % len(BOX_COLOURS)]
        draw.rectangle(
            [x * scale, y * scale, (x + w) * scale, (y + h) * scale], outline=colour, width=2
        )
        draw.text((x * scale + 2, y * scale + 1), label, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def preview_frames(
    dataset_dir: Path, job_params: list[dict[str, Any]]
) -> list[tuple[PreviewFrame, list[Any]]]:
    """Frames of an assembled preview dataset, each with its `(bbox, category)` boxes."""
    coco = json.loads((dataset_dir / ANNOTATIONS).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    boxes: dict[int, list[tuple[list[float], str]]] = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        if not ann.get("iscrowd"):  # ignore regions are not objects
            boxes[ann["image_id"]].append((ann["bbox"], names[ann["category_id"]]))
    frames = []
    for index, image in enumerate(coco["images"]):
        found = boxes[image["id"]]
        frame = PreviewFrame(
            index=index,
            image=str(dataset_dir / image["file_name"]),
            num_objects=len(found),
            objects=dict(Counter(label for _, label in found)),
            params=job_params[index] if index < len(job_params) else {},
        )
        frames.append((frame, found))
    return frames


def preview_markdown(
    generator: str, frames: list[tuple[PreviewFrame, list[Any]]], size: int, errors: dict[str, str]
) -> str:
    """The markdown of a preview artifact: thumbnails, then a table of the frames."""
    parts = [f"# Preview of `{generator}`\n"]
    for frame, boxes in frames:
        parts.append(
            f"![frame {frame.index}]({thumbnail_data_uri(Path(frame.image), boxes, size)})"
        )
    parts.append("\n| Frame | Objects | Per category | Parameters |\n|---|---|---|---|")
    for frame, _ in frames:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(frame.objects.items())) or "-"
        params = ", ".join(f"{k}={v}" for k, v in sorted(frame.params.items()) if v is not None)
        parts.append(f"| {frame.index} | {frame.num_objects} | {counts} | `{params}` |")
    for job_id, error in errors.items():
        parts.append(f"\nJob `{job_id}` failed: {error}")
    return "\n".join(parts) + "\n"


@flow(name="preview-generator", log_prints=False, task_runner=task_runner())  # type: ignore[arg-type]
def preview_generator(request: PreviewRequest) -> PreviewResult:
    """Render `num_frames` preview frames and publish them as a markdown artifact.

    Failed frames are listed with their errors instead of failing the run.

    Args:
        request: The generator, its parameters and how many frames to render.
    """
    settings = SynthDataSettings()
    provider = resolve_provider(request.credentials, None, settings)
    (run,) = prepare_runs([request.run_spec()], provider, settings, publish=False)
    batch, status = wait_for_run(run, submit_run(run), allow_failures=True)
    errors = {job.job_id: job.error or "unknown error" for job in status.failed}
    dataset_dir, manifest = build_run(run, batch, status.succeeded)
    frames = preview_frames(dataset_dir, manifest.job_params)
    call_sync(
        create_markdown_artifact,
        preview_markdown(request.generator, frames, request.thumbnail_size, errors),
        key=artifact_key("preview", request.generator),
        description=f"{len(frames)} preview frames of {request.generator}",
    )
    get_run_logger().info("rendered %d preview frames (%d failed)", len(frames), len(errors))
    return PreviewResult(
        batch_id=batch.batch_id, frames=[frame for frame, _ in frames], errors=errors
    )
