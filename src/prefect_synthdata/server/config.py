"""Settings of the reference server, from `SYNTHDATA_SERVER_*` / `SYNTHDATA_FAULT_*` or flags.

Tokens come from `--token` (repeatable) and from `SYNTHDATA_SERVER_TOKENS` (comma
separated); both are kept as `SecretStr` and never logged.

Example:
    >>> import os; os.environ["SYNTHDATA_SERVER_TOKENS"] = "a,b"
    >>> config = config_from_args(build_parser().parse_args(["--data-dir", "/tmp/srv"]))
    >>> len(config.tokens), config.faults.enabled
    (2, False)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prefect_synthdata.engine.results import results_location
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.storage.options import StoreOptions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def public_base_url(text: str) -> str:
    """`text` as a public base URL (absolute http(s), no query or fragment, no trailing `/`).

    Example:
        >>> public_base_url("https://data.example.com/synth/")
        'https://data.example.com/synth'
        >>> public_base_url("data.example.com")
        Traceback (most recent call last):
        ...
        ValueError: must be an absolute http(s) URL like https://host[:port][/prefix], got 'data.example.com'
    """
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"must be an absolute http(s) URL like https://host[:port][/prefix], got {text!r}"
        )
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError(f"must have no query or fragment, got {text!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    return text.rstrip("/")


class FaultConfig(BaseSettings):
    """Injected faults, all off by default. Rates are per-request probabilities in [0, 1]."""

    model_config = SettingsConfigDict(env_prefix="SYNTHDATA_FAULT_")

    error_rate: float = Field(default=0.0, ge=0, le=1, description="Answer 503 with a JSON body.")
    throttle_rate: float = Field(
        default=0.0, ge=0, le=1, description="Answer 429 with Retry-After."
    )
    retry_after: int = Field(
        default=1, ge=0, le=3600, description="Seconds in the Retry-After header."
    )
    drop_rate: float = Field(
        default=0.0, ge=0, le=1, description="Send headers, then drop the connection."
    )
    truncate_rate: float = Field(default=0.0, ge=0, le=1, description="Cut result downloads short.")
    latency_ms: float = Field(
        default=0.0, ge=0, le=60_000, description="Delay added to every request."
    )
    seed: int = Field(default=0, description="Seed of the fault dice (same requests, same faults).")

    @property
    def enabled(self) -> bool:
        rates = (self.error_rate, self.throttle_rate, self.drop_rate, self.truncate_rate)
        return any(rates) or self.latency_ms > 0


class ServerSettings(BaseSettings):
    """Environment defaults of `synthdata serve`."""

    model_config = SettingsConfigDict(env_prefix="SYNTHDATA_SERVER_")

    tokens: str = Field(default="", description="Comma-separated API tokens.")
    data_dir: Path = Field(
        default=Path("./synthdata-server"), description="SQLite state and results."
    )
    quota_frames: int | None = Field(
        default=None, ge=0, description="Frames each token may submit."
    )
    url_ttl_seconds: int = Field(default=3600, ge=1, description="Lifetime of signed result URLs.")
    workers: int | None = Field(default=None, ge=1, description="Render processes (default: CPUs).")
    dask_address: str | None = Field(
        default=None, description="Render on the Dask cluster with this scheduler address."
    )
    results_dir: Path | None = Field(
        default=None, description="Rendered jobs (shared with Dask workers); default: data dir."
    )
    results_url: str | None = Field(
        default=None, description="s3://bucket/prefix for rendered jobs instead of a directory."
    )
    results_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint of results_url (default: AWS)."
    )
    results_region: str | None = Field(default=None, description="AWS region of results_url.")
    results_profile: str | None = Field(default=None, description="AWS profile for results_url.")
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the server at (signed result URLs); "
        "default: http://<host>:<port> of the bind address.",
    )


class ServerConfig(BaseModel):
    """Everything `create_app` needs."""

    data_dir: Path
    tokens: list[SecretStr]
    quota_frames: int | None = None
    url_ttl_seconds: int = 3600
    workers: int | None = None
    dask_address: str | None = None
    results_dir: Path | None = None
    results_url: str | None = None
    results_options: StoreOptions = Field(default_factory=StoreOptions)
    public_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    faults: FaultConfig = Field(default_factory=FaultConfig)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return public_base_url(value)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type`: an integer >= `minimum`; argparse exits 2 naming the flag otherwise.

    Example:
        >>> at_least(1)("5")
        5
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _argparse_public_url(text: str) -> str:
    try:
        return public_base_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the `serve` flags to `parser` (or a new one). Flags override the environment."""
    parser = parser or argparse.ArgumentParser(
        prog="synthdata serve", description="Run the reference server."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=at_least(0), default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument(
        "--public-url",
        type=_argparse_public_url,
        help="base URL clients reach this server at, put into signed result URLs, e.g. "
        "https://data.example.com/synth behind a reverse proxy "
        "(default: $SYNTHDATA_SERVER_PUBLIC_URL, else http://<host>:<port>)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="state directory (default: $SYNTHDATA_SERVER_DATA_DIR)"
    )
    parser.add_argument("--token", action="append", default=[], help="API token (repeatable)")
    parser.add_argument(
        "--quota-frames", type=at_least(0), help="frame quota per token (default: unlimited)"
    )
    parser.add_argument(
        "--url-ttl", type=at_least(1), help="lifetime of signed result URLs, seconds"
    )
    parser.add_argument("--workers", type=at_least(1), help="render processes (default: CPU count)")
    parser.add_argument(
        "--dask-address",
        help="render on the Dask cluster at this scheduler address (e.g. tcp://10.0.0.5:8786) "
        "instead of local processes",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        help="where rendered jobs go; with --dask-address, a path every worker can write "
        "(shared filesystem); default: under --data-dir",
    )
    parser.add_argument(
        "--results-url",
        help="put rendered jobs under this s3://bucket/prefix instead (workers write there with "
        "their own AWS credentials); Infinity result URLs become pre-signed S3 URLs",
    )
    parser.add_argument("--results-endpoint-url", help="S3-compatible endpoint of --results-url")
    parser.add_argument("--results-region", help="AWS region of --results-url")
    parser.add_argument("--results-profile", help="AWS profile for --results-url")
    faults = parser.add_argument_group("fault injection (off by default; also SYNTHDATA_FAULT_*)")
    for name, field in FaultConfig.model_fields.items():
        flag = "--fault-" + name.replace("_", "-")
        faults.add_argument(
            flag, dest=f"fault_{name}", type=type(field.default), help=field.description
        )
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Merge flags over `SYNTHDATA_SERVER_*` and `SYNTHDATA_FAULT_*`; ConfigurationError if unusable."""
    env = ServerSettings()
    raw_tokens = [t.strip() for t in env.tokens.split(",")] + list(args.token)
    tokens = list(dict.fromkeys(t for t in raw_tokens if t))
    if not tokens:
        raise ConfigurationError(
            "the server needs at least one token: --token or $SYNTHDATA_SERVER_TOKENS"
        )
    overrides = {
        name: getattr(args, f"fault_{name}")
        for name in FaultConfig.model_fields
        if getattr(args, f"fault_{name}", None) is not None
    }
    try:
        faults = FaultConfig(**overrides)
    except ValueError as exc:
        raise ConfigurationError(f"bad fault settings: {exc}") from None
    quota = args.quota_frames if args.quota_frames is not None else env.quota_frames
    if quota is not None and quota < 0:
        raise ConfigurationError(f"--quota-frames must be >= 0, got {quota}")
    results_dir = args.results_dir or env.results_dir
    results_url = args.results_url or env.results_url
    try:
        location = results_location(results_dir, results_url)
        results_options = StoreOptions(
            endpoint_url=args.results_endpoint_url or env.results_endpoint_url,
            region=args.results_region or env.results_region,
            profile=args.results_profile or env.results_profile,
        )
    except (ValueError, ConfigurationError) as exc:
        raise ConfigurationError(f"bad results settings: {exc}") from None
    if results_options.connection_settings() and not str(location or "").startswith("s3://"):
        raise ConfigurationError(
            "--results-endpoint-url/-region/-profile need an s3:// --results-url"
        )
    if results_url:
        from prefect_synthdata.storage.s3 import parse_s3_uri

        try:
            parse_s3_uri(results_url)
        except ConfigurationError as exc:
            raise ConfigurationError(f"--results-url: {exc}") from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    public_url = args.public_url or env.public_url or f"http://{host}:{args.port}"
    try:
        public_url = public_base_url(public_url)
    except ValueError as exc:
        raise ConfigurationError(f"public URL {exc}") from None
    return ServerConfig(
        data_dir=args.data_dir or env.data_dir,
        public_url=public_url,
        tokens=[SecretStr(t) for t in tokens],
        quota_frames=quota,
        url_ttl_seconds=args.url_ttl if args.url_ttl is not None else env.url_ttl_seconds,
        workers=args.workers if args.workers is not None else env.workers,
        dask_address=args.dask_address or env.dask_address,
        results_dir=results_dir,
        results_url=results_url,
        results_options=results_options,
        faults=faults,
    )
