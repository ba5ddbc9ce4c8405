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

import uvicorn

from prefect_synthdata.engine.generators import GENERATORS
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.server.app import create_app
from prefect_synthdata.server.auth import owner_id
from prefect_synthdata.server.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerConfig,
    build_parser,
    config_from_args,
)
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


def serve(config: ServerConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted; SIGTERM/SIGINT stop it cleanly (unfinished jobs resume next start)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = ZpyStore(config.data_dir / "zpy.sqlite3")
    for index, token in enumerate(config.tokens):
        project = store.default_project(owner_id(token.get_secret_value()))
        print(
            f"token #{index + 1}: default zpy project {project['id']}", file=sys.stderr, flush=True
        )
    store.close()
    for name, reason in sorted(GENERATORS.unavailable.items()):
        print(f"unavailable generator {name!r}: {reason}", file=sys.stderr, flush=True)
    print(f"signed result URLs on {config.public_url}", file=sys.stderr, flush=True)
    if config.faults.enabled:
        print(f"fault injection ON: {config.faults.model_dump()}", file=sys.stderr, flush=True)
    logging.getLogger("uvicorn.access").addFilter(RedactSignatures())
    uvicorn.run(
        create_app(config), host=host, port=port, log_level="info", timeout_graceful_shutdown=10
    )


def run_from_args(args: argparse.Namespace) -> int:
    """`synthdata serve` with parsed arguments; 2 on a configuration error."""
    try:
        config = config_from_args(args)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(config, host=args.host, port=args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m prefect_synthdata.server`."""
    return run_from_args(build_parser().parse_args(argv))
