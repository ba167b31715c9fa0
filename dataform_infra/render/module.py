"""Decide what one environment's Terraform root module contains.

This is where intent becomes resources: which APIs, accounts, datasets, grants and Dataform
configs, and which module owns each. The templates only lay these objects out as HCL.

Ownership follows the spec files: an environment's module holds everything its YAML declares.
- The host module (the one with `repository:` or `repositories:`) creates the repositories, the service
  agent's identity and role, the Git secrets and their accessor grants, and people's repository access.
- Every module (the host's included) creates its own runners, datasets and BigQuery grants, the
  grants that make its runners usable (the agent's Token Creator and deployers' act-as on them,
  their Job User on the host project, people's `run_as` on them) and its release and workflow
  configs, which are children of the host repository their release names, named literally outside the host.
So the host is applied first, then the targets, and `dfinfra apply prod` changes exactly what
`prod.yaml` declares. Destroy goes the other way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, ClassVar

from dataform_infra import MINIMUM_TERRAFORM
from dataform_infra import resource_types as types
from dataform_infra.render.hcl import Expr, Ident
from dataform_infra.render.names import NameAllocator
from dataform_infra.render.optin import MADE_ELSEWHERE, OPT_IN_MARKERS
from dataform_infra.spec.formats import slug, topic_name
from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import Dataset as DatasetSpec
from dataform_infra.spec.models import (
    Environment,
    GitRemote,
    IamCondition,
    Release,
    Runner,
    Workflow,
    WorkspaceCompilation,
)
from dataform_infra.spec.yamlsource import PathKey, dotted_path
from dataform_infra.topology import (
    AttachedRunner,
    HostedRepository,
    Principal,
    Resource,
    Topology,
    dataset_resource,
    object_grants,
    project_resource,
    runner_resource,
    service_account_name,
    views_of,
)


@lru_cache(maxsize=256)  # a handful of attribute names, once per grant each
def _attribute(name: str) -> Ident:
    return Ident(name)


class Addressed:
    """A view-model of one Terraform resource: its type's facts live in `resource_types`."""

    resource_type: ClassVar[types.ResourceType]
    name: Ident

    @property
    def address(self) -> str:
        return f"{self.resource_type.address_prefix}.{self.name}"

    def ref(self, attribute: str = "") -> Expr:
        """A reference to it, or to one of its attributes."""
        return Expr.ref(self.resource_type.address_prefix, self.name, *([attribute] if attribute else []))

    @property
    def label(self) -> str:
        """What it is, as `explain` and the plan summary name it for a reviewer."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Grant:
    """One additive IAM membership: who (`principal`) gets which role on what (`resource`), and why.

    `member` and `target` are the same facts spelled as HCL (a reference where the module creates
    the object); `principal` and `resource` are what the access model and reviewers reason about.
    """

    resource_type: Ident
    name: Ident
    role: str
    principal: Principal
    resource: Resource
    member: str | Expr
    target: dict[Ident, str | Expr]
    rule: str
    why: str
    path: PathKey
    env: str = ""
    depends_on: tuple[Expr, ...] = ()
    opt_in_reason: str | None = None
    condition: IamCondition | None = None  # the grant holds only while this IAM condition is true
    # On a dataset that authorizes others, every grant is an entry of its access list (`acl`), and an authorization
    # is one too: `authorized` names the dataset whose views it lets read (project, dataset id or reference).
    acl: bool = False
    authorized: tuple[str, str | Expr] | None = None

    @property
    def address(self) -> str:
        return f"{self.resource_type}.{self.name}"

    @property
    def role_value(self) -> str:
        """The role as written: an access-list entry names Data Viewer/Editor/Owner by their legacy names, which
        is how Google reads them back (else every plan shows a change)."""
        return LEGACY_DATASET_ROLE.get(self.role, self.role) if self.acl else self.role

    @property
    def member_attribute(self) -> Ident:
        """`member`, or for an access-list entry the attribute that names this kind of member."""
        if not self.acl:
            return Ident("member")
        kind = self.principal.member.split(":", 1)[0]
        return Ident(ACL_MEMBER_ATTRIBUTES.get(kind, "iam_member"))

    @property
    def member_value(self) -> str | Expr:
        if self.member_attribute in ("member", "iam_member"):
            return self.member
        if isinstance(self.member, Expr):  # the account this module creates: its email, not its member string
            return Expr.ref(*str(self.member).split(".")[:-1], "email")
        return self.member.split(":", 1)[1]

    @property
    def opt_in_marker(self) -> str:
        """How the HCL comment recording `opt_in_reason` starts, for this grant's scope."""
        return OPT_IN_MARKERS[self.resource.kind]

    @property
    def spec_path(self) -> str:
        """The spec field asking for it, as `runners[0].bigquery.writes[1]` (in `env`'s file)."""
        return dotted_path(self.path)


@dataclass(frozen=True)
class Import:
    """An object that already exists (`existing: true`): Terraform imports it at `to`, by Google's `id`."""

    to: Expr
    id: str
    path: PathKey


@dataclass(frozen=True)
class Api(Addressed):
    resource_type = types.PROJECT_SERVICE

    name: Ident
    project: str
    service: str

    @property
    def label(self) -> str:
        return f"API {self.service} in {self.project}"


@dataclass(frozen=True)
class ServiceAccount(Addressed):
    resource_type = types.SERVICE_ACCOUNT

    name: Ident
    project: str
    account_id: str
    display_name: str | None  # None: an adopted account keeps its own (the spec states none)
    description: str | None
    email: str
    depends_on: tuple[Expr, ...]
    adopted: bool = False

    @property
    def label(self) -> str:
        return f"service account {self.email}"

    @property
    def kept_as_found(self) -> Expr | None:
        """`ignore_changes` of an adopted account: what the spec leaves unset keeps the value it was made with."""
        if not self.adopted:
            return None
        unset = [n for n, v in (("display_name", self.display_name), ("description", self.description)) if v is None]
        return Expr(f"[{', '.join(unset)}]") if unset else None


@dataclass(frozen=True)
class Dataset(Addressed):
    resource_type = types.BIGQUERY_DATASET

    name: Ident
    project: str
    dataset_id: str
    location: str
    description: str | None
    depends_on: tuple[Expr, ...]
    spec: DatasetSpec | None = None  # the spec's options (None: the defaults)

    @property
    def options(self) -> dict[Ident, object]:
        """The optional attributes the spec sets, in the order the block prints them."""
        spec = self.spec
        if spec is None:
            return {}
        values: dict[str, object] = {
            "friendly_name": spec.friendly_name,
            "default_table_expiration_ms": spec.default_table_expiration_ms,
            "default_partition_expiration_ms": spec.default_partition_expiration_ms,
            # The provider types it as a string.
            "max_time_travel_hours": str(spec.max_time_travel_hours) if spec.max_time_travel_hours else None,
        }
        return {Ident(k): v for k, v in values.items() if v is not None}

    @property
    def labels(self) -> dict[str, str]:
        return dict(sorted(self.spec.labels.items())) if self.spec else {}

    @property
    def delete_contents_on_destroy(self) -> bool:
        return bool(self.spec and self.spec.delete_contents_on_destroy)

    @property
    def label(self) -> str:
        return f"dataset {self.project}.{self.dataset_id}"


@dataclass(frozen=True)
class RunnerRef:
    """How a module names one of its runners: references to the account it creates, or the literal names of
    one made elsewhere (`Runner.email`)."""

    env: str
    runner: Runner
    project: str
    email: str
    resource_name: Expr | str
    email_value: Expr | str
    member_value: Expr | str

    @property
    def made_elsewhere_note(self) -> str:
        """For a runner made elsewhere, the comment its configs carry ("" for one this module creates)."""
        if not self.runner.made_elsewhere:
            return ""
        return (
            f"{MADE_ELSEWHERE}: {self.email} is referenced, never created here; its owner grants the Dataform "
            "service agent roles/iam.serviceAccountTokenCreator and the deployers roles/iam.serviceAccountUser on it."
        )


@dataclass(frozen=True)
class ManagedSecret(Addressed):
    """A secret this module creates whose payload is added outside Terraform: a Git credential's (once however many
    repositories use it) or a notification channel's token."""

    resource_type = types.SECRET

    name: Ident
    project: str
    secret_id: str
    kind: str  # what it holds, for the comment: "token" or "SSH key"
    replicas: tuple[str, ...]  # user-managed replication regions; empty: automatic
    set_command: str  # how its payload is added, outside Terraform
    depends_on: tuple[Expr, ...]
    holder: str = "Git"  # whose credential: Git's, or a notification channel's

    @property
    def label(self) -> str:
        return f"secret {self.secret_id} ({self.holder} {self.kind})"


@dataclass(frozen=True)
class RepositoryView(Addressed):
    """One `google_dataform_repository`, every value the template prints."""

    resource_type = types.REPOSITORY

    name: Ident
    hosted: HostedRepository
    display_name: str | None
    service_account: Expr | str | None  # the repository's runner
    deletion_policy: str
    kms_key_name: str | None
    npmrc_version: str | None  # `projects/<p>/secrets/<s>/versions/<v>` of the `.npmrc` variables
    labels: dict[str, str]
    git: GitRemote | None  # None: no remote (people work in workspaces only, or Git is connected later)
    secret_version: Expr | str | None  # the Git credential's version name (never its payload)
    workspace: WorkspaceCompilation | None
    depends_on: tuple[Expr, ...]
    secret_output: Expr | str | None  # the Git secret's id, as outputs.tf prints it
    made_elsewhere_note: str = ""  # the runner's account is another owner's: what they grant on it

    @property
    def per_workspace_names(self) -> bool:
        """Does a workspace override carry `${workspaceName}` (printed as `$${workspaceName}`)?"""
        ws = self.workspace
        return ws is not None and "${workspaceName}" in (ws.schema_suffix or "") + (ws.table_prefix or "")

    @property
    def auth(self) -> str | None:
        """GitRemote.auth (https_token, ssh or repository_link); None without a remote."""
        return self.git.auth if self.git else None

    @property
    def host_public_key(self) -> str | None:
        return self.git.ssh.host_public_key if self.git and self.git.ssh else None

    @property
    def label(self) -> str:
        return f"repository {self.hosted.name}"


@dataclass(frozen=True)
class DataformConfigView(Addressed):
    """The host project's `google_dataform_config` in its region: Dataform's default CMEK key."""

    resource_type = types.DATAFORM_CONFIG

    name: Ident
    project: str
    region: str
    default_kms_key_name: str
    depends_on: tuple[Expr, ...]

    @property
    def label(self) -> str:
        return f"Dataform's settings in {self.project} ({self.region})"

    @property
    def why(self) -> str:
        """The comment over the block: what the key does, and what Google keeps of it on destroy."""
        return (
            f"Dataform's default key in {self.region}: every repository created here afterwards without a key of "
            "its own is encrypted with it (changing it affects only later repositories). Destroy only forgets it: "
            "Google keeps the setting."
        )


@dataclass(frozen=True)
class ConfigHome:
    """Where a release or workflow config lives: the repository its release names."""

    project: str
    region: str
    repository: Expr | str  # a reference in the host module, the repository's name elsewhere
    name: str  # the repository's name, for comments


@dataclass(frozen=True)
class Moved:
    """A resource renamed since an earlier dfinfra: Terraform moves its state instead of replacing it."""

    from_: Expr
    to: Expr


@dataclass(frozen=True)
class ReleaseConfig(Addressed):
    resource_type = types.RELEASE_CONFIG

    name: Ident
    env: str
    home: ConfigHome
    release: Release
    database: str | None  # None: workflow_settings.yaml's defaultProject
    location: str | None  # None: workflow_settings.yaml's defaultLocation

    @property
    def git_ref_moved_by_ci(self) -> bool:
        """CI owns `git_commitish`: the module sets its first value and never resets it (`ignore_changes`)."""
        return self.release.git_ref_owner == "ci"

    @property
    def config_id(self) -> str:
        """The release config's id in its repository (the spec's name)."""
        return self.release.name

    @property
    def left_to_settings_note(self) -> str:
        """The comment over `code_compilation_config` naming exactly what workflow_settings.yaml decides, or ""."""
        unset = [
            name
            for name, value in (("default_database", self.database), ("default_location", self.location))
            if value is None
        ]
        if not unset:
            return ""
        which = " and ".join(unset)
        pronoun = "it" if len(unset) == 1 else "them"
        return f"{which} unset here: the repository's workflow_settings.yaml decides {pronoun}."

    @property
    def compilation(self) -> dict[Ident, str]:
        """`code_compilation_config`'s attributes that are set, in the order the block prints them."""
        c = self.release.compilation
        values = {
            "default_database": self.database,
            "default_location": self.location,
            "default_schema": c.schema_,
            "assertion_schema": c.assertion_schema,
            "schema_suffix": c.schema_suffix,
            "database_suffix": c.database_suffix,
            "table_prefix": c.table_prefix,
        }
        return {Ident(name): value for name, value in values.items() if value}

    @property
    def vars(self) -> dict[str, str]:
        return dict(sorted(self.release.compilation.vars.items()))

    @property
    def label(self) -> str:
        return f"release config {self.config_id} in repository {self.home.name}"


@dataclass(frozen=True)
class WorkflowConfig(Addressed):
    resource_type = types.WORKFLOW_CONFIG

    name: Ident
    env: str
    home: ConfigHome
    workflow: Workflow
    release_ref: Expr
    service_account: Expr | str
    depends_on: tuple[Expr, ...]
    made_elsewhere_note: str = ""  # the runner's account is another owner's: what they grant on it

    @property
    def config_id(self) -> str:
        """The workflow config's id in its repository (the spec's name)."""
        return self.workflow.name

    @property
    def targets(self) -> list[dict[Ident, str]]:
        """Each `included_targets` block's attributes that are set (database, schema, name)."""
        return [
            {Ident(k): v for k, v in (("database", t.database), ("schema", t.schema_), ("name", t.name)) if v}
            for t in self.workflow.targets
        ]

    @property
    def label(self) -> str:
        return f"workflow config {self.config_id} in repository {self.home.name}"


# --- operating runs: triggers and alerts ----------------------------------------------------------------

# What each kind of trigger listens for (Eventarc's event types), as its matching criteria name them.
EVENT_TYPES = {
    "bucket": "google.cloud.storage.object.v1.finalized",
    "topic": "google.cloud.pubsub.topic.v1.messagePublished",
    "audit_log": "google.cloud.audit.log.v1.written",
}
COMPLETION_LOG = "dataform.googleapis.com%2Fworkflow_invocation_completion"


def logging_quote(value: str) -> str:
    """A Cloud Logging query string literal: double quotes, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Orchestration(Addressed):
    """The Cloud Workflows workflow one trigger calls: it starts the workflow config as Google's schedule does and
    waits for the run. Its source is the same text for every trigger (the template's); what differs reaches it as
    environment variables, so no spec value is ever part of the code it runs."""

    resource_type = types.WORKFLOWS_WORKFLOW

    name: Ident
    project: str
    region: str
    workflow_name: str
    service_account: Expr
    env_vars: dict[str, str | Expr]
    description: str
    filters_objects: bool  # a bucket trigger's prefix: the workflow ignores other objects
    depends_on: tuple[Expr, ...]

    @property
    def label(self) -> str:
        return f"Cloud Workflows workflow {self.workflow_name} in {self.project}"


@dataclass(frozen=True)
class EventTrigger(Addressed):
    """An Eventarc trigger: the event (its matching criteria) calls the orchestration as the orchestrator."""

    resource_type = types.EVENTARC_TRIGGER

    name: Ident
    project: str
    location: str
    trigger_name: str
    criteria: tuple[tuple[str, str, str], ...]  # (attribute, value, operator or "")
    topic: str | None
    workflow: Expr
    service_account: Expr
    why: str
    depends_on: tuple[Expr, ...]

    @property
    def label(self) -> str:
        return f"Eventarc trigger {self.trigger_name} in {self.project}"


@dataclass(frozen=True)
class SchedulerJob(Addressed):
    """A Cloud Scheduler job calling the orchestration's executions endpoint with the orchestrator's token."""

    resource_type = types.SCHEDULER_JOB

    name: Ident
    project: str
    region: str
    job_name: str
    schedule: str
    time_zone: str
    uri: Expr
    service_account: Expr
    why: str
    depends_on: tuple[Expr, ...]

    @property
    def label(self) -> str:
        return f"Cloud Scheduler job {self.job_name} in {self.project}"


@dataclass(frozen=True)
class NotificationChannelView(Addressed):
    resource_type = types.MONITORING_NOTIFICATION_CHANNEL

    name: Ident
    project: str
    display_name: str
    channel_type: str
    labels: dict[str, str]
    depends_on: tuple[Expr, ...]
    token_variable: Ident | None = None  # a webhook's token: the ephemeral variable carrying it (write-only)
    token_secret: str = ""  # the secret it is read from, for the comment

    @property
    def label(self) -> str:
        return f"notification channel {self.display_name} in {self.project}"

    @property
    def token_version(self) -> Ident:
        return Ident(f"{self.token_variable}_version")

    @property
    def token_note(self) -> str:
        return (
            f"The webhook's token: dfinfra reads it from {self.token_secret} at plan and apply and sets these "
            "(TF_VAR_*); it reaches the provider only as the write-only auth_token_wo, never state or plan."
        )


@dataclass(frozen=True)
class AlertPolicy(Addressed):
    """A log-based alert policy: a failed run's completion entry opens an incident on the channels."""

    resource_type = types.MONITORING_ALERT_POLICY

    name: Ident
    project: str
    display_name: str
    filter_terms: tuple[str, ...]  # the filter is these, joined by AND
    channels: tuple[Expr, ...]
    rate_limit: str
    auto_close: str
    documentation: str
    workflows: tuple[str, ...]
    depends_on: tuple[Expr, ...]

    @property
    def label(self) -> str:
        return f"alert policy {self.display_name!r} in {self.project}"

    @property
    def filter(self) -> str:
        """The Cloud Logging filter, as Monitoring receives it."""
        return " AND ".join(self.filter_terms)

    @property
    def label_extractors(self) -> dict[str, str]:
        """What a notification shows: which workflow config and which invocation failed."""
        return {
            "workflow_config": "EXTRACT(jsonPayload.workflowConfigId)",
            "workflow_invocation": "EXTRACT(jsonPayload.workflowInvocationId)",
        }


@dataclass
class Module:
    """Everything one environment's root module declares, ready for the templates."""

    env_name: str
    env: Environment
    is_host: bool
    spec_files: tuple[str, ...]
    apis: list[Api] = field(default_factory=list)
    service_accounts: list[ServiceAccount] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    releases: list[ReleaseConfig] = field(default_factory=list)
    workflows: list[WorkflowConfig] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    orchestrations: list[Orchestration] = field(default_factory=list)
    event_triggers: list[EventTrigger] = field(default_factory=list)
    scheduler_jobs: list[SchedulerJob] = field(default_factory=list)
    channels: list[NotificationChannelView] = field(default_factory=list)
    alert_policies: list[AlertPolicy] = field(default_factory=list)
    # The storage agent's email comes from this project's number (bucket triggers): checked like the host's.
    checks_own_number: bool = False
    service_agent: str | None = None
    host_project: str = ""  # the project hosting the repositories (and the service agent)
    # The host's: its repositories, and the Git secrets it creates (none kept in another project).
    repositories: list[RepositoryView] = field(default_factory=list)
    dataform_config: DataformConfigView | None = None  # the default CMEK key, when the host sets one
    secrets: list[ManagedSecret] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    api_refs: dict[str, Expr] = field(default_factory=dict)
    # The project number the spec declares for this module's project, when HCL uses it (the agent's email).
    checked_project_number: str | None = None

    # The environment's own values the templates print (the view-model, so templates never read the spec).
    @property
    def project(self) -> str:
        return self.env.project.id

    @property
    def region(self) -> str:
        return self.env.region

    @property
    def labels(self) -> dict[str, str]:
        """Labels every labelled resource carries (the providers' `default_labels`), sorted."""
        return dict(sorted(self.env.labels.items()))

    @property
    def state_bucket(self) -> str:
        return self.env.state.bucket

    @property
    def state_prefix(self) -> str:
        return self.env.state.prefix

    @property
    def provider_version(self) -> str:
        return self.env.provider_version

    @property
    def project_number_message(self) -> Expr:
        """The plan-time error when the spec's project number is not the project's real one."""
        return Expr.template(
            f"The project number in {self.spec_files[0]} ({self.checked_project_number}) is not the number of "
            f"project {self.env.project.id} (",
            Expr.ref("self", "number"),
            "): correct project.number there.",
        )

    def spec_file(self, env_name: str) -> str:
        """The spec file (as printed in headers) declaring environment `env_name`."""
        return next(f for f in self.spec_files if f.rsplit("/", 1)[-1].rsplit(".", 1)[0] == env_name)

    @property
    def required_terraform(self) -> str:
        """The module's `required_version`: dfinfra's floor, or 1.11 where a channel's token travels through an
        ephemeral variable (1.10) into a write-only attribute (1.11)."""
        if any(c.token_variable for c in self.channels):
            return ">= 1.11.0"
        return ">= " + ".".join(map(str, MINIMUM_TERRAFORM))

    @property
    def secrets_concern(self) -> str:
        """What secrets.tf holds, for its header."""
        holders = {s.holder for s in self.secrets}
        if holders == {"Git"}:
            return "the Git credentials' secrets."
        return (
            "the Git credentials' and notification channels' secrets."
            if "Git" in holders
            else ("the notification channels' secrets.")
        )

    @property
    def uses_access_lists(self) -> bool:
        """Does a dataset here authorize views (so its grants are entries of its access list)?"""
        return any(g.acl or g.authorized for g in self.grants)

    def names(self) -> dict[str, str]:
        """Address -> what it is, for every resource the module declares but grants (named in full elsewhere)."""
        declared: list[Addressed] = [
            *self.apis,
            *self.service_accounts,
            *self.datasets,
            *self.secrets,
            *self.repositories,
            *self.releases,
            *self.workflows,
            *self.operations(),
        ]
        return {item.address: item.label for item in declared}

    def operations(self) -> list[Orchestration | EventTrigger | SchedulerJob | NotificationChannelView | AlertPolicy]:
        """What runs started by events and failed-run alerts add: each made in its `project`."""
        return [*self.orchestrations, *self.event_triggers, *self.scheduler_jobs, *self.channels, *self.alert_policies]

    def needs_api(self, service: str) -> tuple[Expr, ...]:
        """depends_on for a resource that needs `service`, when this module enables it."""
        return (self.api_refs[service],) if service in self.api_refs else ()


# How a dataset's access list names Data Viewer, Editor and Owner (Google answers with these whatever was written).
LEGACY_DATASET_ROLE = {
    "roles/bigquery.dataViewer": "READER",
    "roles/bigquery.dataEditor": "WRITER",
    "roles/bigquery.dataOwner": "OWNER",
}
# The access-list attribute for each kind of IAM member (any other goes in `iam_member`).
ACL_MEMBER_ATTRIBUTES = {
    "user": "user_by_email",
    "serviceAccount": "user_by_email",
    "group": "group_by_email",
    "domain": "domain",
}


def build_module(deployment: Deployment, env_name: str) -> Module:
    """`env_name`'s module, built from the setup it belongs to (its host's part of the directory)."""
    return _ModuleBuilder(deployment.part(env_name), env_name).build()


class _ModuleBuilder:
    def __init__(self, deployment: Deployment, env_name: str):
        self.deployment = deployment
        self.env_name = env_name
        self.env = deployment.environments[env_name]
        self.topology = Topology(deployment)
        self.host_name = deployment.host_name
        self.is_host = env_name == self.host_name
        self.names = NameAllocator()
        envs_dir = deployment.spec_file(env_name).parent.name
        # The host reads every spec (anything scheduled, a project shared with it); a target reads the host's.
        related = [env_name] + (
            [n for n in deployment.environments if n != env_name] if self.is_host else [self.host_name]
        )
        files = tuple(f"{envs_dir}/{deployment.spec_file(n).name}" for n in related)
        self.module = Module(env_name, self.env, self.is_host, files, host_project=deployment.host.project.id)
        self.sa_refs: dict[str, Ident] = {}
        # The agent's email comes from the host's project number (a local in iam.tf). The host module
        # creates the agent; a target module is applied after it, so nothing there waits for it.
        self.agent_member = Expr.ref("local", "dataform_service_agent")
        self.agent_depends_on: tuple[Expr, ...] = (
            (Expr.ref(types.PROJECT_SERVICE_IDENTITY.name, "dataform"),) if self.is_host else ()
        )
        self.repository_refs: dict[str, Ident] = {}  # the host's: repository name -> its resource's name
        self.secret_grants: dict[Resource, Grant] = {}  # one accessor grant per secret, however many repositories
        self.key_grants: dict[Resource, Grant] = {}  # one agent grant per CMEK key, however many repositories
        self.ambiguous_moves: set[str] = set()
        self.moved_from: dict[str, Moved] = {}
        # Members whose local part (what names their grants) another member shares: named in full instead, so
        # neither name depends on the order of the entries.
        members = {a.member for _, _, a in self.topology.people()}
        shared = Counter(slug(m) for m in members)
        self.full_names = {m for m in members if shared[slug(m)] > 1}

    def build(self) -> Module:
        self._apis()
        self._service_accounts()
        self._datasets()
        self._bigquery_grants()
        self._people_grants()
        self._authorizations()
        if self.is_host:
            self._repositories()
        self._runner_access()
        self._configs()
        self._orchestrations()
        self._alerts()
        return self.module

    # --- every environment ----------------------------------------------------------------

    def _apis(self) -> None:
        """Each project's APIs are enabled by one module: the first one applied in that project, so a
        project shared by the host and a target (the single-project layout) gets them from the host."""
        if self.topology.api_owner(self.env_name) != self.env_name:
            return
        project = self.env.project.id
        sharing = [n for n, e in self.deployment.environments.items() if e.project.id == project]
        services = sorted({s for n in sharing for s in self.topology.apis(n)})
        for service in services:
            api = Api(self.names.name(types.PROJECT_SERVICE.name, service.split(".")[0]), project, service)
            self.module.apis.append(api)
            self.module.api_refs[service] = api.ref()

    @staticmethod
    def _default(release: Release, environment_value: str) -> str | None:
        """What an unset database/location compiles with: the environment's, unless the release leaves
        it to the repository's workflow_settings.yaml (then the HCL sets nothing)."""
        return environment_value if release.compilation.defaults_from == "environment" else None

    def _adopt(self, resource_type: types.ResourceType, label: Ident, path: PathKey, /, **identity: str) -> None:
        """Import the existing object `label` (`existing: true` at `path`) by the id its type takes."""
        to = Expr.ref(resource_type.name, label)
        self.module.imports.append(Import(to, resource_type.import_id_of(**identity), path))

    def _adopt_config(
        self, type_: types.ResourceType, name: Ident, hosted: HostedRepository, config: str, path: PathKey
    ) -> None:
        where = {"project": hosted.project, "region": hosted.region, "repository": hosted.name}
        self._adopt(type_, name, path, name=config, **where)

    def _service_accounts(self) -> None:
        self._orchestrator_account()
        for i, runner in enumerate(self.env.runners):
            if runner.made_elsewhere:
                continue  # referenced by its email, never created here
            name = self.names.name(types.SERVICE_ACCOUNT.name, runner.name)
            self.sa_refs[runner.name] = name
            email = runner.email_in(self.env.project.id)
            if runner.existing:
                project = self.env.project.id
                self._adopt(types.SERVICE_ACCOUNT, name, ("runners", i, "existing"), project=project, email=email)
            self.module.service_accounts.append(
                ServiceAccount(
                    name=name,
                    project=self.env.project.id,
                    account_id=runner.name,
                    # An adopted account keeps the name it was made with unless the spec gives one.
                    display_name=runner.display_name
                    or (None if runner.existing else f"Dataform runner ({self.env_name})"),
                    description=runner.description,
                    email=email,
                    depends_on=self.module.needs_api("iam.googleapis.com"),
                    adopted=runner.existing,
                )
            )

    def _orchestrator_account(self) -> None:
        """The account this environment's triggers start runs as, when a workflow has any."""
        if not self.env.triggered_workflows():
            return
        principal = self.topology.orchestrator(self.env_name)
        name = self.names.name(types.SERVICE_ACCOUNT.name, self.env.orchestrator)
        self.orchestrator = ServiceAccount(
            name=name,
            project=self.env.project.id,
            account_id=self.env.orchestrator,
            display_name=f"Dataform orchestrator ({self.env_name})",
            description="Starts this environment's Dataform workflows when their triggers fire (dfinfra).",
            email=principal.email,
            depends_on=self.module.needs_api("iam.googleapis.com"),
        )
        self.module.service_accounts.append(self.orchestrator)

    def _authorizations(self) -> None:
        """Each dataset's authorized datasets: an access-list entry that lets the other's views read it."""
        project = self.env.project.id
        for i, dataset in enumerate(self.env.datasets):
            for j, ref in enumerate(dataset.authorized_datasets):
                views = views_of(project, ref)
                other = dataset_resource(project, ref)
                self._grant(
                    (dataset.id, "authorizes", ref),
                    role="roles/bigquery.dataViewer",
                    principal=views,
                    resource=dataset_resource(project, dataset.id),
                    member=views.member,
                    target={"project": project, "dataset_id": self.dataset_refs[dataset.id]},
                    rule="dataset-authorizes-views",
                    why=f"Views in dataset {other.project}.{other.id} query {dataset.id} on their readers' behalf "
                    "(an authorized dataset): their readers need no access to it.",
                    path=("datasets", i, "authorized_datasets", j),
                    # This project's own dataset, however it is named, by reference: created first.
                    authorized=(
                        other.project,
                        self.dataset_refs.get(other.id, other.id) if other.project == project else other.id,
                    ),
                )

    def _datasets(self) -> None:
        # Datasets that authorize others keep every grant in their access list (Grant.acl).
        self.acl_datasets = {(self.env.project.id, d.id) for d in self.env.datasets if d.authorized_datasets}
        self.dataset_refs: dict[str, Expr | str] = {}
        for i, dataset in enumerate(self.env.datasets):
            if not dataset.create:
                self.dataset_refs[dataset.id] = dataset.id
                continue
            name = self.names.name(types.BIGQUERY_DATASET.name, dataset.id)
            if dataset.existing:
                where: PathKey = ("datasets", i, "existing")
                self._adopt(types.BIGQUERY_DATASET, name, where, project=self.env.project.id, dataset_id=dataset.id)
            self.dataset_refs[dataset.id] = Expr.ref(types.BIGQUERY_DATASET.name, name, "dataset_id")
            self.module.datasets.append(
                Dataset(
                    name,
                    self.env.project.id,
                    dataset.id,
                    dataset.location or self.env.bigquery_location,
                    dataset.description,
                    self.module.needs_api("bigquery.googleapis.com"),
                    dataset,
                )
            )

    def _runner_ref(self, attached: AttachedRunner) -> RunnerRef:
        """How this module names one of its own runners: references to the account it creates."""
        assert attached.env == self.env_name, "a module only grants on and attaches its own runners"
        if attached.made_elsewhere:  # named by its email: nothing here creates it
            email = attached.email
            return RunnerRef(
                env=attached.env,
                runner=attached.runner,
                project=attached.project,
                email=email,
                resource_name=service_account_name(email),
                email_value=email,
                member_value=f"serviceAccount:{email}",
            )
        name = self.sa_refs[attached.runner.name]
        account = types.SERVICE_ACCOUNT.name
        return RunnerRef(
            env=attached.env,
            runner=attached.runner,
            project=attached.project,
            email=attached.email,
            resource_name=Expr.ref(account, name, "name"),
            email_value=Expr.ref(account, name, "email"),
            member_value=Expr.ref(account, name, "member"),
        )

    def _grant(self, name_parts: tuple[str, ...], **fields: Any) -> Grant:
        """A grant of this module, by the `*_iam_member` type of its resource's kind; `env` names the spec
        file holding `path` when it is not this one's."""
        resource: Resource = fields["resource"]
        acl = resource.kind == "dataset" and (resource.project, resource.id) in self.acl_datasets
        resource_type = types.BIGQUERY_DATASET_ACCESS.name if acl else types.IAM_MEMBER_OF[resource.kind].name
        fields.setdefault("acl", acl)
        target = {_attribute(k): v for k, v in fields.pop("target").items()}
        fields.setdefault("env", self.env_name)
        grant = Grant(
            resource_type=Ident(resource_type),
            name=self.names.name(resource_type, *name_parts),
            target=target,
            **fields,
        )
        self.module.grants.append(grant)
        return grant

    def _dataset_grant(self, name_parts: tuple[str, ...], dataset: str, **fields: Any) -> Grant:
        """A grant on `dataset` (an id here, or `project.id`): one this module creates is named by reference,
        another by its id, and then the BigQuery API is its only dependency (none is implicit)."""
        scope = dataset_resource(self.env.project.id, dataset)
        dataset_id = self.dataset_refs.get(dataset, scope.id)
        needs = () if isinstance(dataset_id, Expr) else self.module.needs_api("bigquery.googleapis.com")
        target = {"project": scope.project, "dataset_id": dataset_id}
        return self._grant(name_parts, resource=scope, target=target, depends_on=needs, **fields)

    def _people_grants(self) -> None:
        """People who query this environment's datasets themselves: dataset roles, and Job User here."""
        project = self.env.project.id
        for k, person in enumerate(self.env.people):
            principal = Principal("person", person.member)
            part = self._member_part(person.member)
            for verb, role in (("reads", "roles/bigquery.dataViewer"), ("writes", "roles/bigquery.dataEditor")):
                for j, dataset in enumerate(getattr(person, verb)):
                    self._dataset_grant(
                        (part, verb, dataset),
                        dataset,
                        role=role,
                        principal=principal,
                        member=person.member,
                        rule=f"person-{verb}-dataset",
                        why=f"{person.member} {verb} dataset {dataset} in their own queries; scoped to that dataset.",
                        path=("people", k, verb, j),
                    )
            if person.jobs_here:
                self._grant(
                    (part, "bigquery_job_user"),
                    role="roles/bigquery.jobUser",
                    principal=principal,
                    resource=project_resource(project),
                    member=person.member,
                    target={"project": project},
                    rule="person-runs-jobs",
                    why=f"{person.member}'s queries run in {project} (Job User grants no data access).",
                    path=("people", k, "jobs_here"),
                )

    def _bigquery_grants(self) -> None:
        project = self.env.project.id
        for i, runner in enumerate(self.env.runners):
            ref = self._runner_ref(self.topology.runner(self.env_name, runner.name))
            principal = Principal("runner", f"serviceAccount:{ref.email}")
            path: PathKey = ("runners", i)
            for verb, role, what in (
                ("writes", "roles/bigquery.dataEditor", "writes"),
                ("reads", "roles/bigquery.dataViewer", "reads"),
                ("reads_metadata", "roles/bigquery.metadataViewer", "reads the metadata (no table data) of"),
            ):
                for j, dataset in enumerate(getattr(runner.bigquery, verb)):
                    self._dataset_grant(
                        (runner.name, verb, dataset),
                        dataset,
                        role=role,
                        principal=principal,
                        member=ref.member_value,
                        rule=f"runner-{verb.replace('_', '-')}-dataset",
                        why=f"Runner {runner.name} {what} dataset {dataset}; the role is scoped to that dataset only.",
                        path=(*path, "bigquery", verb, j),
                    )
            # The 7.45 facts hold no bucket or connection IAM type: on 7.x validate names these grants instead.
            for grant in object_grants(runner) if self.topology.on_provider_8(self.env_name) else ():
                kind = grant.resource.kind
                self._grant(
                    (runner.name, *grant.name_parts),
                    role=grant.role,
                    principal=principal,
                    resource=grant.resource,
                    member=ref.member_value,
                    target=grant.target,
                    rule=grant.rule,
                    why=f"Runner {runner.name} {grant.what}; granted on that {kind} only.",
                    path=(*path, *grant.field),
                )
            for j, owned in enumerate(runner.bigquery.owns):
                scope = dataset_resource(project, owned.dataset)
                self._grant(
                    (runner.name, "owns", owned.dataset),
                    role="roles/bigquery.dataOwner",
                    principal=principal,
                    resource=scope,
                    member=ref.member_value,
                    target={"project": project, "dataset_id": self.dataset_refs.get(owned.dataset, scope.id)},
                    rule="runner-owns-dataset",
                    why=f"Runner {runner.name} owns dataset {owned.dataset} (Data Owner there only), by explicit "
                    "opt-in.",
                    path=(*path, "bigquery", "owns", j),
                    opt_in_reason=owned.reason,
                    depends_on=self.module.needs_api("bigquery.googleapis.com"),
                )
            for j, wide in enumerate(runner.bigquery.project_wide):
                self._grant(
                    (runner.name, "project", wide.role),
                    role=f"roles/bigquery.{wide.role}",
                    principal=principal,
                    resource=project_resource(project),
                    member=ref.member_value,
                    target={"project": project},
                    rule="runner-project-wide-opt-in",
                    why=f"Runner {runner.name} gets roles/bigquery.{wide.role} on the whole project {project}, "
                    "by explicit opt-in.",
                    path=(*path, "bigquery", "project_wide", j),
                    opt_in_reason=wide.reason,
                )

    # --- the host: the repositories and what every run shares ----------------------------------

    def _repositories(self) -> None:
        top = self.topology
        module = self.module
        module.service_agent = top.agent.email
        module.checked_project_number = self.env.project.number
        for hosted in top.repositories:
            self.repository_refs[hosted.name] = self.names.name(types.REPOSITORY.name, hosted.name)
        self._dataform_config()
        for hosted in top.repositories:
            self._repository(hosted)
        self._grant(
            ("dataform_agent", "service_agent_role"),
            role="roles/dataform.serviceAgent",
            principal=top.agent,
            resource=top.host_project,
            member=self.agent_member,
            target={"project": self.env.project.id},
            rule="agent-has-its-role",
            why="The Dataform service agent starts scheduled releases and workflows with roles/dataform.serviceAgent; "
            "an agent created through google_project_service_identity may not have it yet. Granted to the agent "
            "only, and whether or not anything is scheduled yet, as Google does: a cron added later to any "
            "environment then needs no apply of the host.",
            path=top.repositories[0].path,
            depends_on=self.agent_depends_on,
        )

    def _dataform_config(self) -> None:
        """The default CMEK key (`google_dataform_config`), and the agent's grant on it, when the host sets one."""
        key = self.topology.default_key
        if key is None:
            return
        depends_on = self.module.needs_api("dataform.googleapis.com")
        grant = self._key_grant(
            key, ("dataform_agent", "uses_default_key"), "Dataform's default key", ("dataform_default_kms_key_name",)
        )
        if grant is not None:
            depends_on += (Expr.ref(grant.resource_type, grant.name),)
        self.module.dataform_config = DataformConfigView(
            name=Ident("this"),
            project=self.env.project.id,
            region=self.env.region,
            default_kms_key_name=key.id,
            depends_on=depends_on,
        )

    def _key_grant(self, key: Resource, name_parts: tuple[str, ...], whose: str, path: PathKey) -> Grant | None:
        """The agent's grant on a CMEK key, once per key (None: made outside dfinfra, `validate` names it)."""
        if not self.topology.manages_key_grant(key):
            return None
        if key not in self.key_grants:
            # CMEK: the agent uses the key from the repository's creation on (dataform-operations.md §c).
            self.key_grants[key] = self._grant(
                name_parts,
                role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
                principal=self.topology.agent,
                resource=key,
                member=self.agent_member,
                target={"crypto_key_id": key.id},
                rule="agent-uses-repository-key",
                why=f"The Dataform service agent encrypts and decrypts with {whose}, for every compilation, run "
                "and Git operation of the repositories it encrypts; granted on that key only.",
                path=path,
                depends_on=self.agent_depends_on,
            )
        return self.key_grants[key]

    def _repository(self, hosted: HostedRepository) -> None:
        repo = hosted.spec
        label = self.repository_refs[hosted.name]
        # A repository waits for what it reads: the grant on its Git secret (which reaches the Dataform API
        # through the agent's identity), or, without a secret (a Developer Connect link), the API itself.
        depends_on: tuple[Expr, ...] = self.module.needs_api("dataform.googleapis.com")
        secret_version: Expr | str | None = None
        secret_output: Expr | str | None = None
        auth = repo.git_secret
        if repo.git is not None and auth is not None and hosted.secret is not None and hosted.secret_name is not None:
            secret_id: Expr | str
            if auth.project:  # managed in another project: named, never created here
                secret_id = secret_output = hosted.secret_name
                secret_version = f"{hosted.secret_name}/versions/{auth.version}"
            else:
                secret = self._git_secret(hosted)
                secret_id = secret_output = secret.ref("id")
                secret_version = Expr.interpolate(secret_id, f"/versions/{auth.version}")
            grant = self.secret_grants.get(hosted.secret) or self._agent_reads(
                ("dataform_agent", "reads", auth.secret_id),
                hosted.secret,
                secret_id,
                rule="agent-reads-git-secret",
                why="The Dataform service agent performs every Git operation, so it (and only it) reads the "
                "Git credential - even when workflows run as custom runners.",
                path=hosted.at("git"),
            )
            self.secret_grants[hosted.secret] = grant
            self._renamed(grant, ("dataform_agent", "reads", "git_ssh_key" if repo.git.ssh else "git_token"))
            depends_on = (Expr.ref(grant.resource_type, grant.name),)
        npmrc_version = None
        if repo.npmrc and hosted.npmrc_secret:
            npmrc = hosted.npmrc_secret
            npmrc_version = f"{npmrc.relative_name}/versions/{repo.npmrc.version}"
            grant = self.secret_grants.get(npmrc) or self._agent_reads(
                ("dataform_agent", "reads", "npmrc", npmrc.id),
                npmrc,
                npmrc.relative_name,
                rule="agent-reads-npmrc-secret",
                why="Compilations install the repository's npm packages with its .npmrc variables, read by the "
                "Dataform service agent from this secret only.",
                path=hosted.at("npmrc"),
            )
            self.secret_grants[npmrc] = grant
            depends_on += (Expr.ref(grant.resource_type, grant.name),)
        if hosted.kms_key is not None:
            key = self._key_grant(
                hosted.kms_key,
                ("dataform_agent", "uses_key", hosted.name),
                f"repository {hosted.name}'s key",
                hosted.kms_key_path,
            )
            if key is not None:
                depends_on += (Expr.ref(key.resource_type, key.name),)
        if self.module.dataform_config is not None and not repo.kms_key_name:
            depends_on += (self.module.dataform_config.ref(),)  # created with the default key
        repository = types.REPOSITORY
        if repo.existing:
            where = hosted.at("existing")
            self._adopt(repository, label, where, project=hosted.project, region=hosted.region, name=hosted.name)
        self._renamed_to(Expr.ref(repository.name, "this"), Expr.ref(repository.name, label))
        self.module.repositories.append(
            RepositoryView(
                name=label,
                hosted=hosted,
                display_name=repo.display_name,
                service_account=None,  # set with its runner's grants, in _runner_access
                deletion_policy=repo.deletion_policy,
                # Named even when it is the default: the provider reads the key back into state and does not
                # compute it, so an unnamed default would plan a change Google refuses; and a later change of the
                # default then meets the same refusal as a changed key (`fixed_at_creation`).
                kms_key_name=hosted.kms_key_name,
                npmrc_version=npmrc_version,
                labels=dict(sorted(repo.labels.items())),
                git=repo.git,
                secret_version=secret_version,
                workspace=repo.workspace_compilation,
                depends_on=depends_on,
                secret_output=secret_output,
            )
        )
        repository_target = {
            "project": hosted.project,
            "region": hosted.region,
            "repository": Expr.ref(repository.name, label, "name"),
        }
        for k, access in enumerate(repo.access):
            grant = self._grant(
                (hosted.name, access.role, self._member_part(access.member)),
                role=f"roles/dataform.{access.role}",
                principal=Principal("person", access.member),
                resource=hosted.resource,
                member=access.member,
                target=repository_target,
                rule="person-uses-repository",
                why=f"{access.member} is a Dataform {access.role} of repository {hosted.name} only"
                + (f", while condition {access.condition.title!r} holds." if access.condition else "."),
                path=hosted.at("access", k),
                condition=access.condition,
            )
            self._renamed(grant, ("repository", access.role, access.member))

    def _git_secret(self, hosted: HostedRepository) -> ManagedSecret:
        """The Git secret `hosted` names, created once in this module (repositories may share it)."""
        git = hosted.spec.git
        auth = hosted.spec.git_secret
        assert git is not None and auth is not None
        for secret in self.module.secrets:
            if secret.secret_id == auth.secret_id:
                return secret
        name = self.names.name(types.SECRET.name, auth.secret_id)
        if auth.existing:
            where = hosted.at("git", git.auth, "existing")
            self._adopt(types.SECRET, name, where, project=hosted.project, secret_id=auth.secret_id)
        self._renamed_to(
            Expr.ref(types.SECRET.name, "git_ssh_key" if git.ssh else "git_token"), Expr.ref(types.SECRET.name, name)
        )
        secret = ManagedSecret(
            name=name,
            project=hosted.project,
            secret_id=auth.secret_id,
            kind="SSH key" if git.ssh else "token",
            replicas=tuple(auth.replicas),
            set_command=self.topology.secret_set_command(hosted),
            depends_on=self.module.needs_api("secretmanager.googleapis.com"),
        )
        self.module.secrets.append(secret)
        return secret

    def _member_part(self, member: str) -> str:
        """How a person appears in their grants' names: the local part, or the whole address when another
        member shares it (`j.smith@a.example` and `j.smith@b.example`)."""
        return member.split(":", 1)[-1].replace("@", "_at_") if member in self.full_names else member

    def _renamed(self, grant: Grant, legacy: tuple[str, ...]) -> None:
        """Record `grant`'s name before dfinfra kept several repositories (`legacy` name parts)."""
        old = Ident("_".join(slug(p) for p in legacy if p).strip("_"))
        self._renamed_to(Expr.ref(grant.resource_type, old), Expr.ref(grant.resource_type, grant.name))

    def _renamed_to(self, old: Expr, new: Expr) -> None:
        """A `moved` block from the single-repository name: only while the host has one repository, so
        the move can only mean that one (with several, `dfinfra migrate` matches objects by identity).
        An old name two objects would claim (two people with one local part) is moved to neither: Terraform
        refuses ambiguous moves, and `dfinfra migrate` matches those by identity."""
        source = str(old)
        if not self.topology.single_repository or source == str(new) or source in self.ambiguous_moves:
            return
        if source in self.moved_from:  # indexed: people's grants make thousands of these
            self.ambiguous_moves.add(source)
            self.module.moved.remove(self.moved_from.pop(source))
            return
        self.moved_from[source] = Moved(old, new)
        self.module.moved.append(self.moved_from[source])

    def _agent_reads(self, name_parts: tuple[str, ...], secret: Resource, secret_id: Expr | str, **why: Any) -> Grant:
        """Secret Accessor for the service agent on one secret (never on its project)."""
        return self._grant(
            name_parts,
            role="roles/secretmanager.secretAccessor",
            principal=self.topology.agent,
            resource=secret,
            member=self.agent_member,
            target={"secret_id": secret_id},
            depends_on=self.agent_depends_on,
            **why,
        )

    # --- every module: its runners made usable, its configs ------------------------------------

    def _deployer_acts_as(
        self, attached: AttachedRunner, ref: RunnerRef, deployer: str, k: int, rule: str, why: str, env: str = ""
    ) -> Grant:
        """`deployer` (the `k`th of its environment's `deployers`) may act as the runner: Service Account User
        on that account only."""
        return self._grant(
            ("deployer", deployer, "acts_as", ref.runner.name),
            role="roles/iam.serviceAccountUser",
            principal=Principal("deployer", deployer),
            resource=attached.resource,
            member=deployer,
            target={"service_account_id": ref.resource_name},
            rule=rule,
            why=why,
            path=("deployers", k),
            env=env or self.env_name,  # the spec file whose `deployers` names them
        )

    def _runner_access(self) -> None:
        """Grants that let the agent, this environment's deployers and people use its attached runners."""
        top = self.topology
        host_project = top.host.project.id
        self.runner_needs: dict[str, list[Expr]] = {}
        for attached in top.attached_runners():
            if attached.env != self.env_name:
                continue
            ref = self._runner_ref(attached)
            needed = self.runner_needs.setdefault(ref.runner.name, [])
            self.module.service_agent = top.agent.email
            # A runner made elsewhere: its account's own policy is its owner's (validate names those grants,
            # doctor checks them); the grants on this deployment's projects and datasets are made here.
            if not attached.made_elsewhere:
                token_creator = self._grant(
                    ("dataform_agent", "impersonates", ref.runner.name),
                    role="roles/iam.serviceAccountTokenCreator",
                    principal=top.agent,
                    resource=attached.resource,
                    member=self.agent_member,
                    target={"service_account_id": ref.resource_name},
                    rule="agent-impersonates-runner",
                    why=f"The Dataform service agent mints tokens for runner {ref.runner.name}; granted on that "
                    "account only, never on the project.",
                    path=attached.path,
                    env=attached.spec_env(top.host_name),
                    depends_on=self.agent_depends_on,
                )
                needed.append(Expr.ref(token_creator.resource_type, token_creator.name))
            if attached.made_elsewhere and top.attached_where_made(attached.email):
                continue  # its own environment grants it (one member, one state: never two modules' copies)
            job_user = self._grant(
                (ref.runner.name, "bigquery_job_user"),
                role="roles/bigquery.jobUser",
                principal=attached.principal,
                resource=top.host_project,
                member=ref.member_value,
                target={"project": host_project},
                rule="runner-runs-jobs",
                why=f"Runner {ref.runner.name} runs its BigQuery jobs in {host_project}, the project hosting the "
                "repository (Job User grants no data access).",
                path=attached.path,
                env=attached.spec_env(top.host_name),
            )
            needed.append(Expr.ref(job_user.resource_type, job_user.name))
            if attached.made_elsewhere or attached.only_run_as:
                continue  # another owner's account, or only people start runs as it: no deployer act-as here
            for k, deployer in enumerate(self.env.deployers):
                act_as = self._deployer_acts_as(
                    attached,
                    ref,
                    deployer,
                    k,
                    "deployer-acts-as-runner",
                    f"Strict act-as: deployer {deployer} attaches runner {ref.runner.name} to Dataform configs, "
                    "which requires iam.serviceAccounts.actAs on it.",
                )
                needed.append(Expr.ref(act_as.resource_type, act_as.name))
            if self.env_name != top.host_name:
                # repositories.patch checks act-as on every workflow config's account (strict act-as): the
                # host's deployers, who update the repository holding this environment's configs, act as it.
                for k, deployer in enumerate(top.host.deployers):
                    if deployer not in self.env.deployers:
                        self._deployer_acts_as(
                            attached,
                            ref,
                            deployer,
                            k,
                            "host-deployer-acts-as-runner",
                            f"Strict act-as: {top.host_name}'s deployer {deployer} updates the repository holding "
                            f"the configs that run as {ref.runner.name}; a repository update checks act-as on "
                            "every config's account.",
                            env=top.host_name,
                        )

        acting: set[tuple[str, str]] = set()  # one act-as grant per person and runner, however many repositories
        for repo, k, access in top.people():
            for j, run_as in enumerate(access.run_as):
                env_name, runner_name = top.resolve_runner_ref(run_as)
                if env_name != self.env_name or (access.member, runner_name) in acting:
                    continue
                acting.add((access.member, runner_name))
                attached = top.runner(env_name, runner_name)
                if attached.made_elsewhere:
                    continue  # act-as on another owner's account: named by validate, checked by doctor
                ref = self._runner_ref(attached)
                self._grant(
                    ("person", self._member_part(access.member), "acts_as", ref.runner.name),
                    role="roles/iam.serviceAccountUser",
                    principal=Principal("person", access.member),
                    resource=attached.resource,
                    member=access.member,
                    target={"service_account_id": ref.resource_name},
                    rule="person-starts-runs",
                    why=f"Strict act-as: {access.member} starts runs (workspace or manual) as runner "
                    f"{ref.runner.name}, which requires iam.serviceAccounts.actAs on that account only.",
                    path=repo.at("access", k, "run_as", j),
                    env=top.host_name,
                )
        for i, view in enumerate(self.module.repositories):
            runner = view.hosted.spec.runner
            if runner:  # the repository waits until its runner is usable
                ref = self._runner_ref(top.runner(self.env_name, runner))
                self.module.repositories[i] = replace(
                    view,
                    service_account=ref.email_value,
                    depends_on=view.depends_on + tuple(self.runner_needs[runner]),
                    made_elsewhere_note=ref.made_elsewhere_note,
                )

    def _configs(self) -> None:
        """This environment's release and workflow configs, children of the host repository each release names."""
        top = self.topology
        module = self.module
        homes: dict[str, ConfigHome] = {}
        for hosted in top.repositories:
            repository: Expr | str = hosted.name  # a target names the host's repository literally
            if self.is_host:
                repository = Expr.ref(types.REPOSITORY.name, self.repository_refs[hosted.name], "name")
            homes[hosted.name] = ConfigHome(hosted.project, hosted.region, repository, hosted.name)
        release_refs: dict[str, Expr] = {}
        self.workflow_refs: dict[str, Expr] = {}
        for i, release in enumerate(self.env.releases):
            hosted = top.repository_of(release)
            name = self.names.name(types.RELEASE_CONFIG.name, release.name)
            if release.existing:
                self._adopt_config(types.RELEASE_CONFIG, name, hosted, release.name, ("releases", i, "existing"))
            release_refs[release.name] = Expr.ref(types.RELEASE_CONFIG.name, name, "id")
            module.releases.append(
                ReleaseConfig(
                    name=name,
                    env=self.env_name,
                    home=homes[hosted.name],
                    release=release,
                    database=release.compilation.database or self._default(release, self.env.project.id),
                    location=release.compilation.location or self._default(release, self.env.bigquery_location),
                )
            )
        for i, workflow in enumerate(self.env.workflows):
            hosted = top.workflow_repository(self.env_name, workflow.release)
            ref = self._runner_ref(top.runner(self.env_name, workflow.runner))
            name = self.names.name(types.WORKFLOW_CONFIG.name, workflow.name)
            if workflow.existing:
                self._adopt_config(types.WORKFLOW_CONFIG, name, hosted, workflow.name, ("workflows", i, "existing"))
            self.workflow_refs[workflow.name] = Expr.ref(types.WORKFLOW_CONFIG.name, name, "id")
            module.workflows.append(
                WorkflowConfig(
                    name=name,
                    env=self.env_name,
                    home=homes[hosted.name],
                    workflow=workflow,
                    release_ref=release_refs[workflow.release],
                    service_account=ref.email_value,
                    depends_on=tuple(self.runner_needs[workflow.runner]),
                    made_elsewhere_note=ref.made_elsewhere_note,
                )
            )

    # --- operating runs: triggers and alerts ---------------------------------------------------------

    def _orchestrations(self) -> None:
        """Each trigger of this environment's workflows: the orchestration it calls, the trigger or scheduler job,
        and the orchestrator's grants (exactly what the chain needs: dataform-operations.md §e)."""
        triggered = self.env.triggered_workflows()
        if not triggered:
            return
        top = self.topology
        project = self.env.project.id
        orchestrator = top.orchestrator(self.env_name)
        account = self.orchestrator
        triggers = [t for _, w in triggered for t in w.triggers]
        needs: dict[str, Expr] = {}

        def grant(key: str, name_parts: tuple[str, ...], **fields: Any) -> None:
            made = self._grant(name_parts, **fields)
            needs[key] = Expr.ref(made.resource_type, made.name)

        at = ("orchestrator",)
        grant(
            "invoker",
            ("orchestrator", "workflows_invoker"),
            role="roles/workflows.invoker",
            principal=orchestrator,
            resource=project_resource(project),
            member=account.ref("member"),
            target={"project": project},
            rule="orchestrator-invokes-workflows",
            why=f"Triggers and scheduler jobs call the orchestrating workflows as {account.email}, which starts "
            "executions (Workflows has no per-workflow IAM type in the provider, so this is on the project).",
            path=at,
        )
        if any(t.receives_events for t in triggers):
            grant(
                "receiver",
                ("orchestrator", "eventarc_event_receiver"),
                role="roles/eventarc.eventReceiver",
                principal=orchestrator,
                resource=project_resource(project),
                member=account.ref("member"),
                target={"project": project},
                rule="orchestrator-receives-events",
                why="Eventarc delivers Cloud Storage and audit-log events only to a trigger whose account may "
                "receive them (eventarc.events.receiveEvent; not needed for Pub/Sub messages).",
                path=at,
            )
        if any(t.published_by_storage for t in triggers):
            self.module.checks_own_number = True
            self.module.checked_project_number = self.env.project.number
            agent = top.storage_agent(self.env_name)
            grant(
                "publisher",
                ("storage_agent", "pubsub_publisher"),
                role="roles/pubsub.publisher",
                principal=agent,
                resource=project_resource(project),
                member=agent.member,
                target={"project": project},
                rule="storage-agent-publishes-events",
                why="Cloud Storage's service agent publishes this project's bucket events through Pub/Sub to "
                "Eventarc (Google's documented grant for Cloud Storage triggers).",
                path=at,
                depends_on=self.module.needs_api("storage.googleapis.com"),
            )
        for k, deployer in enumerate(self.env.deployers):
            grant(
                f"deployer:{deployer}",
                ("deployer", deployer, "acts_as", self.env.orchestrator),
                role="roles/iam.serviceAccountUser",
                principal=Principal("deployer", deployer),
                resource=runner_resource(account.email),
                member=deployer,
                target={"service_account_id": account.ref("name")},
                rule="deployer-acts-as-orchestrator",
                why=f"Strict act-as: deployer {deployer} attaches {account.email} to the workflows, triggers and "
                "scheduler jobs, which requires iam.serviceAccounts.actAs on it.",
                path=("deployers", k),
            )
        granted_repositories: set[str] = set()
        granted_runners: set[str] = set()
        for i, workflow in triggered:
            hosted = top.workflow_repository(self.env_name, workflow.release)
            runner = top.runner(self.env_name, workflow.runner)
            ref = self._runner_ref(runner)
            if hosted.name not in granted_repositories:
                granted_repositories.add(hosted.name)
                repository: Expr | str = hosted.name
                if self.is_host:
                    repository = Expr.ref(types.REPOSITORY.name, self.repository_refs[hosted.name], "name")
                grant(
                    f"repository:{hosted.name}",
                    ("orchestrator", "starts_runs", hosted.name),
                    role="roles/dataform.editor",
                    principal=orchestrator,
                    resource=hosted.resource,
                    member=account.ref("member"),
                    target={"project": hosted.project, "region": hosted.region, "repository": repository},
                    rule="orchestrator-starts-runs",
                    why=f"The orchestrator starts workflow invocations in repository {hosted.name} and reads their "
                    "state (Dataform Editor is the narrowest predefined role with both; on this repository only).",
                    path=("workflows", i, "triggers"),
                )
            if workflow.runner not in granted_runners and not runner.made_elsewhere:
                granted_runners.add(workflow.runner)
                grant(
                    f"runner:{workflow.runner}",
                    ("orchestrator", "acts_as", workflow.runner),
                    role="roles/iam.serviceAccountUser",
                    principal=orchestrator,
                    resource=runner.resource,
                    member=account.ref("member"),
                    target={"service_account_id": ref.resource_name},
                    rule="orchestrator-acts-as-runner",
                    why=f"Strict act-as: the orchestrator starts runs as {ref.email}, which requires "
                    "iam.serviceAccounts.actAs on that account only.",
                    path=("workflows", i, "runner"),
                )
            self._triggers_of(i, workflow, hosted, needs)

    def _triggers_of(self, i: int, workflow: Workflow, hosted: HostedRepository, needs: dict[str, Expr]) -> None:
        project = self.env.project.id
        account = self.orchestrator
        runs = needs.get(f"repository:{hosted.name}"), needs.get(f"runner:{workflow.runner}")
        names = workflow.trigger_names()
        # Whatever attaches the orchestrator waits for the deployers' act-as on it (strict act-as).
        acting = tuple(ref for key, ref in needs.items() if key.startswith("deployer:"))
        for j, trigger in enumerate(workflow.triggers):
            gcp_name = names[j]
            suffix = gcp_name.removeprefix("dataform-")
            label = self.names.name(types.WORKFLOWS_WORKFLOW.name, suffix)
            env_vars: dict[str, str | Expr] = {
                "DATAFORM_REPOSITORY": hosted.api_name,
                "DATAFORM_WORKFLOW_CONFIG": self.workflow_refs[workflow.name],
            }
            if trigger.kind == "bucket":
                env_vars["OBJECT_PREFIX"] = trigger.prefix or ""
            orchestration = Orchestration(
                name=label,
                project=project,
                region=self.env.region,
                workflow_name=gcp_name,
                service_account=account.ref("email"),
                env_vars=env_vars,
                description=f"Starts Dataform workflow config {workflow.name} when trigger {gcp_name} fires (dfinfra).",
                filters_objects=trigger.kind == "bucket",
                depends_on=(*self.module.needs_api("workflows.googleapis.com"), *(r for r in runs if r), *acting),
            )
            self.module.orchestrations.append(orchestration)
            why = f"{trigger.describe()} starts workflow {workflow.name} (workflows[{i}].triggers[{j}])."
            if trigger.kind == "schedule":
                self.module.scheduler_jobs.append(
                    SchedulerJob(
                        name=self.names.name(types.SCHEDULER_JOB.name, suffix),
                        project=project,
                        region=self.env.region,
                        job_name=gcp_name,
                        schedule=trigger.schedule or "",
                        time_zone=trigger.time_zone or "Etc/UTC",
                        uri=Expr.template(
                            "https://workflowexecutions.googleapis.com/v1/", orchestration.ref("id"), "/executions"
                        ),
                        service_account=account.ref("email"),
                        why=why,
                        depends_on=(*self.module.needs_api("cloudscheduler.googleapis.com"), needs["invoker"], *acting),
                    )
                )
                continue
            criteria: list[tuple[str, str, str]] = [("type", EVENT_TYPES[trigger.kind], "")]
            if trigger.kind == "bucket":
                criteria.append(("bucket", trigger.bucket or "", ""))
            elif trigger.audit_log is not None:
                event = trigger.audit_log
                criteria += [("serviceName", event.service, ""), ("methodName", event.method, "")]
                if event.resource:
                    pattern = "*" in event.resource
                    criteria.append(("resourceName", event.resource, "match-path-pattern" if pattern else ""))
            topic = topic_name(project, trigger.topic) if trigger.topic is not None else None
            delivery = [
                needs["invoker"],
                *([needs["receiver"]] if trigger.receives_events else []),
                *([needs["publisher"]] if trigger.published_by_storage else []),
            ]
            self.module.event_triggers.append(
                EventTrigger(
                    name=self.names.name(types.EVENTARC_TRIGGER.name, suffix),
                    project=project,
                    location=self.topology.trigger_location(self.env_name, trigger),
                    trigger_name=gcp_name,
                    criteria=tuple(sorted(criteria)),
                    topic=topic,
                    workflow=orchestration.ref("id"),
                    service_account=account.ref("email"),
                    why=why,
                    depends_on=(*self.module.needs_api("eventarc.googleapis.com"), *delivery, *acting),
                )
            )

    def _alerts(self) -> None:
        """Failed-run alerts: channels and a log-match policy in the project hosting the repositories, whose
        completion log the runs write."""
        alerts = self.env.alerts
        if alerts is None:
            return
        project = self.topology.host.project.id
        # The host enables Monitoring and Logging there; a target's module is applied after it.
        needs = self.module.needs_api("monitoring.googleapis.com") if self.is_host else ()
        channels: list[Expr] = []
        for channel in alerts.channels:
            kind, labels = {
                "email": ("email", {"email_address": channel.email or ""}),
                "pubsub": ("pubsub", {"topic": topic_name(project, channel.pubsub_topic or "")}),
                "webhook": ("webhook_tokenauth", {"url": channel.webhook or ""}),
            }[channel.kind]
            token_variable: Ident | None = None
            token_secret = ""
            if channel.token:
                secret = self.topology.channel_secret(self.env_name, channel.name)
                token_secret = secret.relative_name
                token_variable = Ident(self.topology.channel_token_variable(channel.name))
                self.module.secrets.append(
                    ManagedSecret(
                        name=self.names.name(types.SECRET.name, secret.id),
                        project=secret.project,
                        secret_id=secret.id,
                        kind="token",
                        replicas=(),
                        set_command=f"dfinfra secret set {self.env_name} --channel {channel.name}",
                        depends_on=self.module.needs_api("secretmanager.googleapis.com"),
                        holder=f"notification channel {channel.name}'s",
                    )
                )
            view = NotificationChannelView(
                name=self.names.name(types.MONITORING_NOTIFICATION_CHANNEL.name, channel.name),
                project=project,
                display_name=self.topology.channel_display_name(self.env_name, channel.name),
                channel_type=kind,
                labels=labels,
                depends_on=needs,
                token_variable=token_variable,
                token_secret=token_secret,
            )
            self.module.channels.append(view)
            channels.append(view.ref("name"))
        for title, names in self.topology.alert_policies(self.env_name):
            workflows = [w for w in self.env.workflows if w.name in names]
            repositories = sorted({self.topology.workflow_repository(self.env_name, w.release).name for w in workflows})
            key = names[0] if alerts.per_workflow else "failed_runs"
            self.module.alert_policies.append(
                AlertPolicy(
                    name=self.names.name(types.MONITORING_ALERT_POLICY.name, self.env_name, key),
                    project=project,
                    display_name=title,
                    filter_terms=failed_run_filter(project, repositories, names),
                    channels=tuple(channels),
                    rate_limit=alerts.notify_at_most_every,
                    auto_close=alerts.auto_close_after,
                    documentation=f"A Dataform workflow invocation of {self.env_name} ended FAILED: "
                    f"{', '.join(names)}. Its completion log entry names the workflow config and the invocation; "
                    f"`dfinfra doctor {self.env_name}` checks what the runs need.",
                    workflows=names,
                    depends_on=needs,
                )
            )


def failed_run_filter(project: str, repositories: list[str], workflows: tuple[str, ...]) -> tuple[str, ...]:
    """The Cloud Logging filter matching a failed run of `workflows` (in `repositories` of `project`): Dataform's
    completion entry, filtered on its payload (the severity of a FAILED entry is not documented)."""

    def any_of(field: str, values: list[str] | tuple[str, ...]) -> str:
        terms = [f"{field}={logging_quote(v)}" for v in values]
        return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"

    return (
        f"logName={logging_quote(f'projects/{project}/logs/{COMPLETION_LOG}')}",
        'resource.type="dataform.googleapis.com/Repository"',
        any_of("resource.labels.repository_id", repositories),
        any_of("jsonPayload.workflowConfigId", workflows),
        'jsonPayload.terminalState="FAILED"',
    )
