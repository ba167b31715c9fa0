"""The least-privilege rules, in one place, applied to Terraform resources however they were made.

Rules read `Fact`s: one per resource or data block, with attribute values normalised (string
literals unquoted, references as `${...}`). `facts_from_module` builds them from what dfinfra is
about to render (fast: `dfinfra validate`); `facts_from_hcl` parses any `.tf` files (tests use it on
every rendered module, and it lints hand-written HCL). A rule returns violations; opt-ins the spec
justified come back as warnings instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dataform_infra import hclread
from dataform_infra import resource_types as types
from dataform_infra.errors import UsageError
from dataform_infra.render.optin import MIN_REASON, OPT_IN_MARKERS

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

    def render(self) -> str:
        return f"{self.source}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    check: Callable[[list[Fact]], Iterable[Finding]] = field(repr=False)


def _iam_members(facts: list[Fact]) -> Iterable[Fact]:
    return (f for f in facts if f.kind == "resource" and f.type.endswith("_iam_member"))


def _additive_only(facts: list[Fact]) -> Iterable[Finding]:
    for f in facts:
        if f.kind == "resource" and (f.type.endswith("_iam_binding") or f.type.endswith("_iam_policy")):
            yield Finding(
                "additive-iam-only",
                f"{f.address} is authoritative: it removes every member it does not "
                "list. Use the matching *_iam_member resource.",
                f.source,
            )


def _no_primitive_roles(facts: list[Fact]) -> Iterable[Finding]:
    for f in facts:
        role = f.attrs.get("role")
        if role in PRIMITIVE_ROLES:
            yield Finding(
                "no-primitive-roles",
                f"{f.address} grants {role}, a primitive role covering every "
                "service in the project. Grant the specific predefined role.",
                f.source,
            )
        for binding in f.attrs.get("binding", []) if isinstance(f.attrs.get("binding"), list) else []:
            if binding.get("role") in PRIMITIVE_ROLES:
                yield Finding("no-primitive-roles", f"{f.address} grants {binding['role']}.", f.source)


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
    for f in _iam_members(facts):
        role = f.attrs.get("role")
        project_wide = f.type == types.PROJECT_IAM_MEMBER.name
        if role in BROAD_BIGQUERY_ROLES or (project_wide and role in PROJECT_DATA_ROLES):
            scope = "the whole project" if project_wide else "the dataset"
            # The spec has two opt-ins: project-wide roles, and Data Owner on one dataset.
            if project_wide:
                reason = _opted_in(f, "project")
            else:
                reason = _opted_in(f, "dataset") if role == "roles/bigquery.dataOwner" else None
            if reason:
                yield Finding(
                    "bigquery-data-roles", f"{f.address} grants {role} on {scope} ({reason}).", f.source, "warning"
                )
            else:
                yield Finding(
                    "bigquery-data-roles",
                    f"{f.address} grants {role} on {scope} with no justification. "
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
        "Only additive `*_iam_member` resources; never `*_iam_binding` / `*_iam_policy`.",
        _additive_only,
    ),
    Rule(
        "no-primitive-roles", "No primitive roles (`roles/owner`, `roles/editor`, `roles/viewer`).", _no_primitive_roles
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
        "Every runner a config attaches: the service agent has Token Creator on it and the deployers "
        "have act-as on it; no workflow runs as the service agent.",
        _runners_usable,
    ),
    Rule(
        "agent-reads-git-secret",
        "The service agent can read the repository's Git secret (it does all Git operations).",
        _agent_reads_git_secret,
    ),
)


def check(facts: list[Fact]) -> list[Finding]:
    return [finding for rule in RULES for finding in rule.check(facts)]


# --- adapters ---------------------------------------------------------------------------------


def _value(value: object) -> object:
    from dataform_infra.render.hcl import Expr

    if isinstance(value, Expr):
        text = str(value)
        return text[1:-1] if text.startswith('"') else "${" + text + "}"
    return value


def facts_from_module(module: Module) -> list[Fact]:
    """Facts for what `module` renders, with spec paths as sources (for `dfinfra validate`)."""
    from dataform_infra.spec.yamlsource import dotted_path  # `lint` reads no YAML: it skips loading the parser

    where = module.spec_files[0]
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
        attrs |= {"role": grant.role, "member": _value(grant.member)}
        comments = (f"{grant.opt_in_marker}: {grant.opt_in_reason}",) if grant.opt_in_reason else ()
        source = f"{module.spec_file(grant.env)}: {grant.spec_path}"
        facts.append(Fact("resource", grant.resource_type, grant.name, attrs, source, comments))
    for repo in module.repositories:
        git: dict[str, Any] = {}
        if repo.auth == "ssh":
            git["ssh_authentication_config"] = [{"user_private_key_secret_version": _value(repo.secret_version)}]
        elif repo.auth == "https_token":
            git["authentication_token_secret_version"] = _value(repo.secret_version)
        else:
            git["git_repository_link"] = repo.repository_link
        attrs = {"git_remote_settings": [git]}
        if repo.service_account:  # the repository's own runner
            attrs["service_account"] = _value(repo.service_account)
        source = f"{where}: {dotted_path(repo.hosted.path)}"
        facts.append(Fact("resource", repo.resource_type.name, repo.name, attrs, source))
    for wc in module.workflows:
        facts.append(
            Fact(
                "resource",
                wc.resource_type.name,
                wc.name,
                {"invocation_config": [{"service_account": _value(wc.service_account)}]},
                f"{where}: workflows ({wc.workflow.name})",
            )
        )
    return facts


_ESCAPE = re.compile(r'\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[nrt"\\])')
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _decode(inner: str) -> str:
    """An HCL quoted string's value: `"roles/\\u006fwner"` is `roles/owner` to Terraform, so to the rules too."""
    return _ESCAPE.sub(lambda m: chr(int(m[1][1:], 16)) if m[1][0] in "uU" else _SIMPLE_ESCAPES[m[1]], inner)


def _unquote(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return _decode(value[1:-1])
        if value in ("true", "false"):
            return value == "true"
        return value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k not in hclread.READING_KEYS}
    return value


_LOCAL = re.compile(r"\$\{local\.([A-Za-z0-9_-]+)\}")
_EACH = re.compile(r"\$\{each\.(key|value)\}")


def _resolve(value: Any, names: Mapping[str, str]) -> Any:
    """`value` with `${local.x}` / `${each.key}` / `${each.value}` replaced where `names` knows them."""
    if isinstance(value, str):
        value = _LOCAL.sub(lambda m: names.get(f"local.{m[1]}", m[0]), value)
        return _EACH.sub(lambda m: names.get(f"each.{m[1]}", m[0]), value)
    if isinstance(value, list):
        return [_resolve(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, names) for k, v in value.items()}
    return value


def _for_each(value: Any) -> list[tuple[str, str]] | None:
    """(each.key, each.value) of a literal `for_each` (a list, `toset([...])` or a map); None otherwise."""
    if isinstance(value, str):
        literal = re.fullmatch(r"\$\{(?:toset\()?(\[.*\])\)?\}", value, re.S)
        if literal is None:
            return None
        try:
            value = json.loads(literal[1])
        except ValueError:
            return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [(v, v) for v in value]
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return [(str(k), v) for k, v in value.items()]
    return None


def _facts_of(
    kind: Literal["resource", "data"],
    type_: str,
    name: str,
    attrs: dict[str, Any],
    where: str,
    comments: tuple[str, ...],
    locals_: Mapping[str, str],
) -> list[Fact]:
    """One fact per instance: literal locals resolved, a literal `for_each` expanded."""
    names = dict(locals_)
    items = _for_each(_resolve(attrs.get("for_each"), names)) if "for_each" in attrs else None
    if not items:
        return [Fact(kind, type_, name, _resolve(attrs, names), f"{where}: {kind} {type_}.{name}", comments)]
    facts = []
    for key, each in items:
        instance = {**names, "each.key": key, "each.value": each}
        facts.append(
            Fact(
                kind, type_, f'{name}["{key}"]', _resolve(attrs, instance), f"{where}: {kind} {type_}.{name}", comments
            )
        )
    return facts


def facts_from_hcl(files: Mapping[str, str]) -> list[Fact]:
    """Facts from `.tf` and `.tf.json` sources (file name -> text); `.tf` read by `hclread`. Literal locals
    and literal `for_each` are evaluated as Terraform would. HCL with a syntax error raises ValueError
    naming the file, line and column."""
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
    locals_: dict[str, str] = {}
    for _, document in documents:  # locals are module-wide, whichever file declares them
        for block in document.get("locals", []):
            for key, value in _unquote(block).items():
                if isinstance(value, str) and "${" not in value:
                    locals_[f"local.{key}"] = value
    facts: list[Fact] = []
    kinds: tuple[Literal["resource", "data"], ...] = ("resource", "data")
    for file_name, document in documents:
        for kind in kinds:
            for block in document.get(kind, []):
                for type_, named in block.items():
                    for name, body in named.items():
                        comments = tuple(c.get("value", "") for c in body.get("__comments__", []))
                        facts += _facts_of(
                            kind, _unquote(type_), _unquote(name), _unquote(body), file_name, comments, locals_
                        )
    return facts


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


def _from_json_syntax(document: Any) -> dict[str, Any]:
    """Terraform's JSON syntax in the shape `hclread` gives `.tf` files: blocks as lists, strings quoted,
    `"//"` keys as comments. JSON of another shape raises ValueError saying where."""

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
                out[key] = json.dumps(item) if isinstance(item, str) else _no_repeats(item, key)
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
        {k: json.dumps(v) if isinstance(v, str) else _no_repeats(v, k) for k, v in block.items()}
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
        files = sorted(p for p in directory.iterdir() if p.name.endswith((".tf", ".tf.json")))
        if not files:
            raise UsageError(f"{directory} holds no .tf or .tf.json files")
        sources = {str(f): _read_bounded(f) for f in files}
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
        raise UsageError(f"{path} is not a regular file (a FIFO, socket or device): lint reads files only")
    with path.open("rb") as handle:
        raw = handle.read(LINT_MAX_BYTES + 1)
    if len(raw) > LINT_MAX_BYTES:
        raise UsageError(f"{path} is over {LINT_MAX_BYTES // (1024 * 1024)} MB: lint reads module files, not data")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start})") from None
