"""The least-privilege rules, in one place, applied to Terraform resources however they were made.

Each rule is a function over every `Fact` of a module, registered with its id and summary by `@rule` (in the
order README lists them); it yields what it found, and the registry names the rule. Opt-ins the spec justified
come back as warnings instead of violations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from dataform_infra import hclread
from dataform_infra import resource_types as types
from dataform_infra.policy.facts import Fact, Finding, Found
from dataform_infra.render.optin import MADE_ELSEWHERE, MIN_REASON, OPT_IN_MARKERS

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
# through `access/roles.py` and fails when the two part (after the table is regenerated, update this). The rules
# do not ask `access/roles.py` themselves: importing the access package loads the spec, which `lint` stays free of
# (`tests/test_policy.py` holds it to that). The roles
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
class Rule:
    id: str
    summary: str
    test: Callable[[list[Fact]], Iterable[Found]] = field(repr=False)

    def check(self, facts: list[Fact]) -> Iterator[Finding]:
        for found in self.test(facts):
            yield Finding(self.id, found.message, found.source, found.severity)


Test = Callable[[list[Fact]], Iterable[Found]]
RULES: list[Rule] = []  # in the order they are defined below


def rule(id: str, summary: str) -> Callable[[Test], Test]:
    """Register a rule under `id`, the name its findings and README give it."""

    def register(test: Test) -> Test:
        assert all(r.id != id for r in RULES), f"rule {id} registered twice"
        RULES.append(Rule(id, summary, test))
        return test

    return register


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


def _opted_in(fact: Fact, scope: str) -> str | None:
    """The justification comment for a grant at `scope` ("project" or "dataset"), if it gives one: the
    marker of that scope and a reason of at least 10 characters, as the spec's `reason` must be."""
    marker = OPT_IN_MARKERS[scope]
    for text in fact.comments:
        body = text.strip().lstrip("#").strip()
        if body.startswith(marker) and len(body[len(marker) :].strip(" :")) >= MIN_REASON:
            return body
    return None


def _same_account(account_ref: str, email_value: str) -> bool:
    """Does `service_account_id` (name or ref) denote the account whose email is `email_value`?"""
    ref = re.fullmatch(r"\$\{google_service_account\.([A-Za-z0-9_-]+)\.(email|name|id|member)\}", email_value)
    if ref:
        return bool(re.fullmatch(r"\$\{google_service_account\." + re.escape(ref[1]) + r"\.(name|id)\}", account_ref))
    return account_ref.endswith(f"/serviceAccounts/{email_value}")


@rule(
    "additive-iam-only",
    "Only additive `*_iam_member` resources; never `*_iam_binding` / `*_iam_policy`, nor a dataset's `access` "
    "blocks (they rewrite its whole access list); `google_bigquery_dataset_access` entries only on a dataset no "
    "`google_bigquery_dataset_iam_member` grants on (the two fight; dfinfra uses them where a dataset "
    "authorizes views).",
)
def _additive_only(facts: list[Fact]) -> Iterable[Found]:
    named = _datasets_named(facts)
    iam_members = [_dataset_of(f, named) for f in facts if f.type == types.BIGQUERY_DATASET_IAM_MEMBER.name]
    for f in facts:
        if f.kind != "resource":
            continue
        if f.type.endswith("_iam_binding") or f.type.endswith("_iam_policy"):
            yield Found(
                f"{f.address} is authoritative: it removes every member it does not "
                "list. Use the matching *_iam_member resource.",
                f.source,
            )
        elif f.type == types.BIGQUERY_DATASET.name and f.attrs.get("access"):
            yield Found(
                f"{f.address} sets `access` blocks, which are authoritative: they replace the dataset's whole "
                "ACL, removing every grant they do not list (google_bigquery_dataset_iam_member's among them). "
                "Grant with google_bigquery_dataset_iam_member instead.",
                f.source,
            )
        elif f.type == DATASET_ACCESS and any(_same_dataset(_dataset_of(f, named), m) for m in iam_members):
            yield Found(
                f"{f.address} edits the access list of a dataset that google_bigquery_dataset_iam_member also "
                "grants on: Google's provider documents that the two fight over the dataset's access (an IAM "
                "member removes authorizations). On one dataset, make every grant one or the other: an "
                "access-list entry where the dataset authorizes views.",
                f.source,
            )


@rule(
    "no-primitive-roles",
    "No primitive roles (`roles/owner`, `roles/editor`, `roles/viewer`).",
)
def _no_primitive_roles(facts: list[Fact]) -> Iterable[Found]:
    for g in _grants(facts):
        if g.role in PRIMITIVE_ROLES:
            yield Found(
                f"{g.fact.address} grants {g.what}, a primitive role covering every "
                "service in the project. Grant the specific predefined role.",
                g.fact.source,
            )


@rule(
    "no-iam-admin-roles",
    "No role on a project, folder or organization that lets its holder change IAM or act as its service "
    "accounts (any `*.setIamPolicy`, `iam.serviceAccounts.actAs` / `getAccessToken`, ...): predefined roles "
    "judged by Google's role table, custom roles by the permissions these files give them.",
)
def _no_iam_admin_roles(facts: list[Fact]) -> Iterable[Found]:
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
            yield Found(
                f"{g.fact.address} grants {g.what} on a {g.scope}: it carries {shown}, with which its holder can "
                f"grant itself (or anyone) roles across the {g.scope}, or act as its service accounts. Grant "
                "narrower roles on the objects that need them.",
                g.fact.source,
            )


@rule(
    "bigquery-data-roles",
    "BigQuery data roles scoped to datasets; project-wide roles or `admin`/`dataOwner` "
    "only with a recorded reason (then a warning).",
)
def _bigquery_data_roles(facts: list[Fact]) -> Iterable[Found]:
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
                yield Found(f"{f.address} grants {g.what} on {scope} ({reason}).", f.source, "warning")
            else:
                yield Found(
                    f"{f.address} grants {g.what} on {scope} with no justification. "
                    "Scope data roles to datasets (writes -> dataEditor, reads -> dataViewer) or opt in "
                    "with `project_wide: [{role, reason}]` (or `owns: [{dataset, reason}]` for Data Owner on one "
                    "dataset).",
                    f.source,
                )


@rule(
    "impersonation-on-accounts-only",
    "Token Creator / Service Account User granted on each service account, "
    "never on a project; `roles/dataform.serviceAgent` only to the Dataform service agent, on its project.",
)
def _impersonation_on_accounts(facts: list[Fact]) -> Iterable[Found]:
    for f in _iam_members(facts):
        role = f.attrs.get("role")
        if role in IMPERSONATION_ROLES and f.type != types.SERVICE_ACCOUNT_IAM_MEMBER.name:
            yield Found(
                f"{f.address} grants {role} on a {f.type.removesuffix('_iam_member')}: "
                "the member can then act as every service account under it. Grant it on each service "
                "account (google_service_account_iam_member).",
                f.source,
            )
        if role == "roles/dataform.serviceAgent" and not (
            f.type == types.PROJECT_IAM_MEMBER.name and AGENT_MEMBER.fullmatch(str(f.attrs.get("member")))
        ):
            yield Found(
                f"{f.address} grants roles/dataform.serviceAgent to {f.attrs.get('member')}: that role is the "
                "Dataform service agent's own (it starts scheduled runs) and goes to the agent only, on its project.",
                f.source,
            )


@rule(
    "secret-access-on-secret-only",
    "`roles/secretmanager.secretAccessor` on the one Git secret, never on the project.",
)
def _secret_access_on_secret(facts: list[Fact]) -> Iterable[Found]:
    for f in _iam_members(facts):
        if f.attrs.get("role") == "roles/secretmanager.secretAccessor" and f.type != types.SECRET_IAM_MEMBER.name:
            yield Found(
                f"{f.address} grants secretAccessor on a "
                f"{f.type.removesuffix('_iam_member')}, which opens every secret in it. Grant it on the "
                "one secret.",
                f.source,
            )


@rule(
    "no-secret-in-state",
    "No secret payload through Terraform: no `secret_data`, no secret version data source.",
)
def _no_secret_payloads(facts: list[Fact]) -> Iterable[Found]:
    for f in facts:
        if f.type == types.SECRET_VERSION.name:
            if f.kind == "data":
                yield Found(
                    f"{f.address} reads the secret payload into Terraform state. "
                    "Reference the version by name instead.",
                    f.source,
                )
            elif any(k in f.attrs for k in ("secret_data", "secret_data_wo")):
                yield Found(
                    f"{f.address} passes the secret through Terraform (state and "
                    "plan). Add versions with `dfinfra secret set` instead.",
                    f.source,
                )


@rule(
    "apis-stay-enabled",
    "`google_project_service` sets `disable_on_destroy = false`.",
)
def _apis_stay_enabled(facts: list[Fact]) -> Iterable[Found]:
    for f in facts:
        if (
            f.kind == "resource"
            and f.type == types.PROJECT_SERVICE.name
            and f.attrs.get("disable_on_destroy") is not False
        ):
            yield Found(
                f"{f.address} must set disable_on_destroy = false, or destroying it "
                "turns the API off for every other workload in the project.",
                f.source,
            )


@rule(
    "runner-usable",
    "Every runner a config attaches that the module creates: the service agent has Token Creator on it and "
    "the deployers have act-as on it; no workflow runs as the service agent. (A runner named by email is "
    "made elsewhere: `validate` names the grants its owner makes, `doctor` checks them.)",
)
def _runners_usable(facts: list[Fact]) -> Iterable[Found]:
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
            yield Found(
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
            yield Found(
                f"{f.address} runs as {account}, but the Dataform service agent has no "
                "roles/iam.serviceAccountTokenCreator on that account.",
                f.source,
            )
        if not any(g.attrs.get("role") == "roles/iam.serviceAccountUser" for g in on_account):
            yield Found(
                f"{f.address} attaches {account}, but no deployer gets "
                "roles/iam.serviceAccountUser on it (strict act-as).",
                f.source,
            )


@rule(
    "agent-reads-git-secret",
    "The service agent can read the repository's Git secret (it does all Git operations).",
)
def _agent_reads_git_secret(facts: list[Fact]) -> Iterable[Found]:
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
            yield Found(
                f"{f.address} authenticates with {version}, but the Dataform "
                "service agent has no secretAccessor on that secret (it does every Git operation, even "
                "when runners are set).",
                f.source,
            )


@rule(
    "role-is-constant",
    "Every granted role is one lint can read: a constant (literals, locals, templates, `for` expressions and "
    "`for_each` over them) or a custom role these files define with constant permissions; any other role could "
    "be `roles/owner` at plan time.",
)
def _roles_are_constants(facts: list[Fact]) -> Iterable[Found]:
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
                yield Found(
                    f"{g.fact.address} grants custom role {role}, whose permissions are not constants: lint "
                    "cannot prove what it grants.",
                    g.fact.source,
                )
        elif role is not None and not _constant(role):
            yield Found(
                f"{g.fact.address} grants {g.what}: role is not a constant: lint cannot prove it. Write the role "
                "as a literal or a local of literals.",
                g.fact.source,
            )
        elif _constant(role) and CUSTOM_ROLE_NAME.fullmatch(role):
            yield Found(
                f"{g.fact.address} grants custom role {role}, which these files do not define: lint cannot read "
                "its permissions. Define it here, or grant predefined roles.",
                g.fact.source,
            )


def check(facts: list[Fact]) -> list[Finding]:
    """Every rule's findings on `facts`, rule by rule."""
    shared = _Facts(facts)
    return [finding for r in RULES for finding in r.check(shared)]
