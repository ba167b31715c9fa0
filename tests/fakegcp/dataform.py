"""The Dataform v1 API at run time: compile a repository's code and run it, checking every permission.

Served by FakeGoogleApis (tests/fakegcp/apis.py) on the same loopback port, reached by the real
`google-cloud-dataform` client. Repositories, release configs and workflow configs are the objects
the fake provider applied; the repository's code is a test-seeded store object:

    kind "git_code", id = the Git remote URL, body =
    {"workflow_settings": {"defaultProject": str | None, "defaultDataset": str,
                           "defaultAssertionDataset": str (default "dataform_assertions"),
                           "defaultLocation": str | None},
     "actions": [{"name": str, "type": "table" | "incremental" | "view" | "assertion" | "operation",
                  "schema": str | None, "database": str | None, "tags": [str],
                  "dependencies": [action names], "reads": ["project.dataset" or "dataset"],
                  "reads_metadata": [the same: INFORMATION_SCHEMA queries, table names and schemas only],
                  "reads_objects": [bucket names: external tables and LOAD DATA over their files],
                  "uses_connections": ["project.location.connection_id", or "location.connection_id" in the
                                       compiled project: BigLake tables, remote functions]}]}

A repository without a remote compiles its workspace's files: kind "workspace_code", id = the repository's
name, same body. No code object: the code compiles to zero actions. Which principal needs what follows
shared/docs/dataform-runtime-access.md (chains 1-8) and `iam.py`; each refusal names the permission
and the resource. Compilation results, invocations and scheduler records live in the store
(kinds `dataform_compilation_result`, `dataform_workflow_invocation`, `dataform_release_state`,
`dataform_schedule_records`); datasets a run creates become `runtime:google_bigquery_dataset`, with
the creator as their owner (`runtime:iam`), as BigQuery does.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.cloud import dataform_v1
from google.protobuf import timestamp_pb2
from google.rpc import status_pb2
from google.type import interval_pb2

from tests.fakegcp.iam import Iam, Resource, account_project, authorizes, link_permissions, parse_resource
from tests.fakegcp.policies import allowed, enforced
from tests.fakegcp.store import RELEASE_STATE, Store, default_key

if TYPE_CHECKING:
    from tests.fakegcp.apis import FakeGoogleApis

COMPILATION = "dataform_compilation_result"
INVOCATION = "dataform_workflow_invocation"
SCHEDULE_RECORDS = "dataform_schedule_records"
RUNTIME_DATASET = "runtime:google_bigquery_dataset"
RUNTIME_IAM = "runtime:iam"
RESTRICT_GIT_REMOTES = "dataform.restrictGitRemotes"
CROSS_PROJECT_SA = "iam.disableCrossProjectServiceAccountUsage"
# An INFORMATION_SCHEMA query of a dataset: BigQuery checks the dataset and lists and gets its tables.
METADATA_PERMISSIONS = ("bigquery.datasets.get", "bigquery.tables.list", "bigquery.tables.get")
# An external table or LOAD DATA over gs://bucket/prefix*: BigQuery lists the matching objects and reads them,
# as the runner (its query's credentials).
OBJECT_READ_PERMISSIONS = ("storage.objects.list", "storage.objects.get")
# A BigLake or object table, or a remote function, queried through a connection (as the runner); the connection's
# own account then reads the source, outside what a run's credentials decide.
CONNECTION_USE = "bigquery.connections.use"
TABLE_PERMISSIONS = (
    "bigquery.tables.create",
    "bigquery.tables.updateData",
    "bigquery.tables.update",
    "bigquery.tables.getData",
)
RELATION_TYPES = {"table": "TABLE", "view": "VIEW", "incremental": "INCREMENTAL_TABLE"}


class ApiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- Google's messages -------------------------------------------------------------------------


def denied(permission: str, resource: str) -> str:
    return f"Permission '{permission}' denied on resource '{resource}' (or it may not exist)."


def denied_on_account(permission: str, email: str) -> str:
    return f"Permission '{permission}' denied on resource (or it may not exist): projects/-/serviceAccounts/{email}"


def bq_project_denied(permission: str, project: str) -> str:
    return f"Access Denied: Project {project}: User does not have {permission} permission in project {project}."


def bq_dataset_denied(permission: str, project: str, dataset: str) -> str:
    return (
        f"Access Denied: Dataset {project}:{dataset}: Permission {permission} denied on dataset "
        f"{project}:{dataset} (or it may not exist)."
    )


def agent_email(number: str) -> str:
    return f"service-{number}@gcp-sa-dataform.iam.gserviceaccount.com"


def _sa(email: str) -> str:
    return f"serviceAccount:{email}"


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _first(value: Any) -> dict[str, Any]:
    """Terraform nested blocks are lists of one object."""
    if isinstance(value, list):
        return value[0] if value else {}
    return value or {}


# --- compilation ----------------------------------------------------------------------------------


def compile_code(
    code: dict[str, Any] | None, config: dict[str, Any], repo_project: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The repository's code with a CodeCompilationConfig applied: (compiled actions, compilation errors)."""
    if not code:
        return [], []
    settings = code.get("workflow_settings") or {}
    default_database = config.get("default_database") or settings.get("defaultProject") or repo_project
    default_schema = config.get("default_schema") or settings.get("defaultDataset")
    assertion_schema = (
        config.get("assertion_schema") or settings.get("defaultAssertionDataset") or "dataform_assertions"
    )
    schema_suffix = config.get("schema_suffix") or ""
    database_suffix = config.get("database_suffix") or ""
    prefix = config.get("table_prefix") or ""
    errors: list[str] = []
    if not default_schema:
        errors.append("workflow_settings.yaml: defaultDataset is required")
    names = {a["name"] for a in code.get("actions") or []}
    actions = []
    for action in code.get("actions") or []:
        kind = action.get("type", "table")
        schema = action.get("schema") or (assertion_schema if kind == "assertion" else default_schema) or ""
        database = action.get("database") or default_database
        reads, reads_metadata = [], []
        for read in action.get("reads") or []:
            project, _, dataset = read.rpartition(".")
            reads.append([project or default_database, dataset])
        for read in action.get("reads_metadata") or []:  # INFORMATION_SCHEMA: table names and schemas only
            project, _, dataset = read.rpartition(".")
            reads_metadata.append([project or default_database, dataset])
        for dependency in action.get("dependencies") or []:
            if dependency not in names:
                errors.append(
                    f'Missing dependency detected: Action "{action["name"]}" depends on "{dependency}" '
                    "which does not exist"
                )
        actions.append(
            {
                "action": action["name"],
                "type": kind,
                "target": {
                    "database": f"{database}_{database_suffix}" if database_suffix else database,
                    "schema": f"{schema}_{schema_suffix}" if schema_suffix else schema,
                    "name": f"{prefix}_{action['name']}" if prefix else action["name"],
                },
                "tags": list(action.get("tags") or []),
                "dependencies": list(action.get("dependencies") or []),
                "reads": reads,
                "reads_metadata": reads_metadata,
                "reads_objects": list(action.get("reads_objects") or []),
                # `location.connection_id` is the compiled project's own (`${defaultDatabase}`): each environment's.
                "uses_connections": [
                    f"{default_database}.{ref}" if ref.count(".") == 1 else ref
                    for ref in action.get("uses_connections") or []
                ],
            }
        )
    return actions, errors


def select_actions(actions: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """The actions an InvocationConfig selects, in dependency order (no selection = all actions)."""
    by_name = {a["action"]: a for a in actions}
    tags = set(config.get("included_tags") or [])
    targets = config.get("included_targets") or []

    def matches(action: dict[str, Any], target: dict[str, Any]) -> bool:
        mine = action["target"]
        return (
            target.get("name") in (mine["name"], action["action"])
            and (not target.get("schema") or target["schema"] == mine["schema"])
            and (not target.get("database") or target["database"] == mine["database"])
        )

    if not tags and not targets:
        chosen = set(by_name)
    else:
        chosen = {a["action"] for a in actions if tags & set(a["tags"]) or any(matches(a, t) for t in targets)}

    def closure(start: set[str], edges: dict[str, list[str]]) -> set[str]:
        seen, todo = set(start), list(start)
        while todo:
            for nxt in edges.get(todo.pop(), []):
                if nxt in by_name and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    dependencies = {a["action"]: a["dependencies"] for a in actions}
    dependents: dict[str, list[str]] = {}
    for a in actions:
        for d in a["dependencies"]:
            dependents.setdefault(d, []).append(a["action"])
    selected = set(chosen)
    if config.get("transitive_dependencies_included"):
        selected |= closure(chosen, dependencies)
    if config.get("transitive_dependents_included"):
        selected |= closure(chosen, dependents)
    ordered: list[dict[str, Any]] = []
    done: set[str] = set()
    pending = [a for a in actions if a["action"] in selected]
    while pending:
        ready = [a for a in pending if all(d in done or d not in selected for d in a["dependencies"])]
        if not ready:  # a cycle: run the rest in declaration order
            ready = pending
        for action in ready:
            ordered.append(action)
            done.add(action["action"])
        pending = [a for a in pending if a["action"] not in done]
    return ordered


def _invocation_config(value: Any) -> dict[str, Any]:
    """A Terraform invocation_config block or an InvocationConfig message as a plain dict."""
    if isinstance(value, dataform_v1.InvocationConfig):
        value = dataform_v1.InvocationConfig.to_dict(value, preserving_proto_field_name=True)
    value = _first(value)
    return {
        "included_tags": list(value.get("included_tags") or []),
        "included_targets": [
            {k: t.get(k) or "" for k in ("database", "schema", "name")} for t in value.get("included_targets") or []
        ],
        "transitive_dependencies_included": bool(value.get("transitive_dependencies_included")),
        "transitive_dependents_included": bool(value.get("transitive_dependents_included")),
        "fully_refresh_incremental_tables_enabled": bool(value.get("fully_refresh_incremental_tables_enabled")),
        "service_account": value.get("service_account") or "",
    }


@dataclass
class Outcome:
    state: str  # SUCCEEDED | FAILED
    actions: list[dict[str, Any]]
    reason: str = ""


class FakeDataform:
    """Dataform v1 handlers plus the scheduler and workspace hooks, over FakeGoogleApis' store."""

    def __init__(self, apis: FakeGoogleApis):
        self.apis = apis
        self.lock = threading.Lock()

    @property
    def store(self) -> Store:
        return self.apis.store

    @property
    def iam(self) -> Iam:
        return Iam(self.store, self.apis.propagation_seconds)

    # --- names and objects ----------------------------------------------------------------------

    def _repository(self, name: str) -> tuple[str, dict[str, Any], Resource]:
        """(canonical name, body, IAM resource) for a name under `projects/P/locations/R/repositories/N`."""
        parts = name.split("/")
        if len(parts) < 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "repositories":
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name: {name!r}")
        project = self.store.project_id(parts[1]) or parts[1]
        canonical = f"projects/{project}/locations/{parts[3]}/repositories/{parts[5]}"
        resource = Resource.repository(project, parts[3], parts[5])
        return canonical, self.store.get("google_dataform_repository", canonical) or {}, resource

    def _child(self, name: str, kind: str, permission: str, principal: str) -> tuple[str, dict[str, Any], dict]:
        canonical_repo, repo, resource = self._repository(name)
        self._require(principal, permission, resource)
        canonical = canonical_repo + "/" + "/".join(name.split("/")[6:])
        body = self.store.get(kind, canonical)
        if not repo or body is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {name}")
        return canonical, body, repo

    def _require(self, principal: str, permission: str, resource: Resource) -> None:
        if not self.iam.allows(principal, permission, resource):
            raise ApiError(grpc.StatusCode.PERMISSION_DENIED, denied(permission, resource.relative_name))

    def _agent(self, repo_project: str) -> str:
        email = agent_email(self.store.project_number(repo_project) or repo_project)
        if self.store.get("service_agent", email) is None:
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"The Dataform service agent {email} of project {repo_project} does not exist.",
            )
        return email

    def _dataset_exists(self, project: str, dataset: str) -> bool:
        key = f"projects/{project}/datasets/{dataset}"
        return any(
            self.store.get(kind, key) is not None
            for kind in ("google_bigquery_dataset", "external:google_bigquery_dataset", RUNTIME_DATASET)
        )

    # --- Git fetch and compilation --------------------------------------------------------------

    def _fetch(self, repo: dict[str, Any]) -> dict[str, Any] | None:
        """What the agent does to read the code: agent exists, remote allowed, Git secret readable."""
        project = repo["project"]
        agent = self._agent(project)
        self._uses_key(agent, repo)
        git = _first(repo.get("git_remote_settings"))
        if not git:
            return None
        url = git["url"]
        if not allowed(self.store, project, RESTRICT_GIT_REMOTES, url):
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Failed to fetch git remote '{url}': the remote is not allowed by the organization policy "
                f"constraint 'constraints/{RESTRICT_GIT_REMOTES}' on project {project}.",
            )
        link = git.get("git_repository_link")
        if link and not self._reads_link_tokens(agent, link):
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Failed to fetch git remote '{url}': "
                + denied("developerconnect.gitRepositoryLinks.fetchReadToken", link),
            )
        version = git.get("authentication_token_secret_version") or _first(git.get("ssh_authentication_config")).get(
            "user_private_key_secret_version"
        )
        if version:
            self._read_version(agent, version, f"Failed to fetch git remote '{url}'")
        if repo.get("npmrc_environment_variables_secret_version"):
            npmrc = repo["npmrc_environment_variables_secret_version"]
            self._read_version(agent, npmrc, "Failed to read the .npmrc environment variables")
        return self.store.get("git_code", url)

    def _uses_key(self, agent: str, repo: dict[str, Any]) -> None:
        """CMEK: the agent encrypts and decrypts the repository's data with its key for every operation. (The
        real error text is not documented; this one names the permission and the key.)"""
        key = repo.get("kms_key_name") or default_key(self.store, repo.get("id", ""))
        if not key:
            return
        resource = parse_resource(key, self.store)
        if resource is None or not self.iam.allows(_sa(agent), "cloudkms.cryptoKeyVersions.useToDecrypt", resource):
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"The Dataform service agent {agent} cannot use the repository's Cloud KMS key: "
                + denied("cloudkms.cryptoKeyVersions.useToDecrypt", key),
            )

    def _reads_link_tokens(self, agent: str, link: str) -> bool:
        """Developer Connect: the agent fetches a read token from the link (see `iam.link_permissions`)."""
        return "developerconnect.gitRepositoryLinks.fetchReadToken" in link_permissions(self.store, _sa(agent), link)

    def _read_version(self, agent: str, version: str, failing: str) -> None:
        """The agent reads `projects/<p>/secrets/<s>/versions/<v>`: IAM first, then an enabled version."""
        parts = version.split("/")
        secret = Resource.secret(self.store.project_id(parts[1]) or parts[1], parts[3])
        if not self.iam.allows(_sa(agent), "secretmanager.versions.access", secret):
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{failing}: " + denied("secretmanager.versions.access", f"{secret.relative_name}/versions/{parts[5]}"),
            )
        secret_id = secret.relative_name
        versions = [b for _, i, b in self.store.list("secret_version") if i.startswith(secret_id + "/versions/")]
        if parts[5] == "latest":
            enabled = [b for b in versions if b["state"] == "ENABLED"]
            body = max(enabled, key=lambda b: int(b["name"].rsplit("/", 1)[-1]), default=None)
        else:
            body = next((b for b in versions if b["name"].endswith(f"/versions/{parts[5]}")), None)
        if (
            self.store.get("google_secret_manager_secret", secret_id) is None
            or body is None
            or body["state"] != "ENABLED"
        ):
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION, f"{failing}: Secret Version [{version}] not found or not enabled."
            )

    def compile(self, principal: str, parent: str, source: dict[str, Any]) -> dict[str, Any]:
        """CreateCompilationResult as `principal`; `source` has release_config, workspace or git_commitish."""
        canonical, repo, resource = self._repository(parent)
        self._require(principal, "dataform.compilationResults.create", resource)
        if not repo:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {parent}")
        release, workspace = source.get("release_config"), source.get("workspace")
        commitish = source.get("git_commitish")
        config = dict(source.get("code_compilation_config") or {})
        if release:
            release_name = canonical + "/releaseConfigs/" + release.rsplit("/", 1)[-1]
            body = self.store.get("google_dataform_repository_release_config", release_name)
            if body is None:
                raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {release}")
            commitish, config = body["git_commitish"], _first(body.get("code_compilation_config"))
        elif workspace:
            workspace_name = workspace.rsplit("/", 1)[-1]
            overrides = _first(repo.get("workspace_compilation_overrides"))
            config = {
                key: str(overrides[key]).replace("${workspaceName}", workspace_name)
                for key in ("default_database", "schema_suffix", "table_prefix")
                if overrides.get(key)
            }
        elif not commitish:
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT, "One of git_commitish, workspace or release_config must be set."
            )
        if not _first(repo.get("git_remote_settings")) and not workspace:
            # [infer] the exact text is not documented: a Git ref needs a remote to resolve against.
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Repository {canonical} has no Git remote: {commitish!r} cannot be compiled.",
            )
        code = self._fetch(repo)
        if code is None and not _first(repo.get("git_remote_settings")):
            code = self.store.get("workspace_code", canonical)  # no remote: the code lives in the workspace
        actions, errors = compile_code(code, config, repo["project"])
        name = f"{canonical}/compilationResults/{uuid.uuid4()}"
        body = {
            "name": name,
            "repository": canonical,
            "release_config": release_name if release else "",
            "workspace": workspace or "",
            "git_commitish": commitish or "",
            "code_compilation_config": {k: v for k, v in config.items() if v},
            "actions": actions,
            "errors": errors,
            "created": time.time(),
        }
        self.store.put(COMPILATION, name, body)
        return body

    # --- invocations ----------------------------------------------------------------------------

    def invoke(
        self,
        principal: str,
        parent: str,
        compilation_result: str = "",
        workflow_config: str = "",
        invocation_config: dict[str, Any] | None = None,
        act_as: bool = True,
    ) -> dict[str, Any]:
        """CreateWorkflowInvocation as `principal` (act_as=False: the scheduler, no strict act-as check)."""
        canonical, repo, resource = self._repository(parent)
        self._require(principal, "dataform.workflowInvocations.create", resource)
        if not repo:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {parent}")
        config = _invocation_config(invocation_config)
        workflow_name = ""
        if workflow_config:
            workflow_name = canonical + "/workflowConfigs/" + workflow_config.rsplit("/", 1)[-1]
            workflow = self.store.get("google_dataform_repository_workflow_config", workflow_name)
            if workflow is None:
                raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {workflow_config}")
            config = _invocation_config(workflow.get("invocation_config"))
            state = self.store.get(RELEASE_STATE, workflow["release_config"]) or {}
            compilation_result = state.get("release_compilation_result", "")
            if not compilation_result:
                raise ApiError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Release config {workflow['release_config']} has no release compilation result yet.",
                )
        compiled = self.store.get(COMPILATION, compilation_result or "")
        if compiled is None or compiled["repository"] != canonical:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {compilation_result}")
        if compiled["errors"]:
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Compilation result {compilation_result} has compilation errors: {compiled['errors'][0]}",
            )
        project = repo["project"]
        agent = self._agent(project)
        self._uses_key(agent, repo)
        runner = config["service_account"] or repo.get("service_account") or ""
        if not runner:
            # Strict act-as mode: a run as the default service agent is refused (nobody can act as it).
            raise ApiError(grpc.StatusCode.PERMISSION_DENIED, denied_on_account("iam.serviceAccounts.actAs", agent))
        if act_as and not self._account_usable(principal, "iam.serviceAccounts.actAs", runner):
            raise ApiError(grpc.StatusCode.PERMISSION_DENIED, denied_on_account("iam.serviceAccounts.actAs", runner))
        outcome = self._run(project, agent, runner, compiled, config)
        name = f"{canonical}/workflowInvocations/{uuid.uuid4()}"
        body = {
            "name": name,
            "repository": canonical,
            "compilation_result": compilation_result,
            "workflow_config": workflow_name,
            "invocation_config": config,
            "runner": runner,
            "started": time.time(),
            "run_seconds": float(self.apis.run_seconds),
            "final_state": outcome.state,
            "reason": outcome.reason,
            "actions": outcome.actions,
            "cancelled": None,
        }
        self.store.put(INVOCATION, name, body)
        return body

    def _account_usable(self, principal: str, permission: str, email: str) -> bool:
        name = f"projects/{account_project(email)}/serviceAccounts/{email}"
        exists = any(
            self.store.get(kind, name) is not None
            for kind in ("google_service_account", "external:google_service_account")
        )
        return exists and self.iam.allows(principal, permission, Resource.service_account(email))

    def _run(self, project: str, agent: str, runner: str, compiled: dict, config: dict) -> Outcome:
        """What happens once the invocation exists: whole-run preconditions, then each action in order."""
        selected = select_actions(compiled["actions"], config)
        if not selected:
            return Outcome("SUCCEEDED", [])
        runner_project = account_project(runner)
        reason = ""
        if runner_project not in ("-", project) and enforced(self.store, runner_project, CROSS_PROJECT_SA):
            reason = (
                f"Cross-project service account usage is disabled: the organization policy constraint "
                f"'constraints/{CROSS_PROJECT_SA}' is enforced on project {runner_project}, so service account "
                f"{runner} cannot be used by repository {compiled['repository']}."
            )
        elif not self._account_usable(_sa(agent), "iam.serviceAccounts.getAccessToken", runner):
            reason = denied_on_account("iam.serviceAccounts.getAccessToken", runner)
        elif not self.iam.allows(_sa(runner), "bigquery.jobs.create", Resource.project_(project)):
            reason = bq_project_denied("bigquery.jobs.create", project)
        if reason:
            return Outcome(
                "FAILED",
                [{"target": a["target"], "state": "FAILED", "failure_reason": reason} for a in selected],
                reason,
            )
        targets = {a["action"]: a["target"] for a in compiled["actions"]}
        views = {a["action"]: a for a in compiled["actions"] if a["type"] == "view"}
        states: dict[str, str] = {}
        results = []
        for action in selected:
            if any(states.get(d) in ("FAILED", "SKIPPED") for d in action["dependencies"]):
                states[action["action"]] = "SKIPPED"
                results.append({"target": action["target"], "state": "SKIPPED", "failure_reason": ""})
                continue
            failure = self._action_failure(runner, action, targets, config) or self._view_failure(
                runner, action, targets, views
            )
            states[action["action"]] = "FAILED" if failure else "SUCCEEDED"
            results.append({"target": action["target"], "state": states[action["action"]], "failure_reason": failure})
        failed = any(r["state"] == "FAILED" for r in results)
        return Outcome("FAILED" if failed else "SUCCEEDED", results)

    def _view_failure(self, runner: str, action: dict, targets: dict[str, dict], views: dict[str, dict]) -> str:
        """Reading a view reads what the view reads, as the reader, unless the source dataset authorizes the
        view's dataset (an authorized dataset): then BigQuery reads it on the reader's behalf."""
        for name in action["dependencies"]:
            view = views.get(name)
            if view is None:
                continue
            home = (view["target"]["database"], view["target"]["schema"])
            sources = [tuple(r) for r in view["reads"]]
            sources += [(targets[d]["database"], targets[d]["schema"]) for d in view["dependencies"] if d in targets]
            for database, dataset in sources:
                source = Resource.dataset(database, dataset)
                if (database, dataset) == home or authorizes(self.store, source, *home):
                    continue
                if not self.iam.allows(_sa(runner), "bigquery.tables.getData", source):
                    return bq_dataset_denied("bigquery.tables.getData", database, dataset)
        return ""

    def _action_failure(self, runner: str, action: dict, targets: dict[str, dict], config: dict) -> str:
        member = _sa(runner)
        reads = [tuple(r) for r in action["reads"]]
        reads += [(targets[d]["database"], targets[d]["schema"]) for d in action["dependencies"] if d in targets]
        for database, dataset in reads:
            if not self._dataset_exists(database, dataset):
                if [database, dataset] in action["reads"]:
                    return f"Not found: Dataset {database}:{dataset} was not found"
                continue
            if not self.iam.allows(member, "bigquery.tables.getData", Resource.dataset(database, dataset)):
                return bq_dataset_denied("bigquery.tables.getData", database, dataset)
        for database, dataset in action.get("reads_metadata") or []:
            if not self._dataset_exists(database, dataset):
                return f"Not found: Dataset {database}:{dataset} was not found"
            for permission in METADATA_PERMISSIONS:
                if not self.iam.allows(member, permission, Resource.dataset(database, dataset)):
                    return bq_dataset_denied(permission, database, dataset)
        for bucket in action.get("reads_objects") or []:
            if self.store.get("external:google_storage_bucket", bucket) is None:
                return f"Not found: bucket {bucket}"
            for permission in OBJECT_READ_PERMISSIONS:
                if not self.iam.allows(member, permission, Resource.bucket(bucket)):
                    return (
                        f"Access Denied: BigQuery BigQuery: Permission denied while globbing file pattern. "
                        f"{runner} does not have {permission} access to the Google Cloud Storage bucket {bucket}."
                    )
        for connection in action.get("uses_connections") or []:
            project, location, connection_id = connection.split(".", 2)
            name = f"projects/{project}/locations/{location.lower()}/connections/{connection_id}"
            if self.store.get("external:google_bigquery_connection", name) is None:
                return f"Not found: Connection {connection}"
            if not self.iam.allows(member, CONNECTION_USE, Resource.connection(project, location, connection_id)):
                return f"Access Denied: Connection {connection}: Permission {CONNECTION_USE} denied on resource {name}"
        if action["type"] == "operation":
            return ""
        database, dataset = action["target"]["database"], action["target"]["schema"]
        if not self._dataset_exists(database, dataset):
            if not self.iam.allows(member, "bigquery.datasets.create", Resource.project_(database)):
                return bq_project_denied("bigquery.datasets.create", database)
            key = f"projects/{database}/datasets/{dataset}"
            self.store.put(RUNTIME_DATASET, key, {"created_by": runner})
            self.store.put(
                RUNTIME_IAM, f"{key}/owner", {"role": "roles/bigquery.dataOwner", "member": member, "resource": key}
            )
        needed = list(TABLE_PERMISSIONS)
        if action["type"] == "incremental" and config.get("fully_refresh_incremental_tables_enabled"):
            needed.append("bigquery.tables.delete")
        granted = self.iam.permissions(member, Resource.dataset(database, dataset))
        for permission in needed:
            if permission not in granted:
                return bq_dataset_denied(permission, database, dataset)
        return ""

    def state_of(self, body: dict[str, Any]) -> str:
        if body.get("cancelled"):
            return "CANCELLED"
        if time.time() < body["started"] + body["run_seconds"]:
            return "RUNNING"
        return body["final_state"]

    # --- test hooks ----------------------------------------------------------------------------

    def _record(self, key: str, record: dict[str, Any], release_result: str | None = None) -> None:
        body = self.store.get(SCHEDULE_RECORDS, key) or {"records": []}
        body["records"] = [{**record, "time": time.time()}, *body["records"]][:10]
        self.store.put(SCHEDULE_RECORDS, key, body)
        if release_result is not None:
            self.store.put(RELEASE_STATE, key, {"release_compilation_result": release_result})

    def run_scheduled(self, workflow_config: str) -> tuple[str, list[str]]:
        """One scheduled run of a workflow config: the agent compiles its release and starts the invocation."""
        workflow = self.store.get("google_dataform_repository_workflow_config", workflow_config)
        if workflow is None:
            return "FAILED", [f"Requested entity was not found: {workflow_config}"]
        release = workflow["release_config"]
        repository = workflow_config.split("/workflowConfigs/")[0]
        try:
            agent = _sa(self._agent(workflow["project"]))
        except ApiError as error:
            return "FAILED", [error.message]
        try:
            compiled = self.compile(agent, repository, {"release_config": release})
        except ApiError as error:
            self._record(release, {"error_status": {"code": error.code.value[0], "message": error.message}})
            return "FAILED", [error.message]
        self._record(release, {"compilation_result": compiled["name"]}, release_result=compiled["name"])
        if compiled["errors"]:
            return "FAILED", list(compiled["errors"])
        return self._invoke_scheduled(agent, repository, workflow_config)

    def _invoke_scheduled(self, agent: str, repository: str, workflow_config: str) -> tuple[str, list[str]]:
        """The scheduler starts the workflow config (no strict act-as for it), recording the attempt."""
        try:
            invocation = self.invoke(agent, repository, workflow_config=workflow_config, act_as=False)
        except ApiError as error:
            self._record(workflow_config, {"error_status": {"code": error.code.value[0], "message": error.message}})
            return "FAILED", [error.message]
        self._record(workflow_config, {"workflow_invocation": invocation["name"]})
        return self._result(invocation)

    def run_workflow_cron(self, workflow_config: str) -> tuple[str, list[str]]:
        """One tick of a workflow config's own cron, its release's cron not having fired since: it runs the
        release's live compilation, and fails as Google fails it when the release has none."""
        workflow = self.store.get("google_dataform_repository_workflow_config", workflow_config)
        if workflow is None:
            return "FAILED", [f"Requested entity was not found: {workflow_config}"]
        repository = workflow_config.split("/workflowConfigs/")[0]
        try:
            agent = _sa(self._agent(workflow["project"]))
        except ApiError as error:
            return "FAILED", [error.message]
        return self._invoke_scheduled(agent, repository, workflow_config)

    def push_workspace(self, repository: str, workspace: str = "dev") -> tuple[str, list[str]]:
        """A person's "Push to remote" from a workspace: the agent pushes with the remote's credential, which
        for a Developer Connect link is the read-write token (`fetchReadWriteToken`)."""
        _, repo, _ = self._repository(repository)
        git = _first(repo.get("git_remote_settings"))
        link = git.get("git_repository_link")
        if link:
            agent = _sa(self._agent(repo["project"]))
            wanted = "developerconnect.gitRepositoryLinks.fetchReadWriteToken"
            if wanted not in link_permissions(self.store, agent, link):
                return "FAILED", [f"Failed to push workspace {workspace} to '{git['url']}': " + denied(wanted, link)]
        return "SUCCEEDED", []

    def live_compilation(self, release_config: str) -> str:
        return (self.store.get(RELEASE_STATE, release_config) or {}).get("release_compilation_result", "")

    def run_workspace(
        self, caller: str, repository: str, workspace: str = "dev", invocation_config: dict[str, Any] | None = None
    ) -> tuple[str, list[str]]:
        """Compile a workspace with the repository's overrides as `caller`, run it as the repository's runner."""
        try:
            compiled = self.compile(caller, repository, {"workspace": f"{repository}/workspaces/{workspace}"})
            if compiled["errors"]:
                return "FAILED", list(compiled["errors"])
            invocation = self.invoke(caller, repository, compiled["name"], invocation_config=invocation_config)
        except ApiError as error:
            return "FAILED", [error.message]
        return self._result(invocation)

    @staticmethod
    def _result(invocation: dict[str, Any]) -> tuple[str, list[str]]:
        reasons = [invocation["reason"]] if invocation["reason"] else []
        for action in invocation["actions"]:
            if action["failure_reason"] and action["failure_reason"] not in reasons:
                reasons.append(action["failure_reason"])
        return invocation["final_state"], reasons

    # --- messages -------------------------------------------------------------------------------

    def _repository_message(self, name: str, body: dict[str, Any]) -> dataform_v1.Repository:
        git = _first(body.get("git_remote_settings"))
        overrides = _first(body.get("workspace_compilation_overrides"))
        message = dataform_v1.Repository(
            name=name,
            display_name=body.get("display_name") or "",
            service_account=body.get("service_account") or "",
            labels=body.get("effective_labels") or {},
            npmrc_environment_variables_secret_version=body.get("npmrc_environment_variables_secret_version") or "",
            kms_key_name=body.get("kms_key_name") or "",
        )
        if git:
            settings = dataform_v1.Repository.GitRemoteSettings
            ssh = _first(git.get("ssh_authentication_config"))
            message.git_remote_settings = settings(
                url=git["url"],
                default_branch=git.get("default_branch") or "",
                authentication_token_secret_version=git.get("authentication_token_secret_version") or "",
                ssh_authentication_config=settings.SshAuthenticationConfig(
                    user_private_key_secret_version=ssh.get("user_private_key_secret_version") or "",
                    host_public_key=ssh.get("host_public_key") or "",
                )
                if ssh
                else None,
                token_status=settings.TokenStatus[git.get("token_status") or "TOKEN_STATUS_UNSPECIFIED"],
            )
        if overrides:
            message.workspace_compilation_overrides = dataform_v1.Repository.WorkspaceCompilationOverrides(
                **{k: overrides.get(k) or "" for k in ("default_database", "schema_suffix", "table_prefix")}
            )
        return message

    @staticmethod
    def _code_config(config: dict[str, Any]) -> dataform_v1.CodeCompilationConfig:
        fields = (
            "default_database",
            "default_schema",
            "default_location",
            "assertion_schema",
            "database_suffix",
            "schema_suffix",
            "table_prefix",
        )
        return dataform_v1.CodeCompilationConfig(
            vars=config.get("vars") or {}, **{k: config.get(k) or "" for k in fields}
        )

    @staticmethod
    def _status(record: dict[str, Any]) -> status_pb2.Status | None:
        error = record.get("error_status")
        return status_pb2.Status(code=error["code"], message=error["message"]) if error else None

    def _invocation_message(self, body: dict[str, Any]) -> dataform_v1.WorkflowInvocation:
        state = self.state_of(body)
        timing = interval_pb2.Interval(start_time=_stamp(body["started"]))
        if state != "RUNNING":
            timing.end_time.CopyFrom(_stamp(body.get("cancelled") or body["started"] + body["run_seconds"]))
        message = dataform_v1.WorkflowInvocation(
            name=body["name"],
            state=dataform_v1.WorkflowInvocation.State[state],
            invocation_timing=timing,
            resolved_compilation_result=body["compilation_result"],
        )
        if body["workflow_config"]:
            message.workflow_config = body["workflow_config"]
        else:
            message.compilation_result = body["compilation_result"]
            message.invocation_config = dataform_v1.InvocationConfig(
                included_targets=[dataform_v1.Target(**t) for t in body["invocation_config"]["included_targets"]],
                **{k: v for k, v in body["invocation_config"].items() if k != "included_targets"},
            )
        return message

    # --- gRPC handlers --------------------------------------------------------------------------

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        d = dataform_v1

        def rpc(request_type, response_type, function):
            def handle(request, context):
                try:
                    return function(request)
                except ApiError as error:
                    context.abort(error.code, error.message)

            return grpc.unary_unary_rpc_method_handler(
                handle, request_deserializer=request_type.deserialize, response_serializer=response_type.serialize
            )

        return [
            grpc.method_handlers_generic_handler(
                "google.cloud.dataform.v1.Dataform",
                {
                    "GetRepository": rpc(d.GetRepositoryRequest, d.Repository, self.get_repository),
                    "ComputeRepositoryAccessTokenStatus": rpc(
                        d.ComputeRepositoryAccessTokenStatusRequest,
                        d.ComputeRepositoryAccessTokenStatusResponse,
                        self.compute_repository_access_token_status,
                    ),
                    "GetReleaseConfig": rpc(d.GetReleaseConfigRequest, d.ReleaseConfig, self.get_release_config),
                    "UpdateReleaseConfig": rpc(
                        d.UpdateReleaseConfigRequest, d.ReleaseConfig, self.update_release_config
                    ),
                    "GetWorkflowConfig": rpc(d.GetWorkflowConfigRequest, d.WorkflowConfig, self.get_workflow_config),
                    "CreateCompilationResult": rpc(
                        d.CreateCompilationResultRequest, d.CompilationResult, self.create_compilation_result
                    ),
                    "GetCompilationResult": rpc(
                        d.GetCompilationResultRequest, d.CompilationResult, self.get_compilation_result
                    ),
                    "QueryCompilationResultActions": rpc(
                        d.QueryCompilationResultActionsRequest,
                        d.QueryCompilationResultActionsResponse,
                        self.query_compilation_result_actions,
                    ),
                    "CreateWorkflowInvocation": rpc(
                        d.CreateWorkflowInvocationRequest, d.WorkflowInvocation, self.create_workflow_invocation
                    ),
                    "GetWorkflowInvocation": rpc(
                        d.GetWorkflowInvocationRequest, d.WorkflowInvocation, self.get_workflow_invocation
                    ),
                    "QueryWorkflowInvocationActions": rpc(
                        d.QueryWorkflowInvocationActionsRequest,
                        d.QueryWorkflowInvocationActionsResponse,
                        self.query_workflow_invocation_actions,
                    ),
                    "CancelWorkflowInvocation": rpc(
                        d.CancelWorkflowInvocationRequest,
                        d.CancelWorkflowInvocationResponse,
                        self.cancel_workflow_invocation,
                    ),
                    "GetConfig": rpc(d.GetConfigRequest, d.Config, self.get_config),
                },
            )
        ]

    def get_repository(self, request):
        canonical, repo, resource = self._repository(request.name)
        self._require(self.apis.caller, "dataform.repositories.get", resource)
        if not repo:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {request.name}")
        return self._repository_message(canonical, repo)

    def compute_repository_access_token_status(self, request):
        """VALID when the agent can fetch with the token; NOT_FOUND without a usable version; INVALID otherwise."""
        _, repo, resource = self._repository(request.name)
        self._require(self.apis.caller, "dataform.repositories.get", resource)
        if not repo:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {request.name}")
        status = dataform_v1.ComputeRepositoryAccessTokenStatusResponse.TokenStatus
        try:
            self._fetch(repo)
        except ApiError as error:
            found = "not found or not enabled" not in error.message
            return dataform_v1.ComputeRepositoryAccessTokenStatusResponse(
                token_status=status.INVALID if found else status.NOT_FOUND
            )
        return dataform_v1.ComputeRepositoryAccessTokenStatusResponse(token_status=status.VALID)

    def get_config(self, request):
        """GetConfig: the project's Dataform settings in a region, which always exist (empty until set)."""
        parts = request.name.split("/")
        if len(parts) != 5 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "config":
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid config name: {request.name!r}")
        project = self.store.project_id(parts[1]) or parts[1]
        self._require(self.apis.caller, "dataform.config.get", Resource.project_(project))
        name = f"projects/{project}/locations/{parts[3]}/config"
        body = self.store.get("google_dataform_config", name) or {}
        return dataform_v1.Config(name=name, default_kms_key_name=body.get("default_kms_key_name") or "")

    def get_release_config(self, request):
        name, body, _ = self._child(
            request.name, "google_dataform_repository_release_config", "dataform.releaseConfigs.get", self.apis.caller
        )
        return self._release_message(name, body)

    def update_release_config(self, request):
        """UpdateReleaseConfig, for what dfinfra sends: the live compilation under an update mask. Strict
        act-as: the caller must be able to act as the account of every workflow config using the release."""
        sent = request.release_config
        name, body, repo = self._child(
            sent.name, "google_dataform_repository_release_config", "dataform.releaseConfigs.update", self.apis.caller
        )
        paths = list(request.update_mask.paths)
        if paths == ["git_commitish"]:  # CI moving the release to a new tag (`git_ref_owner: ci`)
            with self.lock:
                self.store.put(
                    "google_dataform_repository_release_config", name, {**body, "git_commitish": sent.git_commitish}
                )
            return self._release_message(name, {**body, "git_commitish": sent.git_commitish})
        if paths != ["release_compilation_result"]:
            raise ApiError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"the offline Dataform updates release_compilation_result or git_commitish only: {paths}",
            )
        for _, _, workflow in self.store.list("google_dataform_repository_workflow_config"):
            if workflow.get("release_config") != name:
                continue
            account = _invocation_config(workflow.get("invocation_config")).get("service_account") or (
                repo.get("service_account") or agent_email(self.store.project_number(repo["project"]) or "")
            )
            if not self._account_usable(self.apis.caller, "iam.serviceAccounts.actAs", account):
                raise ApiError(
                    grpc.StatusCode.PERMISSION_DENIED, denied_on_account("iam.serviceAccounts.actAs", account)
                )
        chosen = sent.release_compilation_result
        compiled = self.store.get(COMPILATION, chosen) if chosen else None
        if chosen and (compiled is None or compiled["release_config"] != name):
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"release_compilation_result {chosen} was not created from release config {name}",
            )
        with self.lock:
            self.store.put(RELEASE_STATE, name, {"release_compilation_result": chosen})
        return self._release_message(name, body)

    def _release_message(self, name: str, body: dict[str, Any]) -> dataform_v1.ReleaseConfig:
        state = self.store.get(RELEASE_STATE, name) or {}
        records = (self.store.get(SCHEDULE_RECORDS, name) or {}).get("records", [])
        return dataform_v1.ReleaseConfig(
            name=name,
            git_commitish=body["git_commitish"],
            code_compilation_config=self._code_config(_first(body.get("code_compilation_config"))),
            cron_schedule=body.get("cron_schedule") or "",
            time_zone=body.get("time_zone") or "",
            disabled=bool(body.get("disabled")),
            release_compilation_result=state.get("release_compilation_result", ""),
            recent_scheduled_release_records=[
                dataform_v1.ReleaseConfig.ScheduledReleaseRecord(
                    compilation_result=r.get("compilation_result", ""),
                    error_status=self._status(r),
                    release_time=_stamp(r["time"]),
                )
                for r in records
            ],
        )

    def get_workflow_config(self, request):
        name, body, _ = self._child(
            request.name, "google_dataform_repository_workflow_config", "dataform.workflowConfigs.get", self.apis.caller
        )
        config = _invocation_config(body.get("invocation_config"))
        records = (self.store.get(SCHEDULE_RECORDS, name) or {}).get("records", [])
        return dataform_v1.WorkflowConfig(
            name=name,
            release_config=body["release_config"],
            invocation_config=dataform_v1.InvocationConfig(
                included_targets=[dataform_v1.Target(**t) for t in config["included_targets"]],
                **{k: v for k, v in config.items() if k != "included_targets"},
            ),
            cron_schedule=body.get("cron_schedule") or "",
            time_zone=body.get("time_zone") or "",
            disabled=bool(body.get("disabled")),
            recent_scheduled_execution_records=[
                dataform_v1.WorkflowConfig.ScheduledExecutionRecord(
                    workflow_invocation=r.get("workflow_invocation", ""),
                    error_status=self._status(r),
                    execution_time=_stamp(r["time"]),
                )
                for r in records
            ],
        )

    def _compilation_message(self, body: dict[str, Any]) -> dataform_v1.CompilationResult:
        message = dataform_v1.CompilationResult(
            name=body["name"],
            code_compilation_config=self._code_config(body["code_compilation_config"]),
            resolved_git_commit_sha=uuid.uuid5(uuid.NAMESPACE_URL, body["name"]).hex[:40].ljust(40, "0"),
            dataform_core_version="3.0.0",
            compilation_errors=[dataform_v1.CompilationResult.CompilationError(message=e) for e in body["errors"]],
            create_time=_stamp(body["created"]),
        )
        if body["release_config"]:
            message.release_config = body["release_config"]
        elif body["workspace"]:
            message.workspace = body["workspace"]
        else:
            message.git_commitish = body["git_commitish"]
        return message

    def create_compilation_result(self, request):
        result = request.compilation_result
        source = {
            "release_config": result.release_config,
            "workspace": result.workspace,
            "git_commitish": result.git_commitish,
            "code_compilation_config": dataform_v1.CodeCompilationConfig.to_dict(
                result.code_compilation_config, preserving_proto_field_name=True
            ),
        }
        with self.lock:
            return self._compilation_message(self.compile(self.apis.caller, request.parent, source))

    def get_compilation_result(self, request):
        _, _, resource = self._repository(request.name)
        self._require(self.apis.caller, "dataform.compilationResults.get", resource)
        body = self.store.get(COMPILATION, request.name)
        if body is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {request.name}")
        return self._compilation_message(body)

    def query_compilation_result_actions(self, request):
        _, _, resource = self._repository(request.name)
        self._require(self.apis.caller, "dataform.compilationResults.query", resource)
        body = self.store.get(COMPILATION, request.name)
        if body is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {request.name}")
        d = dataform_v1.CompilationResultAction
        targets = {a["action"]: a["target"] for a in body["actions"]}
        actions = []
        for action in body["actions"]:
            deps = [dataform_v1.Target(**targets[n]) for n in action["dependencies"] if n in targets]
            target = dataform_v1.Target(**action["target"])
            message = d(target=target, canonical_target=target, file_path=f"definitions/{action['action']}.sqlx")
            if action["type"] in RELATION_TYPES:
                message.relation = d.Relation(
                    dependency_targets=deps,
                    tags=action["tags"],
                    relation_type=d.Relation.RelationType[RELATION_TYPES[action["type"]]],
                    select_query="SELECT 1",
                )
            elif action["type"] == "assertion":
                message.assertion = d.Assertion(dependency_targets=deps, tags=action["tags"], select_query="SELECT 1")
            else:
                message.operations = d.Operations(dependency_targets=deps, tags=action["tags"], queries=["SELECT 1"])
            actions.append(message)
        return dataform_v1.QueryCompilationResultActionsResponse(compilation_result_actions=actions)

    def create_workflow_invocation(self, request):
        invocation = request.workflow_invocation
        with self.lock:
            body = self.invoke(
                self.apis.caller,
                request.parent,
                compilation_result=invocation.compilation_result,
                workflow_config=invocation.workflow_config,
                invocation_config=invocation.invocation_config,
            )
        return self._invocation_message(body)

    def _invocation(self, name: str, permission: str) -> dict[str, Any]:
        _, _, resource = self._repository(name)
        self._require(self.apis.caller, permission, resource)
        body = self.store.get(INVOCATION, name)
        if body is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {name}")
        return body

    def get_workflow_invocation(self, request):
        return self._invocation_message(self._invocation(request.name, "dataform.workflowInvocations.get"))

    def query_workflow_invocation_actions(self, request):
        body = self._invocation(request.name, "dataform.workflowInvocations.query")
        state = self.state_of(body)
        end = body["started"] + body["run_seconds"]
        actions = []
        for action in body["actions"]:
            target = dataform_v1.Target(**action["target"])
            if state == "CANCELLED":
                action = {**action, "state": "CANCELLED", "failure_reason": ""}
            elif state == "RUNNING":
                action = {**action, "state": "PENDING", "failure_reason": ""}
            timing = interval_pb2.Interval(start_time=_stamp(body["started"]))
            if action["state"] not in ("PENDING", "SKIPPED"):
                timing.end_time.CopyFrom(_stamp(end))
            actions.append(
                dataform_v1.WorkflowInvocationAction(
                    target=target,
                    canonical_target=target,
                    state=dataform_v1.WorkflowInvocationAction.State[action["state"]],
                    failure_reason=action["failure_reason"],
                    invocation_timing=timing,
                    bigquery_action=dataform_v1.WorkflowInvocationAction.BigQueryAction(sql_script="SELECT 1"),
                )
            )
        return dataform_v1.QueryWorkflowInvocationActionsResponse(workflow_invocation_actions=actions)

    def cancel_workflow_invocation(self, request):
        with self.lock:
            body = self._invocation(request.name, "dataform.workflowInvocations.cancel")
            if self.state_of(body) == "RUNNING":
                body["cancelled"] = time.time()
                self.store.put(INVOCATION, body["name"], body)
        return dataform_v1.CancelWorkflowInvocationResponse()
