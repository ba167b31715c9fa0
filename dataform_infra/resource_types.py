"""Every Terraform type dfinfra renders, reads back from a plan or state, or reasons about: one entry each.

Before this table, a type's facts were spread over six modules (the deployer's permission table,
ownership's identity keys, the plan summary's stateful set and IAM target attributes, policy's type
names, topology's full resource names and render's import ids). Now render, deployer, ownership, the
plan summary, policy and topology all ask here, so adding a type is one entry plus its template,
its view-model and its tests.

Sources: the provider's `x_identity` facts (import ids, how an `*_iam_member` names its object; see
`tests/provider_schema/constraints.json`) and each API's access-control page (the permissions
Terraform's provider uses to create, read, update and delete the object). This module imports
nothing of dfinfra: it is the floor every other layer stands on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# The Google objects IAM grants on, as the access model and reviewers name them.
ObjectKind = Literal[
    "project",
    "service_account",
    "dataset",
    "secret",
    "repository",
    "git_repository_link",
    "crypto_key",
    "bucket",
    "connection",
]

# Full resource names (`//service.googleapis.com/...`), as the IAM Policy Troubleshooter takes them.
FULL_NAMES: dict[ObjectKind, str] = {
    "project": "//cloudresourcemanager.googleapis.com/projects/{project}",
    "service_account": "//iam.googleapis.com/projects/{project}/serviceAccounts/{id}",
    "dataset": "//bigquery.googleapis.com/projects/{project}/datasets/{id}",
    "secret": "//secretmanager.googleapis.com/projects/{project}/secrets/{id}",
    "repository": "//dataform.googleapis.com/projects/{project}/locations/{region}/repositories/{id}",
    "git_repository_link": "//developerconnect.googleapis.com/{id}",  # id: the link's own name
    "crypto_key": "//cloudkms.googleapis.com/{id}",  # id: projects/P/locations/L/keyRings/R/cryptoKeys/K
    "bucket": "//storage.googleapis.com/projects/_/buckets/{id}",  # a bucket's name is global: no project in it
    # The BigQuery Connection API names it (not BigQuery), as IAM and the Troubleshooter take it.
    "connection": "//bigqueryconnection.googleapis.com/projects/{project}/locations/{region}/connections/{id}",
}

# Where a deployer's permission applies: the project the object is created in, the object itself (for
# an `*_iam_member`: the object whose policy it edits), or the repository holding a Dataform config.
Scope = Literal["project", "self", "repository"]


@dataclass(frozen=True)
class Target:
    """How an `*_iam_member` names the object whose policy it edits.

    `attribute` holds the object's id; once applied the provider may store the object's long name there
    (`long_name`, a pattern with named groups `project`, `id` and optionally `region`). Otherwise the
    short id stands with the `project`/`region` attributes beside it.
    """

    kind: ObjectKind
    attribute: str
    long_name: str = ""
    region_attribute: str = "region"  # where the short form's region stands (a connection's is `location`)

    def locate(self, attrs: Mapping[str, str]) -> tuple[str, str, str] | None:
        """(project, id, region) of the object `attrs` (state or plan values) grant on."""
        value = attrs.get(self.attribute, "")
        if self.long_name:
            found = re.fullmatch(self.long_name, value)
            if found:
                parts = found.groupdict()
                return parts["project"], parts["id"], parts.get("region") or ""
        if self.kind == "service_account":  # only ever named by email (or a reference not yet known)
            return None
        if self.kind == "project":
            return value, value, ""
        if self.kind == "bucket":  # named alone (`b/<name>` once applied): bucket names are global
            return "_", value.removeprefix("b/"), ""
        return attrs.get("project", ""), value, attrs.get(self.region_attribute, "")


@dataclass(frozen=True)
class ResourceType:
    """One Terraform type, with every fact dfinfra's modules ask of it."""

    name: str
    provider: Literal["google", "google-beta"] = "google"
    mode: Literal["resource", "data"] = "resource"
    # The Google object it is (for types that create one), or None.
    object_kind: ObjectKind | None = None
    # For `*_iam_member` types: which object's policy they edit.
    target: Target | None = None
    # Attributes Google identifies the object by: the same object whichever module manages it
    # (ownership keys, for `dfinfra migrate`). IAM members are identified by role, member and target.
    identity: tuple[str, ...] = ()
    # `import` block id, formatted with the object's attributes; "" for types dfinfra never imports.
    import_id: str = ""
    # What a deployer needs to create, read, update and delete it, and where.
    deployer: tuple[tuple[Scope, tuple[str, ...]], ...] = ()
    # Deleting or replacing it loses data or an identity other systems refer to.
    stateful: bool = False
    # Attributes Google refuses to change once the object exists although the provider updates them in place
    # (it does not ForceNew them): a plan that updates one would fail half way through the apply.
    fixed_at_creation: tuple[str, ...] = ()
    # False for a type dfinfra only reasons about (policy refuses it), never emits.
    rendered: bool = True

    @property
    def address_prefix(self) -> str:
        """How Terraform addresses an instance: `TYPE` or `data.TYPE` (then `.NAME`)."""
        return f"data.{self.name}" if self.mode == "data" else self.name

    @property
    def is_iam_member(self) -> bool:
        return self.target is not None

    def import_id_of(self, **values: str) -> str:
        return self.import_id.format(**values)

    def identity_of(self, attrs: Mapping[str, str]) -> tuple[str, ...]:
        return (self.name, *(attrs.get(a, "") for a in self.identity))


def _crud(service: str, collection: str) -> tuple[str, ...]:
    return tuple(f"{service}.{collection}.{verb}" for verb in ("create", "get", "update", "delete"))


def _policy(service: str, collection: str) -> tuple[Scope, tuple[str, ...]]:
    return ("self", (f"{service}.{collection}.getIamPolicy", f"{service}.{collection}.setIamPolicy"))


PROJECT = ResourceType(
    "google_project",
    mode="data",
    object_kind="project",
    deployer=(("project", ("resourcemanager.projects.get",)),),
)
PROJECT_SERVICE = ResourceType(
    "google_project_service",
    identity=("project", "service"),
    deployer=(
        ("project", ("serviceusage.services.enable", "serviceusage.services.get", "serviceusage.services.list")),
    ),
)
# Google's pages name no permission for generateServiceIdentity: Service Usage Admin is assumed (verify).
PROJECT_SERVICE_IDENTITY = ResourceType(
    "google_project_service_identity",
    provider="google-beta",
    deployer=(("project", ("serviceusage.services.enable",)),),
)
SERVICE_ACCOUNT = ResourceType(
    "google_service_account",
    object_kind="service_account",
    import_id="projects/{project}/serviceAccounts/{email}",
    deployer=(("project", _crud("iam", "serviceAccounts")),),
    stateful=True,
)
BIGQUERY_DATASET = ResourceType(
    "google_bigquery_dataset",
    object_kind="dataset",
    import_id="projects/{project}/datasets/{dataset_id}",
    deployer=(
        ("project", ("bigquery.datasets.create",)),
        ("self", ("bigquery.datasets.get", "bigquery.datasets.update", "bigquery.datasets.delete")),
    ),
    stateful=True,
)
SECRET = ResourceType(
    "google_secret_manager_secret",
    object_kind="secret",
    identity=("project", "secret_id"),
    import_id="projects/{project}/secrets/{secret_id}",
    deployer=(("project", _crud("secretmanager", "secrets")),),
    stateful=True,
)
# Never rendered (a token never passes through Terraform); named so policy can refuse it.
SECRET_VERSION = ResourceType("google_secret_manager_secret_version", rendered=False)
REPOSITORY = ResourceType(
    "google_dataform_repository",
    object_kind="repository",
    identity=("project", "region", "name"),
    import_id="projects/{project}/locations/{region}/repositories/{name}",
    deployer=(("project", _crud("dataform", "repositories")),),
    stateful=True,
    # A repository's key cannot be added, changed or removed after creation (dataform-operations.md §c).
    fixed_at_creation=("kms_key_name",),
)
RELEASE_CONFIG = ResourceType(
    "google_dataform_repository_release_config",
    provider="google-beta",
    identity=("project", "region", "repository", "name"),
    import_id="projects/{project}/locations/{region}/repositories/{repository}/releaseConfigs/{name}",
    # Besides its CRUD: after an apply that creates or changes one, dfinfra compiles it and makes that
    # compilation live (`dfinfra release`; dataform-operations.md §a), which needs compilationResults.create
    # and releaseConfigs.update (act-as on its workflows' runners is needed to attach them anyway).
    deployer=(("repository", (*_crud("dataform", "releaseConfigs"), "dataform.compilationResults.create")),),
)
WORKFLOW_CONFIG = ResourceType(
    "google_dataform_repository_workflow_config",
    provider="google-beta",
    identity=("project", "region", "repository", "name"),
    import_id="projects/{project}/locations/{region}/repositories/{repository}/workflowConfigs/{name}",
    deployer=(("repository", _crud("dataform", "workflowConfigs")),),
)
# The host project's Dataform settings in one region, holding the default CMEK key of repositories created
# afterwards (dataform-operations.md §c). A singleton: created and updated by a PATCH with an update mask; its
# destroy calls no API (Google keeps the setting). google-beta only, facts from 8.7.0.
DATAFORM_CONFIG = ResourceType(
    "google_dataform_config",
    provider="google-beta",
    identity=("project", "region"),
    import_id="projects/{project}/locations/{region}/config",
    deployer=(("project", ("dataform.config.get", "dataform.config.update")),),
)
# Only the state backend's bootstrap module creates one (the state bucket).
STORAGE_BUCKET = ResourceType("google_storage_bucket", import_id="{project}/{name}", stateful=True)

PROJECT_IAM_MEMBER = ResourceType(
    "google_project_iam_member",
    target=Target("project", "project"),
    deployer=(_policy("resourcemanager", "projects"),),
)
SERVICE_ACCOUNT_IAM_MEMBER = ResourceType(
    "google_service_account_iam_member",
    # Named by email (or `projects/P/serviceAccounts/EMAIL`); the account's project is its email's.
    target=Target(
        "service_account",
        "service_account_id",
        r"(?:.*/)?(?P<id>[^/]+@(?P<project>[^/]+?)(?:\.iam\.gserviceaccount\.com)?)",
    ),
    deployer=(_policy("iam", "serviceAccounts"),),
)
BIGQUERY_DATASET_IAM_MEMBER = ResourceType(
    "google_bigquery_dataset_iam_member",
    target=Target("dataset", "dataset_id", r"projects/(?P<project>[^/]+)/datasets/(?P<id>[^/]+)"),
    deployer=(_policy("bigquery", "datasets"),),
)
SECRET_IAM_MEMBER = ResourceType(
    "google_secret_manager_secret_iam_member",
    target=Target("secret", "secret_id", r"projects/(?P<project>[^/]+)/secrets/(?P<id>[^/]+)"),
    deployer=(_policy("secretmanager", "secrets"),),
)
REPOSITORY_IAM_MEMBER = ResourceType(
    "google_dataform_repository_iam_member",
    target=Target(
        "repository",
        "repository",
        r"projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/repositories/(?P<id>[^/]+)",
    ),
    deployer=(_policy("dataform", "repositories"),),
)
KMS_CRYPTO_KEY_IAM_MEMBER = ResourceType(
    "google_kms_crypto_key_iam_member",
    # Named by the key's full name; provider facts: 8.7.0 (the 7.45.0 set dfinfra holds has no KMS IAM type).
    target=Target(
        "crypto_key",
        "crypto_key_id",
        r"(?P<id>projects/(?P<project>[^/]+)/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)",
    ),
    deployer=(_policy("cloudkms", "cryptoKeys"),),
)
STORAGE_BUCKET_IAM_MEMBER = ResourceType(
    "google_storage_bucket_iam_member",
    # Named by the bucket alone; the provider stores `b/<bucket>` (x_identity, 8.7.0 facts).
    target=Target("bucket", "bucket"),
    deployer=(_policy("storage", "buckets"),),
)
BIGQUERY_DATASET_ACCESS = ResourceType(
    "google_bigquery_dataset_access",
    # One entry of a dataset's access list: an authorized dataset, or (on a dataset that has one) a grant, since
    # google_bigquery_dataset_iam_member would remove the authorization. Provider facts: 8.7.0 only; no importer,
    # and its Terraform id is the dataset's: an entry never changes owner (no identity, no target).
    deployer=(("self", ("bigquery.datasets.get", "bigquery.datasets.update")),),
)
BIGQUERY_CONNECTION_IAM_MEMBER = ResourceType(
    "google_bigquery_connection_iam_member",
    # Named by the connection id beside `project` and `location`; once applied the provider stores the long name
    # (generated IAM resources, as the repository's). Provider facts: 8.7.0 only.
    target=Target(
        "connection",
        "connection_id",
        r"projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/connections/(?P<id>[^/]+)",
        region_attribute="location",
    ),
    deployer=(_policy("bigquery", "connections"),),
)
# --- operating runs: event triggers and failed-run alerts (provider 8.x facts) ---------------------------------
# The orchestrating Cloud Workflows workflow: no importer (x_identity), so it is never adopted. Its source holds no
# spec value (they reach it as environment variables), and its `deletion_protection` defaults to true: dfinfra
# sets it false, since it is code the next apply recreates.
WORKFLOWS_WORKFLOW = ResourceType(
    "google_workflows_workflow",
    identity=("project", "region", "name"),
    deployer=(("project", _crud("workflows", "workflows")),),
)
EVENTARC_TRIGGER = ResourceType(
    "google_eventarc_trigger",
    identity=("project", "location", "name"),
    import_id="projects/{project}/locations/{location}/triggers/{name}",
    deployer=(("project", _crud("eventarc", "triggers")),),
)
SCHEDULER_JOB = ResourceType(
    "google_cloud_scheduler_job",
    identity=("project", "region", "name"),
    import_id="projects/{project}/locations/{region}/jobs/{name}",
    deployer=(("project", _crud("cloudscheduler", "jobs")),),
)
# Monitoring names both by a server-chosen id ({{name}} in x_identity): nothing to adopt them by but that.
MONITORING_ALERT_POLICY = ResourceType(
    "google_monitoring_alert_policy",
    deployer=(("project", _crud("monitoring", "alertPolicies")),),
)
MONITORING_NOTIFICATION_CHANNEL = ResourceType(
    "google_monitoring_notification_channel",
    deployer=(("project", _crud("monitoring", "notificationChannels")),),
)

ALL: tuple[ResourceType, ...] = (
    PROJECT,
    PROJECT_SERVICE,
    PROJECT_SERVICE_IDENTITY,
    SERVICE_ACCOUNT,
    BIGQUERY_DATASET,
    SECRET,
    SECRET_VERSION,
    REPOSITORY,
    RELEASE_CONFIG,
    WORKFLOW_CONFIG,
    DATAFORM_CONFIG,
    STORAGE_BUCKET,
    PROJECT_IAM_MEMBER,
    SERVICE_ACCOUNT_IAM_MEMBER,
    BIGQUERY_DATASET_IAM_MEMBER,
    SECRET_IAM_MEMBER,
    REPOSITORY_IAM_MEMBER,
    KMS_CRYPTO_KEY_IAM_MEMBER,
    STORAGE_BUCKET_IAM_MEMBER,
    BIGQUERY_CONNECTION_IAM_MEMBER,
    BIGQUERY_DATASET_ACCESS,
    WORKFLOWS_WORKFLOW,
    EVENTARC_TRIGGER,
    SCHEDULER_JOB,
    MONITORING_ALERT_POLICY,
    MONITORING_NOTIFICATION_CHANNEL,
)
BY_NAME: dict[str, ResourceType] = {t.name: t for t in ALL}
# The `*_iam_member` type that grants on each kind of object.
IAM_MEMBER_OF: dict[ObjectKind, ResourceType] = {t.target.kind: t for t in ALL if t.target is not None}


def get(name: str) -> ResourceType | None:
    """The entry for Terraform type `name`, or None for a type dfinfra knows nothing of (lint reads any HCL)."""
    return BY_NAME.get(name)


def full_name(kind: ObjectKind, project: str, id: str, region: str = "") -> str:
    return FULL_NAMES[kind].format(project=project, id=id, region=region)
