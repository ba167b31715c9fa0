"""The least-privilege rules, in one place, applied to Terraform resources however they were made.

Rules read `Fact`s: one per resource or data block instance, with attribute values normalised (string
literals unquoted, references as `${...}`). `facts_from_module` builds them from what dfinfra is
about to render (fast: `dfinfra validate`); `facts_from_hcl` parses any `.tf` files (tests use it on
every rendered module, and it lints hand-written HCL) and reads them as Terraform does: override files
merged in last, constant expressions evaluated (`hclread.evaluate`), what lint cannot know kept as an
`hclread.Unknown` (a str). A rule returns violations; opt-ins the spec justified come back as warnings
instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal

from dataform_infra import hclread
from dataform_infra import resource_types as types
from dataform_infra.errors import UsageError, shown
from dataform_infra.render.hcl import Expr
from dataform_infra.render.optin import MADE_ELSEWHERE, MIN_REASON, OPT_IN_MARKERS

if TYPE_CHECKING:  # `lint` never renders: it stays free of the spec and render layers' import cost
    from dataform_infra.render.module import Module

PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
BROAD_BIGQUERY_ROLES = frozenset({"roles/bigquery.admin", "roles/bigquery.dataOwner"})
PROJECT_DATA_ROLES = frozenset({"roles/bigquery.dataEditor", "roles/bigquery.dataViewer", *BROAD_BIGQUERY_ROLES})
IMPERSONATION_ROLES = frozenset(
    {
        "roles/iam.serviceAccountTokenCreator",
        "roles/iam.serviceAccountUser",
        "roles/iam.serviceAccountAdmin",
        "roles/iam.workloadIdentityUser",
    }
)
# BigQuery's legacy dataset roles (a dataset's `access` blocks, `google_bigquery_dataset_access`), as IAM names them.
LEGACY_DATASET_ROLES = {
    "OWNER": "roles/bigquery.dataOwner",
    "WRITER": "roles/bigquery.dataEditor",
    "READER": "roles/bigquery.dataViewer",
}
DATASET_ACCESS = types.BIGQUERY_DATASET_ACCESS.name  # one entry of a dataset's access list
# Permissions that let a holder change who may do what, or act as another identity: with any of them on a
# project, folder or organization, its holder can grant itself (or anyone) every role there, or act as every
# service account in it. `*.setIamPolicy` of any service counts too.
IAM_POWER = frozenset(
    {
        "iam.serviceAccounts.actAs",
        "iam.serviceAccounts.getAccessToken",
        "iam.serviceAccounts.getOpenIdToken",
        "iam.serviceAccounts.implicitDelegation",
        "iam.serviceAccounts.signBlob",
        "iam.serviceAccounts.signJwt",
        "iam.serviceAccountKeys.create",
        "iam.roles.update",  # adds any permission to a custom role its holder already has
    }
)
# Every predefined role with IAM power (`_iam_power` of its permissions), and one such permission of each. Those
# in Google's role table (`data/roles.json`) are derived from it: `tests/test_policy.py` derives the set again
# through `access/roles.py` and fails when the two part (after the table is regenerated, update this). Policy
# cannot ask `access/roles.py` itself: `access/verdict.py` imports policy, and packages form no cycle. The roles
# the table lacks are from Google's predefined roles reference; any other role outside the table passes.
IAM_ADMIN_ROLES: Mapping[str, str] = {
    # from the table
    "roles/bigquery.admin": "bigquery.datasets.setIamPolicy",
    "roles/bigquery.dataOwner": "bigquery.datasets.setIamPolicy",
    "roles/dataform.admin": "dataform.repositories.setIamPolicy",
    "roles/dataform.codeOwner": "dataform.repositories.setIamPolicy",
    "roles/iam.serviceAccountAdmin": "iam.serviceAccounts.setIamPolicy",
    "roles/iam.serviceAccountTokenCreator": "iam.serviceAccounts.getAccessToken",
    "roles/iam.serviceAccountUser": "iam.serviceAccounts.actAs",
    "roles/iam.workloadIdentityUser": "iam.serviceAccounts.getAccessToken",
    "roles/resourcemanager.projectIamAdmin": "resourcemanager.projects.setIamPolicy",
    "roles/secretmanager.admin": "secretmanager.secrets.setIamPolicy",
    "roles/storage.admin": "storage.buckets.setIamPolicy",
    "roles/storage.objectAdmin": "storage.objects.setIamPolicy",
    # not in the table
    "roles/owner": "resourcemanager.projects.setIamPolicy",
    "roles/editor": "iam.serviceAccounts.actAs",
    "roles/iam.securityAdmin": "resourcemanager.projects.setIamPolicy",
    "roles/resourcemanager.organizationAdmin": "resourcemanager.organizations.setIamPolicy",
    "roles/resourcemanager.folderAdmin": "resourcemanager.folders.setIamPolicy",
    "roles/resourcemanager.folderIamAdmin": "resourcemanager.folders.setIamPolicy",
    "roles/iam.roleAdmin": "iam.roles.update",
    "roles/iam.organizationRoleAdmin": "iam.roles.update",
    "roles/iam.serviceAccountKeyAdmin": "iam.serviceAccountKeys.create",
}
CUSTOM_ROLE_TYPES: Mapping[str, tuple[str, str]] = {  # type -> its parent's attribute, and Google's name for it
    "google_project_iam_custom_role": ("project", "projects/{}/roles/{}"),
    "google_organization_iam_custom_role": ("org_id", "organizations/{}/roles/{}"),
}
CUSTOM_ROLE_NAME = re.compile(r"(projects|organizations)/[^/]+/roles/[^/]+")
WIDE_SCOPES = ("project", "folder", "organization")
AGENT_MEMBER = re.compile(
    r"(serviceAccount:service-[0-9]+@gcp-sa-dataform\.iam\.gserviceaccount\.com|\$\{local\.dataform_service_agent\}|\$\{google_project_service_identity\.[A-Za-z0-9_-]+\.member\})"
)


@dataclass(frozen=True)
class Fact:
    """One `resource` or `data` block, attribute values normalised."""

    kind: Literal["resource", "data"]
    type: str
    name: str
    attrs: Mapping[str, Any]
    source: str
    comments: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        prefix = "data." if self.kind == "data" else ""
        return f"{prefix}{self.type}.{self.name}"

    def first_block(self, name: str) -> Mapping[str, Any]:
        blocks = self.attrs.get(name) or [{}]
        return blocks[0] if isinstance(blocks, list) and blocks else {}


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    source: str
    severity: Literal["violation", "warning"] = "violation"

    def describe(self) -> str:
        return f"{self.source}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    check: Callable[[list[Fact]], Iterable[Finding]] = field(repr=False)


def _iam_members(facts: list[Fact]) -> Iterable[Fact]:
    return (f for f in facts if f.kind == "resource" and f.type.endswith("_iam_member"))


@dataclass(frozen=True)
class _Grant:
    """A role a fact grants: its `role`, or one of its `binding` / dataset `access` blocks'."""

    fact: Fact
    role: Any  # a legacy dataset role as the IAM role it is
    scope: str  # what it is granted on: "project", "folder", "dataset", ...; "" where the fact does not say
    written: Any  # the role as written
    block: str = ""  # "" for the fact's own `role`, else the kind of block

    @property
    def what(self) -> str:
        """The role, and where it is written when that is not the fact's `role`."""
        how = f" ({_shown(self.written)}, legacy)" if self.written != self.role else ""
        article = "an" if self.block[:1] in ("a", "e", "i", "o", "u") else "a"
        return f"{_shown(self.role)}{how}" + (f" in {article} `{self.block}` block" if self.block else "")


def _shown(value: Any) -> str:
    """A value for a message: a string (cut short), else what it is."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    if value is None:
        return "null"
    kind = {list: "a list", dict: "a map", bool: "a bool"}
    return next((name for t, name in kind.items() if isinstance(value, t)), "a number")


@lru_cache(maxsize=256)
def _scope(type_: str) -> str:
    """What an `*_iam_*` type (or a dataset ACL entry) grants on."""
    if type_ in (types.BIGQUERY_DATASET.name, DATASET_ACCESS):
        return "dataset"
    found = re.fullmatch(r"google_(.+)_iam_(member|binding|policy)", type_)
    scope = found[1] if found else type_
    return "dataset" if scope == "bigquery_dataset" else scope


def _grants(facts: list[Fact]) -> list[_Grant]:
    """Every role the facts grant; read once per `check` (four rules ask), not once per rule."""
    if isinstance(facts, _Facts):
        return facts.grants
    return list(_each_grant(facts))


class _Facts(list[Fact]):
    """The facts one `check` reads, with what several rules derive from them computed once."""

    @cached_property
    def grants(self) -> list[_Grant]:
        return list(_each_grant(self))


def _each_grant(facts: list[Fact]) -> Iterable[_Grant]:
    for f in facts:
        if "role" in f.attrs and f.type not in CUSTOM_ROLE_TYPES:
            written = f.attrs["role"]
            legacy = LEGACY_DATASET_ROLES.get(written) if f.type == DATASET_ACCESS else None
            yield _Grant(f, legacy or written, _scope(f.type), written)
        for binding in f.attrs.get("binding", []) if isinstance(f.attrs.get("binding"), list) else []:
            if isinstance(binding, Mapping) and "role" in binding:  # a policy document's: granted where it is used
                yield _Grant(f, binding["role"], "", binding["role"], "binding")
        if f.type == types.BIGQUERY_DATASET.name and isinstance(f.attrs.get("access"), list):
            for access in f.attrs["access"]:
                if isinstance(access, Mapping) and "role" in access:
                    role = access["role"]
                    yield _Grant(f, LEGACY_DATASET_ROLES.get(role, role), "dataset", role, "access")


def _custom_roles(facts: list[Fact]) -> dict[str, frozenset[str] | None]:
    """The custom roles these facts define, by every name a grant may give one (its reference's `id` and `name`,
    and Google's name for it when constant): their permissions, None where those are not all constants."""
    found: dict[str, frozenset[str] | None] = {}
    for f in facts:
        if f.kind != "resource" or f.type not in CUSTOM_ROLE_TYPES:
            continue
        permissions = f.attrs.get("permissions")
        known = (
            frozenset(permissions) if isinstance(permissions, list) and all(_constant(p) for p in permissions) else None
        )
        names = [f"${{{f.type}.{f.name}.{attribute}}}" for attribute in ("id", "name")]
        parent, name = CUSTOM_ROLE_TYPES[f.type]
        if _constant(f.attrs.get(parent)) and _constant(f.attrs.get("role_id")):
            names.append(name.format(f.attrs[parent], f.attrs["role_id"]))
        found |= dict.fromkeys(names, known)
    return found


def _constant(value: Any) -> bool:
    return isinstance(value, str) and not isinstance(value, hclread.Unknown)


_DATASET_REFERENCE = re.compile(r"\$\{google_bigquery_dataset\.([A-Za-z0-9_-]+)\.dataset_id\}")
_ANY = "*"  # a project or dataset lint cannot know: it may be any


def _datasets_named(facts: list[Fact]) -> dict[str, tuple[str, str]]:
    """`google_bigquery_dataset` NAME -> (project, dataset id) as these facts declare it."""
    found: dict[str, tuple[str, str]] = {}
    for f in facts:
        if f.kind == "resource" and f.type == types.BIGQUERY_DATASET.name:
            project, dataset = f.attrs.get("project"), f.attrs.get("dataset_id")
            found[f.name] = (str(project) if _constant(project) else _ANY, str(dataset) if _constant(dataset) else _ANY)
    return found


def _dataset_of(f: Fact, named: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    """The (project, dataset) a dataset-scoped fact is about, a reference to a dataset of these facts resolved;
    `_ANY` for what cannot be known (or a missing project: the provider's default)."""
    project, dataset = f.attrs.get("project"), f.attrs.get("dataset_id")
    referenced = _DATASET_REFERENCE.fullmatch(dataset) if isinstance(dataset, str) else None
    if referenced and referenced[1] in named:
        declared_project, dataset = named[referenced[1]]
        project = project if _constant(project) else declared_project
    return (str(project) if _constant(project) else _ANY, str(dataset) if _constant(dataset) else _ANY)


def _same_dataset(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return all(x == y or _ANY in (x, y) for x, y in zip(a, b, strict=True))


def _additive_only(facts: list[Fact]) -> Iterable[Finding]:
    named = _datasets_named(facts)
    iam_members = [_dataset_of(f, named) for f in facts if f.type == types.BIGQUERY_DATASET_IAM_MEMBER.name]
    for f in facts:
        if f.kind != "resource":
            continue
        if f.type.endswith("_iam_binding") or f.type.endswith("_iam_policy"):
            yield Finding(
                "additive-iam-only",
                f"{f.address} is authoritative: it removes every member it does not "
                "list. Use the matching *_iam_member resource.",
                f.source,
            )
        elif f.type == types.BIGQUERY_DATASET.name and f.attrs.get("access"):
            yield Finding(
                "additive-iam-only",
                f"{f.address} sets `access` blocks, which are authoritative: they replace the dataset's whole "
                "ACL, removing every grant they do not list (google_bigquery_dataset_iam_member's among them). "
                "Grant with google_bigquery_dataset_iam_member instead.",
                f.source,
            )
        elif f.type == DATASET_ACCESS and any(_same_dataset(_dataset_of(f, named), m) for m in iam_members):
            yield Finding(
                "additive-iam-only",
                f"{f.address} edits the access list of a dataset that google_bigquery_dataset_iam_member also "
                "grants on: Google's provider documents that the two fight over the dataset's access (an IAM "
                "member removes authorizations). On one dataset, make every grant one or the other: an "
                "access-list entry where the dataset authorizes views.",
                f.source,
            )


def _no_primitive_roles(facts: list[Fact]) -> Iterable[Finding]:
    for g in _grants(facts):
        if g.role in PRIMITIVE_ROLES:
            yield Finding(
                "no-primitive-roles",
                f"{g.fact.address} grants {g.what}, a primitive role covering every "
                "service in the project. Grant the specific predefined role.",
                g.fact.source,
            )


def _power_of(role: Any, custom: Mapping[str, frozenset[str] | None]) -> list[str] | None:
    """The permissions of `role` that give IAM power: a custom role's from these files, a predefined role's
    from `IAM_ADMIN_ROLES` (one of them suffices); None when lint cannot know its permissions."""
    if role in custom:
        permissions = custom[role]
        return None if permissions is None else _iam_power(permissions)
    if not _constant(role) or CUSTOM_ROLE_NAME.fullmatch(role):
        return None
    return [IAM_ADMIN_ROLES[role]] if role in IAM_ADMIN_ROLES else []


def _iam_power(permissions: Iterable[str]) -> list[str]:
    return sorted(p for p in permissions if p in IAM_POWER or p.endswith(".setIamPolicy"))


def _no_iam_admin_roles(facts: list[Fact]) -> Iterable[Finding]:
    """A role whose permissions change IAM (`*.setIamPolicy`) or act as service accounts, granted on a project,
    folder or organization: its holder can grant itself any role there, or become any service account there,
    so every other rule is moot. Decided from permissions: a predefined role's from Google's role table (as
    `IAM_ADMIN_ROLES` holds it), a custom role's from the `permissions` these files give it. Roles another rule
    already judges by name are left to it: the primitive roles (`no-primitive-roles`), Token Creator and its kin
    (`impersonation-on-accounts-only`) and the BigQuery data roles (`bigquery-data-roles`, whose opt-in the
    spec records for a project-wide Admin or Data Owner: their `*.setIamPolicy` stop at BigQuery)."""
    custom = _custom_roles(facts)
    judged = PRIMITIVE_ROLES | IMPERSONATION_ROLES | PROJECT_DATA_ROLES
    for g in _grants(facts):
        if g.scope not in WIDE_SCOPES or g.role in judged:
            continue
        power = _power_of(g.role, custom)
        if power:
            shown = ", ".join(power[:3]) + (f" and {len(power) - 3} more" if len(power) > 3 else "")
            yield Finding(
                "no-iam-admin-roles",
                f"{g.fact.address} grants {g.what} on a {g.scope}: it carries {shown}, with which its holder can "
                f"grant itself (or anyone) roles across the {g.scope}, or act as its service accounts. Grant "
                "narrower roles on the objects that need them.",
                g.fact.source,
            )


def _roles_are_constants(facts: list[Fact]) -> Iterable[Finding]:
    """A role lint cannot read is a violation, not a pass and not a warning. Every rule above reads the role: a
    role from a variable, a data source, a conditional on either or a function lint does not evaluate can be
    `roles/owner` at plan time, so passing it would let any rule be evaded by moving the role into a `.tfvars`
    file; a warning would still exit 0, and CI would apply it. The same holds for a custom role whose
    permissions are not constants, or that these files do not define (its permissions could be anything). To
    lint such a module, write the role (or the custom role's permissions) as a constant: a literal, a local
    of literals, or a `for` / `for_each` over them, which lint evaluates as Terraform does."""
    custom = _custom_roles(facts)
    for g in _grants(facts):
        role = g.role
        if role in custom:
            if custom[role] is None:
                yield Finding(
                    "role-is-constant",
                    f"{g.fact.address} grants custom role {role}, whose permissions are not constants: lint "
                    "cannot prove what it grants.",
                    g.fact.source,
                )
        elif role is not None and not _constant(role):
            yield Finding(
                "role-is-constant",
                f"{g.fact.address} grants {g.what}: role is not a constant: lint cannot prove it. Write the role "
                "as a literal or a local of literals.",
                g.fact.source,
            )
        elif _constant(role) and CUSTOM_ROLE_NAME.fullmatch(role):
            yield Finding(
                "role-is-constant",
                f"{g.fact.address} grants custom role {role}, which these files do not define: lint cannot read "
                "its permissions. Define it here, or grant predefined roles.",
                g.fact.source,
            )


def _opted_in(fact: Fact, scope: str) -> str | None:
    """The justification comment for a grant at `scope` ("project" or "dataset"), if it gives one: the
    marker of that scope and a reason of at least 10 characters, as the spec's `reason` must be."""
    marker = OPT_IN_MARKERS[scope]
    for text in fact.comments:
        body = text.strip().lstrip("#").strip()
        if body.startswith(marker) and len(body[len(marker) :].strip(" :")) >= MIN_REASON:
            return body
    return None


def _bigquery_data_roles(facts: list[Fact]) -> Iterable[Finding]:
    for g in _grants(facts):
        f, role = g.fact, g.role
        if not g.scope:  # a policy document's binding: the resource using it is `additive-iam-only`'s
            continue
        wide = g.scope in WIDE_SCOPES
        if role in BROAD_BIGQUERY_ROLES or (wide and role in PROJECT_DATA_ROLES):
            scope = f"the whole {g.scope}" if wide else "the dataset"
            # The spec has two opt-ins: project-wide roles, and Data Owner on one dataset (none for a folder or
            # an organization).
            if g.scope == "project":
                reason = _opted_in(f, "project")
            else:
                reason = _opted_in(f, "dataset") if role == "roles/bigquery.dataOwner" and not wide else None
            if reason:
                yield Finding(
                    "bigquery-data-roles", f"{f.address} grants {g.what} on {scope} ({reason}).", f.source, "warning"
                )
            else:
                yield Finding(
                    "bigquery-data-roles",
                    f"{f.address} grants {g.what} on {scope} with no justification. "
                    "Scope data roles to datasets (writes -> dataEditor, reads -> dataViewer) or opt in "
                    "with `project_wide: [{role, reason}]` (or `owns: [{dataset, reason}]` for Data Owner on one "
                    "dataset).",
                    f.source,
                )


def _impersonation_on_accounts(facts: list[Fact]) -> Iterable[Finding]:
    for f in _iam_members(facts):
        role = f.attrs.get("role")
        if role in IMPERSONATION_ROLES and f.type != types.SERVICE_ACCOUNT_IAM_MEMBER.name:
            yield Finding(
                "impersonation-on-accounts-only",
                f"{f.address} grants {role} on a {f.type.removesuffix('_iam_member')}: "
                "the member can then act as every service account under it. Grant it on each service "
                "account (google_service_account_iam_member).",
                f.source,
            )
        if role == "roles/dataform.serviceAgent" and not (
            f.type == types.PROJECT_IAM_MEMBER.name and AGENT_MEMBER.fullmatch(str(f.attrs.get("member")))
        ):
            yield Finding(
                "impersonation-on-accounts-only",
                f"{f.address} grants roles/dataform.serviceAgent to {f.attrs.get('member')}: that role is the "
                "Dataform service agent's own (it starts scheduled runs) and goes to the agent only, on its project.",
                f.source,
            )


def _secret_access_on_secret(facts: list[Fact]) -> Iterable[Finding]:
    for f in _iam_members(facts):
        if f.attrs.get("role") == "roles/secretmanager.secretAccessor" and f.type != types.SECRET_IAM_MEMBER.name:
            yield Finding(
                "secret-access-on-secret-only",
                f"{f.address} grants secretAccessor on a "
                f"{f.type.removesuffix('_iam_member')}, which opens every secret in it. Grant it on the "
                "one secret.",
                f.source,
            )


def _no_secret_payloads(facts: list[Fact]) -> Iterable[Finding]:
    for f in facts:
        if f.type == types.SECRET_VERSION.name:
            if f.kind == "data":
                yield Finding(
                    "no-secret-in-state",
                    f"{f.address} reads the secret payload into Terraform state. "
                    "Reference the version by name instead.",
                    f.source,
                )
            elif any(k in f.attrs for k in ("secret_data", "secret_data_wo")):
                yield Finding(
                    "no-secret-in-state",
                    f"{f.address} passes the secret through Terraform (state and "
                    "plan). Add versions with `dfinfra secret set` instead.",
                    f.source,
                )


def _apis_stay_enabled(facts: list[Fact]) -> Iterable[Finding]:
    for f in facts:
        if (
            f.kind == "resource"
            and f.type == types.PROJECT_SERVICE.name
            and f.attrs.get("disable_on_destroy") is not False
        ):
            yield Finding(
                "apis-stay-enabled",
                f"{f.address} must set disable_on_destroy = false, or destroying it "
                "turns the API off for every other workload in the project.",
                f.source,
            )


def _same_account(account_ref: str, email_value: str) -> bool:
    """Does `service_account_id` (name or ref) denote the account whose email is `email_value`?"""
    ref = re.fullmatch(r"\$\{google_service_account\.([A-Za-z0-9_-]+)\.(email|name|id|member)\}", email_value)
    if ref:
        return bool(re.fullmatch(r"\$\{google_service_account\." + re.escape(ref[1]) + r"\.(name|id)\}", account_ref))
    return account_ref.endswith(f"/serviceAccounts/{email_value}")


def _runners_usable(facts: list[Fact]) -> Iterable[Finding]:
    """Every runner a config attaches: the service agent may impersonate it, deployers may act as it."""
    grants = [f for f in facts if f.type == types.SERVICE_ACCOUNT_IAM_MEMBER.name and f.kind == "resource"]
    for f in facts:
        if f.type == types.WORKFLOW_CONFIG.name:
            account = f.first_block("invocation_config").get("service_account")
        elif f.type == types.REPOSITORY.name and f.attrs.get("service_account"):
            account = f.attrs.get("service_account")
        else:
            continue
        if not account:
            yield Finding(
                "runner-usable",
                f"{f.address} sets no invocation_config.service_account: it would run "
                "as the Dataform service agent, which strict act-as mode rejects.",
                f.source,
            )
            continue
        literal = not str(account).startswith("${")
        if literal and any(c.strip().startswith(MADE_ELSEWHERE) for c in f.comments):
            # An account made elsewhere, whose own policy is its owner's: the access model names the grants it
            # needs there and doctor checks them. Without the marker, a literal email is checked like any other.
            continue
        on_account = [g for g in grants if _same_account(str(g.attrs.get("service_account_id", "")), str(account))]
        if not any(
            g.attrs.get("role") == "roles/iam.serviceAccountTokenCreator"
            and AGENT_MEMBER.fullmatch(str(g.attrs.get("member")))
            for g in on_account
        ):
            yield Finding(
                "runner-usable",
                f"{f.address} runs as {account}, but the Dataform service agent has no "
                "roles/iam.serviceAccountTokenCreator on that account.",
                f.source,
            )
        if not any(g.attrs.get("role") == "roles/iam.serviceAccountUser" for g in on_account):
            yield Finding(
                "runner-usable",
                f"{f.address} attaches {account}, but no deployer gets "
                "roles/iam.serviceAccountUser on it (strict act-as).",
                f.source,
            )


def _agent_reads_git_secret(facts: list[Fact]) -> Iterable[Finding]:
    accessors = [
        f
        for f in facts
        if f.type == types.SECRET_IAM_MEMBER.name
        and f.attrs.get("role") == "roles/secretmanager.secretAccessor"
        and AGENT_MEMBER.fullmatch(str(f.attrs.get("member")))
    ]
    for f in facts:
        if f.type != types.REPOSITORY.name:
            continue
        git = f.first_block("git_remote_settings")
        version = git.get("authentication_token_secret_version") or (
            (git.get("ssh_authentication_config") or [{}])[0].get("user_private_key_secret_version")
        )
        if not version:
            continue
        secret = re.match(r"\$\{(google_secret_manager_secret\.[A-Za-z0-9_-]+)\.(id|name)\}", str(version))
        ok = any(
            secret and str(a.attrs.get("secret_id", "")).startswith("${" + secret[1] + ".") for a in accessors
        ) or any(not secret and str(version).startswith(str(a.attrs.get("secret_id"))) for a in accessors)
        if not ok:
            yield Finding(
                "agent-reads-git-secret",
                f"{f.address} authenticates with {version}, but the Dataform "
                "service agent has no secretAccessor on that secret (it does every Git operation, even "
                "when runners are set).",
                f.source,
            )


RULES: tuple[Rule, ...] = (
    Rule(
        "additive-iam-only",
        "Only additive `*_iam_member` resources; never `*_iam_binding` / `*_iam_policy`, nor a dataset's `access` "
        "blocks (they rewrite its whole access list); `google_bigquery_dataset_access` entries only on a dataset no "
        "`google_bigquery_dataset_iam_member` grants on (the two fight; dfinfra uses them where a dataset "
        "authorizes views).",
        _additive_only,
    ),
    Rule(
        "no-primitive-roles", "No primitive roles (`roles/owner`, `roles/editor`, `roles/viewer`).", _no_primitive_roles
    ),
    Rule(
        "no-iam-admin-roles",
        "No role on a project, folder or organization that lets its holder change IAM or act as its service "
        "accounts (any `*.setIamPolicy`, `iam.serviceAccounts.actAs` / `getAccessToken`, ...): predefined roles "
        "judged by Google's role table, custom roles by the permissions these files give them.",
        _no_iam_admin_roles,
    ),
    Rule(
        "bigquery-data-roles",
        "BigQuery data roles scoped to datasets; project-wide roles or `admin`/`dataOwner` "
        "only with a recorded reason (then a warning).",
        _bigquery_data_roles,
    ),
    Rule(
        "impersonation-on-accounts-only",
        "Token Creator / Service Account User granted on each service account, "
        "never on a project; `roles/dataform.serviceAgent` only to the Dataform service agent, on its project.",
        _impersonation_on_accounts,
    ),
    Rule(
        "secret-access-on-secret-only",
        "`roles/secretmanager.secretAccessor` on the one Git secret, never on the project.",
        _secret_access_on_secret,
    ),
    Rule(
        "no-secret-in-state",
        "No secret payload through Terraform: no `secret_data`, no secret version data source.",
        _no_secret_payloads,
    ),
    Rule("apis-stay-enabled", "`google_project_service` sets `disable_on_destroy = false`.", _apis_stay_enabled),
    Rule(
        "runner-usable",
        "Every runner a config attaches that the module creates: the service agent has Token Creator on it and "
        "the deployers have act-as on it; no workflow runs as the service agent. (A runner named by email is "
        "made elsewhere: `validate` names the grants its owner makes, `doctor` checks them.)",
        _runners_usable,
    ),
    Rule(
        "agent-reads-git-secret",
        "The service agent can read the repository's Git secret (it does all Git operations).",
        _agent_reads_git_secret,
    ),
    Rule(
        "role-is-constant",
        "Every granted role is one lint can read: a constant (literals, locals, templates, `for` expressions and "
        "`for_each` over them) or a custom role these files define with constant permissions; any other role could "
        "be `roles/owner` at plan time.",
        _roles_are_constants,
    ),
)


def check(facts: list[Fact]) -> list[Finding]:
    shared = _Facts(facts)
    return [finding for rule in RULES for finding in rule.check(shared)]


# --- adapters ---------------------------------------------------------------------------------


def _value(value: object) -> object:
    if isinstance(value, Expr):
        text = str(value)
        return text[1:-1] if text.startswith('"') else "${" + text + "}"
    return value


def facts_from_module(module: Module) -> list[Fact]:
    """Facts for what `module` renders, with spec paths as sources (for `dfinfra validate`)."""
    from dataform_infra.spec.yamlsource import dotted_path  # `lint` reads no YAML: it skips loading the parser

    where = module.spec_files[0]
    spec_files: dict[str, str] = {}
    facts: list[Fact] = []
    for api in module.apis:
        facts.append(
            Fact(
                "resource",
                api.resource_type.name,
                api.name,
                {"service": api.service, "disable_on_destroy": False},
                f"{where}: apis",
            )
        )
    for grant in module.grants:
        attrs: dict[str, Any] = {str(k): _value(v) for k, v in grant.target.items()}
        if grant.authorized:
            project, dataset = grant.authorized
            entry = {"dataset": [{"project_id": project, "dataset_id": _value(dataset)}], "target_types": ["VIEWS"]}
            attrs["dataset"] = [entry]
        else:
            attrs |= {"role": grant.role_value, str(grant.member_attribute): _value(grant.member_value)}
        comments = (f"{grant.opt_in_marker}: {grant.opt_in_reason}",) if grant.opt_in_reason else ()
        source = f"{spec_files.get(grant.env) or spec_files.setdefault(grant.env, module.spec_file(grant.env))}: "
        source += grant.spec_path
        facts.append(Fact("resource", grant.resource_type, grant.name, attrs, source, comments))
    for repo in module.repositories:
        git: dict[str, Any] = {}
        if repo.auth == "ssh":
            git["ssh_authentication_config"] = [{"user_private_key_secret_version": _value(repo.secret_version)}]
        elif repo.auth == "https_token":
            git["authentication_token_secret_version"] = _value(repo.secret_version)
        elif repo.git is not None:
            git["git_repository_link"] = repo.git.repository_link
        attrs = {"git_remote_settings": [git]} if repo.git is not None else {}
        if repo.service_account:  # the repository's own runner
            attrs["service_account"] = _value(repo.service_account)
        source = f"{where}: {dotted_path(repo.hosted.path)}"
        noted = (repo.made_elsewhere_note,) if repo.made_elsewhere_note else ()
        facts.append(Fact("resource", repo.resource_type.name, repo.name, attrs, source, noted))
    for wc in module.workflows:
        facts.append(
            Fact(
                "resource",
                wc.resource_type.name,
                wc.name,
                {"invocation_config": [{"service_account": _value(wc.service_account)}]},
                f"{where}: workflows ({wc.workflow.name})",
                (wc.made_elsewhere_note,) if wc.made_elsewhere_note else (),
            )
        )
    return facts


def _label(raw: str) -> str:
    """A block's type or name label as written (quoted in `.tf`, bare in `.tf.json`)."""
    return hclread.decode(raw[1:-1]) if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw


def _is_override(file_name: str) -> bool:
    """`override.tf`, `*_override.tf` (and their `.tf.json`): Terraform merges them into the blocks they name."""
    stem = PurePath(file_name).name.removesuffix(".json").removesuffix(".tf")
    return stem == "override" or stem.endswith("_override")


@dataclass
class _Block:
    """A `resource` or `data` block as Terraform reads it: its body as read, with every override merged in."""

    kind: Literal["resource", "data"]
    type: str
    name: str
    body: dict[str, Any]
    file: str
    overridden_in: list[str] = field(default_factory=list)

    def override(self, body: Mapping[str, Any], file_name: str) -> None:
        """Terraform's merge: each argument the override sets replaces the base's; each nested block type it
        writes (statically or as `dynamic`) replaces every block of that type in the base; its comments join."""
        merged = dict(self.body)
        for key, value in body.items():
            if key == "__comments__":
                merged[key] = [*merged.get(key, []), *value]
            elif key not in hclread.READING_KEYS and key != "dynamic":
                merged[key] = value
        overridden = {key for key in body if key not in hclread.READING_KEYS and key != "dynamic"}
        dynamic = [(label, content) for label, content in _dynamic_blocks(body.get("dynamic"))]
        overridden |= {label for label, _ in dynamic}
        kept = [
            (label, content) for label, content in _dynamic_blocks(merged.get("dynamic")) if label not in overridden
        ]
        for label, _ in dynamic:
            merged.pop(label, None)
        if kept or dynamic:
            merged["dynamic"] = [{label: content} for label, content in [*kept, *dynamic]]
        self.body = merged
        self.overridden_in.append(file_name)


def _dynamic_blocks(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """(block type, body) of each `dynamic "type" {...}`: a dict in `.tf`, a list of them in `.tf.json`."""
    found: list[tuple[str, dict[str, Any]]] = []
    for block in value if isinstance(value, list) else []:
        for label, content in block.items() if isinstance(block, dict) else ():
            for body in content if isinstance(content, list) else [content]:
                if isinstance(body, dict):
                    found.append((_label(label), body))
    return found


class _Locals(Mapping[str, Any]):
    """`local.*`, each evaluated when first read (locals may name each other, in any file). A local that names
    itself, directly or not, is Unknown (Terraform refuses the cycle)."""

    def __init__(self, raw: Mapping[str, Any], budget: hclread.Budget) -> None:
        self._raw, self._budget = raw, budget
        self._values: dict[str, Any] = {}
        self._reading: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._raw or name in self._reading:
                raise KeyError(name)
            self._reading.add(name)
            try:
                self._values[name] = hclread.evaluate(self._raw[name], {"local": self}, self._budget)
            finally:
                self._reading.discard(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _instances(collection: Any) -> list[tuple[str, Any]] | None:
    """(each.key, each.value) of a `for_each`: a map, or a set of strings (a list too, which Terraform refuses
    but lint still reads); None when lint cannot know them."""
    if isinstance(collection, dict):
        if any(isinstance(k, hclread.Unknown) for k in collection):
            return None
        return [(str(k), v) for k, v in collection.items()]
    if isinstance(collection, list) and all(
        isinstance(v, str) and not isinstance(v, hclread.Unknown) for v in collection
    ):
        return [(v, v) for v in dict.fromkeys(collection)]
    return None


MAX_INSTANCES = 10_000  # a `count` past it is not evaluated (a module, not a load test)


def _body(raw: Mapping[str, Any], scope: hclread.Scope, budget: hclread.Budget) -> dict[str, Any]:
    """A block body's values as Terraform evaluates them; `dynamic` blocks expanded where their `for_each` is
    known (else their content once, its iterator unknown)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in hclread.READING_KEYS:
            continue
        if key == "dynamic":
            for label, body in _dynamic_blocks(value):
                iterator = hclread.evaluate(body.get("iterator", label), {}, budget)
                contents = [c for c in body.get("content", []) if isinstance(c, dict)]
                found = hclread.pairs(hclread.evaluate(body.get("for_each"), scope, budget))
                scopes = (
                    [scope] if found is None else [{**scope, str(iterator): {"key": k, "value": v}} for k, v in found]
                )
                out.setdefault(label, []).extend(_body(c, inner, budget) for inner in scopes for c in contents)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):  # nested blocks
            out.setdefault(key, []).extend(_body(v, scope, budget) for v in value)
        else:
            name = hclread.evaluate(key, scope, budget) if key.startswith(('"', "${")) else key
            out[str(name)] = hclread.evaluate(value, scope, budget)
    return out


def _facts_of(block: _Block, locals_: _Locals, budget: hclread.Budget) -> list[Fact]:
    """One fact per instance Terraform would plan: a known `for_each` or `count` expanded (none when it is
    empty or zero); an unknown one gives one fact whose `each.*` / `count.index` stay Unknown."""
    scope: dict[str, Any] = {"local": locals_}
    body = block.body
    comments = tuple(str(c.get("value", "")) for c in body.get("__comments__", []) if isinstance(c, dict))
    source = f"{block.file}: {block.kind} {block.type}.{block.name}"
    if block.overridden_in:
        source += f" (as overridden in {', '.join(block.overridden_in)})"
    instances: list[tuple[str, dict[str, Any]]] = [(block.name, {})]
    if "for_each" in body:
        items = _instances(hclread.evaluate(body["for_each"], scope, budget))
        if items is not None:
            instances = [(f'{block.name}["{key}"]', {"each": {"key": key, "value": value}}) for key, value in items]
    elif "count" in body:
        count = hclread.evaluate(body["count"], scope, budget)
        if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= MAX_INSTANCES:
            instances = [(f"{block.name}[{i}]", {"count": {"index": i}}) for i in range(count)]
    return [
        Fact(block.kind, block.type, name, _body(body, scope | names, budget), source, comments)
        for name, names in instances
    ]


def facts_from_hcl(files: Mapping[str, str]) -> list[Fact]:
    """Facts from `.tf` and `.tf.json` sources (file name -> text); `.tf` read by `hclread`. The module is read
    as Terraform reads it: the ordinary files, then each override file (`override.tf`, `*_override.tf`) in
    name order merged into the blocks and locals it names; then values evaluated where they are constants
    (locals, templates, `for` expressions, `for_each`, `count`, `dynamic` blocks), `hclread.Unknown` where not.
    HCL with a syntax error, or that Terraform refuses (a block or local given twice, an override naming no
    block), raises ValueError naming the file (and for syntax, the line and column)."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for file_name, text in sorted(files.items()):
        try:
            if file_name.endswith(".tf.json"):
                document = _from_json_syntax(json.loads(text, object_pairs_hook=_repeated_keys_kept))
            else:
                document = hclread.read(text)
            for kind in ("resource", "data", "locals"):
                if not isinstance(document.get(kind, []), list):
                    raise ValueError(f"`{kind}` is an attribute here; Terraform knows it only as a block")
        except ValueError as exc:
            raise ValueError(f"{file_name}: {exc}") from None
        except RecursionError:  # json.loads, or the adapters after it
            raise ValueError(f"{file_name}: values nested too deeply to read") from None
        documents.append((file_name, document))
    # Terraform reads every ordinary file, then merges the override files in, each in name order.
    ordered = [d for d in documents if not _is_override(d[0])] + [d for d in documents if _is_override(d[0])]
    blocks: dict[tuple[str, str, str], _Block] = {}
    raw_locals: dict[str, Any] = {}
    kinds: tuple[Literal["resource", "data"], ...] = ("resource", "data")
    for file_name, document in ordered:
        override = _is_override(file_name)
        for block in document.get("locals", []):
            for key, value in block.items() if isinstance(block, dict) else ():
                if key in hclread.READING_KEYS:
                    continue
                if override != (key in raw_locals):
                    problem = "overrides no local value" if override else "is defined twice"
                    raise ValueError(f"{file_name}: local.{key} {problem} (Terraform refuses it)")
                raw_locals[key] = value
        for kind in kinds:
            for block in document.get(kind, []):
                for type_, named in block.items():
                    for name, body in named.items() if isinstance(named, dict) else ():
                        if name in hclread.READING_KEYS:
                            continue
                        if not isinstance(body, dict):
                            raise ValueError(f"{file_name}: a {kind} block takes a type and a name")
                        key = (kind, _label(type_), _label(name))
                        if override != (key in blocks):
                            problem = "overrides no block" if override else "is declared twice"
                            raise ValueError(f"{file_name}: {kind} {key[1]}.{key[2]} {problem} (Terraform refuses it)")
                        if override:
                            blocks[key].override(body, file_name)
                        else:
                            blocks[key] = _Block(kind, key[1], key[2], body, file_name)
    budget = hclread.Budget()
    locals_ = _Locals(raw_locals, budget)
    return [fact for block in blocks.values() for fact in _facts_of(block, locals_, budget)]


class _Repeated(list[Any]):
    """The values of a key a JSON object gives more than once."""


def _repeated_keys_kept(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Every value of a repeated key, not only the last (`json.loads`'s default): Terraform reads a repeated
    block, label or `"//"` key as if its values were one array, and refuses any other repeat."""
    values: dict[str, list[Any]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return {
        key: found[0]
        if len(found) == 1
        else _Repeated(v for value in found for v in (value if isinstance(value, list) else [value]))
        for key, found in values.items()
    }


def _no_repeats(value: Any, key: str) -> Any:
    """An attribute's value, refused if some object in it gives a key twice (Terraform refuses it too)."""
    if isinstance(value, _Repeated):
        raise ValueError(f"`{key}` is given twice")
    if isinstance(value, dict):
        return {k: _no_repeats(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_repeats(v, key) for v in value]
    return value


def _templates(value: Any) -> Any:
    """A JSON value with each string (key or value) marked as the template Terraform's JSON syntax makes it."""
    if isinstance(value, str):
        return hclread.Template(value)
    if isinstance(value, list):
        return [_templates(v) for v in value]
    if isinstance(value, dict):
        return {hclread.Template(k): _templates(v) for k, v in value.items()}
    return value


def _from_json_syntax(document: Any) -> dict[str, Any]:
    """Terraform's JSON syntax in the shape `hclread` gives `.tf` files: blocks as lists, strings as
    `hclread.Template`s, `"//"` keys as comments. JSON of another shape raises ValueError saying where."""

    def objects(value: Any, where: str) -> list[dict[str, Any]]:
        found = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in found):
            raise ValueError(f"{where} is not an object, as Terraform's JSON syntax requires")
        return found

    def body(value: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "//":
                out["__comments__"] = [{"value": str(c)} for c in (item if isinstance(item, _Repeated) else [item])]
            elif isinstance(item, dict) and key not in ("labels", "tags", "default_labels", "for_each"):
                out[key] = [body(item)]
            elif isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
                out[key] = [body(i) for i in item]  # blocks (a repeated block key among them)
            else:
                out[key] = _templates(_no_repeats(item, key))
        return out

    if not isinstance(document, dict):
        raise ValueError("the document is not an object, as Terraform's JSON syntax requires")
    shaped: dict[str, Any] = {}
    for kind in ("resource", "data"):
        for block in objects(document.get(kind, {}), f"`{kind}`"):
            for type_, named in block.items():
                for names in objects(named, f"`{kind}.{type_}`"):
                    for name, value in names.items():
                        for instance in objects(value, f"`{kind}.{type_}.{name}`"):
                            shaped.setdefault(kind, []).append({type_: {name: body(instance)}})
    shaped["locals"] = [
        {k: _templates(_no_repeats(v, k)) for k, v in block.items()}
        for block in objects(document.get("locals", {}), "`locals`")
    ]
    return shaped


LINT_MAX_BYTES = 2 * 1024 * 1024  # the largest Terraform file `lint` reads (a module, not a data dump)


def lint(directories: Iterable[Path]) -> list[Finding]:
    """Every rule over the `.tf` and `.tf.json` files of each directory (hand-written modules too). A
    directory without them, a file that is not a regular file (a FIFO would block the read) or is over
    `LINT_MAX_BYTES`, or HCL the parser cannot read, is bad input (UsageError)."""
    findings: list[Finding] = []
    for directory in directories:
        if not directory.is_dir():
            raise UsageError(f"{directory} does not exist or is not a directory")
        # Terraform skips a file whose name starts with `.` (an editor's or a tool's), so lint does too.
        files = sorted(
            p for p in directory.iterdir() if p.name.endswith((".tf", ".tf.json")) and not p.name.startswith(".")
        )
        if not files:
            raise UsageError(f"{directory} holds no .tf or .tf.json files")
        sources = {shown(f): _read_bounded(f) for f in files}  # names as findings quote them
        try:
            facts = facts_from_hcl(sources)
        except RecursionError:  # a value nested thousands deep, past the readers into the rules' adapters
            raise UsageError(f"{directory}: values nested too deeply to read") from None
        except ValueError as exc:
            raise UsageError(f"{exc}: not valid Terraform syntax, so lint cannot check it") from None
        findings += check(facts)
    return findings


def _read_bounded(path: Path) -> str:
    import stat

    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise UsageError(f"{shown(path)} is not a regular file (a FIFO, socket or device): lint reads files only")
    with path.open("rb") as handle:
        raw = handle.read(LINT_MAX_BYTES + 1)
    if len(raw) > LINT_MAX_BYTES:
        raise UsageError(
            f"{shown(path)} is over {LINT_MAX_BYTES // (1024 * 1024)} MB: lint reads module files, not data"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown(path)} is not UTF-8 text (byte {exc.start})") from None
