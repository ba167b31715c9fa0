"""Adopting what exists: a hand-written setup in the seed article's layout (tests/e2e/seed_layout/) is
applied first, `dfinfra adopt` finds its objects through Google's APIs and marks them, and dfinfra then
imports them: no 409, zero creates of existing objects, zero destroys, and the workflows run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataform_infra.specset import SpecSet
from tests.fakegcp.apis import FakeGoogleApis
from tests.support.dataform_code import CODE
from tests.support.project import Project
from tests.support.runtime import TOKEN, seed_runtime

pytestmark = pytest.mark.terraform

SEED = Path(__file__).parent / "seed_layout"
CALLER = "serviceAccount:terraform-deployer@acme-ci-automation.iam.gserviceaccount.com"
ADOPTABLE = (
    "google_dataform_repository",
    "google_secret_manager_secret",
    "google_service_account",
    "google_bigquery_dataset",
    "google_dataform_repository_release_config",
    "google_dataform_repository_workflow_config",
)


def _objects(cloud) -> list[tuple[str, str]]:
    return sorted((kind, id_) for kind, id_ in cloud.resources() if kind in ADOPTABLE)


def test_a_hand_written_setup_is_adopted_with_no_create_of_what_exists_and_no_destroy(tmp_path, cloud):
    project = Project(tmp_path / "checkout", cloud)
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    for env in ("staging", "prod"):
        seed = tmp_path / "seed" / env
        shutil.copytree(SEED / env, seed)
        cloud.init(seed)
        cloud.terraform(seed, "apply", "-input=false", "-no-color", "-auto-approve")
    existing = _objects(cloud)
    assert len(existing) == 10

    apis = FakeGoogleApis(cloud.store, caller=CALLER).start()
    cloud.env.update(apis.env)
    try:
        # The deployer's own Dataform rights (outside dfinfra), and the repository's code.
        seed_runtime(cloud.store, SpecSet(project.root / "environments"), CODE["shipped"])
        # staging's spec states no display name for its runner: the adopted account keeps the one it was made with.
        staging_spec = project.spec("staging")
        staging_spec.write_text(staging_spec.read_text().replace("    display_name: Dataform runner (staging)\n", ""))
        # Without adoption the first apply would fail with Google's 409 on the repository.
        dry = project.run("adopt", "staging", "--dry-run")
        assert "repository analytics: would mark existing" in dry
        assert "existing" not in project.spec("staging").read_text()

        staging = project.run("adopt", "staging")
        assert "dataset marts_dev: not found: the module creates it" in staging
        assert "secret dataform-github-token: marked existing" in staging
        found = json.loads(project.run("adopt", "prod", "--json"))
        assert {f["object"]: f["exists"] for f in found} == {
            "service account dataform-prod-runner": True,
            "dataset marts": True,
            "dataset dataform_assertions": False,
            "release config prod-nightly": True,
            "workflow config prod-daily": False,
        }
        text = project.spec("staging").read_text()
        assert "  name: analytics\n  existing: true\n" in text  # under the mapping's first key, comments kept
        assert "create: false          # loaded by the ingestion team" in text
        assert "      secret_id: dataform-github-token\n      existing: true\n" in text

        plan = project.run("plan", "--all", "--json", expect=2)
        plans = json.loads(plan[plan.index("{\n") :])
        assert "Plan: " not in plan or "409" not in plan
        assert sum(len(p["imports"]) for p in plans.values()) == len(existing) == 10
        for p in plans.values():  # nothing imported is also created
            assert not [c for c in p["changes"] if c["action"] == "create" and c["address"] in p["imports"]]
        assert not [c for p in plans.values() for c in p["changes"] if c["action"] in ("delete", "replace")]

        project.run("apply", "--all", "--auto-approve", "--confirm", "prod")
        after = _objects(cloud)
        assert set(existing) <= set(after)  # the same objects, adopted: none deleted and created again
        assert len(after) == len(existing) + 4  # marts_dev, dataform_assertions_dev, prod's assertions, prod-daily
        # Re-rendering (the import blocks stay) keeps the plan empty.
        assert "No changes" in project.run("plan", "--all", expect=0)
        accounts = {
            body["account_id"]: body.get("display_name") for _, _, body in cloud.store.list("google_service_account")
        }
        assert accounts["dataform-staging-runner"] == "dataform runner"  # as made: the spec states none
        assert accounts["dataform-prod-runner"] == "Dataform runner (prod)"  # the spec's, once adopted

        # The hand-written modules let go of the objects without destroying them (README's guide).
        for env in ("staging", "prod"):
            seed = tmp_path / "seed" / env
            listed = cloud.terraform(seed, "state", "list").stdout.split()
            cloud.terraform(seed, "state", "rm", *listed)
        assert _objects(cloud) == after

        project.run("secret", "set", "staging", stdin=TOKEN + "\n")
        for env, workflow in (("staging", "staging-daily"), ("prod", "prod-daily")):
            project.run("release", env)  # a run executes the release's live compilation, as the cron does
            out = project.run("run", env, workflow, "--wait", "--poll", "0.05", "--timeout", "60")
            assert f"{workflow} succeeded" in out

        # #24: a destroy deletes what dfinfra created and forgets what it adopted (shown as such in the plan):
        # the hand-made account, repository, secret, datasets and release config stay in Google Cloud.
        plan = project.run("plan", "prod", "--destroy", expect=2)
        assert "to forget." in plan and "Forgotten, not deleted" in plan
        assert "  . forget google_service_account.dataform_prod_runner" in plan, plan
        out = project.run("destroy", "--all", "--auto-approve", "--confirm", "prod", "--allow-destroy")
        forgotten = next(line for line in out.splitlines() if line.startswith("prod: forgetting "))
        assert "google_service_account.dataform_prod_runner" in forgotten and "stay in Google Cloud" in forgotten
        assert _objects(cloud) == existing
        for env in ("staging", "prod"):
            assert project.run("terraform", env, "state", "list", expect=None).strip() == ""
    finally:
        apis.stop()
