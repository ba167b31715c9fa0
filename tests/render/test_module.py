"""Which module owns which resource and grant, decided from the spec's intent."""

from pathlib import Path

from dataform_infra.render.module import build_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.topology import service_agent_email
from tests.specs import host, target, write_specs
from tests.support.specsets import SPEC_SETS


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


def test_each_module_lets_the_hosts_agent_impersonate_its_own_runners(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})
    assert roles(m["staging"], "service_agent", "service_account") == [
        ("roles/iam.serviceAccountTokenCreator", "service account host-runner@acme-host-proj.iam.gserviceaccount.com")
    ]
    assert roles(m["prod"], "service_agent", "service_account") == [
        (
            "roles/iam.serviceAccountTokenCreator",
            "service account target-runner@acme-target-proj.iam.gserviceaccount.com",
        )
    ]
    # Both name the host's agent; the target module references its own account, never another module's.
    assert m["staging"].service_agent == m["prod"].service_agent == service_agent_email("111111111111")
    for module in m.values():
        for grant in module.grants:
            if grant.resource.kind == "service_account":
                assert str(grant.target["service_account_id"]).startswith("google_service_account.")


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


def test_every_attached_runner_runs_jobs_in_the_host_project_granted_by_its_own_module(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})
    job_users = {
        env: [(g.principal.member, g.resource.label) for g in module.grants if g.rule == "runner-runs-jobs"]
        for env, module in m.items()
    }
    assert job_users == {
        "staging": [("serviceAccount:host-runner@acme-host-proj.iam.gserviceaccount.com", "project acme-host-proj")],
        "prod": [("serviceAccount:target-runner@acme-target-proj.iam.gserviceaccount.com", "project acme-host-proj")],
    }


def test_deployers_act_as_the_runners_their_configs_attach_and_the_hosts_as_every_config_in_its_repository(
    tmp_path,
):
    """Each environment's deployers attach its runners; the host's deployers update the repository holding
    every environment's configs, which strict act-as checks against every config's account (#23)."""
    h = host()
    h["runners"].append({"name": "idle-runner"})
    t = target()
    t["deployers"] = ["serviceAccount:prod-deployer@acme-ci-proj.iam.gserviceaccount.com"]
    m = modules(tmp_path, {"staging": h, "prod": t})
    assert [(g.principal.member, g.resource.label) for g in m["staging"].grants if g.principal.kind == "deployer"] == [
        (
            "serviceAccount:deployer@acme-ci-proj.iam.gserviceaccount.com",
            "service account host-runner@acme-host-proj.iam.gserviceaccount.com",
        )
    ]
    assert [(g.principal.member, g.resource.label) for g in m["prod"].grants if g.principal.kind == "deployer"] == [
        (
            "serviceAccount:prod-deployer@acme-ci-proj.iam.gserviceaccount.com",
            "service account target-runner@acme-target-proj.iam.gserviceaccount.com",
        ),
        (
            "serviceAccount:deployer@acme-ci-proj.iam.gserviceaccount.com",
            "service account target-runner@acme-target-proj.iam.gserviceaccount.com",
        ),
    ]
    [host_deployer] = [g for g in m["prod"].grants if g.rule == "host-deployer-acts-as-runner"]
    assert host_deployer.role == "roles/iam.serviceAccountUser" and host_deployer.env == "staging"


def test_a_target_module_owns_what_its_spec_declares(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})["prod"]
    assert not m.is_host and not m.secrets and not m.repositories and not m.moved
    assert [(r.env, r.release.name, r.database) for r in m.releases] == [("prod", "target-release", "acme-target-proj")]
    assert [w.workflow.name for w in m.workflows] == ["target-daily"]
    # Its configs live in the host's repository, named literally (another module creates it).
    assert {(c.home.project, c.home.region, c.home.repository) for c in [*m.releases, *m.workflows]} == {
        ("acme-host-proj", "europe-west2", "analytics")
    }
    # Created only after the grants that make the runner usable exist (Token Creator, Job User, act-as).
    assert [str(ref) for ref in m.workflows[0].depends_on] == [
        "google_service_account_iam_member.dataform_agent_impersonates_target_runner",
        "google_project_iam_member.target_runner_bigquery_job_user",
        "google_service_account_iam_member.deployer_deployer_acts_as_target_runner",
    ]


def test_the_host_module_holds_no_other_environments_objects(tmp_path):
    m = modules(tmp_path, {"staging": host(), "prod": target()})["staging"]
    assert {r.env for r in m.releases} == {w.env for w in m.workflows} == {"staging"}
    assert not [g for g in m.grants if "acme-target-proj" in g.resource.label or "target-runner" in g.principal.member]


def test_a_persons_run_as_on_a_target_runner_is_granted_by_the_target_module(tmp_path):
    h = host()
    h["repository"]["access"] = [
        {"member": "group:oncall@acme.example", "role": "editor", "run_as": ["prod/target-runner"]}
    ]
    m = modules(tmp_path, {"staging": h, "prod": target()})
    person = [(g.role, g.resource.label, g.env, g.spec_path) for g in m["prod"].grants if g.principal.kind == "person"]
    # The spec line is in the host's file, where `run_as` is written.
    assert person == [
        (
            "roles/iam.serviceAccountUser",
            "service account target-runner@acme-target-proj.iam.gserviceaccount.com",
            "staging",
            "repository.access[0].run_as[0]",
        )
    ]
    assert [g.role for g in m["staging"].grants if g.principal.kind == "person"] == ["roles/dataform.editor"]


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
    # dev (the host) is applied before prod, so it enables what both need.
    assert {a.service for a in dev.apis} >= {"dataform.googleapis.com", "secretmanager.googleapis.com"}
    assert prod.apis == []


def test_external_datasets_are_granted_not_created(tmp_path):
    m = modules(tmp_path, {"staging": host()})["staging"]
    assert [d.dataset_id for d in m.datasets] == ["marts", "assertions"]
    raw = next(g for g in m.grants if g.resource.label.endswith(".raw"))
    assert raw.role == "roles/bigquery.dataViewer" and raw.target["dataset_id"] == "raw"


def test_two_people_with_one_local_part_get_names_that_do_not_depend_on_order_and_no_ambiguous_move(tmp_path):
    """#22: `user:j.smith@a…` and `user:j.smith@b…` both took the old name `repository_editor_j_smith`: two
    `moved` blocks from one address fail every plan, and which one got `_2` depended on their order."""
    people = [
        {"member": "user:j.smith@a.example", "role": "editor", "run_as": ["host-runner"]},
        {"member": "user:j.smith@b.example", "role": "editor", "run_as": ["host-runner"]},
        {"member": "group:analysts@a.example", "role": "viewer"},
    ]
    names = []
    for order, people_in_order in (("ab", people), ("ba", [people[1], people[0], people[2]])):
        spec = host()
        spec["repository"]["access"] = people_in_order
        module = build_module(load_deployment(write_specs(tmp_path / order, {"staging": spec})), "staging")
        grants = {g.address for g in module.grants if g.principal.kind == "person"}
        names.append(grants)
        olds = [str(m.from_) for m in module.moved]
        assert len(olds) == len(set(olds))  # no address moved twice
        assert not [o for o in olds if "j_smith" in o]  # the shared old name is moved to neither
        assert "google_dataform_repository_iam_member.repository_viewer_analysts" in olds  # the rest still move
    assert names[0] == names[1]
    assert "google_dataform_repository_iam_member.analytics_editor_j_smith_at_a_example" in names[0]
    assert "google_service_account_iam_member.person_j_smith_at_b_example_acts_as_host_runner" in names[0]


def test_one_person_running_as_one_runner_from_two_repositories_gets_one_grant(tmp_path):
    """#24: two identical act-as grants (the second named `_2`): removing one repository's entry revoked the
    grant the other repository's entry still needed."""
    spec = host()
    repository = spec.pop("repository")
    git = {"url": "https://github.com/acme/m.git", "https_token": {"secret_id": "git-token"}}
    other = {"name": "marketing", "git": git}
    person = {"member": "user:ana@acme.example", "role": "editor"}
    spec["repositories"] = [
        {**repository, "access": [{**person, "run_as": ["host-runner"]}]},
        {**other, "access": [{**person, "run_as": ["host-runner"]}]},
    ]
    spec["releases"][0]["repository"] = "analytics"
    module = build_module(load_deployment(write_specs(tmp_path, {"staging": spec})), "staging")
    acting = [g.address for g in module.grants if g.rule == "person-starts-runs"]
    assert acting == ["google_service_account_iam_member.person_ana_acts_as_host_runner"]


def test_a_dataset_id_starting_with_a_digit_renders(tmp_path):
    """#24: `01_staging` is a valid BigQuery dataset id; validate and render crashed on it."""
    spec = host()
    spec["datasets"].append({"id": "01_staging"})
    spec["runners"][0]["bigquery"]["writes"].append("01_staging")
    module = build_module(load_deployment(write_specs(tmp_path, {"staging": spec})), "staging")
    assert "google_bigquery_dataset._01_staging" in {d.address for d in module.datasets}
    assert "google_bigquery_dataset_iam_member.host_runner_writes__01_staging" in {g.address for g in module.grants}
