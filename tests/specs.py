"""Small valid specs for tests to mutate (every run they declare can run: `dfinfra validate` passes),
and a helper that writes them as YAML files."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

HOST: dict[str, Any] = {
    "project": {"id": "acme-host-proj", "number": 111111111111},
    "region": "europe-west2",
    "bigquery_location": "EU",
    "state": {"bucket": "acme-host-tfstate", "prefix": "dataform/host"},
    "deployers": ["serviceAccount:deployer@acme-ci-proj.iam.gserviceaccount.com"],
    "repository": {
        "name": "analytics",
        "git": {
            "url": "https://github.com/acme/analytics.git",
            "https_token": {"secret_id": "git-token"},
        },
    },
    "datasets": [{"id": "marts"}, {"id": "assertions"}, {"id": "raw", "create": False}],
    "runners": [{"name": "host-runner", "bigquery": {"writes": ["marts", "assertions"], "reads": ["raw"]}}],
    "releases": [
        {
            "name": "host-release",
            "git_ref": "main",
            "cron": "30 6 * * *",
            "compilation": {"schema": "marts", "assertion_schema": "assertions"},
        }
    ],
    "workflows": [{"name": "host-daily", "release": "host-release", "runner": "host-runner", "cron": "45 6 * * *"}],
}

TARGET: dict[str, Any] = {
    "project": {"id": "acme-target-proj", "number": 222222222222},
    "region": "europe-west2",
    "bigquery_location": "EU",
    "state": {"bucket": "acme-target-tfstate", "prefix": "dataform/target"},
    "deployers": ["serviceAccount:deployer@acme-ci-proj.iam.gserviceaccount.com"],
    "datasets": [{"id": "marts"}, {"id": "assertions"}],
    "runners": [{"name": "target-runner", "bigquery": {"writes": ["marts", "assertions"]}}],
    "releases": [
        {
            "name": "target-release",
            "git_ref": "main",
            "cron": "30 6 * * *",
            "compilation": {"schema": "marts", "assertion_schema": "assertions"},
        }
    ],
    "workflows": [
        {"name": "target-daily", "release": "target-release", "runner": "target-runner", "cron": "45 6 * * *"}
    ],
}


def host() -> dict[str, Any]:
    return copy.deepcopy(HOST)


def target() -> dict[str, Any]:
    return copy.deepcopy(TARGET)


def write_specs(directory: Path, specs: dict[str, dict[str, Any] | str]) -> Path:
    """Write `{env: spec dict or raw YAML text}` as directory/<env>.yaml; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return directory
