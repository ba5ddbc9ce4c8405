"""Parameter specs, validation that reports everything at once, sampling and estimates."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefect_synthdata.engine.generators import GENERATORS, get_generator
from prefect_synthdata.exceptions import ParameterValidationError
from prefect_synthdata.params import GeneratorSpec, check_job, sample_unspecified, validate_jobs
from prefect_synthdata.providers.local import LocalProvider


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_specs_are_in_the_infinity_shape(generator: str) -> None:
    body = get_generator(generator).spec.to_api()
    assert body["name"] == generator and body["options"] == {"preview": True}
    names = [p["name"] for p in body["params"]]
    assert len(names) == len(set(names)) >= 15
    for p in body["params"]:
        # the Infinity keys as the original clients read them, plus the extra key `sample`
        assert set(p) == {"name", "type", "default_value", "options", "sample"}
        assert p["type"] in {"int", "float", "str", "bool", "uuid"}
        assert set(p["options"]) <= {"min", "max", "choices"}
    parsed = GeneratorSpec.from_api(body)
    assert parsed.defaults() == get_generator(generator).spec.defaults()
    assert [q.sample for q in parsed.params] == [
        q.sample for q in get_generator(generator).spec.params
    ]
    # the defaults are themselves valid
    assert check_job(get_generator(generator).spec, {})[1] == []


def test_validation_reports_every_problem_of_every_job() -> None:
    spec = get_generator("tabletop").spec
    jobs = [
        {"width": 10, "fov": "wide", "colour": "red"},
        {"seed": 1},
        {"num_objects": 2.5, "table_texture": "marble", "state": "not-a-uuid", "ambient": True},
    ]
    with pytest.raises(ParameterValidationError) as info:
        validate_jobs(spec, jobs)
    problems = info.value.problems
    assert sorted(problems) == sorted(
        [
            "job 0: unknown parameter 'colour'",
            "job 0: 'width' must be >= 32, got 10",
            "job 0: 'fov' must be float, got 'wide'",
            "job 2: 'num_objects' must be an int, got 2.5",
            "job 2: 'ambient' must be float, got True",
            "job 2: 'table_texture' must be one of ['noise', 'checker', 'stripes', 'gradient', 'solid'], got 'marble'",
            "job 2: 'state' must be a uuid, got 'not-a-uuid'",
        ]
    )
    assert str(info.value).count("\n") == len(problems)  # one line per problem in the message


def test_previews_need_a_generator_that_offers_them() -> None:
    spec = get_generator("shapes").spec.model_copy(update={"preview": False})
    with pytest.raises(ParameterValidationError, match="does not support previews"):
        validate_jobs(spec, [{}], is_preview=True)


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_sampling_stays_within_bounds(generator: str, seed: int) -> None:
    spec = get_generator(generator).spec
    sampled = sample_unspecified(spec, {"width": 64}, random.Random(seed))
    assert sampled["width"] == 64 and sampled["state"] is None
    for p in spec.params:
        value, opts = sampled[p.name], p.options
        if opts.choices is not None:
            assert value in opts.choices
        if opts.min is not None and p.type in ("int", "float"):
            assert opts.min <= value <= opts.max
            assert isinstance(value, int if p.type == "int" else float)
    assert check_job(spec, sampled)[1] == []


NOT_SAMPLED = ("width", "height", "frames", "min_visible_pixels", "min_visibility", "class_colours")
PAIRS = {"shapes": ("min_scale", "max_scale"), "tabletop": ("min_size", "max_size")}


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_sampling_ranges_lie_inside_the_validity_bounds(generator: str) -> None:
    for p in get_generator(generator).spec.params:
        span = p.sampling_range()
        if span is None or span.choices is not None:
            assert span is None or set(span.choices or []) <= set(
                p.options.choices or [True, False]
            )
            continue
        assert p.options.min <= span.min <= span.max <= p.options.max, p.name


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    given_index=st.sampled_from([None, 0, 1]),
    value=st.floats(0.02, 0.5),
)
def test_filters_size_and_frames_are_not_sampled_and_pairs_stay_ordered(
    generator: str, seed: int, given_index: int | None, value: float
) -> None:
    spec = get_generator(generator).spec
    pair = PAIRS[generator]
    given = {} if given_index is None else {pair[given_index]: value}
    sampled = sample_unspecified(spec, given, random.Random(seed))
    defaults = spec.defaults()
    assert {name: sampled[name] for name in NOT_SAMPLED} == {
        name: defaults[name] for name in NOT_SAMPLED
    }
    low, high = (sampled[name] for name in pair)
    assert low <= high
    assert sampled["min_objects"] <= sampled["num_objects"]
    assert check_job(spec, sampled)[1] == []


def test_a_spec_that_does_not_say_follows_the_infinity_rule() -> None:
    """An original Infinity server's table has no `sample`: every bounded parameter is drawn."""
    body = get_generator("shapes").spec.to_api()
    for p in body["params"]:
        del p["sample"]
    spec = GeneratorSpec.from_api(body)
    widths = {sample_unspecified(spec, {}, random.Random(i))["width"] for i in range(20)}
    assert len(widths) > 10 and all(32 <= w <= 2048 for w in widths)


def test_zpy_sims_carry_the_sampling_ranges() -> None:
    from prefect_synthdata.providers.zpy import spec_from_sim
    from prefect_synthdata.server.datasets import sim_record

    spec = get_generator("tabletop").spec
    parsed = spec_from_sim(sim_record(get_generator("tabletop")))
    assert [p.sample for p in parsed.params] == [p.sample for p in spec.params]


def test_a_state_job_is_not_sampled() -> None:
    spec = get_generator("shapes").spec
    job = {"state": "6f1c2a3e-0000-4000-8000-000000000000", "seed": 3}
    assert sample_unspecified(spec, job, random.Random(0)) == job


def test_estimates_count_frames(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path)
    try:
        assert provider.estimate("tabletop", [{"frames": 12}, {}], is_preview=False) == [12, 1]
        assert provider.estimate("tabletop", [{"frames": 12}], is_preview=True) == [1]
        with pytest.raises(ParameterValidationError, match="'frames' must be <= 600"):
            provider.estimate("shapes", [{"frames": 601}], is_preview=False)
    finally:
        provider.service.close()
