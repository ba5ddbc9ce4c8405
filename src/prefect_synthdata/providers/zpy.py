"""The `zpy` provider: the Zumo Labs zpy REST API over HTTP.

`ZpyApi` sends the requests of the original `zpy.client` (shared/protocols/zpy-api.md):
paths under `/api/v1/`, `Authorization: Token <token>`, form-encoded POST bodies with
JSON-valued fields as strings. `ZpyProvider` implements `Provider` on top of it:

- a generator is a sim of the project; a batch is a dataset named `request.name`;
  its jobs are the dataset's simruns (their ids are the job ids);
- a zpy dataset renders ONE config `amount` times, so the jobs of a batch must share
  every parameter except `seed`; the config carries the first job's seed and the
  server derives each run's seed from it;
- status is one dataset read plus one READY-simrun count per poll;
- the dataset zip is downloaded once per dataset into a cache (resumable, size
  checked) and each simrun folder's zumo annotations are converted to the canonical
  job folder (`engine.render`).

Example:
    >>> from pydantic import SecretStr
    >>> api = ZpyApi("http://127.0.0.1:8000", SecretStr("tok"))
    >>> api.url("projects/p1")
    'http://127.0.0.1:8000/api/v1/projects/p1'
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import SecretStr

from prefect_synthdata.exceptions import (
    NotFoundError,
    ParameterValidationError,
    ServerResponseError,
    SynthDataError,
    TransientError,
    UnknownGeneratorError,
)
from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus, JobState, JobStatus
from prefect_synthdata.params import GeneratorSpec, ParamOptions, ParamSpec, validate_jobs
from prefect_synthdata.providers.archive import CheckedZip
from prefect_synthdata.providers.http import (
    AmbiguousRequestError,
    HttpClient,
    RetryPolicy,
    call_cancel_endpoint,
)
from prefect_synthdata.providers.trust import (
    file_name,
    refuse,
    server_count,
    server_id,
    server_object,
    server_objects,
    server_size,
    server_url,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://ragnarok.zumok8s.org"
READY = "READY"
CANCELLED = "CANCELLED"
FAILED_STATES = frozenset({"CANCELLED", "PACKAGING_FAILED", "GENERATING_FAILED"})
#: Failed states a new generate recovers from on the reference server (`render_again`).
RECOVERABLE_STATES = frozenset({"PACKAGING_FAILED", "GENERATING_FAILED"})
DONE_STATES = FAILED_STATES | {READY}
#: Dataset states that mean `generate` was accepted.
GENERATED_STATES = DONE_STATES | {"GENERATING", "GENERATED", "PACKAGING"}
PAGE_SIZE = 1000
#: Most pages one list may span (10 million results at PAGE_SIZE): a server that pages on
#: forever is refused rather than followed.
MAX_PAGES = 10_000
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
SUBMIT_ATTEMPTS = 5
ZUMO = "_annotations.zumo.json"
#: What reading a wrong-shaped JSON document raises (JSONDecodeError is a ValueError).
MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_TYPES = {
    "int": "int",
    "integer": "int",
    "float": "float",
    "number": "float",
    "str": "str",
    "string": "str",
}
_TYPES |= {"bool": "bool", "boolean": "bool", "uuid": "uuid"}


class ZpyApi:
    """One method per zpy endpoint used by `zpy.client`; decoded JSON or domain exceptions."""

    def __init__(self, base_url: str, token: SecretStr, retry: RetryPolicy | None = None) -> None:
        self.http = HttpClient(base_url, token, retry=retry)
        self.base_url = self.http.base_url

    def __repr__(self) -> str:
        return f"ZpyApi({self.base_url!r})"

    def url(self, path: str) -> str:
        return f"{self.base_url}api/v1/{path}"

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get_json(self.url(path), params=params or None)

    def get_object(self, path: str, **params: Any) -> dict[str, Any]:
        """A GET whose reply must be a JSON object."""
        return server_object(self.get(path, **params), path, self.base_url)

    def post(self, path: str, form: dict[str, Any]) -> dict[str, Any]:
        """A form-encoded POST, sent once (AmbiguousRequestError when its outcome is unknown)."""
        return server_object(self.http.post_json(self.url(path), form=form), path, self.base_url)

    def iter_list(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every result of a paginated list, following `next` links: absolute URLs on this
        server, at most `MAX_PAGES`, never one seen before (a loop is refused)."""
        page = self.get_object(path, **{"page-size": PAGE_SIZE, **params})
        seen: set[str] = set()
        while True:
            yield from server_objects(page.get("results"), f"{path} results", self.base_url)
            link = page.get("next")
            if not link:
                return
            link = server_url(link, f"{path} next", self.base_url)
            if link in seen or len(seen) >= MAX_PAGES:
                why = "a page seen before" if link in seen else f"more than {MAX_PAGES} pages"
                raise refuse(self.base_url, f"{path} next", link, f"pagination leads to {why}")
            seen.add(link)
            page = server_object(self.http.get_json(link), f"{path} page", self.base_url)

    def count(self, path: str, **params: Any) -> int:
        """The `count` of a list query, reading a one-item page."""
        return server_size(
            self.get_object(path, **{"page-size": 1, **params}).get("count"),
            f"{path} count",
            self.base_url,
        )

    def project(self, project_id: str) -> dict[str, Any]:
        """`GET projects/{id}` (no trailing slash, as `zpy.client.init`)."""
        return self.get_object(f"projects/{project_id}")

    def first_project(self) -> dict[str, Any]:
        """The token's first project (`GET projects/`)."""
        for project in self.iter_list("projects/"):
            return project
        raise NotFoundError(f"the token has no project on {self.base_url}")

    def sims(self, project: str, name: str | None = None) -> list[dict[str, Any]]:
        filters = {"project": project} | ({"name": name} if name is not None else {})
        return list(self.iter_list("sims/", **filters))

    def datasets(self, project: str, name: str) -> list[dict[str, Any]]:
        return list(self.iter_list("datasets/", project=project, name=name))

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return self.get_object(f"datasets/{dataset_id}/")

    def create_dataset(self, project: str, name: str) -> dict[str, Any]:
        return self.post("datasets/", {"project": project, "name": name})

    def generate(
        self, dataset_id: str, project: str, sim: str, config: dict[str, Any], amount: int
    ) -> dict[str, Any]:
        form = {"project": project, "sim": sim, "config": json.dumps(config), "amount": amount}
        return self.post(f"datasets/{dataset_id}/generate/", form)

    def cancel(self, dataset_id: str) -> dict[str, Any]:
        """`POST datasets/{id}/cancel/` (reference server; moves the dataset to CANCELLED, idempotent)."""
        return dict(
            self.http.post_json(
                self.url(f"datasets/{dataset_id}/cancel/"), idempotent=True, form={}
            )
        )

    def simruns(self, dataset_id: str) -> list[dict[str, Any]]:
        return list(self.iter_list("simruns/", datasets=dataset_id))

    def download_link(self, dataset_id: str) -> dict[str, Any]:
        """`GET datasets/{id}/download/`: `redirect_link` and `size_bytes`."""
        return self.get_object(f"datasets/{dataset_id}/download/")


def spec_from_sim(sim: dict[str, Any], server: str = "the server") -> GeneratorSpec:
    """`sim_spec`, with a wrong-shaped sim refused as ServerResponseError naming `server`."""
    try:
        return sim_spec(sim)
    except MALFORMED as exc:
        raise ServerResponseError(
            f"{server} sent a malformed sim {str(sim.get('name'))[:80]!r}: {exc}"
        ) from None


def sim_spec(sim: dict[str, Any]) -> GeneratorSpec:
    """A sim's `run_kwargs` (`{name, type, default}`, optionally `min`/`max`/`choices`) as a spec.

    Example:
        >>> sim_spec({"name": "s", "run_kwargs": [{"name": "n", "type": "int", "default": 2, "max": 9}]})
        ... # doctest: +ELLIPSIS
        GeneratorSpec(name='s', ...params=[ParamSpec(name='n', type='int', default_value=2, options=ParamOptions(min=None, max=9.0, ...
    """
    params = []
    for kw in sim.get("run_kwargs") or []:
        options = {
            **(kw.get("options") or {}),
            **{k: kw[k] for k in ("min", "max", "choices") if k in kw},
        }
        type_ = _TYPES.get(str(kw.get("type", "str")).lower(), "str")
        params.append(
            ParamSpec(
                name=kw["name"],
                type=type_,  # type: ignore[arg-type]
                default_value=kw.get("default", kw.get("default_value")),
                options=ParamOptions(**options),
                description=str(kw.get("description") or ""),
                sample=kw.get("sample"),
            )
        )
    return GeneratorSpec(
        name=sim["name"],
        version=str(sim.get("version") or "1"),
        description=str(sim.get("description") or ""),
        params=params,
        preview=False,
    )


def shared_config(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """The one config of a zpy dataset: the first job's parameters.

    ParameterValidationError if jobs differ in anything but `seed`.

    Example:
        >>> shared_config([{"seed": 1, "n": 2}, {"seed": 7, "n": 2}])
        {'seed': 1, 'n': 2}
    """
    first = {k: v for k, v in jobs[0].items() if k != "seed"}
    problems = [
        f"job {i}: differs from job 0 in {sorted(k for k in first.keys() | job.keys() if k != 'seed' and first.get(k) != job.get(k))}"
        for i, job in enumerate(jobs)
        if {k: v for k, v in job.items() if k != "seed"} != first
    ]
    if problems:
        raise ParameterValidationError(
            ["a zpy dataset renders one config: jobs may differ only in 'seed'", *problems]
        )
    return dict(jobs[0])


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across threads and processes, held on `path` (created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ZpyProvider:
    """`Provider` over a zpy server. `project` defaults to the token's first project."""

    local_results = True  # one dataset zip is downloaded once; each job is extracted from it

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        project: str | None,
        cache_dir: Path,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.api = ZpyApi(base_url, token, retry)
        self._project = project
        self.cache_dir = Path(cache_dir)
        self._sims: dict[str, dict[str, Any]] = {}
        self._simruns: dict[str, dict[str, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"ZpyProvider({self.api.base_url!r}, project={self._project!r})"

    @property
    def project(self) -> str:
        """The project id; looked up once when it was not given."""
        if self._project is None:
            found = self.api.first_project().get("id")
            self._project = server_id(found, "project id", self.api.base_url)
        return self._project

    @property
    def identity(self) -> str:
        return f"zpy:{self.api.base_url}#project={self.project}"

    def sim_record(self, name: str) -> dict[str, Any]:
        """The project's sim of that name (`GET sims/?project&name=`); UnknownGeneratorError if none."""
        if name not in self._sims:
            found = self.api.sims(self.project, name)
            if len(found) != 1:
                raise UnknownGeneratorError(f"no sim named {name!r} in project {self.project}")
            self._sims[name] = found[0]
        return self._sims[name]

    def list_generators(self) -> list[GeneratorSpec]:
        sims = self.api.sims(self.project)
        specs = [spec_from_sim(s, self.api.base_url) for s in sims]
        self._sims.update({spec.name: s for spec, s in zip(specs, sims, strict=True)})
        return specs

    def describe(self, generator: str) -> GeneratorSpec:
        return spec_from_sim(self.sim_record(generator), self.api.base_url)

    def validate(
        self, generator: str, jobs: list[dict[str, Any]], is_preview: bool
    ) -> list[dict[str, Any]]:
        if is_preview:
            raise ParameterValidationError(["zpy has no preview jobs; submit without is_preview"])
        resolved = validate_jobs(self.describe(generator), jobs, is_preview)
        shared_config(resolved)
        return resolved

    def estimate(self, generator: str, jobs: list[dict[str, Any]], is_preview: bool) -> list[int]:
        """zpy has no estimate endpoint: each run renders its `frames` parameter (default 1)."""
        return [int(p.get("frames", 1)) for p in self.validate(generator, jobs, is_preview)]

    def submit(self, request: BatchRequest) -> BatchRef:
        config = shared_config(request.jobs)
        dataset_id = self.generate_dataset(
            request.name, request.generator, config, len(request.jobs)
        )
        return self._ref(dataset_id, request.name)

    def generate_dataset(self, name: str, sim: str, config: dict[str, Any], amount: int) -> str:
        """Create dataset `name` (or adopt it) and generate it once; returns its id.

        Each POST is sent once; after an ambiguous failure the dataset is looked up by
        name, and `generate` is re-sent only while the dataset is certainly not generated.
        A dataset whose generation or packaging failed is generated again (`render_again`).
        """
        dataset = self._dataset_by_name(name) or self._create_dataset(name)
        dataset_id = server_id(dataset.get("id"), "dataset id", self.api.base_url)
        if str(dataset.get("state", "")).upper() in RECOVERABLE_STATES:
            self._generate_again(dataset_id, sim, config, amount)
        for _ in range(SUBMIT_ATTEMPTS):
            if self._generated(dataset_id):
                return dataset_id
            try:
                self.api.generate(dataset_id, self.project, sim, config, amount)
            except AmbiguousRequestError:
                continue
            except ParameterValidationError:
                if self._generated(dataset_id):  # generated meanwhile (a concurrent run): adopt
                    return dataset_id
                raise
            return dataset_id
        raise TransientError(
            f"could not generate dataset {name!r} after {SUBMIT_ATTEMPTS} attempts"
        )

    def render_again(self, batch: BatchRef, request: BatchRequest) -> int:
        """Recover a GENERATING_FAILED or PACKAGING_FAILED dataset by generating it again
        with the request's sim, config and amount: the reference server renders its failed
        or result-less simruns again and packages it again; zpy's own API refuses (logged)."""
        return self._generate_again(
            batch.batch_id, request.generator, shared_config(request.jobs), len(request.jobs)
        )

    def _generate_again(
        self, dataset_id: str, sim: str, config: dict[str, Any], amount: int
    ) -> int:
        """`render_again` of one dataset; how many simruns the server queued again."""
        server = self.api.base_url
        for _ in range(SUBMIT_ATTEMPTS):
            state = str(self.api.dataset(dataset_id).get("state", "")).upper()
            if state not in RECOVERABLE_STATES:
                return 0  # nothing to recover, or recovered by the attempt whose reply was lost
            try:
                body = self.api.generate(dataset_id, self.project, sim, config, amount)
            except AmbiguousRequestError:
                continue
            except ParameterValidationError as exc:
                logger.warning(
                    "%s cannot generate dataset %s again (%s): it stays %s",
                    server,
                    dataset_id,
                    exc,
                    state,
                )
                return 0
            return server_count(
                body.get("rendered_again", 0), "generate rendered_again", server, amount
            )
        raise TransientError(
            f"could not generate dataset {dataset_id} again after {SUBMIT_ATTEMPTS} attempts"
        )

    def _create_dataset(self, name: str) -> dict[str, Any]:
        for _ in range(SUBMIT_ATTEMPTS):
            try:
                return self.api.create_dataset(self.project, name)
            except (AmbiguousRequestError, ParameterValidationError) as exc:
                found = self._dataset_by_name(
                    name
                )  # created by us or meanwhile by a concurrent run
                if found is not None:
                    return found
                if isinstance(exc, ParameterValidationError):
                    raise
        raise TransientError(f"could not create dataset {name!r} after {SUBMIT_ATTEMPTS} attempts")

    def _dataset_by_name(self, name: str) -> dict[str, Any] | None:
        found = self.api.datasets(self.project, name)
        return min(found, key=lambda d: str(d.get("created_at", d.get("id")))) if found else None

    def _generated(self, dataset_id: str) -> bool:
        state = str(self.api.dataset(dataset_id).get("state", "")).upper()
        return state in GENERATED_STATES or self.api.count("simruns/", datasets=dataset_id) > 0

    def find_batch(self, name: str) -> BatchRef | None:
        """The dataset named `name` in the project, once it has been generated."""
        dataset = self._dataset_by_name(name)
        if dataset is None:
            return None
        dataset_id = server_id(dataset.get("id"), "dataset id", self.api.base_url)
        return self._ref(dataset_id, name) if self._generated(dataset_id) else None

    def _runs(self, dataset_id: str) -> dict[str, dict[str, Any]]:
        """The dataset's simruns by id, ordered by seed (then id): the same order on every read."""
        if dataset_id not in self._simruns:
            server = self.api.base_url
            runs = self.api.simruns(dataset_id)
            ids = [server_id(r.get("id"), f"simruns[{i}].id", server) for i, r in enumerate(runs)]
            if len(set(ids)) != len(ids):
                raise refuse(server, "simrun ids", ids, "each simrun id must appear once")
            by_id = dict(zip(ids, runs, strict=True))
            self._simruns[dataset_id] = {
                i: by_id[i] for i in sorted(ids, key=lambda i: run_order(by_id[i], i))
            }
        return self._simruns[dataset_id]

    def _ref(self, dataset_id: str, name: str) -> BatchRef:
        runs = self._runs(dataset_id)
        if not runs:
            raise SynthDataError(f"dataset {dataset_id} has no simruns")
        sim = str(next(iter(runs.values())).get("sim", ""))
        return BatchRef(
            batch_id=dataset_id,
            name=name,
            generator=self._sim_name(sim),
            job_ids=list(runs),
            is_preview=False,
        )

    def _sim_name(self, sim: str) -> str:
        """A simrun's `sim` field (a name, or an id in later servers) as the sim's name."""
        if not self._sims:
            self.list_generators()
        for name, record in self._sims.items():
            if sim in (name, str(record.get("id"))):
                return name
        return sim

    def batch_status(self, batch: BatchRef) -> BatchStatus:
        """The dataset's state and its READY-simrun count: two small reads per poll.

        While the dataset is not finished, at most all but one job count as succeeded,
        so a dataset that is still packaging is never reported as done.
        """
        state = str(self.api.dataset(batch.batch_id).get("state", "")).upper()
        jobs = batch.job_ids
        if state == READY:
            states = [JobState.SUCCEEDED] * len(jobs)
        elif state == CANCELLED:
            ready = min(self.api.count("simruns/", datasets=batch.batch_id, state=READY), len(jobs))
            states = [JobState.SUCCEEDED] * ready + [JobState.CANCELLED] * (len(jobs) - ready)
        elif state in FAILED_STATES:
            states = [JobState.FAILED] * len(jobs)
        else:
            ready = min(
                self.api.count("simruns/", datasets=batch.batch_id, state=READY), len(jobs) - 1
            )
            states = [JobState.SUCCEEDED] * ready + [JobState.RUNNING] * (len(jobs) - ready)
        error = f"dataset {state}" if state in FAILED_STATES else None
        return BatchStatus(
            batch_id=batch.batch_id,
            jobs=[
                JobStatus(job_id=j, state=s, error=error) for j, s in zip(jobs, states, strict=True)
            ],
        )

    def cancel(self, batch: BatchRef) -> int:
        """Move the dataset to CANCELLED (reference server endpoint; the original API has none)."""
        body = call_cancel_endpoint(
            lambda: self.api.cancel(batch.batch_id),
            lambda: self.api.dataset(batch.batch_id),
            f"{self.api.base_url} cannot cancel datasets (no POST datasets/<id>/cancel/): "
            f"dataset {batch.batch_id} keeps rendering and counting against the quota",
        )
        return server_count(
            body.get("cancelled_simruns", 0),
            "cancel cancelled_simruns",
            self.api.base_url,
            len(batch.job_ids),
        )

    def dataset_archive(self, dataset_id: str) -> Path:
        """The dataset zip in the cache, downloaded once (resumable; size and sha256 checked when given)."""
        archive = self.cache_dir / f"{dataset_id}.zip"
        with file_lock(self.cache_dir / f"{dataset_id}.lock"):
            if not archive.exists():
                server = self.api.base_url
                link = self.api.download_link(dataset_id)
                size, digest = link.get("size_bytes"), link.get("sha256")
                if digest and not (isinstance(digest, str) and SHA256_HEX.fullmatch(digest)):
                    raise refuse(server, "download sha256", digest, "expected 64 hex digits")
                self.api.http.download(
                    server_url(link.get("redirect_link"), "download redirect_link", server),
                    archive,
                    expected_size=(
                        server_size(size, "download size_bytes", server)
                        if size is not None
                        else None
                    ),
                    expected_sha256=digest or None,
                )
        return archive

    def dataset_zip(self, dataset_id: str) -> CheckedZip:
        """The dataset zip, downloaded once and opened and checked once per process."""
        archive = self.dataset_archive(dataset_id)
        version = archive.stat()
        try:
            return open_dataset_zip(archive, version.st_ino, version.st_size, version.st_mtime_ns)
        except SynthDataError:
            discard_dataset_zip(archive)
            raise

    def fetch_job_result(self, batch: BatchRef, job_id: str, dest: Path) -> None:
        dataset = self.dataset_zip(batch.batch_id)
        run = self._runs(batch.batch_id).get(job_id)
        if run is None:
            raise NotFoundError(f"simrun {job_id} is not part of dataset {batch.batch_id}")
        folder = run_folder(dataset.folders, run)
        scratch = dest.with_name(dest.name + ".extracting")
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            dataset.extract(scratch, folder=folder)
        except SynthDataError:
            discard_dataset_zip(dataset.archive)
            raise
        converting = dest.with_name(dest.name + ".converting")
        try:
            zumo_to_job_folder(scratch, dest, batch.generator, run_config(run))
        except MALFORMED as exc:
            raise ServerResponseError(
                f"{self.api.base_url} sent a malformed {ZUMO} for simrun {job_id}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(converting, ignore_errors=True)


@functools.lru_cache(maxsize=4)
def open_dataset_zip(archive: Path, inode: int, size: int, mtime_ns: int) -> CheckedZip:
    """`archive` opened and checked, kept open for the next simrun of the same dataset.

    A dataset zip's central directory lists every simrun's files: reading and checking it
    again for each simrun made a 5,000-simrun dataset take 47 minutes to extract instead of
    4 seconds. Inode, size and modification time key the cache, so a zip downloaded again
    is opened again; a dropped entry is closed when it is garbage collected.
    """
    return CheckedZip(archive)


def discard_dataset_zip(archive: Path) -> None:
    """Forget a corrupt dataset zip, so that the next attempt downloads it again."""
    archive.unlink(missing_ok=True)
    open_dataset_zip.cache_clear()


def run_folder(folders: list[str], run: dict[str, Any]) -> str:
    """The zip folder of a simrun: named by its id or its name (or containing the id).

    Example:
        >>> run_folder(["a-1", "run-1234abcd"], {"id": "1234abcd", "name": "x"})
        'run-1234abcd'
    """
    run_id, name = str(run["id"]), str(run.get("name") or "")
    for candidate in (run_id, name):
        if candidate in folders:
            return candidate
    matches = [f for f in folders if run_id in f]
    if len(matches) == 1:
        return matches[0]
    raise NotFoundError(f"dataset zip has no folder for simrun {run_id}")


def run_order(run: dict[str, Any], run_id: str) -> tuple[float, str]:
    """Sort key of a simrun: its config's seed (runs without one last), then its id."""
    seed = run_config(run).get("seed")
    number = (
        float(seed)
        if isinstance(seed, int | float) and not isinstance(seed, bool)
        else float("inf")
    )
    return number, run_id


def run_config(run: dict[str, Any]) -> dict[str, Any]:
    """A simrun's config (a JSON string or an object on the wire)."""
    config = run.get("config") or {}
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return {}
    return dict(config) if isinstance(config, dict) else {}


def _kind(image: dict[str, Any]) -> str | None:
    """rgb, iseg, cseg or depth, from a zumo image's style and name."""
    name = str(image.get("name") or image.get("relative_path") or "")
    style = str(image.get("style") or "default")
    for kind in ("iseg", "cseg", "depth", "rgb"):
        if f".{kind}." in name:
            return kind
    return {"default": "rgb", "depth": "depth"}.get(style)


def zumo_to_job_folder(run_dir: Path, dest: Path, generator: str, params: dict[str, Any]) -> None:
    """Convert a simrun folder (zumo annotations) into the canonical job folder `dest`.

    Images become `image.NNNNNN.{rgb,iseg,cseg,depth}.png` by frame; `labels.json` is
    COCO with file names relative to `dest`; `job.json` names the sim and its config.
    `dest` must not exist; it appears complete or not at all.
    """
    zumo_path = run_dir / ZUMO
    if not zumo_path.is_file():
        raise NotFoundError(f"simrun folder {run_dir.name} has no {ZUMO}")
    zumo = json.loads(zumo_path.read_text())
    frames: dict[int, dict[str, dict[str, Any]]] = {}
    for image in (zumo.get("images") or {}).values():
        kind = _kind(image)
        if kind is not None:
            frames.setdefault(int(image.get("frame", 0)), {})[kind] = image
    scratch = dest.with_name(dest.name + ".converting")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    images: list[dict[str, Any]] = []
    image_ids: dict[str, int] = {}
    for index, frame in enumerate(sorted(frames)):
        by_kind = frames[frame]
        if "rgb" not in by_kind:
            continue
        entry: dict[str, Any] = {"id": index + 1, "frame_number": frame}
        for kind, image in by_kind.items():
            source = run_dir / file_name(
                image.get("name") or PurePosixPath(str(image.get("relative_path", ""))).name,
                "images[].name",
                f"{ZUMO} of simrun folder {run_dir.name}",
            )
            target = f"image.{frame:06d}.{kind}.png"
            if not source.is_file():
                raise NotFoundError(f"simrun folder {run_dir.name} lacks {source.name}")
            shutil.copyfile(source, scratch / target)
            entry["file_name" if kind == "rgb" else f"{kind}_file"] = target
            image_ids[str(image.get("id"))] = entry["id"]
        entry["width"], entry["height"] = (
            int(by_kind["rgb"]["width"]),
            int(by_kind["rgb"]["height"]),
        )
        images.append(entry)
    categories = [
        {
            "id": int(cat.get("id", key)),
            "name": str(cat["name"]),
            "supercategory": (cat.get("supercategories") or ["object"])[0],
        }
        for key, cat in (zumo.get("categories") or {}).items()
    ]
    annotations: list[dict[str, Any]] = []
    for ann in zumo.get("annotations") or []:
        image_id = image_ids.get(str(ann["image_id"]))
        if image_id is None:
            continue
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(ann["category_id"]),
                "bbox": ann["bbox"],
                "area": ann.get("area", ann["bbox"][2] * ann["bbox"][3]),
                "segmentation": ann.get("segmentation_rle") or ann.get("segmentation") or [],
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
        )
    labels = {
        "info": {"description": str((zumo.get("metadata") or {}).get("description", "zpy simrun"))},
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }
    (scratch / "labels.json").write_text(json.dumps(labels, separators=(",", ":")))
    job = {"name": generator, "params": params, "is_preview": False, "frames": len(images)}
    (scratch / "job.json").write_text(json.dumps(job, sort_keys=True))
    scratch.rename(dest)
