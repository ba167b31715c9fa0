"""Creating an IAM member the parent's policy already holds succeeds, as with the real provider.

The provider's create of any `*_iam_member` is a read-modify-write of the parent's IAM policy
(x_identity.api in tests/provider_schema/constraints.json): a member already there is no 409, the
policy is unchanged and the resource takes the id `x_identity.id_format` names. Adopting a module
whose grants exist (made by hand, by another configuration, or forgotten by `state rm`) depends on it.
Every other type keeps Google's 409 (tests/e2e/test_offline_cloud.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.fakegcp.cloud import Cloud
from tests.fakegcp.engine import CloudError, ProviderConfig, normalized_member
from tests.fakegcp.iam import CREATED_KEY, IAM_MEMBER_KINDS
from tests.fakegcp.schema import GOOGLE, GOOGLE_BETA, VERSION_VARIABLE, VERSIONS, provider_schemas
from tests.fakegcp.store import Store
from tests.fakegcp.types import IamMember, resource_type

HOST, NUMBER, REGION = "acme-host", "111111111111", "europe-west2"
RUNNER = f"runner@{HOST}.iam.gserviceaccount.com"
ACCOUNT = f"projects/{HOST}/serviceAccounts/{RUNNER}"
ROLE = "roles/viewer"
MEMBER, NORMALIZED = "user:Ann@Example.com", "user:ann@example.com"
KEY = f"projects/{HOST}/locations/{REGION}/keyRings/dataform/cryptoKeys/repository"

# type -> (its configuration without role and member, the parent part of the id x_identity.id_format names)
PARENTS = {
    "google_project_iam_member": ({"project": HOST}, HOST),
    "google_service_account_iam_member": ({"service_account_id": ACCOUNT}, ACCOUNT),
    "google_secret_manager_secret_iam_member": ({"secret_id": "git-token"}, f"projects/{HOST}/secrets/git-token"),
    "google_bigquery_dataset_iam_member": ({"dataset_id": "marts"}, f"projects/{HOST}/datasets/marts"),
    "google_dataform_repository_iam_member": (
        {"repository": "analytics"},
        f"projects/{HOST}/locations/{REGION}/repositories/analytics",
    ),
    "google_kms_crypto_key_iam_member": ({"crypto_key_id": KEY}, KEY),
    "google_storage_bucket_iam_member": ({"bucket": "landing"}, "b/landing"),
    "google_bigquery_connection_iam_member": (
        {"project": HOST, "location": "EU", "connection_id": "lake"},
        f"projects/{HOST}/locations/EU/connections/lake",
    ),
}

# (version, provider, type): every IAM member type of every provider version the offline cloud serves.
MEMBER_TYPES = sorted(
    {
        (version, source, name)
        for version in VERSIONS
        for source in (GOOGLE, GOOGLE_BETA)
        for name in provider_schemas(version)[source]["resource_schemas"]
        if name.endswith("_iam_member")
    }
)


def _cloud(tmp_path: Path) -> Cloud:
    """A host project with every parent an IAM member here names, and their APIs enabled."""
    store = Store(tmp_path / "cloud.sqlite")
    store.add_project(HOST, NUMBER)
    cloud = Cloud(store)
    cloud.defaults = ProviderConfig(project=HOST, region=REGION)
    for service in ("iam", "secretmanager", "bigquery", "dataform"):
        cloud.enable_service(HOST, f"{service}.googleapis.com")
    for kind, id_ in (
        ("google_service_account", ACCOUNT),
        ("google_secret_manager_secret", f"projects/{HOST}/secrets/git-token"),
        ("google_bigquery_dataset", f"projects/{HOST}/datasets/marts"),
        ("google_dataform_repository", f"projects/{HOST}/locations/{REGION}/repositories/analytics"),
        ("google_kms_crypto_key", KEY),
        ("google_storage_bucket", "landing"),
        ("google_bigquery_connection", f"projects/{HOST}/locations/EU/connections/lake"),
    ):
        store.put(kind, id_, {"id": id_})
    return cloud


def _create(source: str, name: str, cloud: Cloud, member: str = MEMBER) -> dict:
    rtype = resource_type(source, "resource", name)
    config = {**PARENTS[name][0], "role": ROLE, "member": member}
    planned, _ = rtype.plan(None, copy.deepcopy(config), config, cloud.defaults)
    assert planned is not None
    return rtype.create(planned, cloud)


def test_every_iam_member_type_is_taught_its_parent(monkeypatch):
    assert MEMBER_TYPES, "the schema has IAM member types"
    assert {name for _, _, name in MEMBER_TYPES} == set(PARENTS) == set(IAM_MEMBER_KINDS)
    for version, source, name in MEMBER_TYPES:
        monkeypatch.setenv(VERSION_VARIABLE, version)
        assert isinstance(resource_type(source, "resource", name), IamMember), name


@pytest.mark.parametrize(("version", "source", "name"), MEMBER_TYPES, ids=lambda v: v.rsplit("/", 1)[-1])
def test_creating_a_member_the_policy_holds_succeeds_with_the_same_object(tmp_path, monkeypatch, version, source, name):
    monkeypatch.setenv(VERSION_VARIABLE, version)  # the facts of the version that serves it
    cloud = _cloud(tmp_path)
    expected_id = f"{PARENTS[name][1]}/{ROLE}/{NORMALIZED}"
    first = _create(source, name, cloud)
    assert first["id"] == expected_id
    [(_, stored_id, stored)] = cloud.store.list(name)
    assert stored_id == expected_id
    # Again, and in another casing of the same principal (the API matches members case-insensitively).
    for member in (MEMBER, MEMBER.upper().replace("USER:", "user:")):
        again = _create(source, name, cloud, member)
        assert again["id"] == expected_id
        assert again["member"] == member  # what the configuration says, as the plan promised
        assert {k: v for k, v in again.items() if k != "member"} == {k: v for k, v in first.items() if k != "member"}
        assert cloud.store.list(name) == [(name, expected_id, stored)], "no second object, creation time kept"
    assert CREATED_KEY in stored


def test_other_types_still_answer_409(tmp_path):
    cloud = _cloud(tmp_path)
    rtype = resource_type(GOOGLE, "resource", "google_service_account")
    config = {"account_id": "runner-two"}
    planned, _ = rtype.plan(None, dict(config), config, cloud.defaults)
    rtype.create(copy.deepcopy(planned), cloud)
    with pytest.raises(CloudError, match="Error 409: Requested entity already exists"):
        rtype.create(copy.deepcopy(planned), cloud)


@pytest.mark.parametrize(
    ("member", "normalized"),
    [
        (
            "serviceAccount:Runner@Acme-Host.iam.gserviceaccount.com",
            "serviceAccount:runner@acme-host.iam.gserviceaccount.com",
        ),
        ("user:Ann@Example.com", "user:ann@example.com"),
        ("group:Data-Eng@Example.com", "group:data-eng@example.com"),
        (
            "deleted:serviceAccount:Old@Acme.iam.gserviceaccount.com?uid=12",
            "deleted:serviceAccount:old@acme.iam.gserviceaccount.com?uid=12",
        ),
        ("allAuthenticatedUsers", "allAuthenticatedUsers"),
        (
            "principalSet://iam.googleapis.com/locations/global/workforcePools/Pool/group/Eng",
            "principalSet://iam.googleapis.com/locations/global/workforcePools/Pool/group/Eng",
        ),
    ],
)
def test_member_normalized_lower_cases_after_the_type_only(member, normalized):
    """x_identity: `member_normalized` lower-cases the part after the first ':' (the second for deleted:
    and iamMember:), unless the principal is case-sensitive; the type keeps its case."""
    assert normalized_member(member) == normalized


# --- with real terraform --------------------------------------------------------------------------------

HEADER = f"""terraform {{
  required_providers {{
    google = {{ source = "hashicorp/google", version = "~> 7.45" }}
  }}
}}
provider "google" {{
  project = "{HOST}"
  region  = "{REGION}"
}}
"""
SETUP = """resource "google_project_service" "iam" {
  service            = "iam.googleapis.com"
  disable_on_destroy = false
}
resource "google_service_account" "runner" {
  account_id = "dataform-runner"
  depends_on = [google_project_service.iam]
}
"""
RUNNER_EMAIL = f"dataform-runner@{HOST}.iam.gserviceaccount.com"


def _grants(after: str = "") -> str:
    """Two grants naming their parent and member literally, as a hand-written module would."""
    depends = f"\n  depends_on = [{after}]" if after else ""
    return f"""resource "google_project_iam_member" "job_user" {{
  project = "{HOST}"
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:{RUNNER_EMAIL}"{depends}
}}
resource "google_service_account_iam_member" "token_creator" {{
  service_account_id = "projects/{HOST}/serviceAccounts/{RUNNER_EMAIL}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "user:Ann@Example.com"{depends}
}}
"""


@pytest.mark.terraform
def test_applying_grants_that_already_exist_succeeds(tmp_path, terraform_bin):
    """A second configuration (as a module being adopted is) grants what the first already granted."""
    from tests.fakegcp.harness import OfflineCloud

    cloud = OfflineCloud(tmp_path / "cloud", terraform_bin)
    cloud.store.add_project(HOST, NUMBER)
    first, second = tmp_path / "first", tmp_path / "second"
    for directory, body in ((first, SETUP + _grants("google_service_account.runner")), (second, _grants())):
        directory.mkdir()
        (directory / "main.tf").write_text(HEADER + body)
        cloud.init(directory)
    cloud.terraform(first, "apply", "-input=false", "-no-color", "-auto-approve")
    kinds = ("google_project_iam_member", "google_service_account_iam_member")
    before = {kind: cloud.store.list(kind) for kind in kinds}
    assert all(len(objects) == 1 for objects in before.values()), before

    result = cloud.terraform(second, "apply", "-input=false", "-no-color", "-auto-approve", check=False)
    assert result.returncode == 0, result.output
    assert "409" not in result.output
    assert {kind: cloud.store.list(kind) for kind in kinds} == before  # no duplicate, creation times kept
    state = json.loads(cloud.terraform(second, "show", "-json").stdout)
    ids = {r["type"]: r["values"]["id"] for r in state["values"]["root_module"]["resources"]}
    assert ids == {  # x_identity.id_format: <parent>/<role>/<member_normalized>
        "google_project_iam_member": f"{HOST}/roles/bigquery.jobUser/serviceAccount:{RUNNER_EMAIL}",
        "google_service_account_iam_member": (
            f"projects/{HOST}/serviceAccounts/{RUNNER_EMAIL}/roles/iam.serviceAccountTokenCreator/user:ann@example.com"
        ),
    }
    assert sorted(ids.values()) == sorted(i for objects in before.values() for _, i, _ in objects)
    plan = cloud.terraform(second, "plan", "-input=false", "-no-color", "-detailed-exitcode")
    assert plan.returncode == 0, plan.output
