"""One violating input per least-privilege rule, and every rendered module passes them all."""

import dataclasses
import json
import subprocess
import sys

import pytest

from dataform_infra import policy
from dataform_infra.access import roles
from dataform_infra.render.module import build_module
from dataform_infra.spec.loader import load_deployment
from tests.support.cli import invoke
from tests.support.specsets import SPEC_SETS, all_modules, rendered

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
    "no-iam-admin-roles": 'resource "google_project_iam_member" "m" {\n  project = "p"\n'
    '  role = "roles/resourcemanager.projectIamAdmin"\n  member = "user:a@b.com"\n}\n',
    "role-is-constant": 'resource "google_project_iam_member" "m" {\n  project = "p"\n  role = var.role\n'
    '  member = "user:a@b.com"\n}\n',
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
    assert [f.describe() for f in findings if f.severity == "violation"] == []


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


# --- what the red team found lint let through: each through `dfinfra lint`, as a user runs it ------------------


def _lint(tmp_path, files: dict[str, str]):
    module = tmp_path / "module"
    module.mkdir()
    for name, text in files.items():
        (module / name).write_text(text)
    return invoke("lint", str(module), cwd=tmp_path)


def _grant(role: str, name: str = "m", extra: str = "", type_: str = "google_project_iam_member") -> str:
    target = {"google_project_iam_member": 'project = "p"', "google_folder_iam_member": 'folder = "folders/1"'}
    target |= {"google_organization_iam_member": 'org_id = "1"'}
    where = target.get(type_, 'project = "p"\n  dataset_id = "d"')
    return f'resource "{type_}" "{name}" {{\n{extra}  {where}\n  member = "user:a@b.c"\n  role = {role}\n}}\n'


OVERRIDDEN_ROLE_LOCAL = {
    "main.tf": 'locals {\n  role = "roles/bigquery.dataViewer"\n}\n' + _grant("local.role"),
    "main_override.tf": 'locals {\n  role = "roles/owner"\n}\n',
}

EVADED = {
    # 1. Override files are merged after every ordinary file, whatever their names.
    "override-file-local": (OVERRIDDEN_ROLE_LOCAL, "no-primitive-roles"),  # caught before only by name order
    "override-file-named-first": (
        {
            "a_override.tf": 'locals {\n  role = "roles/owner"\n}\n',
            "z.tf": 'locals {\n  role = "roles/logging.viewer"\n}\n' + _grant("local.role"),
        },
        "no-primitive-roles",
    ),
    "override-file-role": (
        {"main.tf": _grant('"roles/logging.viewer"'), "override.tf": _grant('"roles/owner"').replace("  project", "#")},
        "no-primitive-roles",
    ),
    "override-file-json": (
        {
            "main.tf": _grant('"roles/logging.viewer"'),
            "x_override.tf.json": json.dumps(
                {"resource": {"google_project_iam_member": {"m": {"role": 'roles/${"owner"}'}}}}
            ),
        },
        "no-primitive-roles",
    ),
    "override-file-role-from-its-base": (  # the override's `each.value` is its base's
        {
            "main.tf": _grant('"roles/logging.viewer"', extra='  for_each = toset(["roles/owner"])\n'),
            "override.tf": 'resource "google_project_iam_member" "m" {\n  role = each.value\n}\n',
        },
        "no-primitive-roles",
    ),
    "override-file-member": (  # the agent's own role, handed to someone else by an override
        {
            "main.tf": 'resource "google_project_iam_member" "m" {\n  project = "p"\n'
            f'  role = "roles/dataform.serviceAgent"\n  member = "{AGENT}"\n}}\n',
            "main_override.tf": 'resource "google_project_iam_member" "m" {\n  member = "user:a@b.c"\n}\n',
        },
        "impersonation-on-accounts-only",
    ),
    "hidden-override-file": (  # Terraform ignores it, so lint must not let it narrow the role
        {"main.tf": _grant('"roles/owner"'), ".main_override.tf": _grant('"roles/viewer"').replace("  project", "#")},
        "no-primitive-roles",
    ),
    "override-file-for-each": (
        {
            "main.tf": _grant("each.value", extra='  for_each = toset(["roles/logging.viewer"])\n'),
            "override.tf": 'resource "google_project_iam_member" "m" {\n  for_each = toset(["roles/editor"])\n}\n',
        },
        "no-primitive-roles",
    ),
    # 2. Templates of literals, and constant expressions, are folded.
    "template-of-a-literal": ({"main.tf": _grant('"roles/${"owner"}"')}, "no-primitive-roles"),
    "nested-template": ({"main.tf": _grant('"roles/${"${"ow"}${"ner"}"}"')}, "no-primitive-roles"),
    "join": ({"main.tf": _grant('join("", ["roles/", "own", "er"])')}, "no-primitive-roles"),
    "format-of-a-local": (
        {"main.tf": 'locals {\n  r = "editor"\n}\n' + _grant('format("roles/%s", local.r)')},
        "no-primitive-roles",
    ),
    "template-in-json": (
        {
            "main.tf.json": json.dumps(
                {
                    "resource": {
                        "google_project_iam_member": {
                            "m": {"project": "p", "member": "user:a@b.c", "role": 'roles/${"own"}${lower("ER")}'}
                        }
                    }
                }
            )
        },
        "no-primitive-roles",
    ),
    "heredoc": ({"main.tf": _grant("trimspace(<<-EOT\n    roles/owner\n    EOT\n  )")}, "no-primitive-roles"),
    "a-variable": ({"main.tf": _grant("var.role")}, "role-is-constant"),
    "a-conditional-on-a-variable": ({"main.tf": _grant('var.x ? "roles/owner" : "roles/viewer"')}, "role-is-constant"),
    "a-function-lint-does-not-evaluate": ({"main.tf": _grant('base64decode("cm9sZXMvb3duZXI=")')}, "role-is-constant"),
    "a-template-directive": ({"main.tf": _grant('"roles/%{if true}owner%{endif}"')}, "role-is-constant"),
    "a-for-each-over-a-variable": (
        {"main.tf": _grant("each.value", extra="  for_each = var.roles\n")},
        "role-is-constant",
    ),
    "a-data-source": ({"main.tf": _grant("data.google_iam_role.r.name")}, "role-is-constant"),
    # 3. `for` expressions over constants are evaluated, for `for_each` too.
    "for-expression-in-for-each": (
        {"main.tf": _grant("each.value", extra='  for_each = { for r in ["roles/owner"] : r => r }\n')},
        "no-primitive-roles",
    ),
    "for-expression-over-a-local": (
        {
            "main.tf": 'locals {\n  names = ["viewer", "owner"]\n}\n'
            + _grant("each.key", extra='  for_each = { for n in local.names : "roles/${n}" => n if n != "viewer" }\n')
        },
        "no-primitive-roles",
    ),
    "for-each-over-objects": (
        {
            "main.tf": 'locals {\n  grants = { a = { role = "roles/editor" } }\n}\n'
            + _grant("each.value.role", extra="  for_each = local.grants\n")
        },
        "no-primitive-roles",
    ),
    "for-expression-in-a-local-list": (
        {"main.tf": 'locals {\n  roles = [for r in ["owner"] : "roles/${r}"]\n}\n' + _grant("local.roles[0]")},
        "no-primitive-roles",
    ),
    "count": (
        {
            "main.tf": 'locals {\n  roles = ["roles/logging.viewer", "roles/owner"]\n}\n'
            + _grant("local.roles[count.index]", extra="  count = 2\n")
        },
        "no-primitive-roles",
    ),
    # 4. A dataset's `access` blocks replace its ACL; OWNER is Data Owner's legacy name.
    "dataset-access-block-owner": (
        {
            "main.tf": 'resource "google_bigquery_dataset" "d" {\n  dataset_id = "d"\n'
            '  access {\n    role          = "OWNER"\n    user_by_email = "a@b.c"\n  }\n}\n'
        },
        "additive-iam-only",
    ),
    "dataset-access-block-owner-is-data-owner": (
        {
            "main.tf": 'resource "google_bigquery_dataset" "d" {\n  dataset_id = "d"\n'
            '  access {\n    role          = "OWNER"\n    user_by_email = "a@b.c"\n  }\n}\n'
        },
        "bigquery-data-roles",
    ),
    "dataset-access-block-writer": (
        {
            "main.tf": 'resource "google_bigquery_dataset" "d" {\n  dataset_id = "d"\n'
            '  access {\n    role          = "WRITER"\n    user_by_email = "a@b.c"\n  }\n}\n'
        },
        "additive-iam-only",
    ),
    "dataset-access-block-reader-dynamic": (
        {
            "main.tf": 'resource "google_bigquery_dataset" "d" {\n  dataset_id = "d"\n'
            '  dynamic "access" {\n    for_each = ["a@b.c"]\n    content {\n      role = "READER"\n'
            "      user_by_email = access.value\n    }\n  }\n}\n"
        },
        "additive-iam-only",
    ),
    "dataset-access-beside-an-iam-member-on-the-dataset": (
        {
            "main.tf": 'resource "google_bigquery_dataset_access" "a" {\n  dataset_id = "d"\n  role = "READER"\n'
            '  user_by_email = "a@b.c"\n}\n'
            'resource "google_bigquery_dataset_iam_member" "m" {\n  dataset_id = "d"\n'
            '  role = "roles/bigquery.dataViewer"\n  member = "user:b@b.c"\n}\n'
        },
        "additive-iam-only",
    ),
    "dataset-access-resource-owner-is-data-owner": (
        {
            "main.tf": 'resource "google_bigquery_dataset_access" "a" {\n  dataset_id = "d"\n  role = "OWNER"\n'
            '  user_by_email = "a@b.c"\n}\n'
        },
        "bigquery-data-roles",
    ),
    # 5. Roles that let their holder grant itself anything, predefined or custom, decided from permissions.
    "project-iam-admin": ({"main.tf": _grant('"roles/resourcemanager.projectIamAdmin"')}, "no-iam-admin-roles"),
    "security-admin": ({"main.tf": _grant('"roles/iam.securityAdmin"')}, "no-iam-admin-roles"),
    "storage-admin-on-a-project": ({"main.tf": _grant('"roles/storage.admin"')}, "no-iam-admin-roles"),
    "service-account-admin-on-a-project": (
        {"main.tf": _grant('"roles/iam.serviceAccountAdmin"')},
        "impersonation-on-accounts-only",
    ),
    "project-iam-admin-on-a-folder": (
        {"main.tf": _grant('"roles/resourcemanager.projectIamAdmin"', type_="google_folder_iam_member")},
        "no-iam-admin-roles",
    ),
    "custom-role-setting-iam": (
        {
            "main.tf": 'resource "google_project_iam_custom_role" "c" {\n  project = "p"\n  role_id = "c"\n'
            '  title = "c"\n  permissions = ["bigquery.jobs.create", "resourcemanager.projects.setIamPolicy"]\n}\n'
            + _grant("google_project_iam_custom_role.c.id")
        },
        "no-iam-admin-roles",
    ),
    "custom-role-acting-as-accounts-by-name": (
        {
            "main.tf": 'resource "google_project_iam_custom_role" "c" {\n  project = "p"\n  role_id = "c"\n'
            '  title = "c"\n  permissions = ["iam.serviceAccounts.actAs"]\n}\n' + _grant('"projects/p/roles/c"')
        },
        "no-iam-admin-roles",
    ),
    "organization-custom-role-minting-tokens": (
        {
            "main.tf": 'resource "google_organization_iam_custom_role" "c" {\n  org_id = "1"\n  role_id = "c"\n'
            '  title = "c"\n  permissions = ["iam.serviceAccounts.getAccessToken"]\n}\n'
            + _grant("google_organization_iam_custom_role.c.name", type_="google_organization_iam_member")
        },
        "no-iam-admin-roles",
    ),
    "custom-role-with-unknown-permissions": (
        {
            "main.tf": 'resource "google_project_iam_custom_role" "c" {\n  project = "p"\n  role_id = "c"\n'
            '  title = "c"\n  permissions = var.permissions\n}\n' + _grant("google_project_iam_custom_role.c.id")
        },
        "role-is-constant",
    ),
    "custom-role-defined-elsewhere": ({"main.tf": _grant('"projects/p/roles/anything"')}, "role-is-constant"),
}


@pytest.mark.parametrize(("files", "rule"), EVADED.values(), ids=EVADED.keys())
def test_lint_reads_what_terraform_applies(tmp_path, files, rule):
    result = _lint(tmp_path, files)
    assert result.returncode == 1, result.output
    assert f"[{rule}]" in result.stderr, result.stderr


def test_the_override_is_named_where_the_finding_is(tmp_path):
    files = {
        "main.tf": _grant('"roles/logging.viewer"'),
        "override.tf": _grant('"roles/owner"').replace("  project", "#"),
    }
    result = _lint(tmp_path, files)
    assert "main.tf: resource google_project_iam_member.m (as overridden in " in result.stderr
    assert "override.tf): [no-primitive-roles]" in result.stderr


@pytest.mark.parametrize(
    "files",
    [
        {  # the override narrows the role: Terraform applies the narrow one
            "main.tf": 'locals {\n  role = "roles/owner"\n}\n' + _grant("local.role"),
            "main_override.tf": 'locals {\n  role = "roles/logging.viewer"\n}\n',
        },
        {"main.tf": _grant('"roles/owner"'), "override.tf": _grant('"roles/logging.viewer"').replace("  project", "#")},
        {  # Terraform skips a hidden file, override or not
            "main.tf": _grant('"roles/logging.viewer"'),
            ".main_override.tf": _grant('"roles/owner"').replace("  project", "#"),
        },
        {"main.tf": _grant("each.value", extra="  for_each = toset([])\n")},  # no instance, no grant
        {"main.tf": _grant('"roles/${"logging"}.viewer"')},
        {  # a custom role of harmless permissions, on a project
            "main.tf": 'resource "google_project_iam_custom_role" "c" {\n  project = "p"\n  role_id = "c"\n'
            '  title = "c"\n  permissions = ["bigquery.jobs.create"]\n}\n'
            + _grant("google_project_iam_custom_role.c.id")
        },
        {  # a custom role that acts as one account, granted on that account only
            "main.tf": 'resource "google_project_iam_custom_role" "c" {\n  project = "p"\n  role_id = "c"\n'
            '  title = "c"\n  permissions = ["iam.serviceAccounts.actAs"]\n}\n'
            'resource "google_service_account_iam_member" "m" {\n'
            f'  service_account_id = "{SA}"\n  member = "user:a@b.c"\n'
            "  role = google_project_iam_custom_role.c.id\n}\n"
        },
    ],
    ids=[
        "override-narrows",
        "override-narrows-a-resource",
        "hidden-file",
        "empty-for-each",
        "template",
        "custom-role",
        "custom-role-on-an-account",
    ],
)
def test_what_terraform_applies_safely_passes(tmp_path, files):
    result = _lint(tmp_path, files)
    assert result.returncode == 0, result.output


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"main.tf": _grant('"roles/x"'), "override.tf": _grant('"roles/owner"', name="other")}, "overrides no block"),
        (
            {"main.tf": 'locals {\n  a = "x"\n}\n', "override.tf": 'locals {\n  b = "roles/owner"\n}\n'},
            "overrides no local",
        ),
        ({"a.tf": 'locals {\n  a = "x"\n}\n', "b.tf": 'locals {\n  a = "y"\n}\n'}, "local.a is defined twice"),
        ({"a.tf": _grant('"roles/x"'), "b.tf": _grant('"roles/y"')}, "is declared twice"),
    ],
    ids=["override-without-a-block", "override-without-a-local", "local-twice", "resource-twice"],
)
def test_what_terraform_refuses_is_bad_input(tmp_path, files, error):
    result = _lint(tmp_path, files)
    assert result.returncode == 2, result.output
    assert error in result.stderr and "Terraform refuses it" in result.stderr


def test_a_dataset_owner_opt_in_covers_a_legacy_owner_entry_and_an_entry_alone_on_its_dataset_is_additive():
    text = (
        'resource "google_bigquery_dataset_access" "a" {\n'
        "  # Dataset owner opt-in: the code shares marts through authorized views\n"
        '  dataset_id = "d"\n  role = "OWNER"\n  user_by_email = "a@b.c"\n}\n'
    )
    assert _rules({"main.tf": text}) == {"bigquery-data-roles": "warning"}
    beside = text + 'resource "google_bigquery_dataset_iam_member" "m" {\n  dataset_id = "d"\n  role = "x"\n}\n'
    assert _rules({"main.tf": beside})["additive-iam-only"] == "violation"


def test_iam_power_is_read_from_googles_role_table():
    """Policy's roles with IAM power are the table's (read through `access/roles.py`, which policy cannot
    import), each with a permission the table gives it; the others are really absent from the table. Token
    Creator and its kin are exactly the table's roles that act as (or administer) service accounts."""
    table = {r: policy._iam_power(roles.permissions(r)) for r in roles._table()}
    from_table = {r: p for r, p in policy.IAM_ADMIN_ROLES.items() if roles.known(r)}
    assert set(from_table) == {r for r, power in table.items() if power}, "regenerate policy.IAM_ADMIN_ROLES"
    assert all(p in table[r] for r, p in from_table.items())
    assert all(policy._iam_power([p]) for p in policy.IAM_ADMIN_ROLES.values())
    impersonating = {"iam.serviceAccounts.actAs", "iam.serviceAccounts.getAccessToken"}
    impersonating.add("iam.serviceAccounts.setIamPolicy")
    assert {r for r in roles._table() if roles.permissions(r) & impersonating} == policy.IMPERSONATION_ROLES


def test_linting_a_rendered_module_never_loads_the_spec(tmp_path):
    """`lint` stays free of the spec's import cost (`dataform_infra.access` would load it)."""
    module = tmp_path / "staging"
    module.mkdir()
    for name, text in rendered("shipped")["staging"].items():
        (module / name).write_text(text)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dataform_infra", "lint", str(module)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert result.returncode == 0, result.stdout
    assert not {m for m in modules if m.startswith(("dataform_infra.spec", "dataform_infra.access"))}
