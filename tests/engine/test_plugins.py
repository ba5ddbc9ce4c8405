"""Generator plugins: real packages from tests/plugins/, pip-installed into a folder on the path,
run through the local provider, the reference server (a process) and `synthdata generators`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from prefect_synthdata.batches import PollPolicy, download_jobs, poll_until_done, prepare_request
from prefect_synthdata.engine.generators import GENERATORS, get_generator
from prefect_synthdata.engine.generators.blender import INSTALL_HINT as HINT
from prefect_synthdata.exceptions import UnknownGeneratorError
from prefect_synthdata.models import BatchRequest
from prefect_synthdata.providers.base import Provider
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.local import LocalProvider
from tests.conftest import subprocess_env
from tests.engine.conftest import assert_exact, file_bytes
from tests.reference_server import run_reference_server

BLENDER = "prefect_synthdata.engine.generators.blender:BlenderGenerator"
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
FAST = PollPolicy(initial_seconds=0.1, cap_seconds=0.5, deadline_seconds=120)


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package and the broken one, installed by pip into one folder
    (built from copies, so that no build files land in the source tree)."""
    target, sources = tmp_path_factory.mktemp("plugins"), tmp_path_factory.mktemp("sources")
    for package in ("example_generator", "broken_generators"):
        shutil.copytree(PLUGINS / package, sources / package)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(sources / "example_generator"), str(sources / "broken_generators")],
        check=True, timeout=300,
    )  # fmt: skip
    return target


@pytest.fixture
def plugins(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed plugins on this process's path (and children's), registry reloaded."""
    monkeypatch.syspath_prepend(str(plugin_dir))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])
    )
    GENERATORS.reload()
    yield plugin_dir
    monkeypatch.undo()
    GENERATORS.reload()


def test_registry_keeps_working_plugins_and_names_broken_ones(plugins: Path) -> None:
    assert {"shapes", "tabletop", "discs", "float_depth", "unrecorded", "flaky"} <= set(GENERATORS)
    unavailable = GENERATORS.unavailable
    if "blender" in unavailable:  # this environment lacks the blender extra
        assert unavailable.pop("blender") == "cannot load " + BLENDER + ": ImportError: " + HINT
    assert set(unavailable) == {"import_fails", "misnamed", "shapes"}
    assert "ModuleNotFoundError" in unavailable["import_fails"]
    assert "'not_its_entry_point_name'" in unavailable["misnamed"]
    assert "built-in" in unavailable["shapes"]
    assert type(get_generator("shapes")).__module__.startswith("prefect_synthdata.")
    with pytest.raises(UnknownGeneratorError, match="'import_fails' is unavailable: cannot load"):
        get_generator("import_fails")


def run_batch(provider: Provider, request: BatchRequest, work: Path) -> list[Path]:
    """Submit, wait, download: the per-job folders in job order."""
    batch = provider.submit(request)
    status = poll_until_done(provider, batch, FAST)
    assert not status.failed, [j.error for j in status.failed]
    return download_jobs(provider, batch, batch.job_ids, work)


def check_plugin_end_to_end(provider: Provider, work: Path) -> None:
    assert "discs" in {s.name for s in provider.list_generators()}
    assert provider.estimate("discs", [{"frames": 3}, {}], False) == [3, 1]
    jobs = [{"seed": 11, "frames": 3, "num_objects": 8}, {"seed": 12, "width": 96}]
    first = run_batch(
        provider, prepare_request(provider, "discs", jobs, False, "first"), work / "1"
    )
    assert sum(assert_exact(folder) for folder in first) > 10
    # a `state` re-run of each job renders the same files, byte for byte
    # (sent as they are: the server expands `state`, see README "Re-running a job")
    reruns = [{"state": folder.name} for folder in first]
    request = BatchRequest(generator="discs", jobs=reruns, key="again", name="plugin-again")
    again = run_batch(provider, request, work / "2")
    for a, b in zip(first, again, strict=True):
        original, rerun = file_bytes(a), file_bytes(b)
        for name in ("labels.json", *(n for n in original if n.endswith(".png"))):
            assert rerun[name] == original[name], name


def test_plugin_through_the_local_provider(plugins: Path, tmp_path: Path) -> None:
    check_plugin_end_to_end(LocalProvider(tmp_path / "state", workers=1), tmp_path)


def test_plugin_through_the_reference_server(plugins: Path, tmp_path: Path) -> None:
    token = "plugin-token"
    with run_reference_server(tmp_path / "srv", tokens=[token]) as server:
        check_plugin_end_to_end(InfinityProvider(server.url, SecretStr(token)), tmp_path)
        headers = server.headers(token)
        sims = requests.get(f"{server.url}/api/v1/sims/", headers=headers, timeout=30).json()
        assert "discs" in {s["name"] for s in sims["results"]}
        broken = requests.get(f"{server.url}/api/jobs/import_fails/", headers=headers, timeout=30)
        assert broken.status_code == 404 and "ModuleNotFoundError" in broken.text
        # a plugin whose frames break the contract fails its job, naming the generator and why
        bad = InfinityProvider(server.url, SecretStr(token))
        batch = bad.submit(prepare_request(bad, "unrecorded", [{}], False, "bad-plugin"))
        status = poll_until_done(bad, batch, FAST)
        (job,) = status.failed
        assert "'unrecorded'" in job.error and "no Instance record" in job.error
    assert "unavailable generator 'import_fails'" in server.log()


def test_generators_check_reports_each_broken_plugin(plugins: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prefect_synthdata.cli", "generators", "--check"],
        capture_output=True, text=True, timeout=300, env=subprocess_env(),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines: dict[str, str] = {}
    for line in result.stdout.splitlines():  # the first line of a name: the usable generator
        name, verdict = line.split(maxsplit=1)
        lines.setdefault(name, verdict)
    assert lines["shapes"] == lines["tabletop"] == lines["discs"] == "ok"
    assert "not deterministic" in lines["flaky"]
    assert "depth must be a (64, 64) uint16 array, got float32" in lines["float_depth"]
    assert "instance ids [7]" in lines["unrecorded"]
    assert "not loaded: cannot load" in lines["import_fails"]
    assert "FAILED: not loaded: the name of a built-in generator" in result.stdout


def test_readme_shows_the_example_package_as_it_is() -> None:
    readme = (PLUGINS.parents[1] / "README.md").read_text()
    for path in ("pyproject.toml", "synthdata_discs/__init__.py"):
        assert (PLUGINS / "example_generator" / path).read_text() in readme, path
