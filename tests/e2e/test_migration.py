"""Upgrading from dfinfra 0.x, where the host module held every environment's configs and the grants on
their runners: `dfinfra migrate` moves state entries to the module that now declares them, destroying
and recreating nothing, and the prod workflow then runs.

`layout_0x/` is what dfinfra 0.x (commit 3a07fc4) rendered from the shipped environments of that time.
"""

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
from tests.support.specsets import SPEC_SETS

pytestmark = pytest.mark.terraform

OLD_LAYOUT = Path(__file__).parent / "layout_0x"
CALLER = "serviceAccount:terraform-deployer@acme-ci-automation.iam.gserviceaccount.com"


# Lines the shipped examples gained after those layouts were rendered (a stated workspace database, a stated
# assertion dataset): a user upgrading has the spec of that time, so these come out of the checkout.
ADDED_SINCE_THE_LAYOUTS = ("default_database: acme-analytics-staging", "assertion_schema: dataform_assertions   #")


def _apply_old_layout(
    project: Project, layout: Path = OLD_LAYOUT, order: tuple[str, ...] = ("prod", "staging")
) -> None:
    """What a 0.x user has: `layout`'s modules applied in 0.x's order (the targets first), and the spec of then."""
    for spec in (project.root / "environments").glob("*.yaml"):
        lines = spec.read_text().splitlines(keepends=True)
        spec.write_text("".join(line for line in lines if not any(a in line for a in ADDED_SINCE_THE_LAYOUTS)))
    suffix = project.spec("prod").read_text().split("-tfstate-", 1)[1].split()[0]
    for env in order:
        module = project.root / "build" / env
        module.mkdir(parents=True)
        for tf in (layout / env).glob("*.tf"):
            (module / tf.name).write_text(tf.read_text().replace('-tfstate"', f'-tfstate-{suffix}"'))
        project.cloud.init(module)
        project.cloud.terraform(module, "apply", "-input=false", "-no-color", "-auto-approve")
        # The upgrade step README asks for: dfinfra runs no .terraform/ it did not seal (this one was made by a
        # plain `terraform init`, as an older dfinfra's was), so it is removed once and dfinfra initialises afresh.
        shutil.rmtree(module / ".terraform")


def _addresses(project: Project, env: str) -> set[str]:
    return {f"{r['type']}.{r['name']}" for r in project.state(env)["resources"] if r["mode"] == "managed"}


def test_upgrading_from_the_0x_layout_moves_state_and_destroys_nothing(tmp_path, cloud):
    project = Project(tmp_path / "checkout", cloud)
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    _apply_old_layout(project)
    objects_before = sorted(cloud.resources())
    assert "google_dataform_repository_workflow_config.prod_daily" in _addresses(project, "staging")

    # The new render alone would destroy prod's configs in staging and create them again in prod.
    dry = project.run("migrate", "--dry-run")
    assert "would move staging: google_dataform_repository_workflow_config.prod_daily -> prod: " in dry
    assert "google_dataform_repository_workflow_config.prod_daily" in _addresses(project, "staging")  # unchanged

    moves = json.loads(project.run("migrate", "--json"))
    assert moves["backup"] and sorted(p.name for p in Path(moves["backup"]).iterdir()) == [
        "prod.tfstate",
        "staging.tfstate",
    ]
    assert {p.stat().st_mode & 0o777 for p in Path(moves["backup"]).iterdir()} == {0o600}  # state: owner only
    moved = {(m["from"]["env"], m["to"]["env"]) for m in moves["moves"]}
    assert ("staging", "prod") in moved
    staging, prod = _addresses(project, "staging"), _addresses(project, "prod")
    assert not [a for a in staging if "prod" in a]
    assert {
        "google_dataform_repository_release_config.prod_nightly",
        "google_dataform_repository_workflow_config.prod_daily",
        "google_service_account_iam_member.dataform_agent_impersonates_dataform_prod_runner",
        "google_project_iam_member.dataform_prod_runner_bigquery_job_user",
    } <= prod

    # Every object is where the new layout declares it: nothing to create, change or destroy.
    plan = project.run("plan", "--all", "--json", expect=0)
    summary = json.loads(plan[plan.index("{") :])
    assert all(not s["has_changes"] for s in summary.values()), plan
    assert sorted(cloud.resources()) == objects_before
    assert "nothing to move" in project.run("migrate")  # idempotent

    # And the workflows still run: prod's, now managed by prod's module.
    apis = FakeGoogleApis(cloud.store, caller=CALLER).start()
    cloud.env["DFINFRA_GOOGLE_API_EMULATOR"] = apis.address
    try:
        project.run("secret", "set", "staging", stdin=TOKEN + "\n")
        seed_runtime(cloud.store, SpecSet(project.root / "environments"), CODE["shipped"])
        project.run("release", "prod")  # the migration's apply-less path leaves nothing live yet
        out = project.run("run", "prod", "prod-daily", "--wait", "--poll", "0.05", "--timeout", "60")
        assert "prod-daily succeeded" in out
    finally:
        apis.stop()


def test_a_migration_interrupted_after_the_first_push_is_finished_by_running_it_again(tmp_path, cloud):
    """The destination gains an entry before the source loses it: an object is in two states, never none."""
    project = Project(tmp_path / "checkout", cloud)
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    _apply_old_layout(project)
    project.run("migrate")
    # Put staging's state back as it was: as if migrate died after pushing prod's state.
    backup = next((project.root / "build" / ".migrate").iterdir()) / "staging.tfstate"
    cloud.terraform(project.root / "build" / "staging", "state", "push", "-force", str(backup))
    assert "google_dataform_repository_workflow_config.prod_daily" in _addresses(project, "staging")

    again = project.run("migrate")
    assert "google_dataform_repository_workflow_config.prod_daily is already managed by prod" in again
    assert not [a for a in _addresses(project, "staging") if "prod" in a]
    project.run("plan", "--all", expect=0)


def test_a_shared_project_upgrade_moves_apis_to_the_host_and_configs_to_the_target(tmp_path, cloud):
    """single-project: 0.x enabled the shared project's APIs from prod (applied first) and kept prod's configs
    in dev; now dev (the host, applied first) enables them and prod owns its configs. Both directions move."""
    project = Project(tmp_path / "checkout", cloud, specs=SPEC_SETS["single-project"])
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    _apply_old_layout(project, Path(__file__).parent / "layout_0x_single_project", ("prod", "dev"))
    before = sorted(cloud.resources())
    out = project.run("migrate", "--json")  # after the `terraform init` lines
    moves = json.loads(out[out.index("{\n") :])["moves"]
    by_direction: dict[tuple[str, str], list[str]] = {}
    for m in moves:
        by_direction.setdefault((m["from"]["env"], m["to"]["env"]), []).append(m["from"]["address"])
    assert sorted(a.split(".")[0] for a in by_direction[("prod", "dev")]) == ["google_project_service"] * 5
    assert "google_dataform_repository_workflow_config.prod_daily" in by_direction[("dev", "prod")]
    plan = project.run("plan", "--all", "--json", expect=2)  # the spec grew since 0.x: new grants only
    plans = json.loads(plan[plan.index("{\n") :])
    assert not [c for p in plans.values() for c in p["changes"] if c["action"] != "create"], plan
    assert all(c["type"].endswith("_iam_member") for p in plans.values() for c in p["changes"]), plan
    project.run("apply", "--all", "--auto-approve", "--confirm", "prod")
    assert set(before) <= set(cloud.resources())  # nothing that existed was destroyed
    assert "No changes" in project.run("plan", "--all", expect=0)


def test_upgrading_from_single_repository_names_moves_them_and_replaces_nothing(tmp_path, cloud):
    """`layout_single_repository/` is what dfinfra rendered (commit a49fc8f) before a host could hold several
    repositories: `google_dataform_repository.this`, `repository_<role>_<member>` grants. The new render's
    `moved` blocks take state to the new names: the plan creates and destroys nothing, and then is empty."""
    project = Project(tmp_path / "checkout", cloud)
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    _apply_old_layout(project, Path(__file__).parent / "layout_single_repository", ("staging", "prod"))
    objects_before = sorted(cloud.resources())
    assert "google_dataform_repository.this" in _addresses(project, "staging")

    plan = project.run("plan", "--all", "--json", expect=None)
    summary = json.loads(plan[plan.index("{\n") :])
    changes = [(env, c["action"], c["address"]) for env, s in summary.items() for c in s["changes"]]
    assert not [c for c in changes if c[1] in ("create", "delete", "replace")], changes

    project.run("apply", "--all", "--auto-approve", "--confirm", "prod")
    staging = _addresses(project, "staging")
    assert "google_dataform_repository.analytics" in staging and "google_dataform_repository.this" not in staging
    assert "google_dataform_repository_iam_member.analytics_editor_analytics_engineers" in staging
    assert sorted(cloud.resources()) == objects_before  # the same objects, under their new names
    project.run("plan", "--all", expect=0)


def test_going_from_one_repository_to_several_is_refused_until_migrate_renames_it(tmp_path, cloud):
    """With several repositories there are no `moved` blocks (the old name could mean any of them): the plan would
    replace `this`, which apply refuses; `dfinfra migrate` matches it by its Google name, and the apply then only
    adds the new repository."""
    import yaml

    project = Project(tmp_path / "checkout", cloud)
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    _apply_old_layout(project, Path(__file__).parent / "layout_single_repository", ("staging", "prod"))
    staging = yaml.safe_load(project.spec("staging").read_text())
    analytics = staging.pop("repository")
    marketing = {
        "name": "marketing",
        "git": {"url": "https://github.com/acme/marketing.git", "https_token": {"secret_id": "marketing-token"}},
    }
    staging["repositories"] = [analytics, marketing]
    for release in staging["releases"]:
        release["repository"] = "analytics"
    project.spec("staging").write_text(yaml.safe_dump(staging, sort_keys=False))
    prod = yaml.safe_load(project.spec("prod").read_text())
    for release in prod["releases"]:
        release["repository"] = "analytics"
    project.spec("prod").write_text(yaml.safe_dump(prod, sort_keys=False))

    refused = project.run("apply", "staging", "--auto-approve", expect=1)
    assert "google_dataform_repository.this" in refused and "--allow-destroy" in refused
    moved = project.run("migrate")
    assert "staging: google_dataform_repository.this -> staging: google_dataform_repository.analytics" in moved
    plan = project.run("plan", "staging", "--json", expect=2)
    changes = json.loads(plan[plan.index("{\n") :])["staging"]["changes"]
    assert {c["action"] for c in changes} == {"create"}
    assert {c["address"] for c in changes} >= {
        "google_dataform_repository.marketing",
        "google_secret_manager_secret.marketing_token",
    }
    project.run("apply", "--all", "--auto-approve", "--confirm", "prod")
    project.run("plan", "--all", expect=0)
