"""The `Generator` contract, checked in three places at three costs.

- `check_definition` (at registry load, no rendering): the object is a `Generator`,
  its spec is named after its entry point, its categories fit the 8-bit class map
  and its default parameters validate.
- `check_frame` (every frame `render_job` writes, O(pixels)): array dtypes and
  shapes, every instance id in the map has a record with a known category, the
  record's region holds all its pixels and the class map agrees with it, metadata
  is JSON. These are what makes the annotations exact.
- `check_rendering` (`synthdata generators --check`, renders twice): a small
  preview passes `check_frame` and renders to the same arrays here and in a fresh
  process (which also catches hash-seeded or address-dependent randomness).

Every failure is a `GeneratorContractError` naming the generator and the reason.

Example:
    >>> from prefect_synthdata.engine.generators.shapes import ShapesGenerator
    >>> check_definition("shapes", ShapesGenerator()).spec.name
    'shapes'
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np

from prefect_synthdata.engine.generators.base import Frame, Generator, Instance
from prefect_synthdata.exceptions import GeneratorContractError
from prefect_synthdata.params import GeneratorSpec, check_job

NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
MAX_CATEGORIES = 255  # the class map is 8-bit, 0 is background
MAPS = {"iseg": np.uint16, "cseg": np.uint8, "depth": np.uint16}
NOT_DETERMINISTIC = (
    "not deterministic: the same parameters rendered different frames in two processes"
)
CHECK_SIZE = 64  # pixels per side of the frames `check_rendering` renders (when the spec allows)


def check_definition(name: str, generator: Any) -> Generator:
    """`generator` if it honours the static contract under `name`, else GeneratorContractError."""

    def fail(reason: str) -> GeneratorContractError:
        return GeneratorContractError(name, reason)

    if not NAME.fullmatch(name):
        raise fail("a name is 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter")
    if not isinstance(generator, Generator):
        raise fail(f"not a prefect_synthdata Generator: {type(generator).__name__}")
    spec = getattr(generator, "spec", None)
    if not isinstance(spec, GeneratorSpec):
        raise fail(f"`spec` must be a GeneratorSpec, got {type(spec).__name__}")
    if spec.name != name:
        raise fail(f"spec.name is {spec.name!r} but the generator is registered as {name!r}")
    categories = getattr(generator, "categories", None)
    if (
        not isinstance(categories, list)
        or not categories
        or not all(isinstance(c, str) and c for c in categories)
        or len(set(categories)) != len(categories)
    ):
        raise fail("`categories` must be a non-empty list of distinct non-empty names")
    if len(categories) > MAX_CATEGORIES:
        raise fail(f"{len(categories)} categories; the class map holds at most {MAX_CATEGORIES}")
    _, problems = check_job(spec, {})
    if problems:
        raise fail("its default parameters do not validate: " + "; ".join(problems))
    return generator


def check_frame(
    name: str, frame: Any, categories: int, size: tuple[int, int] | None = None
) -> Frame:
    """`frame` if it honours the per-frame contract, else GeneratorContractError.

    `size` is the (height, width) the job asked for, when its parameters say so.
    """

    def fail(reason: str) -> GeneratorContractError:
        return GeneratorContractError(name, reason)

    if not isinstance(frame, Frame):
        raise fail(f"render_frames yielded {type(frame).__name__}, not a Frame")
    rgb = frame.rgb
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.dtype != np.uint8
        or rgb.ndim != 3
        or rgb.shape[2] != 3
    ):
        raise fail(f"rgb must be an (H, W, 3) uint8 array, got {_describe(rgb)}")
    height, width = rgb.shape[:2]
    if size is not None and (height, width) != size:
        raise fail(f"frame is {width}x{height} but the job asked for {size[1]}x{size[0]}")
    for field, dtype in MAPS.items():
        array = getattr(frame, field)
        if (
            not isinstance(array, np.ndarray)
            or array.dtype != dtype
            or array.shape != (height, width)
        ):
            raise fail(
                f"{field} must be a ({height}, {width}) {np.dtype(dtype).name} array,"
                f" got {_describe(array)}"
            )
    normals = frame.normals
    if normals is not None and (
        not isinstance(normals, np.ndarray)
        or normals.dtype != np.uint8
        or normals.shape != (height, width, 3)
    ):
        raise fail(
            f"normals must be a ({height}, {width}, 3) uint8 array, got {_describe(normals)}"
        )
    if not isinstance(frame.instances, dict):
        raise fail("instances must be a dict of instance id -> Instance")
    counts = np.bincount(frame.iseg.ravel(), minlength=1)
    present = np.flatnonzero(counts[1:]) + 1
    missing = sorted(set(present.tolist()) - set(frame.instances))
    if missing:
        raise fail(f"instance ids {missing[:10]} are in the iseg map but have no Instance record")
    lut = np.zeros(max(counts.size, max(frame.instances, default=0) + 1), np.int64)
    for instance_id, instance in frame.instances.items():
        _check_instance(fail, instance_id, instance, categories, height, width)
        lut[instance_id] = instance.category_id
        y0, y1, x0, x1 = instance.region
        if instance_id < counts.size and counts[instance_id]:
            inside = np.count_nonzero(frame.iseg[y0:y1, x0:x1] == instance_id)
            if inside != counts[instance_id]:
                raise fail(
                    f"instance {instance_id} has pixels outside its region {instance.region}"
                )
    drawn = frame.iseg != 0
    if not np.array_equal(frame.cseg[drawn], lut[frame.iseg[drawn]]):
        raise fail("cseg disagrees with the instances' category ids on instance pixels")
    try:
        json.dumps(frame.metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise fail(f"metadata is not JSON: {exc}") from None
    return frame


def _check_instance(
    fail: Any, instance_id: Any, instance: Any, categories: int, height: int, width: int
) -> None:
    if not isinstance(instance_id, int) or not 0 < instance_id <= np.iinfo(np.uint16).max:
        raise fail(f"instance id {instance_id!r} is not an integer in 1..65535")
    if not isinstance(instance, Instance):
        raise fail(f"instance {instance_id} is a {type(instance).__name__}, not an Instance")
    if not 1 <= instance.category_id <= categories:
        raise fail(
            f"instance {instance_id} has category_id {instance.category_id}, not in 1..{categories}"
        )
    y0, y1, x0, x1 = instance.region
    if not (0 <= y0 <= y1 <= height and 0 <= x0 <= x1 <= width):
        raise fail(f"instance {instance_id} has region {instance.region} outside the frame")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name} array of shape {value.shape}"
    return type(value).__name__


def check_params(generator: Generator) -> dict[str, Any]:
    """The parameters `check_rendering` uses: defaults, at most 64x64 where the spec allows."""
    params = generator.spec.defaults()
    for p in generator.spec.params:
        if p.name in ("width", "height") and p.type == "int":
            low = p.options.min if p.options.min is not None else CHECK_SIZE
            params[p.name] = max(int(low), min(int(params[p.name]), CHECK_SIZE))
    return params


def rendering_digest(name: str) -> str:
    """SHA-256 over a checked preview of generator `name` (arrays, records and metadata)."""
    from prefect_synthdata.engine.generators import get_generator

    generator = get_generator(name)
    params = check_params(generator)
    digest = hashlib.sha256()
    frames = 0
    for frame in generator.render_frames(params, is_preview=True):
        check_frame(name, frame, len(generator.categories), requested_size(params))
        for array in (frame.rgb, frame.iseg, frame.cseg, frame.depth):
            digest.update(np.ascontiguousarray(array).tobytes())
        records = {str(k): asdict(v) for k, v in sorted(frame.instances.items())}
        digest.update(json.dumps([records, frame.metadata], sort_keys=True).encode())
        frames += 1
    if frames == 0:
        raise GeneratorContractError(name, "a preview rendered no frames")
    return digest.hexdigest()


def check_rendering(names: list[str]) -> dict[str, str | None]:
    """Render a small preview of each generator here and in a fresh process.

    Returns, per name, None when both renders pass `check_frame` and are identical,
    else the reason (a broken frame, an exception, or different frames).
    """
    results: dict[str, str | None] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        elsewhere = {name: pool.submit(rendering_digest, name) for name in names}
        for name in names:
            try:
                same = rendering_digest(name) == elsewhere[name].result()
                results[name] = None if same else NOT_DETERMINISTIC
            except GeneratorContractError as exc:
                results[name] = exc.reason
            except Exception as exc:  # a plugin's render may raise anything
                results[name] = f"rendering failed: {type(exc).__name__}: {exc}"
    return results


def requested_size(params: dict[str, Any]) -> tuple[int, int] | None:
    """(height, width) when the job's parameters name both, else None."""
    if isinstance(params.get("height"), int) and isinstance(params.get("width"), int):
        return params["height"], params["width"]
    return None
