"""Which module owns which resource and grant, decided from the spec's intent."""

from pathlib import Path

from dataform_infra.render.module import build_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.topology import service_agent_email
from tests.conftest import SPEC_SETS
from tests.specs import host, target, write_specs


def modules(tmp_path: Path, specs: dict) -> dict:
    deployment = load_deployment(write_specs(tmp_path, specs))
    return {env: build_module(deployment, env) for env in deployment.environments}


def roles(module, principal_kind=None, scope_kind=None) -> list[tuple[str, str]]:
    return [
        (g.role, g.resource.label)
        for g in module.grants
        if (principal_kind is None or g.principal.kind == principal_kind)
        and (scope_kind is None or g.resource.kind == scope_kind)
    ]


def test_host_lets_its_service_agent_impersonate_every_attached_runner(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})
    agent = sorted(roles(m["staging"], "service_agent", "service_account"))
    assert agent == [
        ("roles/iam.serviceAccountTokenCreator", "service account host-runner@acme-host-proj.iam.gserviceaccount.com"),
        (
            "roles/iam.serviceAccountTokenCreator",
            "service account target-runner@acme-target-proj.iam.gserviceaccount.com",
        ),
    ]
    assert m["staging"].service_agent == service_agent_email("111111111111")
    cross = next(
        g for g in m["staging"].grants if "target-runner" in g.resource.label and g.principal.kind == "service_agent"
    )
    # Another project's account is named, not referenced: the host module does not manage it.
    assert cross.target["service_account_id"] == (
        "projects/acme-target-proj/serviceAccounts/target-runner@acme-target-proj.iam.gserviceaccount.com"
    )


def test_agent_reads_only_the_git_secret(tmp_path):
    m = modules(tmp_path, {"staging": host()})
    assert roles(m["staging"], "service_agent", "secret") == [
        ("roles/secretmanager.secretAccessor", "secret git-token")
    ]
    # On the project it holds only its own role, which scheduled runs need (and only the agent gets).
    assert roles(m["staging"], "service_agent", "project") == [
        ("roles/dataform.serviceAgent", "project acme-host-proj")
    ]
    assert [g.principal.kind for g in m["staging"].grants if g.role == "roles/dataform.serviceAgent"] == [
        "service_agent"
    ]


def test_every_attached_runner_runs_jobs_in_the_host_project(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})
    job_users = sorted(
        (g.principal.member, g.resource.label) for g in m["staging"].grants if g.rule == "runner-runs-jobs"
    )
    assert job_users == [
        ("serviceAccount:host-runner@acme-host-proj.iam.gserviceaccount.com", "project acme-host-proj"),
        ("serviceAccount:target-runner@acme-target-proj.iam.gserviceaccount.com", "project acme-host-proj"),
    ]


def test_deployers_act_as_attached_runners_only(tmp_path):
    h = host()
    h["runners"].append({"name": "idle-runner"})
    m = modules(tmp_path, {"staging": h, "prod": target()})
    act_as = roles(m["staging"], "deployer")
    assert [r for r, _ in act_as] == ["roles/iam.serviceAccountUser"] * 2
    assert not any("idle-runner" in scope for _, scope in act_as)


def test_target_module_owns_only_its_runner_and_data(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})["prod"]
    assert not m.is_host and not m.releases and not m.workflows and m.service_agent is None
    assert {g.principal.kind for g in m.grants} == {"runner"}
    # Job User is granted in the host project, where Dataform runs the target runner's jobs.
    assert roles(m) == [
        ("roles/bigquery.dataEditor", "dataset acme-target-proj.marts"),
        ("roles/bigquery.dataEditor", "dataset acme-target-proj.assertions"),
    ]


def test_release_and_workflow_configs_of_every_environment_live_in_the_host(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})["staging"]
    assert [(r.env, r.release.name, r.database) for r in m.releases] == [
        ("prod", "target-release", "acme-target-proj"),
        ("staging", "host-release", "acme-host-proj"),
    ]
    prod_wf = next(w for w in m.workflows if w.env == "prod")
    assert prod_wf.service_account == "target-runner@acme-target-proj.iam.gserviceaccount.com"
    # Created only after the grants that make the runner usable exist (Token Creator, Job User, act-as).
    assert len(prod_wf.depends_on) == 3


def test_project_wide_roles_only_by_opt_in(tmp_path):
    h = host()
    assert not [
        g
        for g in modules(tmp_path / "a", {"s": h})["s"].grants
        if g.resource.kind == "project" and g.role not in ("roles/bigquery.jobUser", "roles/dataform.serviceAgent")
    ]
    h["runners"][0]["bigquery"]["project_wide"] = [{"role": "dataViewer", "reason": "reads every team's data"}]
    wide = [g for g in modules(tmp_path / "b", {"s": h})["s"].grants if g.rule == "runner-project-wide-opt-in"]
    assert [(g.role, g.opt_in_reason) for g in wide] == [("roles/bigquery.dataViewer", "reads every team's data")]


def test_shared_project_apis_are_enabled_once_by_the_module_applied_first():
    deployment = load_deployment(SPEC_SETS["single-project"])
    dev, prod = build_module(deployment, "dev"), build_module(deployment, "prod")
    # prod (a target) is applied before dev (the host), so it enables the host's APIs too.
    assert {a.service for a in prod.apis} >= {"dataform.googleapis.com", "secretmanager.googleapis.com"}
    assert dev.apis == []


def test_external_datasets_are_granted_not_created(tmp_path):
    m = modules(tmp_path, {"staging": host()})["staging"]
    assert [d.dataset_id for d in m.datasets] == ["marts", "assertions"]
    raw = next(g for g in m.grants if g.resource.label.endswith(".raw"))
    assert raw.role == "roles/bigquery.dataViewer" and raw.target["dataset_id"] == "raw"
