"""`init`, `DatasetConfig`, `generate`, `preview` and `Dataset` in the style of `zpy.client`.

Written from the protocol facts (shared/protocols/zpy-api.md), over our zpy provider.
What differs from the original, on purpose:

- every request has a timeout; reads are retried with backoff; errors are
  `prefect_synthdata.exceptions` types;
- `generate` adopts an existing dataset of the same name instead of creating a second
  one, so a re-run never pays twice, and its POSTs are not blindly re-sent;
- waiting has a `timeout` and polls the dataset state (the original polled every 60 s forever);
- the dataset zip streams to disk with resume and a size check, into a folder you choose.

Example:
    >>> init(auth_token="tok", base_url="http://127.0.0.1:8000")  # doctest: +SKIP
    >>> config = DatasetConfig("shapes")  # doctest: +SKIP
    >>> config.set("num_shapes", 3)  # doctest: +SKIP
    >>> dataset = generate("my-dataset", config, num_datapoints=4, materialize=True)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from prefect_synthdata.exceptions import (
    BatchFailedError,
    BatchTimeoutError,
    ConfigurationError,
    NotFoundError,
)
from prefect_synthdata.providers.zpy import DEFAULT_BASE_URL, DONE_STATES, READY, ZpyProvider
from prefect_synthdata.settings import SynthDataSettings

PathToken = str | int
_TOKEN = re.compile(r"\\(.)|(\.)|\[(\d+)\]|([^.\[\\]+)")


def parse_path(path: str) -> list[PathToken]:
    """A pydash-style deep path as keys and list indices; `\\.` keeps a dot in a key.

    Example:
        >>> parse_path("a.b[0].c")
        ['a', 'b', 0, 'c']
        >>> parse_path("run\\\\.seed")
        ['run.seed']
    """
    tokens: list[PathToken] = []
    key: str | None = None
    previous = "start"  # start, key, index or dot
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"cannot parse path {path!r} at position {pos}")
        escaped, dot, index, text = match.groups()
        if dot:
            if previous in ("start", "dot"):
                raise ValueError(f"empty key in path {path!r}")
            if key is not None:
                tokens.append(key)
            key, previous = None, "dot"
        elif index is not None:
            if key is not None:
                tokens.append(key)
            key, previous = None, "index"
            tokens.append(int(index))
        else:
            key, previous = (key or "") + (escaped if escaped is not None else text), "key"
        pos = match.end()
    if previous in ("start", "dot"):
        raise ValueError(f"path {path!r} is empty or ends with a dot")
    if key is not None:
        tokens.append(key)
    return tokens


def set_path(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set `value` at a deep path, creating dicts (or lists before an index) on the way.

    Example:
        >>> set_path({}, "a.b[0].c", 1)
        {'a': {'b': [{'c': 1}]}}
    """
    tokens = parse_path(path)
    node: Any = obj
    for token, following in itertools.pairwise(tokens):
        fresh: Any = [] if isinstance(following, int) else {}
        if isinstance(token, int):
            _check_list(node, path)
            node.extend([None] * (token + 1 - len(node)))
            if not isinstance(node[token], dict | list):
                node[token] = fresh
            node = node[token]
        else:
            _check_dict(node, path)
            if not isinstance(node.get(token), dict | list):
                node[token] = fresh
            node = node[token]
    last = tokens[-1]
    if isinstance(last, int):
        _check_list(node, path)
        node.extend([None] * (last + 1 - len(node)))
    else:
        _check_dict(node, path)
    node[last] = value
    return obj


def unset_path(obj: dict[str, Any], path: str) -> bool:
    """Remove the value at a deep path; returns whether there was one.

    Example:
        >>> config = {"a": {"b": [{"c": 1, "d": 2}]}}
        >>> unset_path(config, "a.b[0].c"), config
        (True, {'a': {'b': [{'d': 2}]}})
    """
    tokens = parse_path(path)
    node: Any = obj
    for token in tokens[:-1]:
        try:
            node = node[token]
        except (KeyError, IndexError, TypeError):
            return False
    last = tokens[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        del node[last]
        return True
    return False


def _check_dict(node: Any, path: str) -> None:
    if not isinstance(node, dict):
        raise ValueError(f"path {path!r}: a key is applied to a {type(node).__name__}")


def _check_list(node: Any, path: str) -> None:
    if not isinstance(node, list):
        raise ValueError(f"path {path!r}: an index is applied to a {type(node).__name__}")


@dataclass
class _Client:
    provider: ZpyProvider
    project: dict[str, Any]


_CLIENT: _Client | None = None


def init(
    auth_token: str | SecretStr,
    project_uuid: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Connect to a zpy server (`GET projects/{id}`); the token's first project by default.

    Returns the project (`id`, `name`, ...). AuthenticationError for a bad token.
    """
    global _CLIENT
    token = auth_token if isinstance(auth_token, SecretStr) else SecretStr(auth_token)
    provider = ZpyProvider(
        base_url, token, project_uuid, cache_dir or SynthDataSettings().home / "cache" / "zpy"
    )
    project = provider.api.project(provider.project)
    _CLIENT = _Client(provider=provider, project=project)
    return project


def _client() -> _Client:
    if _CLIENT is None:
        raise ConfigurationError(
            "call prefect_synthdata.compat.zpy.init(auth_token, project_uuid, base_url) first"
        )
    return _CLIENT


class DatasetConfig:
    """A sim and the config to render it with, edited by deep path."""

    def __init__(self, sim_name: str) -> None:
        self.sim: dict[str, Any] = _client().provider.sim_record(sim_name)
        self._config: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"DatasetConfig(sim={self.sim_name!r}, config={self._config!r})"

    @property
    def sim_name(self) -> str:
        return str(self.sim["name"])

    @property
    def config(self) -> dict[str, Any]:
        """A copy of the config as it will be sent."""
        return copy.deepcopy(self._config)

    def set(self, path: str, value: Any) -> None:
        """Set a (deep) config value, e.g. `set("a.b[0].c", 1)` or `set("run\\\\.seed", 3)`."""
        set_path(self._config, path, value)

    def unset(self, path: str) -> None:
        """Remove a (deep) config value; a missing path is ignored."""
        unset_path(self._config, path)


class Dataset:
    """A dataset of the project, by name (`GET datasets/?project&name=`) or id."""

    def __init__(self, name: str | None = None, *, dataset_id: str | None = None) -> None:
        api = _client().provider.api
        if dataset_id is not None:
            data = api.dataset(dataset_id)
        elif name is not None:
            found = api.datasets(_client().provider.project, name)
            if not found:
                raise NotFoundError(
                    f"no dataset named {name!r} in project {_client().provider.project}"
                )
            data = found[0]
        else:
            raise ValueError("Dataset needs a name or a dataset_id")
        self.id = str(data["id"])
        self.name = str(data.get("name") or name or "")
        self.state = str(data.get("state") or "")

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, id={self.id!r}, state={self.state!r})"

    def refresh(self) -> str:
        """Read and return the dataset's current state."""
        self.state = str(_client().provider.api.dataset(self.id).get("state") or "")
        return self.state

    def wait(self, timeout: float | None = None, polling_interval: float = 5.0) -> str:
        """Poll the state until it is final; BatchFailedError unless READY, BatchTimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().upper() not in DONE_STATES:
            if deadline is not None and time.monotonic() + polling_interval > deadline:
                raise BatchTimeoutError(
                    f"dataset {self.name!r} still {self.state} after {timeout:g}s"
                )
            time.sleep(polling_interval)
        if self.state.upper() != READY:
            raise BatchFailedError(f"dataset {self.name!r} finished in state {self.state}")
        return self.state

    def download(self, dest_dir: str | Path = ".", timeout: float | None = None) -> Path:
        """Wait until READY, then stream the dataset zip to `dest_dir/<name>-<id[:8]>.zip`."""
        self.wait(timeout)
        provider = _client().provider
        archive = provider.dataset_archive(self.id)
        target = Path(dest_dir) / f"{self.name.replace(' ', '_')}-{self.id[:8]}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(archive, target)  # same file system: no second copy
            except OSError:
                shutil.copyfile(archive, target)
        return target


def generate(
    name: str,
    config: DatasetConfig,
    num_datapoints: int = 10,
    materialize: bool = False,
    download_dir: str | Path = ".",
    timeout: float | None = None,
) -> Dataset:
    """Create dataset `name` rendering `config` `num_datapoints` times (adopting one of that name).

    With `materialize`, wait for it and download its zip to `download_dir`.
    """
    if num_datapoints < 1:
        raise ValueError(f"num_datapoints must be >= 1, got {num_datapoints}")
    provider = _client().provider
    dataset_id = provider.generate_dataset(name, config.sim_name, config.config, num_datapoints)
    dataset = Dataset(dataset_id=dataset_id)
    if materialize:
        dataset.download(download_dir, timeout)
    return dataset


def preview(config: DatasetConfig, num_samples: int = 10) -> list[dict[str, Any]]:
    """Up to `num_samples` rgb files of READY simruns of the config's sim (each with a `url`)."""
    client = _client()
    api, sim_id = client.provider.api, str(config.sim["id"])
    params: dict[str, Any] = {"project": client.provider.project, "sim": sim_id, "state": READY}
    params["page-size"] = num_samples
    values = config.config
    if values:
        params["config"] = ",".join(f"{k}:{v}" for k, v in values.items())
    if not api.get("simruns/", **params).get("results"):
        return []
    files = api.get(
        "files/",
        **{"run__sim": sim_id, "path__icontains": ".rgb", "~path__icontains": ".annotated"},
    )
    return list(files.get("results", []))[:num_samples]
