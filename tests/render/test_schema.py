"""Every rendered module uses only provider types, attributes and blocks, correctly nested, that both provider
lines dfinfra covers have (v7.45.0 and v8.7.0: a 7.45-pinned spec renders the same HCL but its constraint)."""

import pytest

from tests.conftest import all_modules, rendered
from tests.fakegcp.schema import VERSIONS
from tests.hcl_schema import check_module


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("spec_set", "env"), all_modules())
def test_rendered_module_conforms_to_provider_schema(spec_set, env, version):
    assert check_module(rendered(spec_set)[env], version) == []


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
