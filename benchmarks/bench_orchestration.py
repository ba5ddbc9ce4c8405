"""How much Prefect costs on a big batch: the generate flow versus the same steps called
directly (no Prefect), side by side in one run, on the local provider.

    python benchmarks/bench_orchestration.py               # 10,000 preview jobs, 3 repeats
    python benchmarks/bench_orchestration.py --jobs 500 --repeats 1   # a quick look

Reports, per variant, the median wall time and the median time of each phase (submit,
wait, download, build, publish), and for the flow the number of task runs it used.
Orchestration overhead is shown two ways:
- side by side: (flow wall time - direct wall time) / flow wall time. Every repeat starts
  from empty state, so both variants render, download, assemble and publish the whole
  batch; the variants alternate which goes first. Runs go to /dev/shm by default: on
  the development machine's disk the same code varied several-fold between runs;
- isolated: the same task graph (submit, wait, one task per download shard, build,
  publish, with the same parameters and the same task runner) with empty task bodies,
  timed in the same run; its wall time is what Prefect itself costs, divided by the
  flow's wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from prefect_synthdata.models import BatchRef

PARAMS = {"width": 32, "height": 32, "num_objects": 3, "noise_std": 0.0}
PHASES = ("submit", "wait", "download", "build", "publish")
#: Which phase each of the flow's tasks belongs to, by task key prefix.
TASK_PHASES = {
    "submit_batch": "submit",
    "wait_for_batch": "wait",
    "download_batch": "download",
    "build_dataset": "build",
    "publish_dataset": "publish",
}


class PhaseClock:
    """Wall-clock seconds per phase of one run, measured from the clock's creation."""

    def __init__(self) -> None:
        self.started = time.time()
        self.last = self.started
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        """End `phase` now."""
        now = time.time()
        self.phases[phase] = now - self.last
        self.last = now

    def phases_ending_at(self, ends: dict[str, float]) -> dict[str, float]:
        """Phases from recorded end times; `after` is the time from the last phase to `end`."""
        phases, last = {}, self.started
        for phase in PHASES:
            phases[phase] = ends[phase] - last
            last = ends[phase]
        phases["after"] = self.started + self.phases["end"] - last
        return phases


def run_direct(jobs: int, root: Path) -> dict[str, float]:
    """The same steps as the flow, called as plain library functions; seconds per phase."""
    from prefect_synthdata import batches
    from prefect_synthdata.batches import PollPolicy
    from prefect_synthdata.dataset.assemble import assemble_dataset
    from prefect_synthdata.providers.local import LocalProvider, close_job_services
    from prefect_synthdata.storage import open_store
    from prefect_synthdata.storage.publish import publish

    clock = PhaseClock()
    provider = LocalProvider(root / "state")
    request = batches.prepare_request(provider, "shapes", [PARAMS] * jobs, True, "bench")
    batch, _ = batches.submit_idempotent(provider, request)
    clock.lap("submit")
    batches.poll_until_done(provider, batch, PollPolicy())
    clock.lap("wait")
    folders = batches.download_jobs(provider, batch, batch.job_ids, root / "work" / "jobs")
    clock.lap("download")
    manifest = assemble_dataset(
        [(f.name, f) for f in folders], root / "work" / "dataset", name="bench", version="v1",
        provider=provider.identity, generator="shapes", batch_id=batch.batch_id, is_preview=True,
    )  # fmt: skip
    clock.lap("build")
    publish(open_store(str(root / "out")), root / "work" / "dataset", manifest)
    clock.lap("publish")
    close_job_services()
    return clock.phases


def run_flow(jobs: int, root: Path) -> tuple[dict[str, float], int]:
    """The generate flow; returns seconds per phase and how many task runs it used.

    A phase ends when its last task run ends (times as recorded by the Prefect API), so
    the flow's own work between tasks is counted in the phase that follows it.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from prefect_synthdata import GenerateRequest
    from prefect_synthdata.flows.generate import generate_dataset
    from prefect_synthdata.providers.local import close_job_services

    os.environ["SYNTHDATA_HOME"] = str(root / "home")
    request = GenerateRequest(
        credentials="local", num_jobs=jobs, params=PARAMS,
        is_preview=True, name="bench", version="v1", dest=str(root / "out"),
    )  # fmt: skip
    clock = PhaseClock()
    state = generate_dataset(request, return_state=True)
    clock.lap("end")
    state.result()
    close_job_services()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None

    async def read_task_runs() -> list[Any]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    task_runs = asyncio.run(read_task_runs())
    ends: dict[str, float] = {}
    for run in task_runs:
        phase = TASK_PHASES[run.task_key.rsplit("-", 1)[0]]
        ends[phase] = max(ends.get(phase, 0.0), run.end_time.timestamp())
    return clock.phases_ending_at(ends), len(task_runs)


def run_orchestration_only(jobs: int, shard_size: int = 200) -> float:
    """The generate flow's task graph with empty task bodies: Prefect's own cost."""
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    from prefect_synthdata.pipeline import DOWNLOAD_CONCURRENCY
    from prefect_synthdata.tasks import opaque_input

    @task(persist_result=True, cache_key_fn=lambda ctx, params: f"bench-{time.time_ns()}")
    def submit(batch: BatchRef) -> BatchRef:
        return batch

    @task
    def step(batch: BatchRef, shard: list[str] | None = None) -> BatchRef:
        return batch

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=DOWNLOAD_CONCURRENCY))  # type: ignore[arg-type]
    def graph(batch: BatchRef) -> None:
        batch = submit(opaque_input(batch))
        step(opaque_input(batch))  # wait
        shards = [batch.job_ids[i : i + shard_size] for i in range(0, jobs, shard_size)]
        futures = [step.submit(opaque_input(batch), shard) for shard in shards]
        for future in futures:
            future.result()
        step(opaque_input(batch), wait_for=futures)  # build
        step(opaque_input(batch))  # publish

    batch = BatchRef(
        batch_id="b", name="bench", generator="shapes", job_ids=[f"{i:036d}" for i in range(jobs)]
    )
    start = time.perf_counter()
    graph(batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tmp-dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="Where each run's state, work and output folders go (default: /dev/shm, a "
        "RAM disk, so that disk noise does not drown the orchestration cost).",
    )
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    direct: list[dict[str, float]] = []
    flow: list[dict[str, float]] = []
    task_runs, bare = [], []
    with prefect_test_harness(server_startup_timeout=120):
        for repeat in range(args.repeats):
            # Alternate which variant goes first, and let the disk settle (write-back of the
            # previous variant's files, deletion of its folder) before each timed run.
            for variant in ("direct", "flow") if repeat % 2 == 0 else ("flow", "direct"):
                with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
                    os.sync()
                    if variant == "direct":
                        direct.append(run_direct(args.jobs, Path(tmp)))
                    else:
                        phases, runs = run_flow(args.jobs, Path(tmp))
                        flow.append(phases)
                        task_runs.append(runs)
                latest = (direct if variant == "direct" else flow)[-1]
                laps = "  ".join(f"{phase} {seconds:.2f}" for phase, seconds in latest.items())
                print(
                    f"  repeat {repeat + 1} {variant:<6} {sum(latest.values()):7.2f} s: {laps}",
                    flush=True,
                )
                os.sync()
            bare.append(run_orchestration_only(args.jobs))

    def median(runs: list[dict[str, float]], phase: str | None = None) -> float:
        return statistics.median(
            sum(r.values()) if phase is None else r.get(phase, 0.0) for r in runs
        )

    d, f, b = median(direct), median(flow), statistics.median(bare)
    print(f"jobs per batch:            {args.jobs}")
    print(f"direct library calls:      median {d:.2f} s over {args.repeats} runs")
    print(f"generate flow (Prefect):   median {f:.2f} s over {args.repeats} runs")
    print(f"task runs per flow run:    {statistics.median(task_runs):.0f}")
    print(f"same task graph, no work:  median {b:.2f} s over {args.repeats} runs")
    side_by_side = 100 * (f - d) / f
    print(
        f"overhead, side by side:    {side_by_side:.1f} % of the flow's wall time (ratio {f / d:.3f})"
    )
    print(f"overhead, isolated:        {100 * b / f:.1f} % of the flow's wall time")
    print("median seconds per phase:  phase     direct    flow   flow-direct")
    for phase in (*PHASES, "after"):
        pd, pf = median(direct, phase), median(flow, phase)
        print(f"{'':27}{phase:9}{pd:7.2f} {pf:7.2f} {pf - pd:+9.2f}")


if __name__ == "__main__":
    main()
