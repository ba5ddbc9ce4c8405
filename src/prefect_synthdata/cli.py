"""The `synthdata` command line: list generators, generate datasets, list published ones.

Bad input is found before Prefect is even imported (`preflight`), so a typo costs about a
second; user errors print one `error:` message and exit with status 2, never a traceback.

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
import contextlib
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from prefect_synthdata import preflight
from prefect_synthdata.exceptions import ConfigurationError, SynthDataError
from prefect_synthdata.params import GeneratorSpec
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.request import GenerationSpec
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage.options import StoreOptions

if TYPE_CHECKING:  # the display (rich) loads only once a run starts
    from prefect_synthdata.terminal import RunDisplay

#: Upper bound of `--jobs`, the same as the request's.
MAX_JOBS: int = next(
    bound.le for bound in GenerationSpec.model_fields["num_jobs"].metadata if hasattr(bound, "le")
)
#: Seconds the temporary Prefect API may take to start (Prefect's own default is 20, too
#: little on a busy machine); PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS overrides it.
API_STARTUP_TIMEOUT = "120"


class ArgumentParser(argparse.ArgumentParser):
    """Reports a usage error in one line and points at --help, instead of the whole usage."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's examples as written and shows every option's default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" not in text
            and "default:" not in text
            and action.default is not None
            and action.default is not False
            and action.default not in ([], argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _bounded_int(low: int, high: int | None = None) -> Any:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


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
    group.add_argument(
        "--provider",
        choices=["local", "infinity", "zpy"],
        default=None,
        help="generation service: the embedded engine, or an Infinity or zpy server",
    )
    group.add_argument("--url", help="server URL of an HTTP provider (default: none)")
    group.add_argument("--token", help="API token of an HTTP provider (default: $SYNTHDATA_TOKEN)")
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
    group.add_argument("--region", help="AWS region (default: the profile's, else us-east-1)")
    group.add_argument("--profile", help="AWS profile (default: boto3's credential chain)")
    group.add_argument(
        "--aws-block",
        help="saved prefect-aws block with the S3 credentials: aws-credentials/NAME or "
        "s3-bucket/NAME (default: none)",
    )
    group.add_argument(
        "--max-concurrency",
        type=_bounded_int(1),
        default=StoreOptions.model_fields["max_concurrency"].default,
        help="S3 requests in flight",
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
    from prefect_synthdata.terminal import format_number

    lines = [
        f"{spec.name} (v{spec.version}, preview: {'yes' if spec.preview else 'no'}): {spec.description}"
    ]
    for p in spec.params:
        bounds = []
        if p.options.min is not None or p.options.max is not None:
            low, high = (
                "" if bound is None else format_number(bound)
                for bound in (p.options.min, p.options.max)
            )
            bounds.append(f"[{low}, {high}]")
        if p.options.choices:
            bounds.append("{" + ", ".join(map(str, p.options.choices)) + "}")
        lines.append(
            f"  {p.name:<20} {p.type:<6} default={p.default_value!r:<12} {' '.join(bounds)}"
        )
    return "\n".join(lines)


def cmd_generators(args: argparse.Namespace) -> int:
    if args.check:
        return _check_generators()
    settings = SynthDataSettings()
    explicit = _explicit_provider(args, settings)  # flag errors before Prefect is imported
    if explicit is None and settings.credentials_block is None:
        provider = ProviderConfig.from_settings(settings)
    else:
        from prefect_synthdata.blocks.credentials import resolve_provider

        provider = resolve_provider(explicit, None, settings)
    specs = provider.create().list_generators()
    if args.json:
        print(json.dumps([s.to_api() for s in specs], indent=2))
    else:
        print("\n\n".join(_format_spec(s) for s in specs))
    if provider.kind == "local":
        from prefect_synthdata.engine.generators import GENERATORS

        for name, reason in sorted(GENERATORS.unavailable.items()):
            print(f"unavailable generator {name!r}: {reason}", file=sys.stderr)
    return 0


def _check_generators() -> int:
    """Check every generator of this machine's engine; exit 1 if any is unusable."""
    from prefect_synthdata.engine.generators import GENERATORS
    from prefect_synthdata.engine.generators.contract import check_rendering

    rows = sorted(check_rendering(sorted(GENERATORS)).items())
    rows += [(name, f"not loaded: {why}") for name, why in sorted(GENERATORS.unavailable.items())]
    for name, reason in rows:
        print(f"{name:<20} {'ok' if reason is None else 'FAILED: ' + reason}")
    return 1 if any(reason for _, reason in rows) else 0


def _start_prefect_api(display: RunDisplay) -> float:
    """Import Prefect and make sure its API answers; returns the seconds it took.

    Without PREFECT_API_URL, Prefect starts a temporary API for this process (the
    flow run then reuses it); with it, the configured server is checked once.
    """
    started = time.perf_counter()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", API_STARTUP_TIMEOUT)
    with display.waiting("Loading Prefect ...") as update:
        from prefect.client.orchestration import get_client
        from prefect.logging.configuration import ensure_logging_setup
        from prefect.settings import PREFECT_API_URL

        ensure_logging_setup()
        display.attach_logs()
        url = PREFECT_API_URL.value()
        update(
            f"Connecting to the Prefect API at {url} ..."
            if url
            else "Starting a temporary Prefect API (set PREFECT_API_URL to reuse a running server) ..."
        )
        try:
            with get_client(sync_client=True) as client:
                error = client.api_healthcheck()
        except RuntimeError as exc:  # the temporary API did not come up in time
            raise ConfigurationError(
                "the temporary Prefect API did not start in time; start one with "
                "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api, "
                "or raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
            ) from exc
        if error is not None:
            raise ConfigurationError(f"the Prefect API at {url} does not answer: {error}")
    seconds = time.perf_counter() - started
    display.note(f"Prefect API ready ({seconds:.1f} s)")
    return seconds


def cmd_generate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    settings = SynthDataSettings()
    generation = GenerationSpec(
        generator=args.generator,
        num_jobs=args.jobs,
        params=dict(args.param),
        is_preview=args.preview,
        seed=args.seed,
        randomize=args.randomize,
        name=args.name,
        version=args.version,
        formats=["coco", *args.format],
    )
    explicit = _explicit_provider(args, settings)
    if explicit is not None and args.credentials_block:
        raise ConfigurationError("give --provider or --credentials-block, not both")
    # A credentials block can only be read through the Prefect API: its provider checks the
    # generator and the jobs once the API is up.
    from_block = args.credentials_block or (explicit is None and settings.credentials_block)
    provider = None if from_block else explicit or ProviderConfig.from_settings(settings)
    dest = args.dest or settings.dest
    storage = _store_options(args)
    preflight.check_generate(generation, provider, dest, storage)

    from prefect_synthdata.terminal import RunDisplay, RunSummary

    display = RunDisplay()
    with display:
        api_seconds = _start_prefect_api(display)
        from prefect_synthdata.blocks.credentials import resolve_provider
        from prefect_synthdata.flows import GenerateRequest, generate_dataset
        from prefect_synthdata.tasks import STATUS_LISTENERS

        credentials = _credentials(explicit, args.credentials_block)
        if provider is None:
            with _block_errors():
                preflight.check_jobs(resolve_provider(credentials, None, settings), generation)
        request = GenerateRequest(
            **generation.model_dump(), credentials=credentials, dest=dest, storage=storage
        )
        STATUS_LISTENERS.append(display.on_status)
        try:
            with display.progress:
                manifest = generate_dataset(request)
        finally:
            STATUS_LISTENERS.remove(display.on_status)
    display.summary(
        RunSummary(
            uri=manifest.uri,
            images=manifest.num_images,
            annotations=manifest.num_annotations,
            categories=manifest.categories,
            size=_published_size(dest, storage, manifest.name, manifest.version),
            seconds=time.perf_counter() - started,
            api_seconds=api_seconds,
        )
    )
    print(manifest.uri)
    return 0


@contextlib.contextmanager
def _block_errors() -> Iterator[None]:
    """Prefect's ValueError for a block that is not saved, as a ConfigurationError."""
    try:
        yield
    except ValidationError:
        raise
    except ValueError as exc:  # "Unable to find block document named ..."
        raise ConfigurationError(f"cannot load the credentials block: {exc}") from exc


def _credentials(explicit: ProviderConfig | None, block_name: str | None) -> Any:
    """The generate flow's `credentials`: from the flags, the named saved block (read through
    the Prefect API), or None (the environment decides, in the flow)."""
    from prefect_synthdata.blocks import InfinityCredentials, ZpyCredentials
    from prefect_synthdata.blocks.credentials import load_credentials

    if block_name:
        with _block_errors():
            return load_credentials(block_name)
    if explicit is None:
        return None
    if explicit.kind == "local":
        return "local"
    assert explicit.url is not None and explicit.token is not None
    if explicit.kind == "infinity":
        return InfinityCredentials(url=explicit.url, token=explicit.token)
    return ZpyCredentials(url=explicit.url, token=explicit.token, project=explicit.project)


def _published_size(dest: str, storage: StoreOptions, name: str, version: str) -> int:
    from prefect_synthdata.destinations import open_destination
    from prefect_synthdata.storage.publish import read_manifest

    manifest = read_manifest(open_destination(dest, storage), name, version)
    return sum(f.size for f in manifest.files) if manifest else 0


def cmd_datasets_ls(args: argparse.Namespace) -> int:
    from prefect_synthdata.destinations import open_destination
    from prefect_synthdata.storage.catalog import list_versions
    from prefect_synthdata.terminal import format_bytes

    rows = list_versions(open_destination(args.dest, _store_options(args)))
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return 0
    if not rows:
        print(f"no published datasets under {args.dest}", file=sys.stderr)
        return 0
    header = ("NAME", "VERSION", "IMAGES", "ANNOTATIONS", "SIZE", "CREATED (UTC)", "")
    table = [header] + [
        (
            row.name,
            row.version,
            str(row.num_images),
            str(row.num_annotations),
            format_bytes(row.size),
            row.created.strftime("%Y-%m-%d %H:%M:%S") if row.created else "-",
            "LATEST" if row.latest else "",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    right = {2, 3, 4}
    for line in table:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
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


GENERATE_EXAMPLES = """examples:
  synthdata generate --jobs 8 --param width=256 --param height=256 --name shapes-256
  synthdata generate --generator tabletop --randomize --seed 7 --dest s3://bucket/datasets
  synthdata generate --provider infinity --url http://127.0.0.1:8080 --token $TOKEN
  synthdata generate --credentials-block synthdata-infinity-credentials/prod --jobs 100

Bad input (generator, parameters, name, destination, credentials) is reported before
Prefect starts, with exit status 2. Without PREFECT_API_URL, Prefect starts a temporary
API for the run (seconds); for many runs, start one with `prefect server start` and set
PREFECT_API_URL=http://127.0.0.1:4200/api.
"""

LS_EXAMPLES = """examples:
  synthdata datasets ls ./datasets
  synthdata datasets ls s3://bucket/datasets --endpoint-url http://127.0.0.1:9000 --json
"""


def build_parser() -> argparse.ArgumentParser:
    """The `synthdata` argument parser with its subcommands."""
    parser = ArgumentParser(
        prog="synthdata",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
        epilog="examples:\n" + textwrap.dedent(__doc__.split("Example:\n", 1)[1]).strip('" \n'),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, epilog: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help, description=help, epilog=epilog, formatter_class=HelpFormatter
        )

    generators = command(
        "generators",
        "list generators and their parameters",
        "examples:\n  synthdata generators\n  synthdata generators --json\n",
    )
    _add_provider_args(generators)
    generators.add_argument(
        "--json", action="store_true", help="print JSON: a list of {name, params, ...}"
    )
    generators.add_argument(
        "--check",
        action="store_true",
        help="check this machine's generators (plugins included): load, render a small"
        " preview twice (here and in a fresh process), compare; exit 1 if any fails",
    )
    generators.set_defaults(run=cmd_generators)

    generate = command("generate", "generate a dataset and publish it", GENERATE_EXAMPLES)
    _add_provider_args(generate)
    generate.add_argument(
        "--credentials-block",
        metavar="TYPE/NAME",
        help="saved credentials block (e.g. synthdata-infinity-credentials/prod, or a bare "
        "block name) used instead of --provider, --url and --token, so no token is typed "
        "(default: $SYNTHDATA_CREDENTIALS_BLOCK unless --provider is given)",
    )
    job = generate.add_argument_group("jobs")
    job.add_argument(
        "--generator",
        default="shapes",
        help="generator to run (see `synthdata generators`)",
    )
    job.add_argument(
        "--jobs",
        type=_bounded_int(1, MAX_JOBS),
        default=GenerationSpec.model_fields["num_jobs"].default,
        help=f"number of jobs, 1 to {MAX_JOBS}",
    )
    job.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a generator parameter for every job; repeat for more; VALUE is JSON if it "
        'parses (256, true, "x"), else a string (default: the generator\'s defaults)',
    )
    job.add_argument("--preview", action="store_true", help="render one preview frame per job")
    job.add_argument(
        "--seed",
        type=_bounded_int(0),
        default=GenerationSpec.model_fields["seed"].default,
        help="seed from which each job's scene seed is drawn: same seed, same scenes",
    )
    job.add_argument(
        "--randomize",
        action="store_true",
        help="sample every parameter not given with --param within its bounds",
    )
    dataset = generate.add_argument_group("dataset")
    dataset.add_argument(
        "--dest", default=None, help="path or s3:// URI (default: $SYNTHDATA_DEST or ./datasets)"
    )
    dataset.add_argument(
        "--name",
        default=GenerationSpec.model_fields["name"].default,
        help="dataset name: letters, digits, '.', '_', '-'",
    )
    dataset.add_argument(
        "--version",
        default=None,
        help="dataset version (default: derived from the request, so a re-run is the same version)",
    )
    dataset.add_argument(
        "--format",
        action="append",
        default=[],
        metavar="NAME",
        help="export published with the dataset, repeatable: hf, yolo, webdataset, mot "
        "(default: coco only; coco is always written)",
    )
    _add_store_args(generate)
    generate.set_defaults(run=cmd_generate)

    datasets = command("datasets", "published datasets")
    datasets_commands = datasets.add_subparsers(dest="datasets_command", required=True)
    ls = datasets_commands.add_parser(
        "ls",
        help="list the complete versions under a destination",
        description="Every complete version under a destination: images, annotations, size, "
        "when it was published, and which one LATEST points at.",
        epilog=LS_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    ls.add_argument("dest", help="path or s3:// URI datasets were published to")
    ls.add_argument("--json", action="store_true", help="print JSON: one object per version")
    _add_store_args(ls)
    ls.set_defaults(run=cmd_datasets_ls)

    from prefect_synthdata.server.config import build_parser as add_serve_arguments

    serve = command("serve", "run the reference server (Infinity and zpy APIs)")
    add_serve_arguments(serve)
    serve.set_defaults(run=cmd_serve)
    fetch = datasets_commands.add_parser(
        "fetch",
        help="download a published version and verify it",
        description="Download a published version and verify every file's size and sha256.",
        epilog="examples:\n  synthdata datasets fetch ./datasets shapes-256 --to ./data\n",
        formatter_class=HelpFormatter,
    )
    fetch.add_argument("dest", help="path or s3:// URI the dataset was published to")
    fetch.add_argument("name", help="dataset name")
    fetch.add_argument("--version", default=None, help="version (default: the latest)")
    fetch.add_argument("--to", required=True, help="local folder to download into")
    _add_store_args(fetch)
    fetch.set_defaults(run=cmd_datasets_fetch)
    return parser


def _error_message(exc: Exception) -> str:
    """One readable message: each problem on its own line, no pydantic links."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(map(str, error['loc'])) or 'input'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]
    elif isinstance(exc, preflight.PreflightError):
        problems = exc.problems
    else:
        return f"error: {exc}"
    if len(problems) == 1:
        return f"error: {problems[0]}"
    return f"error: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `synthdata` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SynthDataError, ValidationError) as exc:
        print(_error_message(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `synthdata generators | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
