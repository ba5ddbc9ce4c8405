"""Run the unchanged infinity-core client's documented workflow against a server.

Usage: python infinity_workflow.py URL TOKEN OUT_DIR   (with `infinity_core` importable)
Prints one JSON line of what it saw; exits non-zero if the workflow fails.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from infinity_core.session import Session


def main(url: str, token: str, out_dir: str) -> None:
    session = Session(token=token, generator="shapes", server=url)
    jobs = [{"width": 64, "height": 48, "frames": 2, "seed": seed} for seed in range(2)]
    estimate = session.estimate_samples(jobs)
    preview = session.submit(jobs[:1], is_preview=True, batch_name="original client preview")
    batch = session.submit(jobs, batch_name="original client")
    completed = batch.await_completion(polling_interval=1, timeout=180)
    preview.await_completion(polling_interval=1, timeout=180)
    batch.download(out_dir)
    again = session.batch_from_api(batch.batch_id)
    errors: dict[str, str] = {}
    for bad_token, generator in (("wrong-token", "shapes"), (token, "no-such-generator")):
        try:
            Session(token=bad_token, generator=generator, server=url)
        except Exception as exc:  # the client's SessionInitializationError
            errors[generator] = str(exc)
    result = {
        "parameters": sorted(session.parameter_info),
        "estimate": estimate,
        "completed": sorted(job.job_id for job in completed),
        "job_ids": sorted(batch.job_ids),
        "downloaded": sorted(os.listdir(out_dir)),
        "batch_id_txt": Path(out_dir, "batch_id.txt").read_text(),
        "batch_id": batch.batch_id,
        "from_api_jobs": sorted(again.job_ids),
        "recent_batches": [b["name"] for b in session.get_batches_last_n_days(1)],
        "usage": session.get_usage_stats_last_n_days(1),
        "errors": errors,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
