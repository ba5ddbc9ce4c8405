"""In-process checks of the server's building blocks (no HTTP): filters, signing, zumo, config, dice."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from prefect_synthdata.cli import main as cli_main
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.server.config import FaultConfig, build_parser, config_from_args
from prefect_synthdata.server.errors import ApiError
from prefect_synthdata.server.faults import FaultDice
from prefect_synthdata.server.filters import ANY, apply_filters
from prefect_synthdata.server.signing import SignatureError, UrlSigner
from prefect_synthdata.server.zumo import hull_polygon

ROWS = [
    {
        "name": "Cars",
        "state": "READY",
        "datasets": ["d1", "d2"],
        "run": {"sim": "s1"},
        "config": {"seed": 1},
    },
    {
        "name": "bikes",
        "state": "FAILED",
        "datasets": [],
        "run": {"sim": "s2"},
        "config": {"seed": 2},
    },
]
FIELDS = {"name": None, "state": None, "datasets": None, "run": {"sim": None}, "config": ANY}


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ([("name", "Cars")], ["Cars"]),
        ([("name", "cars")], []),
        ([("name__iexact", "cars")], ["Cars"]),
        ([("name__startswith", "bi")], ["bikes"]),
        ([("name__icontains", "AR")], ["Cars"]),
        ([("~name__icontains", "ar")], ["bikes"]),
        ([("state__iexact", "ready")], ["Cars"]),
        ([("datasets", "d2")], ["Cars"]),
        ([("run__sim", "s2")], ["bikes"]),
        ([("config__seed", "2")], ["bikes"]),
        ([("name__in", "bikes,trucks")], ["bikes"]),
        ([("state", "READY"), ("~name", "Cars")], []),
        ([("page", "1"), ("page-size", "1")], ["Cars", "bikes"]),
    ],
)
def test_django_filters(params: list[tuple[str, str]], names: list[str]) -> None:
    assert [r["name"] for r in apply_filters(ROWS, params, FIELDS)] == names


@pytest.mark.parametrize("key", ["colour", "run__colour", "name__sim", "__", "~", "run__"])
def test_unknown_filters_are_named(key: str) -> None:
    with pytest.raises(ApiError) as caught:
        apply_filters([], [(key, "x")], FIELDS)
    assert caught.value.status == 400 and repr(key) in caught.value.detail


def test_signed_urls_expire_and_bind_owner_and_resource(tmp_path: Path) -> None:
    signer = UrlSigner.load(tmp_path, ttl_seconds=60)
    query = signer.sign("job:1", "acct-a")
    signer.verify("job:1", "acct-a", query["expires"], query["sig"])
    assert UrlSigner.load(tmp_path, 60)._key == signer._key  # the key survives a restart
    assert (tmp_path / "signing.key").stat().st_mode & 0o777 == 0o600
    for resource, owner, expires, sig in [
        ("job:2", "acct-a", query["expires"], query["sig"]),
        ("job:1", "acct-b", query["expires"], query["sig"]),
        ("job:1", "acct-a", str(int(query["expires"]) + 1), query["sig"]),
        ("job:1", "acct-a", "-1", query["sig"]),
        ("job:1", "acct-a", "\u00b2", query["sig"]),  # a digit to isdigit(), not to int()
        ("job:1", "acct-a", query["expires"], "é"),
    ]:
        with pytest.raises(SignatureError):
            signer.verify(resource, owner, expires, sig)
    expired = UrlSigner.load(tmp_path, ttl_seconds=1).sign("job:1", "acct-a")
    time.sleep(1.1)
    with pytest.raises(SignatureError, match="expired"):
        signer.verify("job:1", "acct-a", expired["expires"], expired["sig"])


def test_hull_polygon_bounds_the_mask() -> None:
    mask = np.zeros((20, 30), bool)
    mask[2:9, 4:12] = True
    mask[9:15, 10:20] = True  # an L shape: the hull covers it and touches its bbox
    polygon = hull_polygon(mask)
    xs, ys = polygon[0::2], polygon[1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (4, 2, 20, 15)
    assert len(polygon) % 2 == 0 and len(polygon) >= 8


def test_config_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYNTHDATA_SERVER_TOKENS", "env-a, env-b,,")
    monkeypatch.setenv("SYNTHDATA_FAULT_ERROR_RATE", "0.5")
    args = build_parser().parse_args(
        ["--data-dir", str(tmp_path), "--token", "flag", "--token", "env-a", "--fault-seed", "9"]
    )
    config = config_from_args(args)
    assert [t.get_secret_value() for t in config.tokens] == ["env-a", "env-b", "flag"]
    assert config.faults.error_rate == 0.5 and config.faults.seed == 9 and config.faults.enabled
    assert "env-a" not in repr(config)
    monkeypatch.delenv("SYNTHDATA_SERVER_TOKENS")
    with pytest.raises(ConfigurationError, match="token"):
        config_from_args(build_parser().parse_args(["--data-dir", str(tmp_path)]))
    bad = build_parser().parse_args(["--token", "t", "--fault-error-rate", "2"])
    with pytest.raises(ConfigurationError, match="fault"):
        config_from_args(bad)


def test_fault_dice_are_seeded_and_truncate_only_results() -> None:
    config = FaultConfig(error_rate=0.3, throttle_rate=0.3, truncate_rate=0.4, seed=3)
    dice_a, dice_b = FaultDice(config), FaultDice(config)
    rolls = [dice_a.roll("/api/jobs/") for _ in range(200)]
    assert rolls == [dice_b.roll("/api/jobs/") for _ in range(200)]
    assert set(rolls) == {"error", "throttle", None}
    assert "truncate" in {dice_a.roll("/results/jobs/x.zip") for _ in range(50)}
    assert not FaultConfig().enabled


def test_serve_subcommand_refuses_to_start_without_tokens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SYNTHDATA_SERVER_TOKENS", raising=False)
    assert cli_main(["serve", "--data-dir", str(tmp_path), "--port", "1"]) == 2
    assert "--token" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was created


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--url-ttl", "-5"], "--url-ttl: must be >= 1, got -5"),
        (["--url-ttl", "0"], "--url-ttl: must be >= 1, got 0"),
        (["--workers", "-1"], "--workers: must be >= 1, got -1"),
        (["--workers", "0"], "--workers: must be >= 1, got 0"),
        (["--quota-frames", "-3"], "--quota-frames: must be >= 0, got -3"),
        (["--workers", "two"], "--workers: must be an integer, got 'two'"),
    ],
)
def test_serve_options_are_refused_with_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect_synthdata.server.config import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--token", "t", *argv])
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_serve_results_on_s3_from_flags_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYNTHDATA_SERVER_RESULTS_ENDPOINT_URL", "http://127.0.0.1:9000")
    args = ["--token", "t", "--data-dir", str(tmp_path), "--results-url", "s3://renders/farm"]
    config = config_from_args(build_parser().parse_args(args))
    assert config.results_url == "s3://renders/farm"
    assert config.results_options.endpoint_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--results-url", "s3://renders/x", "--results-dir", "/tmp/r"], "not both"),
        (["--results-url", "s3://Bad_Bucket/x"], "not a bucket name"),
        (["--results-url", "s3:/renders/x"], "--results-url: not an s3:// URI"),
        (["--results-url", "s3://renders/x", "--results-endpoint-url", "ftp://h"], "http://"),
        (["--results-endpoint-url", "http://127.0.0.1:9"], "need an s3:// --results-url"),
    ],
)
def test_serve_refuses_bad_results_settings(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["serve", "--token", "t", "--data-dir", str(tmp_path), *argv]) == 2
    assert words in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was created
