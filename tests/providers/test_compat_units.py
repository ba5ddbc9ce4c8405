"""Seed-compatible helpers that need no server: deep config paths and job-parameter input."""

from __future__ import annotations

from typing import Any

import pytest

from prefect_synthdata.compat.infinity import as_job_list
from prefect_synthdata.compat.zpy import parse_path, set_path, unset_path
from prefect_synthdata.exceptions import ParameterValidationError
from prefect_synthdata.providers.zpy import shared_config, spec_from_sim


@pytest.mark.parametrize(
    ("path", "tokens"),
    [
        ("a", ["a"]),
        ("a.b.c", ["a", "b", "c"]),
        ("a.b[0].c", ["a", "b", 0, "c"]),
        ("a[1][2]", ["a", 1, 2]),
        ("run\\.seed", ["run.seed"]),
        ("x.run\\.seed.y", ["x", "run.seed", "y"]),
    ],
)
def test_parse_path(path: str, tokens: list[Any]) -> None:
    assert parse_path(path) == tokens


@pytest.mark.parametrize("bad", ["", ".a", "a..b", "a[x]"])
def test_parse_path_rejects_malformed_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_path(bad)


def test_set_creates_nested_dicts_and_lists() -> None:
    config: dict[str, Any] = {}
    set_path(config, "a.b[0].c", 1)
    set_path(config, "a.b[2]", "z")
    set_path(config, "run\\.seed", 7)
    set_path(config, "a.d", {"e": 2})
    assert config == {"a": {"b": [{"c": 1}, None, "z"], "d": {"e": 2}}, "run.seed": 7}
    set_path(config, "a.b[0].c", 5)  # overwrite in place
    assert config["a"]["b"][0] == {"c": 5}


def test_set_refuses_an_index_into_a_dict() -> None:
    with pytest.raises(ValueError, match="index"):
        set_path({"a": {"b": 1}}, "a[0]", 1)


def test_unset_removes_values_and_ignores_missing_paths() -> None:
    config: dict[str, Any] = {"a": {"b": [{"c": 1, "d": 2}, 3]}, "run.seed": 4}
    assert unset_path(config, "a.b[0].c")
    assert unset_path(config, "a.b[1]")
    assert unset_path(config, "run\\.seed")
    assert not unset_path(config, "a.x.y")
    assert not unset_path(config, "a.b[5]")
    assert config == {"a": {"b": [{"d": 2}]}}


def test_job_list_from_dicts_and_type_errors() -> None:
    assert as_job_list([{"w": 1}, {}]) == [{"w": 1}, {}]
    with pytest.raises(TypeError, match="DataFrame"):
        as_job_list({"w": 1})
    with pytest.raises(TypeError, match=r"job_params\[1\]"):
        as_job_list([{}, 3])


def test_job_list_from_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([{"width": 64, "style": "flat"}, {"width": 128}, {"state": None}])
    jobs = as_job_list(frame)
    # empty cells are "unspecified"; numpy scalars become Python values
    assert jobs == [{"width": 64, "style": "flat"}, {"width": 128}, {}]
    assert [type(j["width"]) for j in jobs[:2]] == [float, float]  # validation casts them to int


def test_sim_run_kwargs_become_a_spec() -> None:
    sim = {
        "id": "s1",
        "name": "shapes",
        "run_kwargs": [
            {"name": "num_objects", "type": "int", "default": 3, "min": 1, "max": 8},
            {
                "name": "style",
                "type": "str",
                "default": "flat",
                "options": {"choices": ["flat", "noise"]},
            },
        ],
    }
    spec = spec_from_sim(sim)
    assert spec.name == "shapes" and not spec.preview
    assert spec.params[0].options.max == 8 and spec.params[1].options.choices == ["flat", "noise"]


def test_shared_config_allows_only_seeds_to_differ() -> None:
    assert shared_config([{"seed": 1, "n": 2}, {"seed": 5, "n": 2}]) == {"seed": 1, "n": 2}
    with pytest.raises(ParameterValidationError, match=r"job 1: differs from job 0 in \['n'\]"):
        shared_config([{"seed": 1, "n": 2}, {"seed": 5, "n": 3}])
