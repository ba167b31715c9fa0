"""Generated environment specs for the scaling benchmarks: N workflow configs, or N environments."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

HOST: dict[str, Any] = {
    "project": {"id": "bench-host-0000", "number": 900000000000},
    "region": "europe-west2",
    "bigquery_location": "EU",
    "state": {"bucket": "bench-tfstate", "prefix": "dataform/host"},
    "deployers": ["serviceAccount:deployer@bench-ci-0000.iam.gserviceaccount.com"],
    "repository": {
        "name": "bench",
        "git": {"url": "https://github.com/acme/bench.git", "https_token": {"secret_id": "bench-token"}},
    },
    "datasets": [{"id": "marts"}, {"id": "assertions"}, {"id": "raw", "create": False}],
    "runners": [{"name": "bench-runner", "bigquery": {"writes": ["marts", "assertions"], "reads": ["raw"]}}],
    "releases": [
        {
            "name": "nightly",
            "git_ref": "main",
            "cron": "30 6 * * *",
            "time_zone": "Europe/London",
            "compilation": {"schema": "marts", "assertion_schema": "assertions"},
        }
    ],
}


def _workflow(name: str, release: str, runner: str) -> dict[str, Any]:
    return {
        "name": name,
        "release": release,
        "runner": runner,
        "cron": "45 6 * * *",
        "time_zone": "Europe/London",
        "tags": ["daily"],
        "include_dependencies": True,
    }


def workflows(directory: Path, count: int) -> Path:
    host = copy.deepcopy(HOST)
    host["workflows"] = [_workflow(f"wf-{i:05d}", "nightly", "bench-runner") for i in range(count)]
    return _write(directory, {"host": host})


def every_minute(directory: Path, size: int = 1_000_000) -> Path:
    """A spec of just under `size` bytes: as many every-minute workflow configs as fit (the red team's
    worst case for cron expansion)."""
    host = copy.deepcopy(HOST)
    host["releases"][0]["cron"] = "* * * * *"
    flows: list[dict[str, Any]] = []
    host["workflows"] = flows
    while True:
        flow = _workflow(f"wf-{len(flows):06d}", "nightly", "bench-runner") | {"cron": "* * * * *"}
        flows.append(flow)
        if len(flows) % 500 == 0 and len(yaml.safe_dump(host, sort_keys=False)) > size:
            del flows[-500:]
            break
    return _write(directory, {"host": host})


def environments(directory: Path, count: int) -> Path:
    host = copy.deepcopy(HOST)
    host["workflows"] = [_workflow("wf-host", "nightly", "bench-runner")]
    specs = {"host": host}
    for i in range(1, count):
        specs[f"env{i:03d}"] = {
            "project": {"id": f"bench-target-{i:04d}", "number": 900000000000 + i},
            "region": "europe-west2",
            "bigquery_location": "EU",
            "state": {"bucket": "bench-tfstate", "prefix": f"dataform/env{i:03d}"},
            "datasets": [{"id": "marts"}, {"id": "assertions"}],
            "runners": [{"name": f"runner-{i:04d}", "bigquery": {"writes": ["marts", "assertions"]}}],
            "releases": [
                {
                    "name": f"release-{i:04d}",
                    "git_ref": "main",
                    "cron": "30 6 * * *",
                    "compilation": {"schema": "marts", "assertion_schema": "assertions"},
                }
            ],
            "workflows": [_workflow(f"wf-{i:04d}", f"release-{i:04d}", f"runner-{i:04d}")],
        }
    return _write(directory, specs)


def _write(directory: Path, specs: dict[str, dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return directory
