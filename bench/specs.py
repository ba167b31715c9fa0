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


def dataset_grants(directory: Path, count: int) -> Path:
    """`count` declared datasets, each read by the runner: `count` dataset grants."""
    host = copy.deepcopy(HOST)
    host["datasets"] += [{"id": f"ds_{i:06d}"} for i in range(count)]
    host["runners"][0]["bigquery"]["reads"] += [f"ds_{i:06d}" for i in range(count)]
    return _write(directory, {"host": host})


def _until(host: dict[str, Any], grow: Any, size: int) -> dict[str, Any]:
    """Call `grow(spec, i)` in batches until the spec is just under `size` bytes; the last spec under it."""
    i = 0
    while True:
        before = copy.deepcopy(host)
        for _ in range(500):
            grow(host, i)
            i += 1
        if len(yaml.safe_dump(host, sort_keys=False)) > size:
            return before


def megabyte(directory: Path, shape: str, size: int = 1_000_000) -> Path:
    """About `size` bytes of one spec shape: `grants` (source datasets, each read by two runners), `people`
    (repository access entries that run as the runner), or `workflows` (configs with crons)."""
    host = copy.deepcopy(HOST)
    if shape == "grants":
        # Four runners, each run by a workflow of the release (so each writes what it compiles into); every
        # dataset is a source read by two of them.
        host["runners"] = [
            {"name": f"runner-{r}", "bigquery": {"writes": ["marts", "assertions"], "reads": []}} for r in range(4)
        ]
        host["workflows"] = [_workflow(f"wf-{r}", "nightly", f"runner-{r}") for r in range(4)]

        def grow(spec: dict[str, Any], i: int) -> None:
            spec["datasets"].append({"id": f"ds_{i:06d}", "create": False})
            spec["runners"][i % 4]["bigquery"]["reads"].append(f"ds_{i:06d}")
            spec["runners"][(i + 1) % 4]["bigquery"]["reads"].append(f"ds_{i:06d}")
    elif shape == "people":
        host["repository"]["access"] = []
        host["repository"]["runner"] = "bench-runner"

        def grow(spec: dict[str, Any], i: int) -> None:
            person = {"member": f"user:person-{i:06d}@acme.example", "role": "editor", "run_as": ["bench-runner"]}
            spec["repository"]["access"].append(person)
    elif shape == "workflows":
        host["workflows"] = []

        def grow(spec: dict[str, Any], i: int) -> None:
            flow = _workflow(f"wf-{i:06d}", "nightly", "bench-runner") | {"cron": f"{i % 60} {i % 24} * * *"}
            spec["workflows"].append(flow)
    else:
        raise ValueError(shape)
    return _write(directory, {"host": _until(host, grow, size)})


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
