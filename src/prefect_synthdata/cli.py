"""The `synthdata` command line: list generators, generate datasets, list published ones.

Example:
    $ synthdata generators
    $ synthdata generate --provider local --generator shapes --jobs 4 --param width=256 \\
          --dest ./datasets --name demo
    $ synthdata datasets ls ./datasets
    $ synthdata serve --port 8080 --data-dir ./server-data --token my-token
    $ synthdata datasets fetch s3://bucket/datasets demo --to ./data --endpoint-url http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from prefect_synthdata.exceptions import ConfigurationError, SynthDataError
from prefect_synthdata.models import BatchStatus
from prefect_synthdata.params import GeneratorSpec
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage.options import StoreOptions


def _param(text: str) -> tuple[str, Any]:
    """`key=value`, where value is JSON if it parses (`3`, `true`, `"x"`) and a string otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param expects key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _add_provider_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "provider (default: $SYNTHDATA_CREDENTIALS_BLOCK, else $SYNTHDATA_PROVIDER, else local)"
    )
    group.add_argument("--provider", choices=["local", "infinity", "zpy"], default=None)
    group.add_argument("--url", help="server URL of an HTTP provider")
    group.add_argument("--token", help="API token (default: $SYNTHDATA_TOKEN)")
    group.add_argument("--project", help="zpy project id (default: the token's first project)")


def _explicit_provider(
    args: argparse.Namespace, settings: SynthDataSettings
) -> ProviderConfig | None:
    """The provider the flags name, or None when `--provider` is not given (the environment decides)."""
    if args.provider is None:
        return None
    token = args.token or (settings.token.get_secret_value() if settings.token else None)
    if args.provider != "local" and not (args.url and token):
        raise ConfigurationError(
            f"--provider {args.provider} needs --url and --token (or $SYNTHDATA_TOKEN)"
        )
    return ProviderConfig(
        kind=args.provider,
        url=args.url,
        token=SecretStr(token) if token else None,
        project=args.project,
    )


def _add_store_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("s3 destination")
    group.add_argument(
        "--endpoint-url", help="S3-compatible endpoint (default: AWS or $AWS_ENDPOINT_URL)"
    )
    group.add_argument("--region", help="AWS region")
    group.add_argument("--profile", help="AWS profile")
    group.add_argument(
        "--aws-block", help="saved prefect-aws block: aws-credentials/NAME or s3-bucket/NAME"
    )
    group.add_argument(
        "--max-concurrency", type=int, default=10, help="S3 requests in flight (default 10)"
    )


def _store_options(args: argparse.Namespace) -> StoreOptions:
    return StoreOptions(
        endpoint_url=args.endpoint_url,
        region=args.region,
        profile=args.profile,
        aws_block=args.aws_block,
        max_concurrency=args.max_concurrency,
    )


def _format_spec(spec: GeneratorSpec) -> str:
    lines = [
        f"{spec.name} (v{spec.version}, preview: {'yes' if spec.preview else 'no'}): {spec.description}"
    ]
    for p in spec.params:
        bounds = []
        if p.options.min is not None or p.options.max is not None:
            bounds.append(f"[{p.options.min:g}, {p.options.max:g}]")
        if p.options.choices:
            bounds.append("{" + ", ".join(map(str, p.options.choices)) + "}")
        lines.append(
            f"  {p.name:<20} {p.type:<6} default={p.default_value!r:<12} {' '.join(bounds)}"
        )
    return "\n".join(lines)


def cmd_generators(args: argparse.Namespace) -> int:
    settings = SynthDataSettings()
    if args.provider is None and settings.credentials_block is None:
        provider = ProviderConfig.from_settings(settings)
    else:
        from prefect_synthdata.blocks.credentials import resolve_provider

        provider = resolve_provider(_explicit_provider(args, settings), None, settings)
    specs = provider.create().list_generators()
    if args.json:
        print(json.dumps([s.to_api() for s in specs], indent=2))
    else:
        print("\n\n".join(_format_spec(s) for s in specs))
    return 0


class ProgressBar:
    """A one-line progress bar on stderr, driven by batch status changes."""

    def __init__(self, stream: Any = None, width: int = 30) -> None:
        self.stream, self.width = stream or sys.stderr, width

    def __call__(self, status: BatchStatus) -> None:
        total = len(status.jobs)
        done = total - status.remaining
        filled = self.width * done // max(total, 1)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} jobs finished"
        end = "\n" if status.done or not self.stream.isatty() else ""
        self.stream.write(f"\r{line}{end}")
        self.stream.flush()


def cmd_generate(args: argparse.Namespace) -> int:
    from prefect_synthdata.blocks import InfinityCredentials, ZpyCredentials
    from prefect_synthdata.flows import GenerateRequest, generate_dataset
    from prefect_synthdata.tasks import STATUS_LISTENERS

    explicit = _explicit_provider(args, SynthDataSettings())
    credentials: InfinityCredentials | ZpyCredentials | Literal["local"] | None = None
    if explicit is not None and explicit.kind == "local":
        credentials = "local"
    elif explicit is not None:
        assert explicit.url is not None and explicit.token is not None
        if explicit.kind == "infinity":
            credentials = InfinityCredentials(url=explicit.url, token=explicit.token)
        else:
            credentials = ZpyCredentials(
                url=explicit.url, token=explicit.token, project=explicit.project
            )
    request = GenerateRequest(
        credentials=credentials,
        generator=args.generator,
        num_jobs=args.jobs,
        params=dict(args.param),
        is_preview=args.preview,
        seed=args.seed,
        randomize=args.randomize,
        name=args.name,
        version=args.version,
        formats=["coco", *args.format],
        dest=args.dest,
        storage=_store_options(args),
    )
    bar = ProgressBar()
    STATUS_LISTENERS.append(bar)
    try:
        manifest = generate_dataset(request)
    finally:
        STATUS_LISTENERS.remove(bar)
    print(manifest.uri)
    return 0


def cmd_datasets_ls(args: argparse.Namespace) -> int:
    from prefect_synthdata.destinations import open_destination
    from prefect_synthdata.storage.publish import list_datasets

    datasets = list_datasets(open_destination(args.dest, _store_options(args)))
    if args.json:
        print(json.dumps(datasets, indent=2))
    for name, versions in datasets.items():
        if not args.json:
            print(f"{name}: {', '.join(versions)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from prefect_synthdata.server.run import run_from_args

    return run_from_args(args)


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    from prefect_synthdata.destinations import open_destination
    from prefect_synthdata.storage.publish import fetch_dataset

    store = open_destination(args.dest, _store_options(args))
    manifest = fetch_dataset(store, args.name, args.version, Path(args.to))
    print(f"{manifest.name}/{manifest.version}: {len(manifest.files)} files verified in {args.to}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthdata", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    generators = commands.add_parser("generators", help="list generators and their parameters")
    _add_provider_args(generators)
    generators.add_argument(
        "--json", action="store_true", help="print JSON: a list of {name, params, ...}"
    )
    generators.set_defaults(run=cmd_generators)

    generate = commands.add_parser("generate", help="generate and publish a dataset")
    _add_provider_args(generate)
    generate.add_argument("--generator", default="shapes")
    generate.add_argument("--jobs", type=int, default=4, help="number of jobs (>= 1)")
    generate.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE")
    generate.add_argument("--preview", action="store_true", help="render one preview frame per job")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--randomize", action="store_true", help="sample unspecified parameters")
    generate.add_argument(
        "--dest", default=None, help="path or s3:// URI (default: $SYNTHDATA_DEST or ./datasets)"
    )
    generate.add_argument("--name", default="synthetic-shapes", help="dataset name")
    generate.add_argument("--version", default=None, help="dataset version (default: derived)")
    generate.add_argument(
        "--format",
        action="append",
        default=[],
        metavar="NAME",
        help="export published with the dataset, repeatable: hf, yolo, webdataset, mot "
        "(coco is always written)",
    )
    _add_store_args(generate)
    generate.set_defaults(run=cmd_generate)

    datasets = commands.add_parser("datasets", help="published datasets")
    datasets_commands = datasets.add_subparsers(dest="datasets_command", required=True)
    ls = datasets_commands.add_parser("ls", help="list datasets and versions under a destination")
    ls.add_argument("dest")
    ls.add_argument("--json", action="store_true")
    _add_store_args(ls)
    ls.set_defaults(run=cmd_datasets_ls)

    from prefect_synthdata.server.config import build_parser as add_serve_arguments

    serve = commands.add_parser("serve", help="run the reference server (Infinity and zpy APIs)")
    add_serve_arguments(serve)
    serve.set_defaults(run=cmd_serve)
    fetch = datasets_commands.add_parser("fetch", help="download a published version and verify it")
    fetch.add_argument("dest", help="path or s3:// URI the dataset was published to")
    fetch.add_argument("name", help="dataset name")
    fetch.add_argument("--version", default=None, help="version (default: the latest)")
    fetch.add_argument("--to", required=True, help="local folder to download into")
    _add_store_args(fetch)
    fetch.set_defaults(run=cmd_datasets_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `synthdata` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SynthDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # pydantic validation of the request
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
