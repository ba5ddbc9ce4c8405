"""zpy sims, datasets and simruns over the engine: generate, track, package.

- A sim is an engine generator; its `run_kwargs` are the generator's parameters.
- `generate(amount=N)` asks for N datapoints: N simruns (engine jobs) of one frame
  each, seeds `seed, seed+1, ...` (`seed` from the config, default 0). A finished or
  running simrun of the same sim and parameters is reused instead of rendered again.
- A dataset is GENERATING while its simruns render, GENERATING_FAILED if one fails,
  then PACKAGING (its zip is built by a background thread) and READY.

Config keys are parameter names; gin-style `run.<name>` keys (flat, or nested as
`{"run": {"<name>": ...}}`) mean the same.

Example:
    >>> from prefect_synthdata.engine.generators import get_generator
    >>> sim_record(get_generator("shapes"))["run_kwargs"][0]["name"]
    'width'
    >>> config_params(get_generator("shapes").spec, {"run": {"seed": 3}, "width": 64})
    {'seed': 3, 'width': 64}
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from typing import Any

from prefect_synthdata.engine.generators import GENERATORS, Generator
from prefect_synthdata.exceptions import ParameterValidationError, QuotaExceededError
from prefect_synthdata.models import JobState
from prefect_synthdata.params import GeneratorSpec, validate_jobs
from prefect_synthdata.server.context import ServerContext
from prefect_synthdata.server.errors import ApiError
from prefect_synthdata.server.store import NAMESPACE

logger = logging.getLogger("prefect_synthdata.server")

MAX_AMOUNT = 10_000
SIMRUN_STATES = {JobState.QUEUED: "QUEUED", JobState.RUNNING: "RUNNING",
                 JobState.SUCCEEDED: "READY", JobState.FAILED: "FAILED",
                 JobState.CANCELLED: "CANCELLED"}  # fmt: skip
SIMS_CREATED = "2021-07-01T00:00:00.000000Z"
#: Dataset states a new generate recovers from (zpy's own API leaves them final).
RECOVERABLE_STATES = ("GENERATING_FAILED", "PACKAGING_FAILED")


def sim_id(name: str) -> str:
    """The stable id of the sim serving generator `name`."""
    return str(uuid.uuid5(NAMESPACE, f"sim:{name}"))


def sim_record(generator: Generator) -> dict[str, Any]:
    """The zpy `sims` record of a generator."""
    spec = generator.spec
    return {
        "id": sim_id(spec.name),
        "name": spec.name,
        "state": "READY",
        "version": spec.version,
        "description": spec.description,
        "project": None,
        "created_at": SIMS_CREATED,
        "run_kwargs": [
            {
                "name": p.name,
                "type": p.type,
                "default": p.default_value,
                "description": p.description,
                **p.options.model_dump(exclude_none=True),
                **({"sample": p.to_api()["sample"]} if p.sample is not None else {}),
            }
            for p in spec.params
        ],
    }


def find_sim(value: str) -> Generator | None:
    """The generator a sim name or sim id refers to."""
    for name, generator in GENERATORS.items():
        if value in (name, sim_id(name)):
            return generator
    return None


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def config_params(spec: GeneratorSpec, config: dict[str, Any]) -> dict[str, Any]:
    """Parameter values of a zpy config; ApiError naming unknown keys."""
    params, unknown = {}, []
    names = {p.name for p in spec.params}
    for key, value in _flatten(config).items():
        name = key.removeprefix("run.")
        if name in names:
            params[name] = value
        else:
            unknown.append(key)
    if unknown:
        raise ApiError(
            400, f"unknown config keys {unknown}; sim {spec.name!r} takes {sorted(names)}"
        )
    return params


def _params_key(sim: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps([sim, params], sort_keys=True, default=str).encode()
    ).hexdigest()


class ZpyDatasets:
    """Dataset generation and packaging for one `ServerContext`."""

    def __init__(self, ctx: ServerContext, poll_seconds: float = 0.2) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self._generate_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zpy-packager", daemon=True)

    # -- records -------------------------------------------------------------------------
    def _jobs(self, owner: str, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Engine job rows by id, read in chunks (SQLite bounds the parameters of one query)."""
        jobs: dict[str, dict[str, Any]] = {}
        for start in range(0, len(job_ids), 1000):
            chunk = job_ids[start : start + 1000]
            jobs.update((j["id"], j) for j in self.ctx.service.list_jobs(owner, job_ids=chunk))
        return jobs

    def simruns(self, owner: str, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """`owner`'s simrun records (of one dataset), with states from the engine."""
        runs = self.ctx.store.list_simruns(owner, dataset_id)
        jobs = self._jobs(owner, [r["id"] for r in runs])
        records = []
        for run in runs:
            job = jobs.get(run["id"])
            state = SIMRUN_STATES.get(job["state"], str(job["state"]).upper()) if job else "FAILED"
            error = job["error"] if job else "job record missing"
            if state == "READY" and not self.ctx.service.has_result(run["id"]):
                state, error = "FAILED", "its result was lost; generate the dataset again"
            records.append(
                {
                    "id": run["id"],
                    "name": f"{run['sim']}-{run['id'][:8]}",
                    "sim": sim_id(run["sim"]),
                    "sim_name": run["sim"],
                    "project": run["project"],
                    "state": state,
                    "config": run["config"],
                    "datasets": run["datasets"],
                    "error": error,
                    "created_at": run["created"],
                }
            )
        return records

    # -- generation ----------------------------------------------------------------------
    def generate(
        self, owner: str, dataset: dict[str, Any], sim: str, config: dict[str, Any], amount: int
    ) -> int:
        """Link `amount` simruns to a CREATED dataset, rendering only those not rendered before.

        On a GENERATING_FAILED or PACKAGING_FAILED dataset, generating again with the same
        sim, config and amount recovers it instead (`_generate_again`). Returns how many
        simruns were rendered again (0 for a first generate)."""
        generator = find_sim(sim)
        if generator is None:
            raise ApiError(
                400, f"unknown sim {sim!r}; known: {sorted(GENERATORS)}", code="unknown_sim"
            )
        spec = generator.spec
        params = config_params(spec, config)
        if "seed" in {p.name for p in spec.params}:
            base = params.get("seed", spec.defaults().get("seed") or 0)
            if isinstance(base, str) and base.isdigit():
                base = int(base)
            values = [
                {**params, "seed": base + i if isinstance(base, int) else base}
                for i in range(amount)
            ]
        else:
            values = [dict(params) for _ in range(amount)]
        try:
            jobs = validate_jobs(spec, values, is_preview=False)
        except ParameterValidationError as exc:
            raise ApiError(
                400, str(exc), code="invalid_parameters", problems=exc.problems
            ) from None
        keys = [_params_key(spec.name, p) for p in jobs]
        with self._generate_lock:
            current = self.ctx.store.get_dataset(owner, dataset["id"])
            if current is not None and current["state"] in RECOVERABLE_STATES:
                return self._generate_again(owner, current, keys)  # the packager advances it
            if current is None or current["state"] != "CREATED":
                state = current["state"] if current else "deleted"
                raise ApiError(
                    400, f"dataset {dataset['id']} was already generated (state {state})"
                )
            run_ids = self._reuse(owner, spec.name, keys)
            fresh = {key: p for key, p in zip(keys, jobs, strict=True) if key not in run_ids}
            frames = sum(generator.frame_count(p, False) for p in fresh.values())
            try:
                with self.ctx.quota.reserve(owner, frames):
                    if fresh:
                        batch = self.ctx.service.submit(
                            owner,
                            f"zpy-dataset-{dataset['id']}",
                            spec.name,
                            list(fresh.values()),
                            False,
                        )
                        self.ctx.store.add_simruns(
                            owner,
                            dataset["project"],
                            spec.name,
                            [
                                (job_id, key, p)
                                for job_id, (key, p) in zip(
                                    batch.job_ids, fresh.items(), strict=True
                                )
                            ],
                        )
                        run_ids.update(zip(fresh, batch.job_ids, strict=True))
            except QuotaExceededError as exc:
                raise ApiError(400, str(exc), code="quota_exceeded") from None
            self.ctx.store.start_generation(
                dataset["id"], spec.name, config, amount, [run_ids[k] for k in keys]
            )
        self.advance(owner, dataset["id"])
        return 0

    def _generate_again(self, owner: str, dataset: dict[str, Any], keys: list[str]) -> int:
        """Recover a GENERATING_FAILED or PACKAGING_FAILED dataset: its failed or result-less
        simruns are rendered again (the same simruns, `JobService.render_again`, each at
        most `MAX_RENDERS` times) and it goes back to GENERATING, so it is packaged again.

        Only a generate with the same sim, config and amount recovers it (400 otherwise).
        Quota: the frames of failed simruns are charged again (they were credited back
        when they failed); nothing else is charged twice."""
        runs = self.ctx.store.list_simruns(owner, dataset["id"])
        if [run["params_key"] for run in runs] != keys:
            raise ApiError(
                400,
                f"dataset {dataset['id']} was generated with another sim, config or amount; "
                "generate it again with the same ones to recover it",
            )
        broken = self.ctx.service.broken_jobs(job_ids=list(dict.fromkeys(r["id"] for r in runs)))
        try:
            with self.ctx.quota.reserve(owner, broken.failed_frames):
                again = self.ctx.service.render_again(broken)
        except QuotaExceededError as exc:
            raise ApiError(400, str(exc), code="quota_exceeded") from None
        self.ctx.store.set_state_from(dataset["id"], RECOVERABLE_STATES, "GENERATING")
        return again

    def _reuse(self, owner: str, sim: str, keys: list[str]) -> dict[str, str]:
        """Params key -> an existing simrun that has not failed and has its result."""
        found = self.ctx.store.find_simruns(owner, sim, list(dict.fromkeys(keys)))
        candidates = [run for runs in found.values() for run in runs]
        states = {job_id: job["state"] for job_id, job in self._jobs(owner, candidates).items()}
        reuse = {}
        for key, runs in found.items():
            alive = [
                r
                for r in runs
                if states.get(r) in (JobState.QUEUED, JobState.RUNNING)
                or (states.get(r) == JobState.SUCCEEDED and self.ctx.service.has_result(r))
            ]
            if alive:
                reuse[key] = alive[0]
        return reuse

    def cancel(self, owner: str, dataset_id: str) -> int:
        """Move a CREATED or GENERATING dataset to CANCELLED and cancel the simruns it started.

        Returns how many simruns were cancelled (their frames no longer count against the
        quota). Simruns reused from other datasets keep rendering for those; READY,
        failed and already cancelled datasets are left as they are.
        """
        with self._generate_lock:
            if not self.ctx.store.set_state_from(
                dataset_id, ("CREATED", "GENERATING"), "CANCELLED"
            ):
                return 0
            batch = self.ctx.service.find_batch(owner, f"zpy-dataset-{dataset_id}")
            return len(self.ctx.service.cancel(owner, batch.batch_id)) if batch else 0

    # -- state machine -------------------------------------------------------------------
    def advance(self, owner: str, dataset_id: str) -> None:
        """Move a dataset on: GENERATING -> PACKAGING | GENERATING_FAILED, PACKAGING -> READY."""
        dataset = self.ctx.store.get_dataset(owner, dataset_id)
        if dataset is None or dataset["state"] not in ("GENERATING", "PACKAGING"):
            return
        runs = self.simruns(owner, dataset_id)
        if dataset["state"] == "GENERATING":
            if any(r["state"] in ("QUEUED", "RUNNING") for r in runs):
                return
            failed = [r for r in runs if r["state"] != "READY"]
            if failed:
                error = (
                    f"{len(failed)} simrun(s) failed, first {failed[0]['id']}: {failed[0]['error']}"
                )
                self.ctx.store.set_state_from(
                    dataset_id, ("GENERATING",), "GENERATING_FAILED", error=error
                )
                return
            if not self.ctx.store.set_state_from(dataset_id, ("GENERATING",), "PACKAGING"):
                return  # cancelled meanwhile
        unique = list(dict.fromkeys(r["id"] for r in runs))
        try:
            archive = self.ctx.archives.dataset_zip(
                dataset_id, [(run_id, self.ctx.service.result_dir(run_id)) for run_id in unique]
            )
        except Exception as exc:
            logger.exception("packaging dataset %s failed", dataset_id)
            self.ctx.store.set_state(
                dataset_id, "PACKAGING_FAILED", error=f"{type(exc).__name__}: {exc}"
            )
            return
        self.ctx.store.set_state(
            dataset_id, "READY", size_bytes=archive.size, sha256=archive.sha256
        )

    # -- background packager -------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            for dataset in self.ctx.store.datasets_in_states(("GENERATING", "PACKAGING")):
                if self._stop.is_set():
                    return
                try:
                    self.advance(dataset["owner"], dataset["id"])
                except Exception:
                    logger.exception("advancing dataset %s failed", dataset["id"])
