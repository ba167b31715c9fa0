"""The offline cloud is strict and faithful: Terraform's and the provider's own diagnostics fire,
the served schema is the reference schema, drift, replacement, import and state locking behave."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakegcp.harness import plan_counts
from tests.fakegcp.schema import provider_schemas

pytestmark = pytest.mark.terraform

PROVIDERS = """terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.45"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.45"
    }
  }
}

provider "google" {
  project = "acme-offline-one"
  region  = "europe-west2"
}

provider "google-beta" {
  project = "acme-offline-one"
  region  = "europe-west2"
}
"""

RUNNER = """resource "google_project_service" "iam" {
  service            = "iam.googleapis.com"
  disable_on_destroy = false
}

resource "google_service_account" "runner" {
  account_id = "dataform-runner"
  depends_on = [google_project_service.iam]
}
"""


def module(tmp_path: Path, body: str, name: str = "module") -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "main.tf").write_text(PROVIDERS + "\n" + body)
    return directory


def validate(cloud, directory: Path):
    cloud.init(directory)
    return cloud.terraform(directory, "validate", "-no-color", check=False)


REPOSITORY = """resource "google_dataform_repository" "r" {{
  name = "analytics"
  git_remote_settings {{
    url            = "https://github.com/acme/analytics.git"
    default_branch = "main"
{auth}
  }}
}}
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'resource "google_service_account" "a" {\n  account_id = "runner-one"\n  colour = "blue"\n}\n',
            "Unsupported argument",
        ),
        ('resource "google_service_account" "a" {\n  display_name = "x"\n}\n', 'The argument "account_id" is required'),
        (
            'resource "google_dataform_repository" "r" {\n  name = "analytics"\n  git_remote_settings = {\n'
            '    url = "https://github.com/a/b.git"\n    default_branch = "main"\n  }\n}\n',
            'Did you mean to define a block of type "git_remote_settings"?',
        ),
        (
            'resource "google_dataform_repository_release_config" "r" {\n  name = "nightly"\n'
            '  git_commitish = "main"\n}\n',
            "The provider hashicorp/google does not support resource type",
        ),
        (
            REPOSITORY.format(
                auth='    authentication_token_secret_version = "projects/p/secrets/t/versions/1"\n'
                "    ssh_authentication_config {\n"
                '      user_private_key_secret_version = "projects/p/secrets/k/versions/1"\n'
                '      host_public_key = "ssh-ed25519 AAAA"\n    }'
            ),
            "exactly one of `git_remote_settings.0.authentication_token_secret_version`",
        ),
        (
            'resource "google_service_account" "a" {\n  account_id = "runner-one"\n'
            "  depends_on = [module.service-accounts]\n}\n",
            "Reference to undeclared module",
        ),
        ('resource "google_service_account" "a" {\n  account_id = "Runner_One"\n}\n', "doesn't match regexp"),
    ],
    ids=[
        "unknown-attribute",
        "missing-required",
        "block-as-attribute",
        "beta-only-on-ga",
        "token-and-ssh",
        "undeclared-module",
        "provider-regex",
    ],
)
def test_validate_rejects(tmp_path, cloud, body, expected):
    result = validate(cloud, module(tmp_path, body))
    assert result.returncode == 1, result.output
    assert expected in " ".join(result.output.split()), result.output


def test_served_schema_is_the_reference_schema(tmp_path, cloud):
    directory = module(tmp_path, "")
    cloud.init(directory)
    served = json.loads(cloud.terraform(directory, "providers", "schema", "-json").stdout)["provider_schemas"]

    def strip(node):  # terraform adds description_kind everywhere; the reference omits descriptions
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "description_kind"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    reference = provider_schemas()
    assert sorted(served) == sorted(reference)
    for source, schemas in reference.items():
        for key in ("provider", "resource_schemas", "data_source_schemas"):
            assert strip(served[source].get(key)) == schemas.get(key), f"{source} {key}"


def _apply(cloud, directory: Path) -> None:
    cloud.terraform(directory, "apply", "-input=false", "-no-color", "-auto-approve")


def _plan(cloud, directory: Path) -> dict:
    cloud.terraform(directory, "plan", "-input=false", "-no-color", "-out=tfplan")
    return plan_counts(json.loads(cloud.terraform(directory, "show", "-json", "tfplan").stdout))


@pytest.fixture()
def runner_module(tmp_path, cloud):
    cloud.store.add_project("acme-offline-one", "100000000001")
    directory = module(tmp_path, RUNNER)
    cloud.init(directory)
    _apply(cloud, directory)
    return directory


def test_computed_attributes_follow_the_identity_facts(cloud, runner_module):
    state = json.loads(cloud.terraform(runner_module, "show", "-json").stdout)
    account = next(r for r in state["values"]["root_module"]["resources"] if r["type"] == "google_service_account")
    values = account["values"]
    assert values["email"] == "dataform-runner@acme-offline-one.iam.gserviceaccount.com"
    assert values["member"] == "serviceAccount:" + values["email"]
    assert values["name"] == values["id"] == "projects/acme-offline-one/serviceAccounts/" + values["email"]
    assert values["unique_id"].isdigit()


def test_unknown_values_during_plan(tmp_path, cloud):
    cloud.store.add_project("acme-offline-one", "100000000001")
    directory = module(tmp_path, RUNNER)
    cloud.init(directory)
    cloud.terraform(directory, "plan", "-input=false", "-out=tfplan")
    plan = json.loads(cloud.terraform(directory, "show", "-json", "tfplan").stdout)
    change = next(c for c in plan["resource_changes"] if c["type"] == "google_service_account")["change"]
    assert change["after_unknown"]["email"] is True and change["after_unknown"]["unique_id"] is True
    assert change["after"]["project"] == "acme-offline-one"  # planned from the provider, known now


def test_drift_is_planned_for_recreation(cloud, runner_module):
    assert _plan(cloud, runner_module) == {"create": 0, "update": 0, "delete": 0, "replace": 0}
    email = "dataform-runner@acme-offline-one.iam.gserviceaccount.com"
    assert cloud.store.delete("google_service_account", f"projects/acme-offline-one/serviceAccounts/{email}")
    assert _plan(cloud, runner_module) == {"create": 1, "update": 0, "delete": 0, "replace": 0}


def test_force_new_attribute_plans_a_replacement(cloud, runner_module):
    main = runner_module / "main.tf"
    main.write_text(main.read_text().replace('account_id = "dataform-runner"', 'account_id = "dataform-runner-2"'))
    assert _plan(cloud, runner_module) == {"create": 0, "update": 0, "delete": 0, "replace": 1}
    main.write_text(
        main.read_text().replace(
            'account_id = "dataform-runner-2"', 'account_id   = "dataform-runner"\n  display_name = "Runner"'
        )
    )
    assert _plan(cloud, runner_module) == {"create": 0, "update": 1, "delete": 0, "replace": 0}


def test_import_adopts_an_existing_object(cloud, runner_module):
    cloud.terraform(runner_module, "state", "rm", "google_service_account.runner")
    email = "dataform-runner@acme-offline-one.iam.gserviceaccount.com"
    cloud.terraform(
        runner_module,
        "import",
        "-input=false",
        "google_service_account.runner",
        f"projects/acme-offline-one/serviceAccounts/{email}",
    )
    assert _plan(cloud, runner_module) == {"create": 0, "update": 0, "delete": 0, "replace": 0}


def _failed_apply(cloud, tmp_path: Path, body: str, name: str = "module") -> str:
    """Output of an apply that must fail (exit 1), whitespace folded."""
    cloud.store.add_project("acme-offline-one", "100000000001")
    directory = module(tmp_path, body, name=name)
    cloud.init(directory)
    result = cloud.terraform(directory, "apply", "-input=false", "-no-color", "-auto-approve", check=False)
    assert result.returncode == 1, result.output
    return " ".join(result.output.split())


def test_creating_an_existing_object_is_a_409(tmp_path, cloud, runner_module):
    assert "Error 409: Requested entity already exists" in _failed_apply(cloud, tmp_path, RUNNER, name="twin")


def test_resources_need_their_api(tmp_path, cloud):
    body = 'resource "google_service_account" "a" {\n  account_id = "runner-one"\n}\n'
    assert "iam.googleapis.com has not been used in project acme-offline-one" in _failed_apply(cloud, tmp_path, body)


def test_grant_to_a_service_agent_that_does_not_exist_fails(tmp_path, cloud):
    body = (
        RUNNER
        + """
resource "google_service_account_iam_member" "agent" {
  service_account_id = google_service_account.runner.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-100000000001@gcp-sa-dataform.iam.gserviceaccount.com"
}
"""
    )
    output = _failed_apply(cloud, tmp_path, body)
    assert "service-100000000001@gcp-sa-dataform.iam.gserviceaccount.com does not exist" in output


def test_state_lock_blocks_a_second_run_and_force_unlock_releases_it(tmp_path, cloud):
    cloud.store.add_project("acme-offline-one", "100000000001")
    bucket = f"lock-test-{tmp_path.name[-20:].lower().replace('_', '-')}"
    cloud.gcs.create_bucket(bucket)
    backend = f'terraform {{\n  backend "gcs" {{\n    bucket = "{bucket}"\n    prefix = "lock"\n  }}\n}}\n'
    directory = module(tmp_path, backend + RUNNER)
    cloud.init(directory)
    # An apply waiting at its confirmation prompt holds the lock, as a colleague's run would.
    holder_env = {k: v for k, v in cloud.env.items() if k not in ("TF_INPUT", "TF_IN_AUTOMATION")}
    holder = subprocess.Popen(
        [cloud.terraform_bin, "apply", "-input=true"],
        cwd=directory,
        env=holder_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "lock/default.tflock" not in cloud.gcs.objects(bucket):
            assert time.monotonic() < deadline, "the waiting apply never took the lock"
            time.sleep(0.1)
        blocked = cloud.terraform(directory, "plan", "-input=false", "-no-color", "-lock-timeout=1s", check=False)
        assert blocked.returncode == 1
        assert "Error acquiring the state lock" in blocked.output
        lock_id = next(
            line.split(":", 1)[1].strip() for line in blocked.output.splitlines() if line.strip().startswith("ID:")
        )
        cloud.terraform(directory, "force-unlock", "-force", lock_id)
        assert "lock/default.tflock" not in cloud.gcs.objects(bucket)
        assert cloud.terraform(directory, "plan", "-input=false", "-lock-timeout=5s").returncode == 0
    finally:
        holder.kill()
        holder.wait()


def test_provider_block_rules_fail_at_validate_or_at_configure_as_recorded(tmp_path, cloud):
    """Schema validators reject at `validate`, naming the attribute; ProviderConfigure's checks pass
    `validate` and fail the plan (where the real provider configures itself)."""
    bad_timeout = PROVIDERS.replace(
        '  region  = "europe-west2"\n}\n\nprovider "google-beta"',
        ('  region  = "europe-west2"\n  request_timeout = "-5s"\n}\n\nprovider "google-beta"'),
    )
    directory = tmp_path / "timeout"
    directory.mkdir()
    (directory / "main.tf").write_text(bad_timeout + RUNNER)
    result = validate(cloud, directory)
    assert result.returncode == 1 and 'request_timeout = "-5s"' in result.output, result.output

    both = PROVIDERS.replace(
        '  region  = "europe-west2"\n}\n\nprovider "google-beta"',
        '  region  = "europe-west2"\n  prefer_global_endpoints   = true\n  prefer_regional_endpoints = true\n}\n\n'
        'provider "google-beta"',
    )
    directory = tmp_path / "endpoints"
    directory.mkdir()
    (directory / "main.tf").write_text(both + RUNNER)
    assert validate(cloud, directory).returncode == 0
    planned = cloud.terraform(directory, "plan", "-input=false", "-no-color", check=False)
    assert planned.returncode == 1
    assert "prefer_global_endpoints and prefer_regional_endpoints cannot both be true" in planned.output
