"""`synthdata generate --provider infinity|zpy` against the reference server: the main flow,
unchanged, and a second identical run submits nothing new."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from prefect_synthdata.cli import main
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.zpy import ZpyProvider
from tests.providers.conftest import TOKEN
from tests.reference_server import ServerProcess


def generate(
    server: ServerProcess, provider: str, dest: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    code = main(
        ["generate", "--provider", provider, "--url", server.url, "--token", TOKEN, "--jobs", "2",
         "--param", "width=64", "--param", "height=64", "--dest", str(dest), "--name", f"cli-{provider}"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert TOKEN not in captured.out + captured.err
    return captured.out.strip().splitlines()[-1]


@pytest.mark.parametrize("kind", ["infinity", "zpy"])
def test_generate_twice_submits_one_batch(
    kind: str, server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "datasets"
    uri = generate(server, kind, dest, capsys)
    manifest = json.loads((Path(uri) / "manifest.json").read_text())
    assert (
        manifest["num_jobs"] == 2
        and manifest["num_images"] == 2
        and manifest["generator"] == "shapes"
    )
    assert (Path(uri) / "_SUCCESS").exists()
    assert generate(server, kind, dest, capsys) == uri

    if kind == "infinity":
        infinity = InfinityProvider(server.url, SecretStr(TOKEN))
        now = datetime.now(UTC)
        names = [b["name"] for b in infinity.api.batches(now - timedelta(hours=1), now)]
        assert sum(name.startswith("cli-infinity-") for name in names) == 1
    else:  # no --project: the token's first project
        zpy = ZpyProvider(server.url, SecretStr(TOKEN), None, tmp_path / "cache")
        datasets = list(zpy.api.iter_list("datasets/", project=zpy.project))
        assert sum(d["name"].startswith("cli-zpy-") for d in datasets) == 1


def test_http_provider_needs_url_and_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNTHDATA_TOKEN", raising=False)
    assert main(["generators", "--provider", "zpy", "--url", "http://127.0.0.1:9"]) == 2
    assert "needs --url and --token" in capsys.readouterr().err
