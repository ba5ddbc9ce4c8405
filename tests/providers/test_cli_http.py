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


def test_generate_with_a_credentials_block(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The token comes from a saved block; a typo is still answered before anything is submitted."""
    from prefect_synthdata.blocks import InfinityCredentials

    InfinityCredentials(url=server.url, token=SecretStr(TOKEN)).save("cli-block", overwrite=True)
    args = ["generate", "--credentials-block", "synthdata-infinity-credentials/cli-block",
            "--jobs", "1", "--param", "height=64", "--dest", str(tmp_path), "--name", "cli-block"]  # fmt: skip
    assert main([*args, "--param", "widht=64"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown parameter 'widht' (did you mean 'width'?)" in err
    assert "Traceback" not in err and not (tmp_path / "cli-block").exists()

    code = main([*args, "--param", "width=64"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert TOKEN not in captured.out + captured.err
    assert (Path(captured.out.strip().splitlines()[-1]) / "_SUCCESS").is_file()


def test_a_missing_credentials_block_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--credentials-block", "nope", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error: no credentials block named 'nope'" in err and "Traceback" not in err
