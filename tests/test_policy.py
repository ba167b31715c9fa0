"""One violating input per least-privilege rule, and every rendered module passes them all."""

import dataclasses
import json

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


def _rules(files: dict[str, str]) -> dict[str, str]:
    return {f.rule: f.severity for f in policy.check(policy.facts_from_hcl(files))}


OWNER = 'resource "google_project_iam_member" "m" {\n  project = "p"\n  member = "user:a@b.c"\n  role = %s\n}\n'


@pytest.mark.parametrize(
    "files",
    [
        {"main.tf": OWNER % '"roles/\\u006fwner"'},  # an escape Terraform decodes
        {"main.tf": OWNER % '"roles/\\U0000006fwner"'},
        {"main.tf": 'locals {\n  role = "roles/owner"\n}\n' + OWNER % "local.role"},
        {"main.tf": OWNER % '"roles/${local.what}"', "locals.tf": 'locals {\n  what = "owner"\n}\n'},
        {
            "main.tf": 'resource "google_project_iam_member" "m" {\n'
            '  for_each = toset(["roles/viewer", "roles/owner"])\n'
            '  project = "p"\n  member = "user:a@b.c"\n  role = each.value\n}\n'
        },
        {
            "main.tf.json": '{"resource": {"google_project_iam_member": {"m": '
            '{"project": "p", "member": "user:a@b.c", "role": "roles/owner"}}}}'
        },
    ],
    ids=["escape", "long-escape", "local", "local-in-a-template", "for_each", "tf.json"],
)
def test_lint_cannot_be_talked_out_of_a_primitive_role(files):
    assert _rules(files).get("no-primitive-roles") == "violation"


DATASET_OWNER = (
    'resource "google_bigquery_dataset_iam_member" "m" {\n  %s  project = "p"\n  dataset_id = "d"\n'
    '  member = "user:a@b.c"\n  role = "roles/bigquery.dataOwner"\n}\n'
)
PROJECT_EDITOR = (
    'resource "google_project_iam_member" "m" {\n  %s  project = "p"\n'
    '  member = "user:a@b.c"\n  role = "roles/bigquery.dataEditor"\n}\n'
)


@pytest.mark.parametrize(
    ("hcl", "severity"),
    [
        (PROJECT_EDITOR % "# Project-wide opt-in: every team's datasets are read by reporting\n", "warning"),
        (PROJECT_EDITOR % "# Project-wide opt-in: ok\n", "violation"),  # no real reason given
        (DATASET_OWNER % "# Project-wide opt-in: I say this is fine, trust me\n", "violation"),  # wrong scope's
        (DATASET_OWNER % "# Dataset owner opt-in: the code shares marts through authorized views\n", "warning"),
        (DATASET_OWNER % "# Dataset owner opt-in: ok\n", "violation"),
        (PROJECT_EDITOR % "# Dataset owner opt-in: every team's datasets are read by reporting\n", "violation"),
        (
            DATASET_OWNER.replace("dataOwner", "admin") % "# Dataset owner opt-in: admin is only for owners here\n",
            "violation",
        ),
    ],
    ids=[
        "justified-project-wide",
        "empty-reason",
        "dataset-owner-with-the-project-marker",
        "justified-dataset-owner",
        "dataset-owner-empty-reason",
        "project-wide-with-the-dataset-marker",
        "dataset-admin-is-not-owner",
    ],
)
def test_an_opt_in_counts_only_where_the_rule_has_one(hcl, severity):
    assert _rules({"main.tf": hcl})["bigquery-data-roles"] == severity


def test_lint_refuses_what_it_cannot_read_safely(tmp_path):
    import os

    from dataform_infra.errors import UsageError

    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "main.tf")
    with pytest.raises(UsageError, match="not a regular file"):
        policy.lint([fifo])  # would block forever reading a FIFO
    big = tmp_path / "big"
    big.mkdir()
    (big / "main.tf").write_text("# x\n" * (policy.LINT_MAX_BYTES // 4 + 1))
    with pytest.raises(UsageError, match="over 2 MB"):
        policy.lint([big])
    json_only = tmp_path / "json"
    json_only.mkdir()
    (json_only / "main.tf.json").write_text('{"resource": {}}')
    assert policy.lint([json_only]) == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[]", "the document"),
        ('{"resource": 5}', "`resource`"),
        ('{"resource": {"a": [1]}}', "`resource.a`"),
        ('{"resource": {"a": {"b": 3}}}', "`resource.a.b`"),
        ('{"locals": 3}', "`locals`"),
        ("{bad", "Expecting property name"),
        ('{"resource": {"a": {"b": {"role": "x", "role": "y"}}}}', "`role` is given twice"),
        ('{"resource": {"a": {"b": {"for_each": {"k": "x", "k": "y"}}}}}', "`k` is given twice"),
        ('{"locals": {"r": "x", "r": "y"}}', "`r` is given twice"),
        ('{"locals": {"x": ' + "[" * 5000 + "]" * 5000 + "}}", "nested too deeply"),
    ],
)
def test_json_syntax_of_another_shape_is_bad_input_naming_the_file(tmp_path, text, where):
    from dataform_infra.errors import UsageError

    (tmp_path / "main.tf.json").write_text(text)
    with pytest.raises(UsageError, match=rf"main\.tf\.json: .*{where}"):
        policy.lint([tmp_path])


def _member(role: str) -> dict[str, str]:
    return {"project": "p", "member": "user:a@b.com", "role": role}


@pytest.mark.parametrize(
    "files",
    [
        {  # an array of objects at the name level: every element is a resource
            "main.tf.json": json.dumps(
                {
                    "resource": {
                        "google_project_iam_member": [
                            {"a": _member("roles/logging.viewer")},
                            {"b": _member("roles/owner")},
                        ]
                    }
                }
            )
        },
        {  # `"resource"` twice: Terraform reads both
            "main.tf.json": "{"
            + json.dumps({"resource": {"google_project_iam_member": {"x": _member("roles/owner")}}})[1:-1]
            + ", "
            + json.dumps({"resource": {"google_project_service": {"s": {"service": "x.googleapis.com"}}}})[1:-1]
            + "}"
        },
        {"main.tf": "\ufeff/* managed */ " + OWNER % '"roles/owner"'},  # a byte order mark, a comment before
        {"main.tf": 'locals {\n  __r = "roles/owner"\n}\n' + OWNER % "local.__r"},  # a local named `__...`
    ],
)
def test_terraform_reads_this_grant_so_lint_sees_it(files):
    assert "no-primitive-roles" in _rules(files)


def test_a_top_level_resource_attribute_is_bad_input(tmp_path):
    from dataform_infra.errors import UsageError

    (tmp_path / "main.tf").write_text("resource = 1\n")
    with pytest.raises(UsageError, match=r"main\.tf: `resource` is an attribute here"):
        policy.lint([tmp_path])


def test_repeated_comment_keys_in_json_syntax_are_each_a_comment():
    """Terraform reads every `"//"` of a body; the opt-in may be any of them."""
    text = (
        '{"resource": {"google_project_iam_member": {"m": {"//": "Grants BigQuery editing to the ETL user.", '
        '"//": "Project-wide opt-in: the ETL job writes to every dataset", "project": "p", '
        '"member": "user:a@b.com", "role": "roles/bigquery.dataEditor"}}}}'
    )
    assert _rules({"main.tf.json": text})["bigquery-data-roles"] == "warning"
