"""Who may do what in the offline cloud: an IAM allow-policy evaluator over the store.

Written from Google's role definitions (`dataform_infra/data/roles.json`, read as a file) and the
facts in shared/docs/dataform-runtime-access.md, independently of dfinfra's own access model, so
tests can hold one against the other.

A principal's permissions on a resource are the union of the permissions of every role granted to
that member on the resource itself and on the project that contains it (no organisation or folder
levels, no deny policies, no conditions, no group expansion: members match literally, ignoring
case). Grants come from what Terraform applied (`google_*_iam_member` objects) and from what tests
seed as kind `external:iam` (body `role`, `member`, `resource` = a full resource name such as
`//cloudresourcemanager.googleapis.com/projects/acme-host`), plus `runtime:iam` (same shape: what
the cloud grants by itself, e.g. OWNER on a dataset to the account that created it).

IAM changes propagate: a member the fake provider created less than `propagation_seconds` ago
(its store body records `CREATED_KEY`, an epoch time) is not yet effective.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tests.fakegcp.store import Store

ROLES_FILE = Path(__file__).resolve().parents[2] / "dataform_infra" / "data" / "roles.json"
# Store-only: when the provider created an IAM member (never part of Terraform state).
CREATED_KEY = "_fakegcp_created_at"

IAM_MEMBER_KINDS = (
    "google_project_iam_member",
    "google_service_account_iam_member",
    "google_bigquery_dataset_iam_member",
    "google_secret_manager_secret_iam_member",
    "google_dataform_repository_iam_member",
    "google_kms_crypto_key_iam_member",
    "google_storage_bucket_iam_member",
    "google_bigquery_connection_iam_member",
)
SERVICE_HOSTS = {
    "project": "cloudresourcemanager.googleapis.com",
    "service_account": "iam.googleapis.com",
    "dataset": "bigquery.googleapis.com",
    "secret": "secretmanager.googleapis.com",
    "repository": "dataform.googleapis.com",
    "crypto_key": "cloudkms.googleapis.com",
    "bucket": "storage.googleapis.com",
    "connection": "bigqueryconnection.googleapis.com",
}


@cache
def _roles() -> dict[str, frozenset[str]]:
    data = json.loads(ROLES_FILE.read_text())
    return {name: frozenset(role["permissions"]) for name, role in data["roles"].items()}


def role_permissions(role: str) -> frozenset[str]:
    """Permissions of a predefined role (empty for roles the table does not know)."""
    return _roles().get(role, frozenset())


@dataclass(frozen=True)
class Resource:
    """A typed resource: `kind` in SERVICE_HOSTS, its project id, and its name within the project.

    name: "" (project), the email (service account), the dataset id, the secret id, or
    "<location>/<repository>" (repository).
    """

    kind: str
    project: str
    name: str = ""

    @classmethod
    def project_(cls, project: str) -> Resource:
        return cls("project", project)

    @classmethod
    def service_account(cls, email: str, project: str | None = None) -> Resource:
        return cls("service_account", project or account_project(email), email.lower())

    @classmethod
    def dataset(cls, project: str, dataset: str) -> Resource:
        return cls("dataset", project, dataset)

    @classmethod
    def secret(cls, project: str, secret: str) -> Resource:
        return cls("secret", project, secret)

    @classmethod
    def repository(cls, project: str, location: str, name: str) -> Resource:
        return cls("repository", project, f"{location}/{name}")

    @classmethod
    def crypto_key(cls, project: str, location: str, ring: str, key: str) -> Resource:
        return cls("crypto_key", project, f"{location}/{ring}/{key}")

    @classmethod
    def connection(cls, project: str, location: str, connection_id: str) -> Resource:
        return cls("connection", project, f"{location.lower()}/{connection_id}")

    @classmethod
    def bucket(cls, name: str) -> Resource:
        """A bucket's name is global: Google's full name carries `projects/_`, and so does this."""
        return cls("bucket", "_", name)

    @property
    def relative_name(self) -> str:
        if self.kind == "project":
            return f"projects/{self.project}"
        if self.kind == "service_account":
            return f"projects/{self.project}/serviceAccounts/{self.name}"
        if self.kind == "dataset":
            return f"projects/{self.project}/datasets/{self.name}"
        if self.kind == "secret":
            return f"projects/{self.project}/secrets/{self.name}"
        if self.kind == "bucket":
            return f"projects/_/buckets/{self.name}"
        if self.kind == "connection":
            location, connection = self.name.split("/")
            return f"projects/{self.project}/locations/{location}/connections/{connection}"
        if self.kind == "crypto_key":
            location, ring, key = self.name.split("/")
            return f"projects/{self.project}/locations/{location}/keyRings/{ring}/cryptoKeys/{key}"
        location, name = self.name.split("/", 1)
        return f"projects/{self.project}/locations/{location}/repositories/{name}"

    @property
    def full_name(self) -> str:
        return f"//{SERVICE_HOSTS[self.kind]}/{self.relative_name}"

    @property
    def parent(self) -> Resource | None:
        # A bucket's project is not in its name; project-level grants on it are not evaluated here.
        return None if self.kind in ("project", "bucket") else Resource.project_(self.project)


def account_project(email: str) -> str:
    """The project a user-managed service account lives in (`x@<project>.iam.gserviceaccount.com`)."""
    match = re.fullmatch(r"[^@]+@([a-z0-9-]+)\.iam\.gserviceaccount\.com", email.lower())
    return match[1] if match else "-"


_NAME_PATTERNS = (
    ("bucket", r"projects/_/buckets/([^/]+)"),
    ("crypto_key", r"projects/([^/]+)/locations/([^/]+)/keyRings/([^/]+)/cryptoKeys/([^/]+)"),
    ("connection", r"projects/([^/]+)/locations/([^/]+)/connections/([^/]+)"),
    ("repository", r"projects/([^/]+)/locations/([^/]+)/repositories/([^/]+)"),
    ("service_account", r"projects/([^/]+)/serviceAccounts/([^/]+)"),
    ("dataset", r"projects/([^/]+)/datasets/([^/]+)"),
    ("secret", r"projects/([^/]+)/secrets/([^/]+)(?:/versions/[^/]+)?"),
    ("project", r"projects/([^/]+)"),
)


def parse_resource(name: str, store: Store) -> Resource | None:
    """A full (`//service/...`) or relative resource name as a Resource; project numbers map to ids."""
    relative = re.sub(r"^//[^/]+/", "", name)
    for kind, pattern in _NAME_PATTERNS:
        match = re.fullmatch(pattern, relative)
        if not match:
            continue
        groups = match.groups()
        if kind == "bucket":
            return Resource.bucket(groups[0])
        project = groups[0]
        if kind == "service_account":
            email = groups[1]
            if project == "-":
                project = account_project(email)
            return Resource.service_account(email, store.project_id(project) or project)
        project = store.project_id(project) or project
        if kind == "crypto_key":
            return Resource.crypto_key(project, groups[1], groups[2], groups[3])
        if kind == "connection":
            return Resource.connection(project, groups[1], groups[2])
        if kind == "repository":
            return Resource.repository(project, groups[1], groups[2])
        if kind == "dataset":
            return Resource.dataset(project, groups[1])
        if kind == "secret":
            return Resource.secret(project, groups[1])
        return Resource.project_(project)
    return None


@dataclass(frozen=True)
class Grant:
    role: str
    member: str
    resource: Resource
    created: float | None


def _grant_resource(kind: str, body: dict, store: Store) -> Resource | None:
    if kind == "google_project_iam_member":
        return Resource.project_(store.project_id(body["project"].removeprefix("projects/")) or body["project"])
    if kind == "google_bigquery_dataset_iam_member":
        return Resource.dataset(body["project"], body["dataset_id"])
    if kind == "google_service_account_iam_member":
        return parse_resource(body["service_account_id"], store)
    if kind == "google_secret_manager_secret_iam_member":
        return parse_resource(body["secret_id"], store)
    if kind == "google_dataform_repository_iam_member":
        return parse_resource(body["repository"], store)
    if kind == "google_kms_crypto_key_iam_member":
        return parse_resource(body["crypto_key_id"], store)
    if kind == "google_storage_bucket_iam_member":
        return Resource.bucket(body["bucket"].removeprefix("b/"))
    if kind == "google_bigquery_connection_iam_member":  # the id alone beside project and location, or long
        long = parse_resource(body["connection_id"], store)
        return long or Resource.connection(body["project"], body["location"], body["connection_id"])
    return parse_resource(body["resource"], store)


# A dataset access list's legacy roles, as IAM names them.
ACL_ROLES = {
    "READER": "roles/bigquery.dataViewer",
    "WRITER": "roles/bigquery.dataEditor",
    "OWNER": "roles/bigquery.dataOwner",
}


def _acl_member(body: dict) -> str | None:
    """The IAM member an access-list entry names, in whichever attribute it names it (None: an authorization)."""
    if body.get("user_by_email"):
        email = body["user_by_email"]
        return ("serviceAccount:" if email.endswith(".gserviceaccount.com") else "user:") + email
    if body.get("group_by_email"):
        return "group:" + body["group_by_email"]
    if body.get("domain"):
        return "domain:" + body["domain"]
    return body.get("iam_member") or None


def _acl_grants(store: Store) -> Iterable[Grant]:
    for _, _, body in store.list("google_bigquery_dataset_access"):
        member = _acl_member(body)
        if member and body.get("role"):
            role = ACL_ROLES.get(body["role"], body["role"])
            yield Grant(role, member, Resource.dataset(body["project"], body["dataset_id"]), None)


def authorizes(store: Store, source: Resource, project: str, dataset: str) -> bool:
    """Does dataset `source`'s access list authorize the views of `project`.`dataset` (an authorized dataset)?"""
    for _, _, body in store.list("google_bigquery_dataset_access"):
        if (body.get("project"), body.get("dataset_id")) != (source.project, source.name):
            continue
        for entry in body.get("dataset") or []:
            inner = (entry.get("dataset") or [{}])[0]
            if (inner.get("project_id"), inner.get("dataset_id")) == (project, dataset) and "VIEWS" in (
                entry.get("target_types") or []
            ):
                return True
    return False


def grants(store: Store, member: str | None = None) -> Iterable[Grant]:
    """Every IAM grant in the cloud, or only `member`'s (matched as Google does, case-insensitively;
    checked before the resource name is resolved, which costs a store lookup per grant)."""
    for kind in (*IAM_MEMBER_KINDS, "external:iam", "runtime:iam"):
        for _, _, body in store.list(kind):
            if member is not None and body["member"].lower() != member.lower():
                continue
            resource = _grant_resource(kind, body, store)
            if resource is not None:
                yield Grant(body["role"], body["member"], resource, body.get(CREATED_KEY))
    for grant in _acl_grants(store):
        if member is None or grant.member.lower() == member.lower():
            yield grant


@dataclass
class Iam:
    """The evaluator. `propagation_seconds`: how long a new grant takes to become effective."""

    store: Store
    propagation_seconds: float = 0.0
    clock: Callable[[], float] = field(default=time.time)

    def _effective(self, grant: Grant, now: float) -> bool:
        return grant.created is None or now - grant.created >= self.propagation_seconds

    def permissions(self, member: str, resource: Resource) -> set[str]:
        scopes = {resource, resource.parent} - {None}
        now = self.clock()
        result: set[str] = set()
        for grant in grants(self.store, member):
            if grant.resource in scopes and self._effective(grant, now):
                result |= role_permissions(grant.role)
        return result

    def allows(self, member: str, permission: str, resource: Resource) -> bool:
        return permission in self.permissions(member, resource)


# No provider type grants on Developer Connect links, so grants on them are test-seeded objects, made outside
# dfinfra as in real life; their roles come from the same table as every other role.
DEVELOPER_CONNECT_GRANT = "external:developerconnect"  # {"link", "member", "role"}


def link_permissions(store: Store, member: str, link: str) -> set[str]:
    """What `member` may do on the Git repository link `projects/.../gitRepositoryLinks/<id>`."""
    found: set[str] = set()
    for _, _, body in store.list(DEVELOPER_CONNECT_GRANT):
        if body.get("link") == link and body.get("member") == member:
            role = body.get("role", "")
            found |= role_permissions(role) if role.startswith("roles/developerconnect.") else set()
    return found


def effective_permissions(store: Store, member: str, resource: Resource, propagation_seconds: float = 0.0) -> set[str]:
    """Permissions `member` (e.g. `serviceAccount:x@p.iam.gserviceaccount.com`) has on `resource` now."""
    return Iam(store, propagation_seconds).permissions(member, resource)


def principal_members(email: str) -> list[str]:
    """IAM member strings an email may be bound as (Policy Troubleshooter principals carry no prefix)."""
    email = email.split(":", 1)[-1] if ":" in email else email
    if email.lower().endswith(".gserviceaccount.com"):
        return [f"serviceAccount:{email}"]
    return [f"user:{email}", f"group:{email}"]
