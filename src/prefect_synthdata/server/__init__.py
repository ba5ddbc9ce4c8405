"""The reference server: the Infinity and zpy APIs over the generator engine (`synthdata serve`).

The names below load on first use, so that reading the server's settings (as the
`synthdata` command line does to build its parser) does not import FastAPI.

Example:
    $ synthdata serve --host 127.0.0.1 --port 8080 --data-dir ./server-data --token my-token
    $ python -m prefect_synthdata.server --port 8080 --data-dir ./server-data --token my-token
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "create_app": "prefect_synthdata.server.app",
    "FaultConfig": "prefect_synthdata.server.config",
    "ServerConfig": "prefect_synthdata.server.config",
    "serve": "prefect_synthdata.server.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prefect_synthdata.server' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
