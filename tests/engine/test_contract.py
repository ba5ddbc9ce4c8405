"""The per-frame and definition checks of the Generator contract, one broken rule at a time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from prefect_synthdata.engine.generators import Frame, Instance
from prefect_synthdata.engine.generators.contract import check_definition, check_frame
from prefect_synthdata.engine.generators.shapes import ShapesGenerator
from prefect_synthdata.exceptions import GeneratorContractError


def square() -> Frame:
    """A valid 32x48 frame: instance 3 (category 2) fills rows 4-9, columns 6-15."""
    iseg = np.zeros((32, 48), np.uint16)
    iseg[4:10, 6:16] = 3
    cseg = (iseg > 0).astype(np.uint8) * 2
    return Frame(
        np.zeros((32, 48, 3), np.uint8),
        iseg,
        cseg,
        np.full((32, 48), 1000, np.uint16),
        {3: Instance(2, 1, 60, (4, 10, 6, 16))},
        {"seed": 1},
    )


def test_a_valid_frame_passes() -> None:
    assert check_frame("g", square(), categories=2, size=(32, 48)) is not None
    with_normals = square()
    with_normals.normals = np.full((32, 48, 3), 128, np.uint8)
    assert check_frame("g", with_normals, categories=2, size=(32, 48)) is not None


def _set(field: str, value: object) -> Callable[[Frame], None]:
    return lambda frame: setattr(frame, field, value)


def _paint(frame: Frame, value: int, cat: int) -> None:
    frame.iseg[20:22, 30:33] = value
    frame.cseg[20:22, 30:33] = cat


BROKEN = {
    "rgb must be an (H, W, 3) uint8 array, got float32": _set(
        "rgb", np.zeros((32, 48, 3), np.float32)
    ),
    "iseg must be a (32, 48) uint16 array, got int32": _set("iseg", np.zeros((32, 48), np.int32)),
    "cseg must be a (32, 48) uint8 array, got uint8 array of shape (48, 32)": _set(
        "cseg", np.zeros((48, 32), np.uint8)
    ),
    "instance ids [9] are in the iseg map but have no Instance record": lambda f: _paint(f, 9, 2),
    "category_id 3, not in 1..2": lambda f: f.instances.update(
        {3: Instance(3, 1, 60, (4, 10, 6, 16))}
    ),
    "instance 3 has pixels outside its region": lambda f: f.instances.update(
        {3: Instance(2, 1, 60, (4, 9, 6, 16))}
    ),
    "outside the frame": lambda f: f.instances.update({3: Instance(2, 1, 60, (4, 40, 6, 16))}),
    "cseg disagrees": lambda f: f.cseg.__setitem__((5, 7), 1),
    "metadata is not JSON": _set("metadata", {"t": object()}),
    "normals must be a (32, 48, 3) uint8 array, got float32": _set(
        "normals", np.zeros((32, 48, 3), np.float32)
    ),
}


@pytest.mark.parametrize("reason", sorted(BROKEN))
def test_each_broken_rule_is_named(reason: str) -> None:
    frame = square()
    BROKEN[reason](frame)
    with pytest.raises(GeneratorContractError, match="generator 'g' is unusable") as caught:
        check_frame("g", frame, categories=2)
    assert reason in caught.value.reason


def test_frame_of_the_wrong_size_is_named() -> None:
    with pytest.raises(GeneratorContractError, match="frame is 48x32 but the job asked for 64x64"):
        check_frame("g", square(), categories=2, size=(64, 64))


def test_definition_checks() -> None:
    with pytest.raises(GeneratorContractError, match="registered as 'other'"):
        check_definition("other", ShapesGenerator())
    with pytest.raises(GeneratorContractError, match="not a prefect_synthdata Generator"):
        check_definition("x", object())
    with pytest.raises(GeneratorContractError, match="a name is 1-64 characters"):
        check_definition("Bad Name", ShapesGenerator())
    broken = ShapesGenerator()
    broken.categories = ["a", "a"]
    with pytest.raises(GeneratorContractError, match="distinct"):
        check_definition("shapes", broken)
    broken.categories = ["c"]
    broken.spec = replace_default(broken.spec, "width", 1)
    with pytest.raises(GeneratorContractError, match="default parameters do not validate"):
        check_definition("shapes", broken)


def replace_default(spec, name, value):  # type: ignore[no-untyped-def]
    params = [
        p.model_copy(update={"default_value": value}) if p.name == name else p for p in spec.params
    ]
    return spec.model_copy(update={"params": params})
