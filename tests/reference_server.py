"""Run the reference server as a real process on 127.0.0.1 for tests (shared by every suite).

Example:
    with run_reference_server(tmp_path / "srv", tokens=["t1"]) as server:
        requests.get(f"{server.url}/api/jobs/", headers={"Authorization": "Token t1"})
        server.kill()      # crash it (SIGKILL)
        server.restart()   # same port, same data dir

`faults` takes `FaultConfig` field names (`error_rate`, `throttle_rate`, `retry_after`,
`drop_rate`, `truncate_rate`, `latency_ms`, `seed`); `quota` is the frame quota per
token. The server's output goes to `<data_dir>.log`, shown if it fails to start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests

from tests.conftest import subprocess_env

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A running reference server: `url`, `tokens`, `data_dir`; `kill()`, `stop()`, `restart()`."""

    def __init__(
        self, data_dir: Path, tokens: Sequence[str], port: int, args: list[str], env: dict[str, str]
    ) -> None:
        self.data_dir = data_dir
        self.tokens = list(tokens)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(f"{data_dir}.log")
        self._args = args
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None

    def headers(self, token: str | None = None) -> dict[str, str]:
        """`Authorization: Token ...` for `token` (default: the first token)."""
        return {"Authorization": f"Token {token or self.tokens[0]}"}

    def start(self) -> None:
        """Start the process and wait until `/healthz` answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._args, env=self._env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"reference server exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"reference server not ready after {STARTUP_TIMEOUT:g}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """Crash the server: SIGKILL, no shutdown hooks (its render workers die with it)."""
        if self.process is not None and self.process.poll() is None:
            _kill_tree(self.process.pid)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop cleanly (SIGTERM), falling back to SIGKILL after 30 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        """Start again on the same port and data dir (after `kill()` or `stop()`)."""
        self.stop()
        self.start()


def _kill_tree(pid: int) -> None:
    """SIGKILL `pid` and its child processes (the render pool), children first."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    for child in children:
        _kill_tree(int(child))
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextmanager
def run_reference_server(
    data_dir: Path,
    tokens: Sequence[str] = ("test-token",),
    port: int | None = None,
    faults: Mapping[str, Any] | None = None,
    quota: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
    extra_args: Sequence[str] = (),
) -> Iterator[ServerProcess]:
    """Start `python -m prefect_synthdata.server` on 127.0.0.1, yield it, stop it afterwards."""
    data_dir = Path(data_dir)
    port = port or free_port()
    args = [sys.executable, "-m", "prefect_synthdata.server", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--workers", str(workers)]  # fmt: skip
    for token in tokens:
        args += ["--token", token]
    if quota is not None:
        args += ["--quota-frames", str(quota)]
    for name, value in (faults or {}).items():
        args += [f"--fault-{name.replace('_', '-')}", str(value)]
    args += list(extra_args)
    server = ServerProcess(data_dir, tokens, port, args, subprocess_env(**dict(extra_env or {})))
    server.start()
    try:
        yield server
    finally:
        server.stop()
