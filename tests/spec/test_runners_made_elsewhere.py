"""#24: runners that exist elsewhere (`runners[].email`): another team's account, or another environment's
runner used by this one's configs, or a runner writing this environment's datasets from the host's
workspaces (#23: cross-project workspace writes). dfinfra grants such a runner what its runs need on the
deployment's datasets and the host project; the grants on the account itself are its owner's, named by
`validate` and checked by `doctor`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dataform_infra import policy
from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.spec.models import Environment
from dataform_infra.specset import SpecSet
from tests.specs import host, target, write_specs

ETL = "etl-runner@acme-shared-proj.iam.gserviceaccount.com"
HOST_RUNNER = "host-runner@acme-host-proj.iam.gserviceaccount.com"
AGENT = "serviceAccount:service-111111111111@gcp-sa-dataform.iam.gserviceaccount.com"
DEPLOYER = "serviceAccount:deployer@acme-ci-proj.iam.gserviceaccount.com"


def shared_etl() -> dict:
    """prod's workflow runs as another team's account, which writes prod's datasets."""
    spec = target()
    spec["runners"][0] = {"name": "shared-etl", "email": ETL, "bigquery": {"writes": ["marts", "assertions"]}}
    spec["workflows"][0]["runner"] = "shared-etl"
    return spec


def workspaces_writing_prod() -> dict[str, dict]:
    """The host's workspaces compile into prod's project, as the host's runner, which prod lets write there."""
    h = host()
    h["repository"]["runner"] = "host-runner"
    h["repository"]["workspace_compilation"] = {
        "default_database": "acme-target-proj",
        "schema_suffix": "dev",
        "schemas": ["marts", "assertions"],
    }
    h["repository"]["access"] = [{"member": "group:eng@acme.example", "role": "editor", "run_as": ["host-runner"]}]
    t = target()
    t["datasets"] += [{"id": "marts_dev"}, {"id": "assertions_dev"}]
    t["runners"].append(
        {"name": "host-runner", "email": HOST_RUNNER, "bigquery": {"writes": ["marts_dev", "assertions_dev"]}}
    )
    return {"staging": h, "prod": t}


def test_the_email_is_in_the_schema_and_what_does_not_apply_is_located(tmp_path):
    defs = Environment.model_json_schema(by_alias=True)["$defs"]
    assert "neither created nor imported" in defs["Runner"]["properties"]["email"]["description"]
    for extra, message in (
        ({"existing": True}, "only references it, so existing does not apply"),
        ({"display_name": "ETL"}, "only references it, so display_name does not apply"),
        ({"email": "etl@gmail.com"}, "a runner's email looks like"),
    ):
        spec = shared_etl()
        spec["runners"][0].update(extra)
        with pytest.raises(SpecError) as info:
            load_deployment(
                write_specs(tmp_path / str(len(list(tmp_path.iterdir()))), {"staging": host(), "prod": spec})
            )
        [problem] = info.value.problems
        assert problem.line and "prod.yaml" in problem.describe() and "runners[0]" in problem.describe(), (
            problem.describe()
        )
        assert message in problem.describe()


def test_a_runner_made_elsewhere_is_granted_on_this_deployment_only(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": host(), "prod": shared_etl()}))
    module = ws.module("prod")
    assert module.service_accounts == []  # never created, never imported
    grants = {(g.role, g.resource.label) for g in module.grants if g.principal.member == f"serviceAccount:{ETL}"}
    assert grants == {
        ("roles/bigquery.dataEditor", "dataset acme-target-proj.marts"),
        ("roles/bigquery.dataEditor", "dataset acme-target-proj.assertions"),
        ("roles/bigquery.jobUser", "project acme-host-proj"),
    }
    # Nothing on the account itself: that policy is its owner's.
    assert not [g for g in module.grants if g.resource.kind == "service_account"]
    files = render_module(module)
    assert f'    service_account                          = "{ETL}"\n' in files["dataform.tf"]
    assert "  # Runner made elsewhere: " + ETL in files["dataform.tf"]
    report = ws.validate()
    assert report.violations == [], [v.describe() for v in report.violations]
    [note] = [w.describe() for w in report.warnings if "made elsewhere" in w.describe()]
    line = next(n for n, text in enumerate((tmp_path / "prod.yaml").read_text().splitlines(), 1) if "email:" in text)
    assert f"prod.yaml:{line}: runners[0].email" in note
    assert f"roles/iam.serviceAccountTokenCreator to the Dataform service agent {AGENT}" in note
    # The owner's grants are requirements of the runs (met outside dfinfra), so explain and doctor see them.
    owners = {
        (r.chain, r.principal.member)
        for r in ws.access.requirements
        if r.resource.kind == "service_account" and r.resource.id == ETL
    }
    assert owners == {("agent-impersonates", AGENT), ("act-as", DEPLOYER)}
    assert all(r.assumed for r in ws.access.requirements if r.resource.id == ETL)
    from dataform_infra import explain

    rows = [r for r in explain.run_rows(ws.runs(), ws.coverage(), ["prod"]) if ETL in r.resource]
    assert rows and {r.granted_cell() for r in rows} == {
        "*the account owner's grant (a runner made elsewhere)* (`dfinfra doctor` checks)"
    }


def test_lint_exempts_the_account_only_under_the_marker(tmp_path):
    """The rendered HCL passes lint; the same config without the marker comment is the hand-written mistake
    lint exists for (a runner attached with neither Token Creator nor act-as)."""
    files = render_module(SpecSet(write_specs(tmp_path, {"staging": host(), "prod": shared_etl()})).module("prod"))
    assert [f.describe() for f in policy.check(policy.facts_from_hcl(files)) if f.severity == "violation"] == []
    stripped = {
        name: re.sub(r"\n  # (Runner made elsewhere|created here|and the deployers)[^\n]*", "", text)
        for name, text in files.items()
    }
    assert "Runner made elsewhere" not in stripped["dataform.tf"]
    found = {f.rule for f in policy.check(policy.facts_from_hcl(stripped))}
    assert "runner-usable" in found
    # The marker never excuses an account the module creates itself.
    own = (
        'resource "google_service_account" "r" {\n  account_id = "r"\n}\n'
        'resource "google_dataform_repository_workflow_config" "w" {\n  provider = google-beta\n'
        '  # Runner made elsewhere: not true here.\n  name = "w"\n  release_config = "r"\n'
        "  invocation_config {\n    service_account = google_service_account.r.email\n  }\n}\n"
    )
    assert "runner-usable" in {f.rule for f in policy.check(policy.facts_from_hcl({"a.tf": own}))}


def test_another_environments_runner_runs_this_ones_workflow(tmp_path):
    """One runner, configs of two environments: prod names the host's runner by its email."""
    spec = target()
    spec["runners"][0] = {"name": "host-runner", "email": HOST_RUNNER, "bigquery": {"writes": ["marts", "assertions"]}}
    spec["workflows"][0]["runner"] = "host-runner"
    ws = SpecSet(write_specs(tmp_path, {"staging": host(), "prod": spec}))
    assert ws.validate().violations == []
    prod = ws.module("prod")
    # Job User on the host project is the host's grant (it attaches the runner too): one member in one state,
    # never a copy in prod's that a destroy of prod would take from the host's runs.
    assert {g.resource.label for g in prod.grants} == {
        "dataset acme-target-proj.marts",
        "dataset acme-target-proj.assertions",
    }
    assert [g.address for g in ws.module("staging").grants if g.role == "roles/bigquery.jobUser"] == [
        "google_project_iam_member.host_runner_bigquery_job_user"
    ]
    assert ws.coverage().unserved == [] and ws.coverage().unmet == []
    assert {r.runner.env for r in ws.access.runs if r.workflow == "target-daily"} == {"prod"}


def test_host_workspaces_writing_another_projects_datasets_are_expressible(tmp_path):
    """#23.6: workspaces compiled into prod's project write there as the host's runner; prod grants it."""
    ws = SpecSet(write_specs(tmp_path, workspaces_writing_prod()))
    report = ws.validate()
    assert report.violations == [] and not [w for w in report.warnings if "not checked" in w.describe()]
    # Only the dataset: prod attaches it to no config, so no Job User from prod (the host grants that).
    granted = {(g.role, g.resource.label) for g in ws.module("prod").grants if g.principal.email == HOST_RUNNER}
    assert granted == {
        ("roles/bigquery.dataEditor", "dataset acme-target-proj.marts_dev"),
        ("roles/bigquery.dataEditor", "dataset acme-target-proj.assertions_dev"),
    }
    writes = [r for r in ws.access.requirements if r.chain == "workspace-writes"]
    assert {r.resource.label for r in writes} == {
        "dataset acme-target-proj.marts_dev",
        "dataset acme-target-proj.assertions_dev",
    }
    assert ws.coverage().unserved == []
    # Without prod's grant, validate says exactly where to give it.
    specs = workspaces_writing_prod()
    specs["prod"]["runners"].pop()
    code_path = write_specs(tmp_path / "missing", specs)
    violations = SpecSet(code_path).validate().violations
    [violation] = [v for v in violations if "acme-target-proj.marts_dev" in v.message]
    assert "email: host-runner@acme-host-proj.iam.gserviceaccount.com" in violation.message


@pytest.mark.terraform
def test_a_team_owned_runner_runs_once_its_owner_grants_and_doctor_names_the_owner(tmp_path: Path, cloud):
    from tests.fakegcp.apis import FakeGoogleApis
    from tests.support.dataform_code import workspace_code
    from tests.support.project import Project
    from tests.support.runtime import TOKEN, seed_runtime

    project = Project(
        tmp_path / "checkout", cloud, specs=write_specs(tmp_path / "specs", {"staging": host(), "prod": shared_etl()})
    )
    ws = SpecSet(project.root / "environments")
    account = f"projects/acme-shared-proj/serviceAccounts/{ETL}"
    resource = f"//iam.googleapis.com/{account}"
    owner_grants = {
        "owner-token-creator": {"role": "roles/iam.serviceAccountTokenCreator", "member": AGENT, "resource": resource},
        "owner-act-as": {"role": "roles/iam.serviceAccountUser", "member": DEPLOYER, "resource": resource},
    }
    for key, body in owner_grants.items():  # what the other team does for us
        cloud.store.put("external:iam", key, body)
    apis = FakeGoogleApis(cloud.store, caller=DEPLOYER).start()
    cloud.env["DFINFRA_GOOGLE_API_EMULATOR"] = apis.address
    try:
        project.run("bootstrap", "--all", "--auto-approve")
        project.run("apply", "--all", "--auto-approve")
        assert cloud.store.get("google_service_account", account) is None  # never created
        project.run("secret", "set", "staging", stdin=TOKEN + "\n")
        seed_runtime(cloud.store, ws, workspace_code("marts", "assertions"))
        project.run("release", "prod")
        config = ws.topology.workflow_config_name("prod", "target-daily")
        assert apis.run_scheduled(config) == ("SUCCEEDED", [])
        assert f"PASS  agent-token-creator:{ETL}" in project.run("doctor", "prod", expect=None)
        cloud.store.delete("external:iam", "owner-token-creator")
        state, reasons = apis.run_scheduled(config)
        assert state == "FAILED" and "iam.serviceAccounts.getAccessToken" in reasons[0], reasons
        doctor = project.run("doctor", "prod", expect=1)
        assert f"FAIL  agent-token-creator:{ETL}" in doctor
        assert (
            "fix: ask the account's owner to run: gcloud iam service-accounts add-iam-policy-binding " + ETL in doctor
        )
    finally:
        apis.stop()


@pytest.mark.terraform
def test_workspaces_write_another_environments_project_offline(tmp_path: Path, cloud):
    from tests.fakegcp.apis import FakeGoogleApis
    from tests.support.dataform_code import workspace_code
    from tests.support.project import Project
    from tests.support.runtime import TOKEN, seed_runtime

    project = Project(tmp_path / "checkout", cloud, specs=write_specs(tmp_path / "specs", workspaces_writing_prod()))
    ws = SpecSet(project.root / "environments")
    apis = FakeGoogleApis(cloud.store, caller=DEPLOYER).start()
    cloud.env["DFINFRA_GOOGLE_API_EMULATOR"] = apis.address
    try:
        project.run("bootstrap", "--all", "--auto-approve")
        project.run("apply", "--all", "--auto-approve")
        project.run("secret", "set", "staging", stdin=TOKEN + "\n")
        seed_runtime(cloud.store, ws, workspace_code("marts", "assertions"))
        repository = ws.topology.repositories[0].api_name
        outcome = apis.run_workspace("group:eng@acme.example", repository)
        assert outcome == ("SUCCEEDED", []), outcome
        [stored] = [
            key
            for _, key, body in cloud.store.list("google_bigquery_dataset_iam_member")
            if body["member"] == f"serviceAccount:{HOST_RUNNER}" and body["dataset_id"] == "marts_dev"
        ]
        cloud.store.delete("google_bigquery_dataset_iam_member", stored)
        state, reasons = apis.run_workspace("group:eng@acme.example", repository)
        assert state == "FAILED" and "acme-target-proj:marts_dev" in reasons[0], reasons
    finally:
        apis.stop()


def test_per_workspace_datasets_in_another_project_name_the_environment_that_grants_there(tmp_path):
    """`${workspaceName}` workspaces compiled into prod's project create their datasets there: the fix is in
    prod's spec (the host's runner named by email, with a project-wide Data Editor), never the host's project."""
    specs = workspaces_writing_prod()
    specs["staging"]["repository"]["workspace_compilation"] = {
        "default_database": "acme-target-proj",
        "schema_suffix": "${workspaceName}",
    }
    specs["prod"]["runners"].pop()
    [violation] = [
        v for v in SpecSet(write_specs(tmp_path / "a", specs)).validate().violations if "datasets.create" in v.message
    ]
    assert "prod.yaml, name the runner as made elsewhere and let it create datasets there" in violation.message
    assert f"email: {HOST_RUNNER}, bigquery: {{project_wide: [{{role: dataEditor" in violation.message
    specs["prod"]["runners"].append(
        {
            "name": "host-runner",
            "email": HOST_RUNNER,
            "bigquery": {"project_wide": [{"role": "dataEditor", "reason": "each workspace creates its own datasets"}]},
        }
    )
    assert SpecSet(write_specs(tmp_path / "b", specs)).validate().violations == []
