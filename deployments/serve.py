"""Serve every deployment of `deployments/prefect.yaml` from this one process, no work pool.

    python deployments/serve.py                 # against $PREFECT_API_URL
    python deployments/serve.py --limit 2       # at most two concurrent runs

The deployments (names, parameters, schedules, triggers) are read from prefect.yaml,
so serving and `prefect deploy` register the same thing. Stop with Ctrl-C; schedules
are paused while nothing serves them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentTriggerTypes
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron
from pydantic import TypeAdapter

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")
TRIGGERS: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)


def runner_deployment(spec: dict[str, Any]) -> RunnerDeployment:
    """A servable deployment from one `deployments:` entry of prefect.yaml."""
    flow = load_flow_from_entrypoint(spec["entrypoint"])
    triggers = []
    for index, trigger in enumerate(spec.get("triggers", []), start=1):
        triggers.append(
            TRIGGERS.validate_python({"name": f"{spec['name']}__automation_{index}", **trigger})
        )
    return flow.to_deployment(
        name=spec["name"],
        description=spec.get("description"),
        tags=spec.get("tags"),
        parameters=spec.get("parameters"),
        schedules=[Cron(s["cron"], timezone=s.get("timezone")) for s in spec.get("schedules", [])],
        triggers=triggers,
    )


def load_deployments(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    """Every deployment declared in `path`."""
    config = yaml.safe_load(path.read_text())
    return [runner_deployment(spec) for spec in config["deployments"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="most flow runs at once")
    args = parser.parse_args()
    serve(*load_deployments(), limit=args.limit)


if __name__ == "__main__":
    main()
