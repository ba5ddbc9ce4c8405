"""Reference servers (real processes on 127.0.0.1) shared by all provider tests of a session.

Tests keep apart by using distinct batch and dataset names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reference_server import ServerProcess, run_reference_server

TOKEN = "provider-test-token"
OTHER_TOKEN = "provider-other-token"
#: The fault mix of the acceptance criterion, plus cut-short result downloads.
FAULTS = {
    "error_rate": 0.2,
    "throttle_rate": 0.1,
    "drop_rate": 0.05,
    "truncate_rate": 0.1,
    "seed": 7,
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A clean reference server."""
    with run_reference_server(
        tmp_path_factory.mktemp("srv") / "data", tokens=[TOKEN, OTHER_TOKEN]
    ) as srv:
        yield srv


@pytest.fixture(scope="session")
def faulty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A reference server injecting 20% 5xx, 10% 429, 5% dropped connections, 10% truncated downloads."""
    data_dir: Path = tmp_path_factory.mktemp("faulty") / "data"
    with run_reference_server(data_dir, tokens=[TOKEN], faults=FAULTS) as srv:
        yield srv
