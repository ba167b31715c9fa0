"""One violating input per least-privilege rule, and every rendered module passes them all."""

import dataclasses

import pytest

from dataform_infra import policy
from dataform_infra.render.module import build_module
from dataform_infra.spec.loader import load_deployment
from tests.conftest import SPEC_SETS, all_modules, rendered

SA = "projects/p/serviceAccounts/runner@acme-prod.iam.gserviceaccount.com"
AGENT = "serviceAccount:service-123456@gcp-sa-dataform.iam.gserviceaccount.com"

VIOLATIONS = {
    "additive-iam-only": 'resource "google_project_iam_binding" "b" {\n  project = "p"\n  role = "roles/x"\n'
    '  members = ["user:a@b.com"]\n}\n',
    "no-primitive-roles": 'resource "google_project_iam_member" "m" {\n  project = "p"\n  role = "roles/editor"\n'
    '  member = "serviceAccount:x@p.iam.gserviceaccount.com"\n}\n',
    "bigquery-data-roles": 'resource "google_project_iam_member" "m" {\n  project = "p"\n'
    '  role = "roles/bigquery.dataEditor"\n  member = "user:a@b.com"\n}\n',
    "impersonation-on-accounts-only": f'resource "google_project_iam_member" "m" {{\n  project = "p"\n'
    f'  role = "roles/iam.serviceAccountTokenCreator"\n  member = "{AGENT}"\n}}\n',
    "secret-access-on-secret-only": f'resource "google_project_iam_member" "m" {{\n  project = "p"\n'
    f'  role = "roles/secretmanager.secretAccessor"\n  member = "{AGENT}"\n}}\n',
    "no-secret-in-state": 'data "google_secret_manager_secret_version" "token" {\n  secret = "git-token"\n}\n',
    "apis-stay-enabled": 'resource "google_project_service" "s" {\n  service = "dataform.googleapis.com"\n}\n',
    "runner-usable": 'resource "google_dataform_repository_workflow_config" "w" {\n  provider = google-beta\n'
    '  name = "w"\n  release_config = "r"\n  invocation_config {\n'
    '    service_account = "runner@acme-prod.iam.gserviceaccount.com"\n  }\n}\n',
    "agent-reads-git-secret": 'resource "google_dataform_repository" "r" {\n  name = "r"\n  git_remote_settings {\n'
    '    url = "https://github.com/a/b"\n    default_branch = "main"\n'
    '    authentication_token_secret_version = "${google_secret_manager_secret.t.id}/versions/1"\n'
    "  }\n}\n",
}


def test_every_rule_has_a_violating_example():
    assert sorted(VIOLATIONS) == sorted(rule.id for rule in policy.RULES)


@pytest.mark.parametrize("rule", sorted(VIOLATIONS))
def test_rule_fires_on_violating_hcl(rule):
    findings = policy.check(policy.facts_from_hcl({"main.tf": VIOLATIONS[rule]}))
    assert rule in {f.rule for f in findings if f.severity == "violation"}, findings


def test_secret_data_in_a_version_resource_is_caught():
    hcl = 'resource "google_secret_manager_secret_version" "v" {\n  secret = "s"\n  secret_data = var.token\n}\n'
    assert [f.rule for f in policy.check(policy.facts_from_hcl({"x.tf": hcl}))] == ["no-secret-in-state"]


def test_runner_usable_passes_when_both_grants_exist():
    grants = (
        f'resource "google_service_account_iam_member" "tc" {{\n  service_account_id = "{SA}"\n'
        f'  role = "roles/iam.serviceAccountTokenCreator"\n  member = "{AGENT}"\n}}\n'
        f'resource "google_service_account_iam_member" "u" {{\n  service_account_id = "{SA}"\n'
        f'  role = "roles/iam.serviceAccountUser"\n  member = "user:deployer@acme.example"\n}}\n'
    )
    findings = policy.check(policy.facts_from_hcl({"a.tf": VIOLATIONS["runner-usable"], "b.tf": grants}))
    assert findings == []


@pytest.mark.parametrize(("spec_set", "env"), all_modules())
def test_rendered_hcl_passes_every_rule(spec_set, env):
    findings = policy.check(policy.facts_from_hcl(rendered(spec_set)[env]))
    assert [f.render() for f in findings if f.severity == "violation"] == []


@pytest.mark.parametrize(("spec_set", "env"), all_modules())
def test_validate_sees_what_the_hcl_shows(spec_set, env):
    """The fast path (`dfinfra validate`, from the module) agrees with the parsed HCL."""
    module = build_module(load_deployment(SPEC_SETS[spec_set]), env)
    from_module = policy.check(policy.facts_from_module(module))
    from_hcl = policy.check(policy.facts_from_hcl(rendered(spec_set)[env]))
    assert sorted((f.rule, f.severity) for f in from_module) == sorted((f.rule, f.severity) for f in from_hcl)


def test_project_wide_opt_in_is_a_warning_in_hcl_too():
    findings = policy.check(policy.facts_from_hcl(rendered("three-environments")["prod"]))
    assert [(f.rule, f.severity) for f in findings] == [("bigquery-data-roles", "warning")]
    assert "reporting models read every team's datasets" in findings[0].message


def test_validate_catches_a_module_missing_a_grant():
    module = build_module(load_deployment(SPEC_SETS["shipped"]), "staging")
    broken = dataclasses.replace(module, grants=[g for g in module.grants if g.rule != "agent-impersonates-runner"])
    findings = policy.check(policy.facts_from_module(broken))
    assert {f.rule for f in findings} == {"runner-usable"}
    assert all(f.source.startswith("environments/staging.yaml: ") for f in findings)


@pytest.mark.parametrize(
    ("member", "resource_type", "allowed"),
    [
        (AGENT, "google_project_iam_member", True),
        ("user:someone@acme.example", "google_project_iam_member", False),
        ("serviceAccount:runner@acme-prod.iam.gserviceaccount.com", "google_project_iam_member", False),
    ],
)
def test_the_service_agent_role_goes_to_the_agent_only(member, resource_type, allowed):
    hcl = (
        f'resource "{resource_type}" "m" {{\n  project = "p"\n  role = "roles/dataform.serviceAgent"\n'
        f'  member = "{member}"\n}}\n'
    )
    rules = {f.rule for f in policy.check(policy.facts_from_hcl({"main.tf": hcl}))}
    assert ("impersonation-on-accounts-only" not in rules) is allowed
