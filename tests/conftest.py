"""Shared fixtures: a real Prefect API for the whole session and isolated state per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """A temporary Prefect server + database for the test session (prefect_test_harness)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def synthdata_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own SYNTHDATA_HOME (local provider state, work dirs); the local
    provider's job services (render pools) opened under the test's tmp_path are closed after it."""
    from prefect_synthdata.providers.local import close_job_services

    home = tmp_path / "synthdata-home"
    monkeypatch.setenv("SYNTHDATA_HOME", str(home))
    yield home
    close_job_services(under=tmp_path)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child processes that must import this checkout's `src/`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.update(extra)
    return env
