"""checkov, offline, over every rendered module and every state-bucket module: no failed check, and
every skip is one of the justified ones below, with its reason written next to the resource.

checkov lives in its own virtualenv (.venv/checkov, made by the README test command): its HCL
parser fork installs a module also named `hcl2`, which would replace python-hcl2 in our own."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dataform_infra.render.engine import render_bootstrap
from dataform_infra.spec.loader import load_deployment
from tests.support.specsets import REPO, SPEC_SETS, all_modules, rendered

# (check, resource type) -> why it is skipped; the same reason stands in the template.
JUSTIFIED_SKIPS = {
    ("CKV_GCP_81", "google_bigquery_dataset"): "Google-managed keys",
    ("CKV_GCP_62", "google_storage_bucket"): "Cloud Audit Logs",
}


def checkov_binary() -> str:
    for candidate in (
        os.environ.get("DFINFRA_CHECKOV"),
        str(REPO / ".venv" / "checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    install = "python3 -m venv .venv/checkov && .venv/checkov/bin/pip install 'checkov>=3.2,<4'"
    if os.environ.get("DFINFRA_REQUIRE_CHECKOV"):  # .ci/run sets it: there the scan is required, never skipped
        pytest.fail(f"checkov not found: {install}")
    pytest.skip(f"checkov is not installed here (a separate virtualenv); .ci/run requires it: {install}")


@pytest.mark.slow  # an external scanner over every module: the full suite's, like terraform's
def test_checkov_finds_nothing_unjustified(tmp_path):
    for spec_set, env in all_modules():
        directory = tmp_path / spec_set / env
        directory.mkdir(parents=True)
        for name, text in rendered(spec_set)[env].items():
            (directory / name).write_text(text)
        bootstrap = tmp_path / spec_set / f"{env}-bootstrap"
        bootstrap.mkdir()
        for name, text in render_bootstrap(load_deployment(SPEC_SETS[spec_set]), env).items():
            (bootstrap / name).write_text(text)
    result = subprocess.run(
        [checkov_binary(), "-d", str(tmp_path), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert [r.get("check_type") for r in reports] == ["terraform"], result.stdout[:500]
    results, summary = reports[0]["results"], reports[0]["summary"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results.get("failed_checks", [])]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 50
    skips = results.get("skipped_checks", [])
    assert skips, f"expected the justified skips to be reported: {summary}"
    for skip in skips:
        key = (skip["check_id"], skip["resource"].split(".")[0])
        assert key in JUSTIFIED_SKIPS, f"unexpected skip {key}"
        assert JUSTIFIED_SKIPS[key] in skip["check_result"]["suppress_comment"]
    assert {(s["check_id"], s["resource"].split(".")[0]) for s in skips} == set(JUSTIFIED_SKIPS)
