"""Several Dataform repositories in one host project (`repositories:`): each release names its own, each
repository has its own remote, credential, runner and people, and they share the service agent (and
may share a Git secret). One repository keeps working as before, its old Terraform names moved."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.spec.models import Environment
from dataform_infra.specset import SpecSet
from tests.specs import host, target, write_specs
from tests.support.cli import invoke
from tests.support.specsets import SPEC_SETS


def two_repositories() -> dict[str, Any]:
    """The host with `analytics` (its own token) and `marketing` (another), each release naming one."""
    h = host()
    analytics = h.pop("repository")
    analytics["runner"] = "host-runner"
    analytics["access"] = [{"member": "group:eng@acme.example", "role": "editor", "run_as": ["host-runner"]}]
    marketing = {
        "name": "marketing",
        "git": {"url": "https://github.com/acme/marketing.git", "https_token": {"secret_id": "marketing-token"}},
        "access": [{"member": "group:marketing@acme.example", "role": "viewer"}],
    }
    h["repositories"] = [analytics, marketing]
    h["releases"][0]["repository"] = "analytics"
    h["releases"].append({**copy.deepcopy(h["releases"][0]), "name": "campaigns", "repository": "marketing"})
    h["workflows"].append({**copy.deepcopy(h["workflows"][0]), "name": "campaigns-daily", "release": "campaigns"})
    return h


def with_target(h: dict[str, Any]) -> dict[str, dict[str, Any]]:
    t = target()
    t["releases"][0]["repository"] = "marketing"
    t["deployers"] = ["serviceAccount:prod-deployer@acme-ci-proj.iam.gserviceaccount.com"]
    return {"staging": h, "prod": t}


def problems(tmp_path, specs: dict[str, dict[str, Any]]) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, specs))
    return [p.describe() for p in info.value.problems]


# --- the spec: what is refused, each at its line ----------------------------------------------


def test_the_schema_offers_both_forms_and_the_release_field():
    schema = Environment.model_json_schema(by_alias=True)
    assert schema["properties"]["repositories"]["type"] == "array"
    assert "repository" in schema["$defs"]["Release"]["properties"]


def test_one_form_only(tmp_path):
    h = two_repositories()
    h["repository"] = copy.deepcopy(h["repositories"][0])
    [problem] = problems(tmp_path, {"staging": h})
    assert "repositories: declare `repository:` (one) or `repositories:` (several), not both" in problem
    line = next(
        i for i, text in enumerate((tmp_path / "staging.yaml").read_text().splitlines(), 1) if text == "repositories:"
    )
    assert f"staging.yaml:{line}:" in problem


def test_with_several_repositories_each_release_names_one_that_exists(tmp_path):
    h = two_repositories()
    del h["releases"][0]["repository"]
    specs = with_target(h)
    specs["prod"]["releases"][0]["repository"] = "marketting"
    found = problems(tmp_path, specs)
    assert any(
        "staging.yaml:" in p and "release 'host-release' must name its repository (`repository:`)" in p for p in found
    )
    assert any(
        "prod.yaml:" in p and "releases[0].repository" in p and "repository 'marketting' is not declared" in p
        for p in found
    ), found


def test_repository_names_are_unique_and_one_project_has_one_host(tmp_path):
    h = two_repositories()
    h["repositories"][1]["name"] = "analytics"
    assert any("duplicate repository 'analytics'" in p for p in problems(tmp_path / "a", {"staging": h}))
    t = target()
    t["project"] = copy.deepcopy(h["project"])
    t["repository"] = two_repositories()["repositories"][1]
    found = problems(tmp_path / "b", {"staging": two_repositories(), "prod": t})
    # Specs load in file order: prod's repository came first, so staging's is the second host of the project.
    assert any("staging.yaml:" in p and "'prod' also hosts repositories in project acme-host-proj" in p for p in found)


def test_an_empty_list_of_repositories_is_refused_where_it_is_written(tmp_path):
    h = host()
    h["repositories"] = []
    found = problems(tmp_path, {"staging": h})
    assert any("repositories: List should have at least 1 item" in p for p in found), found


def test_repository_names_that_differ_only_in_punctuation_are_refused(tmp_path):
    h = two_repositories()
    h["repositories"][0]["name"], h["repositories"][1]["name"] = "a-b", "a_b"
    h["releases"][0]["repository"], h["releases"][1]["repository"] = "a-b", "a_b"
    found = problems(tmp_path, {"staging": h})
    assert any("repositories[1].name" in p and "differ only in case or punctuation" in p for p in found), found


def test_a_secret_named_in_the_host_project_explicitly_is_not_the_one_dfinfra_creates(tmp_path):
    h = two_repositories()
    h["repositories"][1]["git"]["https_token"] = {"secret_id": "git-token", "project": "acme-host-proj"}
    [problem] = problems(tmp_path, {"staging": h})
    assert "repositories[1].git.https_token.secret_id" in problem


def test_a_shared_secret_has_one_kind_and_one_replication(tmp_path):
    h = two_repositories()
    h["repositories"][1]["git"]["https_token"] = {"secret_id": "git-token", "replicas": ["europe-west2"]}
    [problem] = problems(tmp_path, {"staging": h})
    assert "repositories[1].git.https_token.secret_id" in problem
    assert "also the Git secret of the repository at repositories[0]" in problem


def test_bad_input_exits_2_naming_file_line_and_field(tmp_path):
    h = two_repositories()
    h["releases"][1]["repository"] = "nope"
    write_specs(tmp_path / "environments", {"staging": h})
    result = invoke("validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "staging.yaml:" in result.stderr and "releases[1].repository" in result.stderr
    assert "Traceback" not in result.output


# --- render ------------------------------------------------------------------------------------


def test_each_repository_is_rendered_with_its_own_configs_secret_and_people(tmp_path):
    ws = SpecSet(write_specs(tmp_path, with_target(two_repositories())))
    staging = render_module(ws.module("staging"))
    dataform = staging["dataform.tf"]
    assert 'resource "google_dataform_repository" "analytics" {' in dataform
    assert 'resource "google_dataform_repository" "marketing" {' in dataform
    assert '"${google_secret_manager_secret.marketing_token.id}/versions/latest"' in dataform
    release = dataform.split('"google_dataform_repository_release_config" "campaigns" {', 1)[1].split("\n}\n")[0]
    assert "repository    = google_dataform_repository.marketing.name" in release
    workflow = dataform.split('"google_dataform_repository_workflow_config" "campaigns_daily" {', 1)[1]
    assert "repository     = google_dataform_repository.marketing.name" in workflow.split("\n}\n")[0]
    # Each secret created once, read by the agent; people get roles on their repository only.
    assert staging["secrets.tf"].count('resource "google_secret_manager_secret"') == 2
    iam = staging["iam.tf"]
    assert '"google_secret_manager_secret_iam_member" "dataform_agent_reads_marketing_token"' in iam
    people = {
        (g.principal.member, g.resource.id) for g in ws.module("staging").grants if g.rule == "person-uses-repository"
    }
    assert people == {("group:eng@acme.example", "analytics"), ("group:marketing@acme.example", "marketing")}
    # With several repositories no old single-repository names to move; outputs are keyed by name.
    assert "moved.tf" not in staging
    assert 'output "repository_ids"' in staging["outputs.tf"] and 'output "git_secrets"' in staging["outputs.tf"]
    # A target names the host's repository its release lives in, literally.
    prod = render_module(ws.module("prod"))["dataform.tf"]
    assert 'repository    = "marketing"' in prod and 'repository     = "marketing"' in prod
    assert not ws.validate().violations


def test_two_repositories_may_share_one_secret_created_once(tmp_path):
    h = two_repositories()
    h["repositories"][1]["git"]["https_token"]["secret_id"] = "git-token"
    ws = SpecSet(write_specs(tmp_path, {"staging": h}))
    module = ws.module("staging")
    assert [s.secret_id for s in module.secrets] == ["git-token"]
    reads = [g for g in module.grants if g.rule == "agent-reads-git-secret"]
    assert len(reads) == 1
    # Both repositories wait for that one grant before they are created.
    assert all(str(r.depends_on[0]) == reads[0].address for r in module.repositories)
    assert not ws.validate().violations


def test_one_repository_keeps_working_under_its_new_names_with_moved_blocks(tmp_path):
    h = host()
    h["repository"]["access"] = [{"member": "group:eng@acme.example", "role": "viewer"}]
    ws = SpecSet(write_specs(tmp_path, {"staging": h}))
    moved = render_module(ws.module("staging"))["moved.tf"]
    assert "  from = google_dataform_repository.this\n  to   = google_dataform_repository.analytics\n" in moved
    old, new = "repository_viewer_eng", "analytics_viewer_eng"
    assert (
        f"  from = google_dataform_repository_iam_member.{old}\n  to   = google_dataform_repository_iam_member.{new}\n"
        in moved
    )
    # Secret `git-token` is named `git_token`, as before: nothing to move, no block.
    assert "google_secret_manager_secret" not in moved


def test_the_access_model_checks_each_repository_chain_by_chain(tmp_path):
    ws = SpecSet(write_specs(tmp_path, with_target(two_repositories())))
    reads = {(r.resource.id, r.spec_path) for r in ws.access.requirements if r.chain == "git-sync"}
    assert reads == {
        ("git-token", ("repositories", 0, "git", "https_token")),
        ("marketing-token", ("repositories", 1, "git", "https_token")),
    }
    # The prod deployer manages configs in marketing only (its one release lives there).
    manage = {(r.env, r.resource.id) for r in ws.access.requirements if r.chain == "manage-configs" and r.env == "prod"}
    assert manage == {("prod", "marketing")}
    workspace_runs = [r for r in ws.access.runs if r.kind == "workspace"]
    assert [(r.repository.name, r.started_by.member if r.started_by else None) for r in workspace_runs] == [
        ("analytics", "group:eng@acme.example")
    ]


def test_people_start_runs_in_the_repository_whose_access_names_them(tmp_path):
    """eng may run as the marketing runner from analytics (run_as there), but starts no marketing workflow: it
    has no role in marketing. Its run as that runner is an ad-hoc one in analytics, and validate is clean."""
    h = two_repositories()
    h["runners"].append({"name": "marketing-runner", "bigquery": {"writes": ["marts", "assertions"]}})
    h["workflows"][1]["runner"] = "marketing-runner"
    h["repositories"][0]["access"][0]["run_as"].append("marketing-runner")
    ws = SpecSet(write_specs(tmp_path, {"staging": h}))
    eng = {
        (r.id, r.repository.name)
        for r in ws.access.runs
        if r.started_by is not None and r.started_by.member == "group:eng@acme.example"
    }
    assert eng == {
        ("workspace:staging/analytics:group:eng@acme.example", "analytics"),
        ("manual:staging/host-daily:group:eng@acme.example", "analytics"),
        ("adhoc:staging/analytics:staging/marketing-runner:group:eng@acme.example", "analytics"),
    }
    assert not ws.validate().violations


def test_explain_deployer_names_the_repository_a_target_needs(tmp_path):
    ws_dir = write_specs(tmp_path / "environments", with_target(two_repositories()))
    result = invoke("explain", "--deployer", "prod", "-e", str(ws_dir), cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "repository marketing" in result.stdout and "repository analytics" not in result.stdout
    assert "`repositories[1].access: [" in result.stdout


# --- secret set: which repository's credential ---------------------------------------------------


def test_secret_commands_ask_which_repository_when_there_are_several(tmp_path):
    write_specs(tmp_path / "environments", {"staging": two_repositories()})
    ambiguous = invoke("secret", "set", "staging", cwd=tmp_path, stdin="ghp_x\n")
    assert ambiguous.returncode == 2
    assert "several repositories with their own Git secrets (analytics, marketing)" in ambiguous.stderr
    unknown = invoke("secret", "status", "staging", "--repository", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "no repository 'nope'" in unknown.stderr


def test_one_secret_for_every_repository_needs_no_repository_named(tmp_path):
    from dataform_infra.gcp.secrets import git_secret

    h = two_repositories()
    h["repositories"][1]["git"]["https_token"]["secret_id"] = "git-token"
    deployment = load_deployment(write_specs(tmp_path, {"staging": h}))
    assert git_secret(deployment, "staging").name == "projects/acme-host-proj/secrets/git-token"


def test_the_shipped_multi_repository_example_uses_both_forms():
    ws = SpecSet(SPEC_SETS["multi-repository"])
    repositories = ws.topology.repositories
    assert [r.name for r in repositories] == ["analytics", "marketing"]
    elsewhere = [r for r in repositories if r.spec.git.secret and r.spec.git.secret.project]
    assert [r.name for r in elsewhere] == ["marketing"]  # an existing secret, referenced, never created
    assert [s.secret_id for s in ws.module("staging").secrets] == ["analytics-github-token"]
