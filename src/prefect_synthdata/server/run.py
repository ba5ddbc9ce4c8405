"""Run the reference server with uvicorn (the body of `synthdata serve`).

Example:
    $ python -m prefect_synthdata.server --port 8080 --data-dir ./server-data --token my-token
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

import uvicorn

from prefect_synthdata.engine.generators import GENERATORS
from prefect_synthdata.engine.jobs import SCHEMA as JOBS_SCHEMA
from prefect_synthdata.engine.statedb import open_state_db
from prefect_synthdata.exceptions import ConfigurationError, StateFileError
from prefect_synthdata.server.app import create_app
from prefect_synthdata.server.auth import owner_id
from prefect_synthdata.server.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerConfig,
    build_parser,
    config_from_args,
)
from prefect_synthdata.server.signing import UrlSigner
from prefect_synthdata.server.store import ZpyStore

SIGNATURE = re.compile(r"([?&]sig=)[^&\s\"]*")


class RedactSignatures(logging.Filter):
    """Keep result-URL signatures out of the access log.

    Example:
        >>> record = logging.LogRecord("uvicorn.access", 20, "", 0, "%s", ("/r.zip?expires=1&sig=abc",), None)
        >>> RedactSignatures().filter(record) and record.args
        ('/r.zip?expires=1&sig=***',)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                SIGNATURE.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def public_url_notice(public_url: str) -> str:
    """The start-up line about the base URL of signed result URLs (a warning if unreachable).

    Example:
        >>> public_url_notice("http://0.0.0.0:8080").startswith("warning")
        True
    """
    if urlsplit(public_url).hostname in ("0.0.0.0", "::"):
        return (
            f"warning: signed result URLs on {public_url}, which clients cannot reach; "
            "set --public-url to the address they use"
        )
    return f"signed result URLs on {public_url}"


def open_state(config: ServerConfig) -> ZpyStore:
    """Check every state file of the data dir before serving; the zpy store, opened.

    StateFileError naming the first file that is unusable (the server would otherwise
    fail inside its startup, with a traceback naming no file).
    """
    data_dir = config.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateFileError(data_dir, f"data dir {data_dir} cannot be made ({exc})") from None
    jobs = data_dir / "engine" / "jobs.sqlite3"
    if jobs.exists():
        open_state_db(jobs, JOBS_SCHEMA).close()
    UrlSigner.load(data_dir, config.url_ttl_seconds)
    return ZpyStore(data_dir / "zpy.sqlite3")


def serve(config: ServerConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted; SIGTERM/SIGINT stop it cleanly (unfinished jobs resume next start)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = open_state(config)
    for index, token in enumerate(config.tokens):
        project = store.default_project(owner_id(token.get_secret_value()))
        print(
            f"token #{index + 1}: default zpy project {project['id']}", file=sys.stderr, flush=True
        )
    store.close()
    for name, reason in sorted(GENERATORS.unavailable.items()):
        print(f"unavailable generator {name!r}: {reason}", file=sys.stderr, flush=True)
    print(public_url_notice(config.public_url), file=sys.stderr, flush=True)
    if config.faults.enabled:
        print(f"fault injection ON: {config.faults.model_dump()}", file=sys.stderr, flush=True)
    logging.getLogger("uvicorn.access").addFilter(RedactSignatures())
    uvicorn.run(
        create_app(config), host=host, port=port, log_level="info", timeout_graceful_shutdown=10
    )


def run_from_args(args: argparse.Namespace) -> int:
    """`synthdata serve` with parsed arguments; 2 on a configuration error, 1 on a broken state file."""
    try:
        config = config_from_args(args)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        serve(config, host=args.host, port=args.port)
    except StateFileError as exc:
        print(
            f"synthdata serve: {exc.problem}; move it away or point --data-dir elsewhere",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m prefect_synthdata.server`."""
    return run_from_args(build_parser().parse_args(argv))
