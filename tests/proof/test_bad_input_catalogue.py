"""A catalogue of bad inputs across the whole surface, each ending in a clear domain error.

Every case runs against real parts on 127.0.0.1 (the reference server for both HTTP
dialects, moto's S3 server, a scripted server serving crafted result zips, the
`synthdata` CLI's `main`) and then checks the three promises:

- the error is the expected domain exception and its message names the problem;
- nothing was submitted: the reference server holds no batch (infinity) and no dataset
  (zpy) for this suite's token, the scripted server saw no POST;
- no file appeared outside the case's target folder, except the local provider's own
  state database (`SYNTHDATA_HOME/local`), and nothing was downloaded
  (`SYNTHDATA_HOME/work` stays empty).
"""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from prefect_synthdata import batches
from prefect_synthdata.blocks import InfinityCredentials, ZpyCredentials
from prefect_synthdata.blocks.credentials import resolve_provider
from prefect_synthdata.cli import main
from prefect_synthdata.exceptions import (
    AuthenticationError,
    ConfigurationError,
    DestinationError,
    NotFoundError,
    ParameterValidationError,
    ServerResponseError,
    StateFileError,
    TransientError,
    UnknownGeneratorError,
    UnsafeArchiveError,
)
from prefect_synthdata.flows import GenerateRequest, generate_dataset
from prefect_synthdata.models import BatchRef
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.zpy import ZpyProvider
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import StoreOptions
from tests.providers import hostile
from tests.providers.hostile import job
from tests.providers.scripted_server import Reply, ScriptedServer, scripted_server
from tests.reference_server import ServerProcess, free_port, run_reference_server
from tests.storage.conftest import s3_client

pytestmark = pytest.mark.timeout(90)

TOKEN = "catalogue-token"
BUCKET = "catalogue-bucket"
SMALL = {"width": 64, "height": 64}


@dataclass
class World:
    """The real parts a case runs against, and the case's own folders."""

    server: ServerProcess
    s3_endpoint: str
    target: Path

    def provider(
        self, kind: str = "infinity", token: str = TOKEN, **extra: Any
    ) -> InfinityCredentials | ZpyCredentials:
        block = InfinityCredentials if kind == "infinity" else ZpyCredentials
        return block(url=self.server.url, token=SecretStr(token), **extra)

    def generate(self, **fields: Any) -> Any:
        """Run the generate flow with SMALL jobs on the infinity dialect unless overridden."""
        request: dict[str, Any] = {
            "credentials": self.provider(),
            "num_jobs": 2,
            "params": SMALL,
            "name": "catalogue",
            "dest": str(self.target / "datasets"),
            **fields,
        }
        return generate_dataset(GenerateRequest(**request))

    def s3(self, **options: Any) -> StoreOptions:
        return StoreOptions(endpoint_url=self.s3_endpoint, **options)


Action = Callable[[World], Any]


@dataclass
class Case:
    action: Action
    error: type[BaseException]
    words: tuple[str, ...]


def flow(**fields: Any) -> Action:
    return lambda world: world.generate(**fields)


def cli(*argv: str) -> Action:
    """Run `synthdata generate ARGV` in this process against the suite's server; a non-zero
    exit status with `error:` on stderr is raised as SystemExit for the table."""

    def run(world: World) -> Any:
        args = [a.replace("{url}", world.server.url) for a in argv]
        status = main(["generate", "--dest", str(world.target / "datasets"), *args])
        if status != 0:
            raise SystemExit(status)
        return status

    return run


# ------------------------------------------------------------------ crafted result zips


def symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def plain_zip(*members: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def zip_bomb(members: int = 3, gib_each: int = 3) -> bytes:
    """A real zip bomb: `members` files of `gib_each` GiB of zeros, about 3 MB per member.

    Built from one deflate block of 1 MiB of zeros repeated (a full flush resets the
    compressor, so the block is the same every time); sizes and CRC-32 are the true ones.
    """
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = gib_each << 10
    stream = block * count + compressor.flush()
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    size = count << 20
    local, central = bytearray(), bytearray()
    for index in range(members):
        name = f"j1/zeros-{index}.bin".encode()
        offset = len(local)
        fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(stream), size)
        local += b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name + stream
        central += (
            b"PK\x01\x02"
            + struct.pack("<H", 0x0314)
            + fields
            + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0o100644 << 16, offset)
            + name
        )
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, members, members, len(central), len(local), 0
    )
    return bytes(local + central + end)


def served_zip(payload: Callable[[], bytes]) -> Action:
    """Serve `payload` as job j1's result to the infinity provider and download it
    (the scripted server must see no POST)."""

    def run(world: World) -> Any:
        with scripted_server() as (state, url):
            try:
                download(state, url, world.target / "jobs")
            finally:
                assert [r.path for r in state.requests if r.method == "POST"] == []

    def download(state: ScriptedServer, url: str, work_dir: Path) -> Any:
        summary = {"job_runs": [{"id": "j1", "name": "shapes", "in_progress": False,
                                 "result_url": f"{url}results/j1.zip"}]}  # fmt: skip
        state.script("/api/batch/b1/summary/", Reply(200, json.dumps(summary).encode()))
        state.script("/results/j1.zip", Reply(200, payload()))
        provider = InfinityProvider(url, SecretStr(TOKEN))
        batch = BatchRef(
            batch_id="b1", name="served", generator="shapes", job_ids=["j1"], is_preview=True
        )
        return batches.download_jobs(provider, batch, ["j1"], work_dir)

    return run


def hostile_server(call: hostile.Call) -> Action:
    """Meet one hostile reply of `tests.providers.hostile` on a scripted server (no POST)."""

    def run(world: World) -> Any:
        with scripted_server() as (state, url):
            try:
                return call(state, url, world.target / "jobs")
            finally:
                assert [r.path for r in state.requests if r.method == "POST"] == []

    return run


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (picked when the case runs)."""
    return f"http://127.0.0.1:{free_port()}"


def aws_block(name: str) -> Action:
    return flow(dest=f"s3://{BUCKET}/ds", storage=StoreOptions(aws_block=name))


def corrupt_local_state(world: World) -> Any:
    """Run on the local provider whose job database is not a SQLite file."""
    database = SynthDataSettings().home / "local" / "jobs.sqlite3"
    database.parent.mkdir(parents=True, exist_ok=True)
    database.write_bytes(b"not a database " * 500)
    return world.generate(credentials="local")


CASES: dict[str, Case] = {
    # generator names and parameters, validated by the service (infinity dialect)
    "unknown generator": Case(flow(generator="nope"), UnknownGeneratorError, ("'nope'",)),
    "unknown parameter": Case(flow(params={**SMALL, "colour": 3}), ParameterValidationError, ("unknown parameter 'colour'",)),
    "below minimum": Case(flow(params={"width": 5}), ParameterValidationError, ("'width' must be >= 32",)),
    "above maximum": Case(flow(params={"height": 99999}), ParameterValidationError, ("'height' must be <= 2048",)),
    "wrong type": Case(flow(params={"width": "wide"}), ParameterValidationError, ("'width' must be int",)),
    "not a choice": Case(flow(params={"background": "plaid"}), ParameterValidationError, ("'background' must be one of",)),
    "state not a uuid": Case(flow(params={"state": "not-a-uuid"}), ParameterValidationError, ("'state' must be a uuid",)),
    "one bad job of three": Case(flow(job_params=[SMALL, {"noise_std": "loud"}, SMALL]), ParameterValidationError, ("job 1: 'noise_std' must be float",)),
    "preview of many frames": Case(flow(params={**SMALL, "frames": 0}), ParameterValidationError, ("'frames'",)),
    # request fields checked by pydantic before anything runs
    "zero jobs": Case(flow(num_jobs=0), ValidationError, ("num_jobs",)),
    "negative seed": Case(flow(seed=-1), ValidationError, ("seed",)),
    "zero poll interval": Case(flow(poll_cap_seconds=0), ValidationError, ("poll_cap_seconds",)),
    "unknown provider kind": Case(lambda w: ProviderConfig(kind="sagemaker"), ValidationError, ("kind",)),  # type: ignore[arg-type]
    # dataset names and versions
    "name with ..": Case(flow(name="../escape"), ConfigurationError, ("dataset name '../escape'",)),
    "name with a slash": Case(flow(name="a/b"), ConfigurationError, ("dataset name 'a/b'",)),
    "version ..": Case(flow(version=".."), ConfigurationError, ("dataset version '..'",)),
    "name with a trailing newline": Case(flow(name="demo\n"), ConfigurationError, ("dataset name 'demo\\n'",)),
    "version with a trailing newline": Case(flow(version="v1\n"), ConfigurationError, ("dataset version 'v1\\n'",)),
    # tokens and URLs
    "wrong token": Case(lambda w: w.generate(credentials=w.provider(token="not-the-token")), AuthenticationError, ("authentication failed",)),
    "missing token": Case(lambda w: w.generate(credentials=InfinityCredentials(url=w.server.url)), ValidationError, ("token",)),  # type: ignore[call-arg]
    "empty token": Case(lambda w: w.generate(credentials=w.provider(token="")), ConfigurationError, ("needs a server url and a token",)),
    "missing url": Case(lambda w: w.generate(credentials=InfinityCredentials(token=SecretStr(TOKEN))), ValidationError, ("url",)),  # type: ignore[call-arg]
    "not an http url": Case(lambda w: w.generate(credentials=InfinityCredentials(url="ftp://127.0.0.1/", token=SecretStr(TOKEN))), ValidationError, ("url", "absolute http:// or https:// URL")),
    "credentials token with a newline": Case(lambda w: w.generate(credentials=InfinityCredentials(url=w.server.url, token=SecretStr(TOKEN + "\n"))), ValidationError, ("token", "line break")),
    "closed port": Case(lambda w: w.generate(credentials=InfinityCredentials(url=closed_port_url(), token=SecretStr(TOKEN))), TransientError, ("connection refused", "http://127.0.0.1:", "giving up after 6 attempts")),
    "token with a trailing newline": Case(lambda w: w.generate(credentials=w.provider(token=TOKEN + "\n")), ValidationError, ("line break",)),
    "token with a non-latin-1 character": Case(lambda w: w.generate(credentials=w.provider(token=TOKEN + "\u2014")), ValidationError, ("outside latin-1",)),
    "cli token with a CR": Case(cli("--provider", "infinity", "--url", "{url}", "--token", TOKEN + "\r"), SystemExit, ("line break",)),
    "missing credentials block": Case(lambda w: resolve_provider(None, "no-such-block", SynthDataSettings()), ConfigurationError, ("no credentials block named 'no-such-block'",)),
    # the zpy dialect
    "zpy wrong token": Case(lambda w: w.generate(credentials=w.provider("zpy", token="not-the-token")), AuthenticationError, ("authentication failed",)),
    "zpy unknown sim": Case(lambda w: w.generate(credentials=w.provider("zpy"), generator="no-such-sim"), UnknownGeneratorError, ("'no-such-sim'",)),
    "zpy preview": Case(lambda w: w.generate(credentials=w.provider("zpy"), is_preview=True), ParameterValidationError, ("preview",)),
    "zpy jobs that differ": Case(lambda w: w.generate(credentials=w.provider("zpy"), job_params=[SMALL, {"width": 96}]), ParameterValidationError, ("differ only in 'seed'",)),
    "zpy unknown project": Case(lambda w: w.generate(credentials=w.provider("zpy", project="00000000-0000-0000-0000-000000000000")), UnknownGeneratorError, ("in project 00000000-0000-0000-0000-000000000000",)),
    # destinations
    "unsupported scheme": Case(flow(dest="ftp://127.0.0.1/x"), ConfigurationError, ("unsupported destination",)),
    "bad bucket name": Case(flow(dest="s3://Bad_Bucket!/x"), ConfigurationError, ("is not a bucket name",)),
    "s3 prefix with ..": Case(flow(dest=f"s3://{BUCKET}/a/../b"), ConfigurationError, ("'..' segment",)),
    "missing bucket": Case(lambda w: w.generate(dest="s3://no-such-bucket/ds", storage=w.s3()), DestinationError, ("bucket 'no-such-bucket' does not exist",)),
    "unreachable s3 endpoint": Case(lambda w: w.generate(dest=f"s3://{BUCKET}/ds", storage=StoreOptions(endpoint_url=closed_port_url())), DestinationError, ("cannot reach the S3 endpoint",)),
    "s3 options on a local path": Case(lambda w: w.generate(storage=w.s3()), ConfigurationError, ("only apply to s3:// destinations",)),
    "aws block of another type": Case(aws_block("secret/x"), ConfigurationError, ("aws_block 'secret/x' must be one of",)),
    "missing aws block": Case(aws_block("no-such-block"), ConfigurationError, ("no saved prefect-aws block 'aws-credentials/no-such-block'",)),
    "file in the way": Case(lambda w: w.generate(dest=str(w.target / "blocker" / "ds")), DestinationError, ("not writable",)),
    # the command line
    "cli wrong token": Case(cli("--provider", "infinity", "--url", "{url}", "--token", "nope", "--param", "width=64"), SystemExit, ("authentication failed",)),
    "cli unknown generator": Case(cli("--provider", "infinity", "--url", "{url}", "--token", TOKEN, "--generator", "nope"), SystemExit, ("'nope'",)),
    "cli zero jobs": Case(cli("--provider", "infinity", "--url", "{url}", "--token", TOKEN, "--jobs", "0"), SystemExit, ("--jobs", "between 1 and 100000")),
    "cli param without =": Case(cli("--param", "width"), SystemExit, ("--param expects key=value",)),
    "corrupt local state database": Case(corrupt_local_state, StateFileError, ("local/jobs.sqlite3 is not a usable SQLite database (file is not a database)", "move it away")),
    "serve with a public url that is not http": Case(lambda w: main(["serve", "--token", "t", "--public-url", "ftp://127.0.0.1/"]), SystemExit, ("--public-url: must be an absolute http(s) URL",)),
    # result zips served to the client
    "zip member with ..": Case(served_zip(lambda: plain_zip(("j1/ok.txt", b"ok"), ("j1/../../evil.txt", b"x"))), UnsafeArchiveError, ("escapes the destination",)),
    "zip member with an absolute path": Case(served_zip(lambda: plain_zip(("j1/ok.txt", b"ok"), ("/tmp/evil.txt", b"x"))), UnsafeArchiveError, ("absolute",)),
    "zip member that is a symlink": Case(served_zip(lambda: plain_zip(("j1/ok.txt", b"ok"), (symlink_member("j1/link"), b"/etc/passwd"))), UnsafeArchiveError, ("symbolic link",)),
    "zip bomb": Case(served_zip(zip_bomb), UnsafeArchiveError, ("exceed the limit",)),
    "zip without the job folder": Case(served_zip(lambda: plain_zip(("other/job.json", b"{}"))), NotFoundError, ("has no j1/ folder",)),
    "zip member name over 255 bytes": Case(served_zip(lambda: plain_zip(("j1/" + "n" * 256, b"x"))), UnsafeArchiveError, ("over 255 bytes",)),
    # what a hostile server sends (tests/providers/test_hostile_server.py has the rest)
    "server job id with ..": Case(hostile_server(hostile.infinity_batch({"id": "b1", "name": hostile.NAME, "job_runs": [job(id="../../..")]})), ServerResponseError, ("job_runs[0].id '../../..'", "127.0.0.1")),
    "server job_runs null": Case(hostile_server(hostile.infinity_batch({"id": "b1", "name": hostile.NAME, "job_runs": None})), ServerResponseError, ("batch job_runs None",)),
    "server job without id": Case(hostile_server(hostile.infinity_batch({"id": "b1", "name": hostile.NAME, "job_runs": [{"name": "shapes"}]})), ServerResponseError, ("job_runs[0].id None",)),
    "server relative result_url": Case(hostile_server(hostile.infinity_summary({"job_runs": [job(in_progress=False, result_url="j1.zip")]})), ServerResponseError, ("result_url of job j1",)),
    "zpy dataset id with ..": Case(hostile_server(hostile.zpy_datasets({"id": "..", "name": hostile.NAME})), ServerResponseError, ("dataset id '..'",)),
    "zpy next pointing to itself": Case(hostile_server(hostile.zpy_self_paging()), ServerResponseError, ("a page seen before",)),
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_reference_server(tmp_path_factory.mktemp("catalogue") / "srv", tokens=[TOKEN]) as srv:
        yield srv


@pytest.fixture(scope="module")
def s3_endpoint(moto_endpoint: str) -> str:
    s3_client(moto_endpoint).create_bucket(Bucket=BUCKET)
    return moto_endpoint


def _submissions(server: ServerProcess) -> tuple[int, int]:
    """(infinity batches, zpy datasets) the server holds for this suite's token."""
    infinity = InfinityProvider(server.url, SecretStr(TOKEN))
    now = datetime.now(UTC)
    zpy = ZpyProvider(server.url, SecretStr(TOKEN), None, server.data_dir.parent / "zpy-cache")
    datasets = zpy.api.count("datasets/", project=zpy.project)
    return len(infinity.api.batches(now - timedelta(days=1), now + timedelta(minutes=1))), datasets


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_the_catalogue_is_large() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_clearly_without_spend_or_stray_files(
    name: str,
    server: ServerProcess,
    s3_endpoint: str,
    tmp_path: Path,
    synthdata_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    target = tmp_path / "target"
    target.mkdir()
    (target / "blocker").write_text("a file where a directory must go")
    before = _files(tmp_path)
    with pytest.raises(case.error) as info:
        case.action(World(server, s3_endpoint, target))
    message = capsys.readouterr().err if case.error is SystemExit else str(info.value)
    for word in case.words:
        assert word in message, message
    assert "Traceback" not in message

    assert _submissions(server) == (0, 0)
    assert not (synthdata_home / "work").exists() or not any((synthdata_home / "work").rglob("*"))
    new = _files(tmp_path) - before
    strays = [p for p in new if p.parts[:2] != ("synthdata-home", "local")]
    assert strays == []
    assert (target / "blocker").read_text() == "a file where a directory must go"
