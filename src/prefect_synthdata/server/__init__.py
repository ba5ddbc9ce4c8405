"""The reference server: the Infinity and zpy APIs over the generator engine (`synthdata serve`).

Example:
    $ synthdata serve --host 127.0.0.1 --port 8080 --data-dir ./server-data --token my-token
    $ python -m prefect_synthdata.server --port 8080 --data-dir ./server-data --token my-token
"""

from prefect_synthdata.server.app import create_app
from prefect_synthdata.server.config import FaultConfig, ServerConfig
from prefect_synthdata.server.run import serve

__all__ = ["FaultConfig", "ServerConfig", "create_app", "serve"]
