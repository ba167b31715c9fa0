"""The access model: what each run needs, and `dfinfra validate` proving the grants meet it.

Each "why" of the runtime-access issue is reproduced as a spec (or a grant taken away) and must be
reported with the chain, the principal, the permission, the resource and the spec line to change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataform_infra.access import AccessModel, cover, roles
from dataform_infra.cli import app
from dataform_infra.specset import SpecSet
from tests.specs import host, target, write_specs
from tests.support.specsets import SPEC_SETS

HOST_RUNNER = "serviceAccount:host-runner@acme-host-proj.iam.gserviceaccount.com"
TARGET_RUNNER = "serviceAccount:target-runner@acme-target-proj.iam.gserviceaccount.com"
AGENT = "serviceAccount:service-111111111111@gcp-sa-dataform.iam.gserviceaccount.com"


def validate(directory: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", "-e", str(directory)])
    return result.exit_code, result.output


def workspace(tmp_path: Path, specs: dict) -> SpecSet:
    return SpecSet(write_specs(tmp_path / "environments", specs))


@pytest.mark.parametrize("spec_set", sorted(SPEC_SETS))
def test_every_shipped_spec_set_meets_every_requirement_and_every_grant_serves_one(spec_set):
    ws = SpecSet(SPEC_SETS[spec_set])
    coverage = ws.coverage()
    assert coverage.unmet == [] and coverage.unserved == []
    assert ws.runs(), "every spec set declares runs"


def test_the_role_table_is_googles_with_its_source():
    assert "iam.roles.get" in roles.source()
    assert "bigquery.jobs.create" in roles.permissions("roles/bigquery.jobUser")
    assert roles.permissions("roles/dataform.serviceAgent") >= {
        "dataform.compilationResults.create",
        "dataform.workflowInvocations.create",
    }
    assert roles.narrowest_roles({"iam.serviceAccounts.actAs"})[0] == "roles/iam.serviceAccountUser"
    assert roles.permissions("roles/not.a.role") == frozenset()


def test_a_target_runner_needs_job_user_on_the_host_project(tmp_path):
    ws = workspace(tmp_path, {"staging": host(), "prod": target()})
    jobs = [r for r in ws.access.requirements if r.chain == "runner-runs-jobs" and r.principal.member == TARGET_RUNNER]
    assert [(r.permission, r.resource.label) for r in jobs] == [("bigquery.jobs.create", "project acme-host-proj")]
    assert jobs[0].runs == (
        "scheduled:prod/target-daily",
        "manual:prod/target-daily:serviceAccount:deployer@acme-ci-proj.iam.gserviceaccount.com",
    )
    # Take the rendered grant away: validate's check names the chain, principal, permission and runs.
    grants = [g for e in ws.deployment.environments for g in ws.module(e).grants]
    job_user = next(g for g in grants if g.rule == "runner-runs-jobs" and g.principal.member == TARGET_RUNNER)
    assert job_user.resource.label == "project acme-host-proj"
    coverage = cover(ws.access.requirements, [g for g in grants if g is not job_user])
    assert [(r.chain, r.principal.member, r.permission) for r in coverage.unmet] == [
        ("runner-runs-jobs", TARGET_RUNNER, "bigquery.jobs.create")
    ]


def test_a_runner_that_does_not_write_its_release_schema_is_a_violation(tmp_path):
    t = target()
    t["runners"][0]["bigquery"]["writes"] = ["marts"]  # the release's assertions go to `assertions`
    code, out = validate(write_specs(tmp_path / "environments", {"staging": host(), "prod": t}))
    assert code == 1
    assert "prod.yaml:" in out and "releases[0].compilation.assertion_schema" in out
    assert "chain runner-writes: " + TARGET_RUNNER + " lacks" in out
    assert "bigquery.tables.create" in out and "dataset acme-target-proj.assertions" in out
    assert "these runs fail: target-daily (scheduled)" in out
    assert "add `assertions` to `bigquery.writes` of runner target-runner" in out


def test_assertions_without_assertion_schema_are_left_to_workflow_settings_and_said_so(tmp_path):
    t = target()
    del t["releases"][0]["compilation"]["assertion_schema"]
    code, out = validate(write_specs(tmp_path / "environments", {"staging": host(), "prod": t}))
    assert code == 0, out  # a warning, never a violation: the code may have no assertions at all
    assert "dataform_assertions" not in out.split("leaves its assertion dataset")[0]
    assert "releases[0].compilation" in out and "leaves its assertion dataset to workflow_settings.yaml" in out
    assert "compilation.has_assertions: false" in out


def test_a_release_stated_to_have_no_assertions_is_neither_checked_nor_warned_about(tmp_path):
    t = target()
    del t["releases"][0]["compilation"]["assertion_schema"]
    t["releases"][0]["compilation"]["has_assertions"] = False
    code, out = validate(write_specs(tmp_path / "environments", {"staging": host(), "prod": t}))
    assert code == 0, out
    assert "leaves its assertion dataset" not in out
    # the runner still declares it writes `assertions`; no run does any more, and validate says so
    assert "acme-target-proj.assertions, but no run uses it" in out


def test_no_assertions_and_an_assertion_dataset_cannot_both_be_stated(tmp_path):
    t = target()
    t["releases"][0]["compilation"]["has_assertions"] = False
    code, out = validate(write_specs(tmp_path / "environments", {"staging": host(), "prod": t}))
    assert code == 2
    assert "prod.yaml" in out and "releases[0].compilation" in out and "keep one" in out


def test_targets_write_their_own_schema(tmp_path):
    t = target()
    t["workflows"][0]["targets"] = [{"name": "daily_revenue", "schema": "reporting"}]
    code, out = validate(write_specs(tmp_path / "environments", {"staging": host(), "prod": t}))
    assert code == 1
    assert "workflows[0].targets[0].schema" in out and "dataset acme-target-proj.reporting" in out


def test_a_release_compiling_into_another_project_is_granted_by_that_projects_environment(tmp_path):
    t = target()
    t["releases"][0]["compilation"]["database"] = "acme-host-proj"
    code, out = validate(write_specs(tmp_path / "environments", {"staging": host(), "prod": t}))
    assert code == 1
    # The host's environment holds that project: it names prod's runner as made elsewhere and grants it there.
    assert "staging.yaml, name the runner as made elsewhere and let it write there: `runners: [{name: " in out
    assert "email: target-runner@acme-target-proj.iam.gserviceaccount.com, bigquery: {writes: [marts]}}]`" in out
    h = host()
    email = "target-runner@acme-target-proj.iam.gserviceaccount.com"
    h["runners"].append({"name": "target-runner", "email": email, "bigquery": {"writes": ["marts", "assertions"]}})
    t["runners"][0]["bigquery"]["writes"] = []  # its own datasets: no run writes them any more
    code, out = validate(write_specs(tmp_path / "fixed", {"staging": h, "prod": t}))
    assert code == 0, out


def test_a_release_without_schema_is_a_warning_not_a_guess(tmp_path):
    t = target()
    t["releases"][0]["compilation"] = {"assertion_schema": "assertions"}
    code, out = validate(write_specs(tmp_path / "environments", {"staging": host(), "prod": t}))
    assert code == 0, out
    assert "leaves its default schema to workflow_settings.yaml" in out


def _with_workspace_runs(h: dict, **workspace) -> dict:
    h["repository"]["runner"] = "host-runner"
    h["repository"]["workspace_compilation"] = {
        "default_database": "acme-host-proj",
        "schema_suffix": "dev",
        **workspace,
    }
    h["repository"]["access"] = [
        {"member": "group:engineers@acme.example", "role": "editor", "run_as": ["host-runner"]}
    ]
    return h


def test_workspace_runs_write_suffixed_datasets_that_must_be_declared(tmp_path):
    h = _with_workspace_runs(host(), schemas=["marts"])
    code, out = validate(write_specs(tmp_path / "a", {"staging": h}))
    assert code == 1
    assert "repository.workspace_compilation.schemas[0]" in out
    assert "chain workspace-writes" in out and "dataset acme-host-proj.marts_dev" in out
    assert "workspace run by group:engineers@acme.example" in out
    h["datasets"].append({"id": "marts_dev"})
    h["runners"][0]["bigquery"]["writes"].append("marts_dev")
    code, out = validate(write_specs(tmp_path / "b", {"staging": h}))
    assert (code, out.startswith("ok: 1 environment(s)")) == (0, True), out


def test_workspace_writes_are_not_checked_against_a_project_workflow_settings_decides(tmp_path):
    """Unset default_database: Dataform compiles into workflow_settings.yaml's defaultProject, not the host's."""
    h = _with_workspace_runs(host(), schemas=["marts"])
    del h["repository"]["workspace_compilation"]["default_database"]
    code, out = validate(write_specs(tmp_path / "a", {"staging": h}))
    assert code == 0, out  # not a violation against a guessed project
    assert "acme-host-proj.marts_dev" not in out
    assert "repository.workspace_compilation" in out
    assert "compile into workflow_settings.yaml's defaultProject" in out
    assert "set workspace_compilation.default_database" in out
    # The runner's declared workspace datasets may be what those runs write: never called unused.
    h["datasets"].append({"id": "marts_dev"})
    h["runners"][0]["bigquery"]["writes"].append("marts_dev")
    code, out = validate(write_specs(tmp_path / "b", {"staging": h}))
    assert code == 0 and "no run uses it" not in out, out


def test_people_start_runs_only_as_the_runners_named_in_run_as(tmp_path):
    h = _with_workspace_runs(host(), schemas=[])
    ws = workspace(tmp_path, {"staging": h, "prod": target()})
    act_as = [g for g in ws.module("staging").grants if g.rule == "person-starts-runs"]
    assert [(g.principal.member, g.role, g.resource.label) for g in act_as] == [
        (
            "group:engineers@acme.example",
            "roles/iam.serviceAccountUser",
            "service account host-runner@acme-host-proj.iam.gserviceaccount.com",
        )
    ]
    runs = {r.id for r in ws.access.runs if r.started_by and r.started_by.member == "group:engineers@acme.example"}
    assert runs == {
        "workspace:staging/analytics:group:engineers@acme.example",
        "manual:staging/host-daily:group:engineers@acme.example",
    }


def test_a_viewer_cannot_start_runs(tmp_path):
    h = _with_workspace_runs(host(), schemas=[])
    h["repository"]["access"][0]["role"] = "viewer"
    code, out = validate(write_specs(tmp_path / "environments", {"staging": h}))
    assert code == 1
    assert "chain start-runs: group:engineers@acme.example lacks dataform.compilationResults.create" in out
    assert "a viewer cannot start runs" in out and "repository.access[0].run_as" in out


def test_run_as_names_a_declared_runner(tmp_path):
    h = _with_workspace_runs(host(), schemas=[])
    h["repository"]["access"][0]["run_as"] = ["prod/nobody-runner"]
    result = CliRunner().invoke(
        app, ["validate", "-e", str(write_specs(tmp_path / "e", {"staging": h, "prod": target()}))]
    )
    assert result.exit_code == 2
    assert "repository.access[0].run_as[0]" in result.output
    assert "runner 'nobody-runner' is not declared under `runners:` of environment 'prod'" in result.output


def test_scheduled_runs_need_the_agents_own_role_granted_to_the_agent_only(tmp_path):
    ws = workspace(tmp_path, {"staging": host(), "prod": target()})
    needs = [r for r in ws.access.requirements if r.chain == "agent-schedules"]
    assert {(r.principal.member, r.permission, r.resource.label) for r in needs} == {
        (AGENT, "dataform.compilationResults.create", "project acme-host-proj"),
        (AGENT, "dataform.workflowInvocations.create", "project acme-host-proj"),
    }
    role = [g for g in ws.module("staging").grants if g.role == "roles/dataform.serviceAgent"]
    assert [(g.principal.member, g.resource.label) for g in role] == [(AGENT, "project acme-host-proj")]
    assert not [g for g in ws.module("prod").grants if g.role == "roles/dataform.serviceAgent"]


def test_without_schedules_the_agent_still_holds_its_role_so_a_later_cron_needs_no_host_apply(tmp_path):
    h, t = host(), target()
    for spec in (h, t):
        del spec["releases"][0]["cron"], spec["workflows"][0]["cron"]
    ws = workspace(tmp_path, {"staging": h, "prod": t})
    role = [g for g in ws.module("staging").grants if g.role == "roles/dataform.serviceAgent"]
    assert [(g.principal.member, g.resource.label) for g in role] == [(AGENT, "project acme-host-proj")]
    needs = [r for r in ws.access.requirements if r.chain == "agent-schedules"]
    assert {r.permission for r in needs} == {
        "dataform.compilationResults.create",
        "dataform.workflowInvocations.create",
    }
    assert ws.coverage().unserved == []


def test_every_grant_the_modules_render_serves_a_requirement_and_says_which(tmp_path):
    ws = workspace(tmp_path, {"staging": host(), "prod": target()})
    coverage = ws.coverage()
    for env in ws.deployment.environments:
        for grant in ws.module(env).grants:
            assert coverage.requirements_served_by(grant), grant.address


def test_model_runs_and_requirements_are_stable_across_processes():
    """Same spec -> the same requirement list, in the same order (determinism of explain --runs)."""
    import subprocess
    import sys

    script = (
        "from dataform_infra.specset import SpecSet;"
        f"w=SpecSet(__import__('pathlib').Path({str(SPEC_SETS['three-environments'])!r}));"
        "print([(r.chain, r.principal.member, r.permission, r.resource.label, r.runs) for r in w.access.requirements])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONHASHSEED": seed}, check=True
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_requirements_are_deduplicated_and_merge_their_runs():
    model = AccessModel(SpecSet(SPEC_SETS["shipped"]).deployment)
    keys = [r.key for r in model.requirements]
    assert len(keys) == len(set(keys))
    secret = next(r for r in model.requirements if r.chain == "git-sync")
    # Every run that compiles: a workflow config started by hand runs its release's live compilation.
    compiling = {r.id for r in model.runs if not (r.kind == "manual" and r.workflow)}
    assert set(secret.runs) == compiling and compiling < {r.id for r in model.runs}


def test_declared_access_no_run_uses_is_a_warning(tmp_path):
    h = host()
    h["datasets"].append({"id": "spare"})
    h["runners"][0]["bigquery"]["writes"].append("spare")
    h["runners"].append({"name": "idle-runner", "bigquery": {"reads": ["raw"]}})
    code, out = validate(write_specs(tmp_path / "environments", {"staging": h}))
    assert code == 0, out
    assert (
        "runners[0].bigquery.writes[2]: runner host-runner is granted access to dataset acme-host-proj.spare, "
        "but no run uses it" in out
    )
    assert "runners[1].bigquery.reads[0]: runner idle-runner is granted access to dataset acme-host-proj.raw" in out
    # #24: host-runner does run (host-daily): the warning says why the write is unused, not that nothing runs it.
    assert "(its runs (host-daily (scheduled), host-daily (started by serviceAccount:deployer@" in out
    assert "write only the datasets their releases and targets name, and none names it" in out
    assert "idle-runner is granted access to dataset acme-host-proj.raw, but no run uses it (no workflow" in out


def _runner_nobody_here_runs_as(outside: bool) -> dict:
    h = _with_workspace_runs(host(), schemas=["marts"])
    h["repository"]["access"] = []  # the project's owners run workspaces; the spec names none of them
    h["datasets"].append({"id": "marts_dev"})
    h["runners"][0]["bigquery"]["writes"].append("marts_dev")
    if outside:
        h["repository"]["outside_users"] = True
    return h


def test_outside_users_need_a_runner_to_run_as(tmp_path):
    h = _runner_nobody_here_runs_as(True)
    del h["repository"]["runner"]
    code, out = validate(write_specs(tmp_path, {"staging": h}))
    assert code == 2 and "staging.yaml" in out and "repository" in out and "which is not set" in out, out


def test_people_outside_the_spec_running_workspaces_are_a_warning_and_can_be_stated(tmp_path):
    """#24 false refusal: a repository runner used by people the spec does not name (project owners). dfinfra
    cannot know them: a warning at `repository.runner`, never a reason to drop the grant their runs need."""
    code, out = validate(write_specs(tmp_path / "a", {"staging": _runner_nobody_here_runs_as(False)}))
    assert code == 0, out
    assert "repository.runner: nobody in this spec may start runs as repository analytics's runner" in out
    assert "outside_users: true" in out
    ws = workspace(tmp_path / "b", {"staging": _runner_nobody_here_runs_as(True)})
    report = ws.validate()
    assert report.violations == [] and report.warnings == [], [w.describe() for w in report.warnings]
    [run] = [r for r in ws.access.runs if r.kind == "workspace"]
    assert (run.id, run.started_by) == ("workspace:staging/analytics:outside", None)
    writes = [r for r in ws.access.requirements if r.chain == "workspace-writes" and run.id in r.runs]
    assert {r.resource.label for r in writes} == {"dataset acme-host-proj.marts_dev"}
    # Their act-as is theirs: nothing is granted to people the spec does not name.
    assert not [g for g in ws.module("staging").grants if g.rule == "person-starts-runs"]
    assert ws.coverage().unserved == []
