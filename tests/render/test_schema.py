"""Every rendered module uses only provider types, attributes and blocks, correctly nested, that the provider
lines its spec admits have: a 7.45-pinned spec is held to v7.45.0 and v8.7.0 (it renders the same HCL but its
constraint), an 8.7-pinned one to v8.7.0."""

import pytest

from dataform_infra.spec.formats import provider_floor
from dataform_infra.specset import SpecSet
from tests.fakegcp.schema import VERSIONS
from tests.hcl_schema import check_module
from tests.support.specsets import SPEC_SETS, all_modules, rendered


def _admitted(spec_set: str, env: str) -> list[str]:
    """The fact sets a module's `provider_version` admits (a spec pinned to ~> 8.7 may use 8.x-only types)."""
    floor = provider_floor(SpecSet(SPEC_SETS[spec_set]).deployment.environments[env].provider_version)
    return [v for v in VERSIONS if tuple(map(int, v.split("."))) >= floor or v.split(".")[0] == str(floor[0])]


@pytest.mark.parametrize(("spec_set", "env", "version"), [(s, e, v) for s, e in all_modules() for v in _admitted(s, e)])
def test_rendered_module_conforms_to_provider_schema(spec_set, env, version):
    assert check_module(rendered(spec_set)[env], version) == []


def test_every_spec_pinned_to_7_45_is_held_to_both_fact_sets():
    assert _admitted("shipped", "staging") == list(VERSIONS)


@pytest.mark.parametrize(
    ("hcl", "fragment"),
    [
        (
            'resource "google_service_account" "a" {\n  account_id = "abcdef"\n  colour = "red"\n}\n',
            "attribute `colour` is unknown",
        ),
        ('resource "google_service_account" "a" {\n  display_name = "x"\n}\n', "required attribute `account_id`"),
        ('resource "google_service_account" "a" {\n  account_id = "abcdef"\n  email = "x"\n}\n', "computed-only"),
        (
            'resource "google_dataform_repository" "a" {\n  name = "r"\n  git_remote_settings = {}\n}\n',
            "attribute `git_remote_settings` is a block",
        ),
        (
            'resource "google_dataform_repository_release_config" "a" {\n  name = "r"\n  git_commitish = "m"\n}\n',
            "exists only in google-beta",
        ),
        ('resource "google_secret_manager_secret" "a" {\n  secret_id = "s"\n}\n', "block `replication` is required"),
        (
            'resource "google_dataform_repository" "a" {\n  name = "r"\n  git_remote_settings {\n    url = "u"\n'
            '    default_branch = "main"\n    authentication_token_secret_version = "v"\n'
            '    ssh_authentication_config {\n      user_private_key_secret_version = "k"\n'
            '      host_public_key = "h"\n    }\n  }\n}\n',
            "exactly one of",
        ),
        ('resource "google_service_account" "a" {\n  account_id = "Bad_Id"\n}\n', "doesn't match regexp"),
        ('resource "google_project_iam_binding" "a" {\n  project = "p"\n}\n', "type not in provider"),
    ],
)
def test_schema_check_catches_mistakes(hcl, fragment):
    errors = check_module({"main.tf": hcl})
    assert any(fragment in e for e in errors), errors
