"""Signed result URLs are built on the configured public base URL, never on the `Host` header."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.server.config import build_parser, config_from_args
from tests.reference_server import ServerProcess, free_port, run_reference_server
from tests.server.conftest import Api, wait_for

SMALL = {"width": 32, "height": 32}
POLL = batches.PollPolicy(initial_seconds=0.1, cap_seconds=0.5, deadline_seconds=120)


def test_forged_host_header_does_not_move_result_urls(server: ServerProcess, alice: Api) -> None:
    batch = alice.post(
        "api/batch/",
        json={"name": "forged-host", "job_runs": [{"name": "shapes", "param_values": SMALL}]},
    ).json()

    def summary() -> list[dict[str, str]] | None:
        reply = alice.get(f"api/batch/{batch['id']}/summary/", headers={"Host": "evil.example"})
        runs: list[dict[str, str]] = reply.json()["job_runs"]
        return runs if all(r["result_url"] for r in runs) else None

    (run,) = wait_for(summary)
    assert run["result_url"].startswith(f"{server.url}/results/jobs/"), run["result_url"]


@contextmanager
def prefix_proxy(prefix: str, backend_port: int, seen: list[str]) -> Iterator[str]:
    """A reverse proxy on 127.0.0.1 serving the backend under `prefix`; yields its base URL.

    Paths it is asked for are appended to `seen`."""

    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            if not self.path.startswith(prefix + "/"):
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            seen.append(self.path)
            headers = dict(self.headers.items())  # Host passed on, as proxies commonly do
            upstream = http.client.HTTPConnection("127.0.0.1", backend_port, timeout=30)
            upstream.request(self.command, self.path[len(prefix) :], body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_POST = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}{prefix}"
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_public_url_with_a_path_prefix_works_through_the_client(tmp_path: Path) -> None:
    backend_port, seen = free_port(), []
    with (
        prefix_proxy("/synth", backend_port, seen) as public,
        run_reference_server(
            tmp_path / "srv",
            tokens=["proxied"],
            port=backend_port,
            extra_args=["--public-url", public],
        ),
    ):
        provider = ProviderConfig(kind="infinity", url=public, token=SecretStr("proxied")).create()
        request = batches.prepare_request(provider, "shapes", [SMALL], False, "proxied", seed=1)
        batch, _ = batches.submit_idempotent(provider, request)
        batches.poll_until_done(provider, batch, POLL)
        (folder,) = batches.download_jobs(provider, batch, batch.job_ids, tmp_path / "jobs")
        assert (folder / "labels.json").is_file()
    assert any(path.startswith("/synth/results/jobs/") for path in seen), seen


def test_public_url_defaults_to_the_bind_address_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    def config(*argv: str) -> str:
        return config_from_args(build_parser().parse_args(["--token", "t", *argv])).public_url

    monkeypatch.delenv("SYNTHDATA_SERVER_PUBLIC_URL", raising=False)
    assert config("--port", "9001") == "http://127.0.0.1:9001"
    assert config("--host", "::1", "--port", "9001") == "http://[::1]:9001"
    monkeypatch.setenv("SYNTHDATA_SERVER_PUBLIC_URL", "https://data.example.com/synth/")
    assert config() == "https://data.example.com/synth"
    assert config("--public-url", "http://127.0.0.1:1/x") == "http://127.0.0.1:1/x"
    monkeypatch.setenv("SYNTHDATA_SERVER_PUBLIC_URL", "https://h/?q=1")
    with pytest.raises(ConfigurationError, match="public URL must have no query"):
        config()


@pytest.mark.parametrize(
    "bad",
    [
        "data.example.com",
        "ftp://host/",
        "http://",
        "https://h/x?a=1",
        "https://h/#f",
        "http://h:99999",
    ],
)
def test_bad_public_url_exits_2(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--token", "t", "--public-url", bad])
    assert exited.value.code == 2
    assert "--public-url: must" in capsys.readouterr().err


def test_a_wildcard_bind_address_warns_that_urls_are_unreachable() -> None:
    from prefect_synthdata.server.run import public_url_notice

    wildcard = config_from_args(build_parser().parse_args(["--token", "t", "--host", "0.0.0.0"]))
    assert public_url_notice(wildcard.public_url).startswith("warning: signed result URLs on")
    assert "--public-url" in public_url_notice("http://[::]:8080")
    assert (
        public_url_notice("http://127.0.0.1:8080") == "signed result URLs on http://127.0.0.1:8080"
    )
