"""The environment spec: what a team declares about one Dataform environment.

One YAML file per environment (`environments/<name>.yaml`) validates into `Environment`. The
models describe intent (which datasets a runner writes, who may edit the repository), never
Terraform syntax; `dataform_infra.render` decides the resources. Field descriptions here are the
spec reference: README.md's reference section is generated from them and a test keeps it in sync.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataform_infra.spec.formats import (
    ENV_NAME_PATTERN,
    BigQueryLocation,
    BucketLocation,
    BucketName,
    ConnectionRef,
    Cron,
    DataformId,
    DatasetId,
    DatasetRef,
    Duration,
    EmailAddress,
    GitRef,
    GitRepositoryLink,
    HttpsUrl,
    KmsKeyName,
    LabelKey,
    LabelValue,
    Member,
    MethodName,
    ObjectPrefix,
    ProjectId,
    ProjectIdOrNumber,
    ProjectNumber,
    ProviderVersion,
    Region,
    ResourcePattern,
    RunnerRef,
    SecretId,
    SecretVersion,
    ServiceAccountEmail,
    ServiceAccountId,
    ServiceName,
    StatePrefix,
    Text,
    TimeZone,
    TopicRef,
    WorkspaceNamePart,
)


class Spec(BaseModel):
    """Base for every spec model: strict types, unknown keys rejected, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _existing(what: str) -> Any:
    """The `existing:` mark: the object is adopted (imported), never created. `dfinfra adopt` writes it."""
    return Field(
        default=False,
        description=f"The {what} already exists in Google Cloud (made by hand or another module): the first apply "
        "imports it into this module's state (a generated `imports.tf`) instead of creating it. "
        "`dfinfra adopt` sets it.",
    )


class Project(Spec):
    """The Google Cloud project this environment deploys into."""

    id: ProjectId = Field(description="Project id, e.g. `acme-analytics-prod`.")
    number: ProjectNumber = Field(
        description="Project number. Names the Dataform service agent "
        "(`service-<number>@gcp-sa-dataform.iam.gserviceaccount.com`) without a lookup at plan time."
    )


class StateBackend(Spec):
    """Where Terraform keeps this environment's state (created by `dfinfra bootstrap`)."""

    bucket: BucketName = Field(description="GCS bucket holding the state.")
    prefix: StatePrefix = Field(default="dataform", description="Object prefix inside the bucket.")


class SecretRef(Spec):
    """Where a Git credential is kept in Secret Manager (in the host project unless `project` says otherwise)."""

    secret_id: SecretId = Field(
        description="Secret Manager secret created by dfinfra; the credential is added with `dfinfra secret set`."
    )
    version: Literal["latest"] | SecretVersion = Field(
        default="latest",
        description="Secret version the repository uses: `latest` (rotation needs no HCL change) or a pinned number.",
    )
    replicas: list[Region] = Field(
        default_factory=list,
        description="Regions to keep the secret in (user-managed replication), e.g. `[europe-west2]`: needed when a "
        "`gcp.resourceLocations` org policy refuses automatic replication. Empty: automatic.",
    )
    project: ProjectIdOrNumber | None = Field(
        default=None,
        description="The secret lives in this other project (its id or number; e.g. a central secrets project) and "
        "is managed there: "
        "dfinfra neither creates nor imports it, only references its version and lets the Dataform service agent "
        "read it.",
    )
    existing: bool = _existing("secret")

    @model_validator(mode="after")
    def _managed_elsewhere(self) -> SecretRef:
        if self.project and (self.existing or self.replicas):
            field = "existing" if self.existing else "replicas"
            raise ValueError(
                f"a secret in another project (project: {self.project}) is managed there: `{field}` does not apply"
            )
        return self


class NpmrcSecret(Spec):
    """Environment variables for `.npmrc` (a private npm registry's token), in an existing secret."""

    secret_id: SecretId = Field(description="Secret Manager secret holding them (made and filled outside dfinfra).")
    version: Literal["latest"] | SecretVersion = Field(default="latest", description="Secret version to use.")
    project: ProjectIdOrNumber | None = Field(
        default=None, description="Project holding the secret, by id or number (default: the host's)."
    )


class HttpsToken(SecretRef):
    """A personal access token (GitHub, GitLab, ...) kept in Secret Manager."""


class SshKey(SecretRef):
    """An SSH private key kept in Secret Manager, and the Git host's public key."""

    host_public_key: Text = Field(
        description="The Git server's public host key, e.g. `ssh-ed25519 AAAA...` (from `ssh-keyscan`)."
    )

    @model_validator(mode="after")
    def _host_key_shape(self) -> SshKey:
        if not re.fullmatch(
            r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( \S+)?", self.host_public_key
        ):
            words = self.host_public_key.split()
            if len(words) >= 3 and re.fullmatch(r"ssh-\S+|ecdsa-\S+", words[1]):
                raise ValueError(
                    f"host_public_key starts with the host name {words[0]!r} (as ssh-keyscan prints it): "
                    "drop it and keep 'ssh-ed25519 AAAA...'"
                )
            raise ValueError("host_public_key must look like 'ssh-ed25519 AAAAC3Nza...' (one line from ssh-keyscan)")
        return self


class GitRemote(Spec):
    """The third-party Git repository Dataform syncs with. Exactly one of `https_token` / `ssh` /
    `repository_link`."""

    url: Text = Field(description="HTTPS URL (with `https_token`) or SSH URL `git@host:org/repo.git` (with `ssh`).")
    default_branch: GitRef = Field(default="main", description="Branch workspaces start from.")
    https_token: HttpsToken | None = Field(default=None, description="Authenticate with an access token.")
    ssh: SshKey | None = Field(default=None, description="Authenticate with an SSH key.")
    repository_link: GitRepositoryLink | None = Field(
        default=None,
        description="Authenticate through a Developer Connect Git repository link (Google's recommended way for "
        "GitHub, GitLab and Bitbucket): no secret to keep. The link and its connection are made outside dfinfra; "
        "the Dataform service agent needs `roles/developerconnect.tokenAccessor` on the link (workspace commits "
        "are pushed with its read-write token; `readTokenAccessor` where nobody works in the repository), which "
        "`dfinfra validate` names and `doctor` checks. dfinfra enables the Developer Connect API.",
    )

    @property
    def auth(self) -> Literal["https_token", "ssh", "repository_link"]:
        """Which credential the repository authenticates with: the field's name."""
        return "https_token" if self.https_token else "ssh" if self.ssh else "repository_link"

    @property
    def secret(self) -> SecretRef | None:
        """The secret holding the Git credential (none with a Developer Connect link)."""
        return self.https_token or self.ssh

    @model_validator(mode="after")
    def _one_auth_method_matching_url(self) -> GitRemote:
        if sum(x is not None for x in (self.https_token, self.ssh, self.repository_link)) != 1:
            raise ValueError("set exactly one of https_token, ssh or repository_link")
        if "source.developers.google.com" in self.url:
            raise ValueError(
                "Cloud Source Repositories cannot be a Dataform remote; use GitHub, GitLab, Bitbucket or Azure DevOps"
            )
        if self.auth != "ssh" and not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]+)?/\S+", self.url):
            raise ValueError(f"url {self.url!r} must be an https:// URL when authenticating with {self.auth}")
        if self.ssh and not re.fullmatch(
            r"(ssh://\S+@[A-Za-z0-9.-]+(:[0-9]+)?/\S+|[A-Za-z0-9_.-]+@[A-Za-z0-9.-]+:\S+)", self.url
        ):
            raise ValueError(
                f"url {self.url!r} must be an SSH URL (git@host:org/repo.git) when authenticating with ssh"
            )
        return self


class WorkspaceCompilation(Spec):
    """Overrides for compilations in development workspaces, so they never write production tables."""

    default_database: ProjectId | None = Field(
        default=None,
        description="Project workspaces compile into. Unset: workflow_settings.yaml's `defaultProject` decides, "
        "which dfinfra cannot read, so `dfinfra validate` leaves the datasets workspace runs write unchecked and "
        "says so.",
    )
    schema_suffix: WorkspaceNamePart | None = Field(
        default=None,
        description="Appended to every schema, e.g. `dev`. `${workspaceName}` gives each workspace its own "
        "datasets: they cannot be declared ahead, so the repository's runner must be able to create datasets in "
        "`default_database` (a `project_wide` dataEditor with its reason; `dfinfra validate` says so).",
    )
    table_prefix: WorkspaceNamePart | None = Field(
        default=None, description="Prepended to every table name; may use `${workspaceName}`."
    )
    schemas: list[DatasetId] = Field(
        default_factory=list,
        description="Datasets your code writes by default (workflow_settings.yaml's `defaultDataset` and "
        "`defaultAssertionDataset`, and schemas actions name). Workspace runs write each as "
        "`<schema>_<schema_suffix>` in `default_database`: `dfinfra validate` checks that those datasets are "
        "declared and that the repository's runner writes them.",
    )


class IamCondition(Spec):
    """An IAM condition: the access holds only while its CEL expression is true (an expiry, working hours)."""

    title: Text = Field(min_length=1, max_length=100, description="Short name shown in IAM.")
    expression: Text = Field(
        min_length=1,
        description='CEL expression, e.g. `request.time < timestamp("2027-01-01T00:00:00Z")`.',
    )
    description: Text | None = Field(default=None, description="What the condition is for.")


class RepositoryAccess(Spec):
    """A person or group allowed to use the repository."""

    member: Member = Field(description="IAM principal, e.g. `group:analytics@example.com`.")
    role: Literal["viewer", "editor", "admin"] = Field(
        description="`roles/dataform.<role>` on the repository only (never a project or primitive role)."
    )
    run_as: list[RunnerRef] = Field(
        default_factory=list,
        description="Runners this member may start runs as (workspace runs use the repository's `runner`): "
        "Service Account User on exactly those accounts, as strict act-as requires. A runner of the host, or "
        "`<environment>/<runner>` for another environment's. Needs role `editor` or `admin`.",
    )
    condition: IamCondition | None = Field(
        default=None,
        description="Limit the repository role to when an IAM condition holds (the `run_as` grants stay "
        "unconditional). `validate` reminds you that runs this member starts fail while it does not.",
    )


class Repository(Spec):
    """A Dataform repository. Declared only by the host environment (`repository:`, or `repositories:` for
    several in the host project)."""

    @model_validator(mode="after")
    def _outside_users_run_as_the_runner(self) -> Repository:
        if self.outside_users and not self.runner:
            raise ValueError("outside_users: true says people start workspace runs as `runner`, which is not set")
        return self

    name: DataformId = Field(description="Repository id.")

    @property
    def git_secret(self) -> SecretRef | None:
        """The secret holding the Git credential: none without a remote or with a Developer Connect link."""
        return self.git.secret if self.git else None

    display_name: Text | None = Field(default=None, description="Name shown in the console.")
    git: GitRemote | None = Field(
        default=None,
        description="Remote Git repository and how Dataform authenticates to it. Unset: the repository has no "
        "remote (people work in its workspaces only, or Git is connected later); release configs compile a Git "
        "ref, so no release may name it until it has one.",
    )
    workspace_compilation: WorkspaceCompilation | None = Field(
        default=None, description="Workspace compilation overrides (schema suffix, table prefix, database)."
    )
    runner: ServiceAccountId | None = Field(
        default=None,
        description="Runner (from this environment's `runners`) used by workspace and manual executions.",
    )
    outside_users: bool = Field(
        default=False,
        description="People outside this spec (e.g. project owners) start workspace runs as `runner`: dfinfra "
        "cannot see them, so it says so with a warning; `true` states it. Their workspace runs are then "
        "checked like declared people's (the datasets they write, the runner's grants kept), while their act-as "
        "on the runner stays theirs.",
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Labels on the repository.")
    deletion_policy: Literal["DELETE", "FORCE", "PREVENT", "ABANDON"] = Field(
        default="DELETE",
        description="`FORCE` deletes a repository that still has workspaces; `PREVENT` refuses to destroy it.",
    )
    access: list[RepositoryAccess] = Field(default_factory=list, description="People and groups with access.")
    npmrc: NpmrcSecret | None = Field(
        default=None,
        description="`.npmrc` environment variables for installing private npm packages during compilation: "
        "the Dataform service agent gets read access on exactly that secret.",
    )
    kms_key_name: KmsKeyName | None = Field(
        default=None,
        description="Cloud KMS key encrypting the repository (CMEK), fixed at creation (a plan that would change "
        "it in place is refused; `--replace` the repository, behind `--allow-destroy`). The Dataform service "
        "agent needs `roles/cloudkms.cryptoKeyEncrypterDecrypter` on it for every compilation, run and Git "
        "operation: dfinfra grants it on a key in a project of this deployment (provider 8.x); otherwise "
        "`validate` names the grant to make and `doctor` checks it.",
    )
    existing: bool = _existing("repository")


class Dataset(Spec):
    """A BigQuery dataset in this environment's project that runners read or write."""

    id: DatasetId = Field(description="Dataset id.")
    create: bool = Field(
        default=True,
        description="Create the dataset (in `bigquery_location`). "
        "`false`: it already exists; dfinfra only grants on it.",
    )
    description: Text | None = Field(default=None, description="Dataset description.")
    friendly_name: Text | None = Field(default=None, description="Name shown in the BigQuery console.")
    location: BigQueryLocation | None = Field(
        default=None,
        description="Where the dataset lives, when not the environment's `bigquery_location` (Google cannot move "
        "a dataset: a change replaces it, behind `--allow-destroy`).",
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Labels on the dataset, besides the environment's `labels`."
    )
    default_table_expiration_ms: int | None = Field(
        default=None,
        ge=3_600_000,
        description="Lifetime of new tables, in milliseconds (at least one hour).",
    )
    default_partition_expiration_ms: int | None = Field(
        default=None, ge=1, description="Lifetime of new tables' partitions, in milliseconds."
    )
    max_time_travel_hours: int | None = Field(
        default=None,
        description="Time travel window: 48 to 168 hours, a multiple of 24 (BigQuery's default is 168).",
    )
    delete_contents_on_destroy: bool = Field(
        default=False,
        description="Destroying the dataset also drops its tables (else the destroy fails while it holds data). "
        "Refused in a `protected` environment.",
    )
    authorized_datasets: list[DatasetRef] = Field(
        default_factory=list,
        description="Datasets whose views query this one on their readers' behalf (authorized datasets): whoever "
        "reads those views needs no access here. Each is an entry of this dataset's access list "
        "(`google_bigquery_dataset_access`, provider 8.x). Google's provider documents that "
        "`google_bigquery_dataset_iam_member` removes authorizations, so every grant on this dataset is then made "
        "as an access-list entry too (never both on one dataset).",
    )
    existing: bool = _existing("dataset")

    @model_validator(mode="after")
    def _adopted_or_external(self) -> Dataset:
        if self.existing and not self.create:
            raise ValueError(
                "existing: true adopts the dataset (dfinfra manages it from then on); create: false leaves it "
                "unmanaged (dfinfra only grants on it): keep one"
            )
        if not self.create:
            options = [name for name in MANAGED_DATASET_OPTIONS if getattr(self, name)]
            if options:
                raise ValueError(
                    f"create: false leaves dataset {self.id!r} unmanaged (dfinfra only grants on it), so "
                    f"{', '.join(options)} does not apply"
                )
        hours = self.max_time_travel_hours
        if hours is not None and not (48 <= hours <= 168 and hours % 24 == 0):
            raise ValueError(f"max_time_travel_hours {hours} must be 48 to 168, a multiple of 24")
        return self


# What only a dataset dfinfra creates can carry.
MANAGED_DATASET_OPTIONS = (
    "description",
    "friendly_name",
    "location",
    "labels",
    "default_table_expiration_ms",
    "default_partition_expiration_ms",
    "max_time_travel_hours",
    "delete_contents_on_destroy",
    "authorized_datasets",
)


class ProjectWideRole(Spec):
    """An explicit, justified opt-in to a project-wide BigQuery data role."""

    role: Literal["dataViewer", "dataEditor", "dataOwner", "admin"] = Field(
        description="`roles/bigquery.<role>` on the whole project. `dataOwner` and `admin` always warn."
    )
    reason: Text = Field(min_length=10, description="Why dataset-scoped roles are not enough (kept in the HCL).")


class OwnedDataset(Spec):
    """An explicit, justified opt-in to BigQuery Data Owner on one dataset of this environment."""

    dataset: DatasetId = Field(description="A dataset declared under `datasets:`.")
    reason: Text = Field(
        min_length=10,
        description="What the code does that Data Editor does not allow (dataset IAM for authorized views, row "
        "access policies, dataset metadata); kept in the HCL, and `validate` warns with it.",
    )


class BigQueryAccess(Spec):
    """What a runner does in BigQuery, as intent. Becomes dataset-scoped roles."""

    writes: list[DatasetId] = Field(
        default_factory=list, description="Datasets it writes: BigQuery Data Editor on each."
    )
    reads: list[DatasetRef] = Field(
        default_factory=list,
        description="Datasets it only reads: BigQuery Data Viewer on each. `project-id.dataset_id` names another "
        "project's dataset (not declared under `datasets:`; it must exist, and the deployer must be allowed to "
        "grant on it).",
    )
    reads_metadata: list[DatasetRef] = Field(
        default_factory=list,
        description="Datasets whose metadata only it reads (table lists and schemas, INFORMATION_SCHEMA views; no "
        "table data): BigQuery Metadata Viewer on each. `project-id.dataset_id` names another project's dataset.",
    )
    connections: list[ConnectionRef] = Field(
        default_factory=list,
        description="BigQuery connections its runs use (BigLake and object tables, remote functions and models), "
        "as `project-id.location.connection_id`: BigQuery Connection User on each connection (provider 8.x; on "
        "7.x `validate` names the grant). The connection's own service account reads what its tables point at "
        "(a bucket's objects): that grant is made where the connection is made.",
    )
    owns: list[OwnedDataset] = Field(
        default_factory=list,
        description="Datasets it owns: BigQuery Data Owner on each (it includes Data Editor), only with a reason.",
    )
    project_wide: list[ProjectWideRole] = Field(
        default_factory=list, description="Project-wide data roles, only with a reason."
    )


class StorageAccess(Spec):
    """What a runner's runs read in Cloud Storage (external tables, `LOAD DATA`), as intent."""

    reads: list[BucketName] = Field(
        default_factory=list,
        description="Buckets its runs read objects from: Storage Object Viewer on each bucket (never on a "
        "project). The buckets are made elsewhere; the deployer must be allowed to grant on them.",
    )


class DatasetUser(Spec):
    """People or a group who query this environment's datasets themselves (the team that uses the repository
    also reads what it builds), as intent: dataset-scoped roles, and Job User where their queries run."""

    member: Member = Field(description="`user:`, `group:` or `serviceAccount:` member.")
    reads: list[DatasetRef] = Field(
        default_factory=list,
        description="Datasets they query: BigQuery Data Viewer on each (`project-id.dataset_id` for another "
        "project's).",
    )
    writes: list[DatasetId] = Field(
        default_factory=list, description="Datasets they write (a sandbox): BigQuery Data Editor on each."
    )
    jobs_here: bool = Field(
        default=True,
        description="Their queries run in this environment's project: BigQuery Job User on it (false: they run "
        "queries from a project of their own, where they hold it).",
    )


class Runner(Spec):
    """A custom service account whose credentials execute workflows in BigQuery."""

    name: ServiceAccountId = Field(
        description="Service account id (the part before `@`); for a runner made elsewhere (`email:`), the name "
        "this spec calls it by."
    )
    email: ServiceAccountEmail | None = Field(
        default=None,
        description="The account is made elsewhere (another team's project or module, or another environment of "
        "this deployment): referenced by this email, neither created nor imported. dfinfra grants it what its runs "
        "need on this environment's datasets and the host project; the grants on the account itself (the Dataform "
        "service agent's Token Creator, act-as for deployers and people) are its owner's to make: `dfinfra "
        "validate` names them and `dfinfra doctor` checks them.",
    )
    display_name: Text | None = Field(default=None, description="Display name.")
    description: Text | None = Field(default=None, max_length=256, description="Description.")
    bigquery: BigQueryAccess = Field(default_factory=BigQueryAccess, description="BigQuery access it needs.")
    storage: StorageAccess = Field(default_factory=StorageAccess, description="Cloud Storage access it needs.")
    existing: bool = _existing("service account")

    @model_validator(mode="after")
    def _made_elsewhere(self) -> Runner:
        if self.email:
            stated = [f for f in ("existing", "display_name", "description") if getattr(self, f)]
            if stated:
                raise ValueError(
                    f"runner {self.name!r} is made elsewhere (email: {self.email}): dfinfra only references it, "
                    f"so {', '.join(stated)} does not apply"
                )
        return self

    @property
    def made_elsewhere(self) -> bool:
        """Referenced by `email`, never created or imported: grants on the account itself are its owner's."""
        return self.email is not None

    def email_in(self, project: str) -> str:
        """The account's email: the one stated, or the account dfinfra makes in `project`."""
        return self.email or f"{self.name}@{project}.iam.gserviceaccount.com"


class Compilation(Spec):
    """How a release compiles: where its tables land. Unset database/location default to this environment,
    or to the repository's workflow_settings.yaml with `defaults_from: workflow_settings`."""

    defaults_from: Literal["environment", "workflow_settings"] = Field(
        default="environment",
        description="Where an unset `database` and `location` come from: this environment's project and "
        "`bigquery_location` (the default), or the repository's workflow_settings.yaml (`defaultProject`, "
        "`defaultLocation`): the release then sets neither, and `dfinfra validate` cannot check the datasets it "
        "writes unless `database` is set.",
    )
    database: ProjectId | None = Field(
        default=None, description="Default project (defaults to this environment's project)."
    )
    schema_: DatasetId | None = Field(default=None, alias="schema", description="Default dataset.")
    location: BigQueryLocation | None = Field(
        default=None, description="Default location (defaults to `bigquery_location`)."
    )
    assertion_schema: DatasetId | None = Field(
        default=None,
        description="Dataset for assertion results. Unset: workflow_settings.yaml's `defaultAssertionDataset` "
        "decides, which dfinfra cannot read, so `dfinfra validate` warns unless `has_assertions: false`.",
    )
    has_assertions: bool | None = Field(
        default=None,
        description="Whether the release's code declares assertions. dfinfra cannot read the code: `false` states "
        "that it has none (no assertion dataset to check or grant, and no warning); unset or `true` with no "
        "`assertion_schema` leaves their dataset to workflow_settings.yaml, unchecked.",
    )
    schema_suffix: DatasetId | None = Field(default=None, description="Suffix appended to every schema.")
    database_suffix: Text | None = Field(default=None, description="Suffix appended to the database.")
    table_prefix: DatasetId | None = Field(default=None, description="Prefix for every table.")
    vars: dict[str, Text] = Field(
        default_factory=dict, description="Compilation variables (`dataform.projectConfig.vars`)."
    )

    @model_validator(mode="after")
    def _assertions_stated_once(self) -> Compilation:
        if self.has_assertions is False and self.assertion_schema:
            raise ValueError(
                f"has_assertions: false says the code has no assertions, but assertion_schema names "
                f"{self.assertion_schema!r} for them: keep one"
            )
        return self


class Release(Spec):
    """A release configuration: compiles a git ref on a schedule."""

    name: DataformId = Field(
        description="Release config id (unique across all environments, so each keeps one Terraform name)."
    )
    repository: DataformId | None = Field(
        default=None,
        description="The host's repository (by name) this release compiles, and its workflows run in. "
        "Required when the host declares several (`repositories:`); with one, it may be left out.",
    )
    git_ref: GitRef = Field(description="Branch, tag or commit to compile.")
    git_ref_owner: Literal["spec", "ci"] = Field(
        default="spec",
        description="Who sets the release config's `git_commitish`: `spec` (this `git_ref`, restored by every "
        "apply) or `ci` (your CI moves it, e.g. to each release tag, through the Dataform API; `git_ref` is then "
        "only its first value, and applies never reset it; a saved plan that changes the release config writes "
        "back the ref it saw, so let CI move the ref after the apply, not between plan and apply).",
    )
    cron: Cron | None = Field(default=None, description="When to compile (unix-cron). Without it, compile manually.")
    time_zone: TimeZone = Field(default="Etc/UTC", description="IANA time zone of the cron.")
    compilation: Compilation = Field(default_factory=Compilation, description="Code compilation overrides.")
    disabled: bool = Field(default=False, description="Pause scheduled compilation.")
    deletion_policy: Literal["DELETE", "PREVENT", "ABANDON"] | None = Field(
        default=None,
        description="What destroying it does: `DELETE` (the provider's default), `PREVENT` (refuse), `ABANDON` "
        "(forget it, leave it in Dataform).",
    )
    existing: bool = _existing("release config")


class Target(Spec):
    """One action to run, by name (database and schema default to the compilation's)."""

    name: Text = Field(min_length=1, description="Action name.")
    schema_: DatasetId | None = Field(
        default=None,
        alias="schema",
        description="Action schema as compiled (with the release's `schema_suffix`, if it has one): "
        "`dfinfra validate` checks that the runner writes it.",
    )
    database: ProjectId | None = Field(default=None, description="Action database.")


class AuditLogEvent(Spec):
    """An audit-log entry that starts a run: another service finishing something (a BigQuery load or export)."""

    service: ServiceName = Field(description="The service writing the entry, e.g. `bigquery.googleapis.com`.")
    method: MethodName = Field(
        description="The method it logs, e.g. `google.cloud.bigquery.v2.JobService.InsertJob`. Data Access audit "
        "logs must be enabled for the service where the method logs there (`dfinfra doctor` cannot see that)."
    )
    resource: ResourcePattern | None = Field(
        default=None,
        description="Only entries about this resource name, or path pattern (`projects/p/datasets/raw/tables/*`).",
    )


TriggerKind = Literal["bucket", "topic", "audit_log", "schedule"]


class Trigger(Spec):
    """One more way a workflow starts, besides its cron: set exactly one of `bucket`, `topic`, `audit_log` or
    `schedule`. Each starts the workflow config through a Cloud Workflows workflow that runs it as Google's
    schedule would (the release's live compilation, the config's tags and runner), waits for the result and fails
    visibly, called by an Eventarc trigger (or a Cloud Scheduler job) as the environment's `orchestrator`."""

    bucket: BucketName | None = Field(
        default=None,
        description="An object written to this Cloud Storage bucket (in the environment's project) starts a run.",
    )
    prefix: ObjectPrefix | None = Field(
        default=None, description="Only objects whose name starts with this (with `bucket`), e.g. `exports/daily/`."
    )
    location: BucketLocation | None = Field(
        default=None,
        description="Where the Eventarc trigger lives, when not the default: a bucket's trigger where the bucket "
        "is (default the environment's region; `eu`, `us`, `asia` for a multi-region bucket); an audit-log "
        "trigger in the region of the resources it watches (default `global`, which receives every region's "
        "entries: right for multi-region BigQuery datasets).",
    )
    topic: TopicRef | None = Field(
        default=None,
        description="A message published to this Pub/Sub topic starts a run: its id in the environment's project, "
        "or `projects/<project>/topics/<id>`.",
    )
    audit_log: AuditLogEvent | None = Field(default=None, description="An audit-log entry starts a run.")
    schedule: Cron | None = Field(
        default=None,
        description="Cloud Scheduler calls the workflow on this unix-cron (retries and a run history of its own, "
        "where the workflow config's `cron` has neither).",
    )
    time_zone: TimeZone | None = Field(default=None, description="IANA time zone of `schedule` (default Etc/UTC).")

    @property
    def kind(self) -> TriggerKind:
        """Which event starts the run: the field that is set."""
        if self.bucket is not None:
            return "bucket"
        if self.topic is not None:
            return "topic"
        return "audit_log" if self.audit_log is not None else "schedule"

    @property
    def receives_events(self) -> bool:
        """Does Eventarc deliver this event only to an account that may receive it (eventarc.events.receiveEvent)?
        Cloud Storage and audit-log events: yes; Pub/Sub messages and scheduler calls: no."""
        return self.kind in ("bucket", "audit_log")

    @property
    def published_by_storage(self) -> bool:
        """Does Cloud Storage's service agent publish this event (pubsub.topics.publish in the bucket's project)?"""
        return self.kind == "bucket"

    def describe(self) -> str:
        """The event, as `explain` and error messages name it."""
        if self.bucket is not None:
            return f"an object written to gs://{self.bucket}/{self.prefix or ''}*"
        if self.topic is not None:
            return f"a message on Pub/Sub topic {self.topic}"
        if self.audit_log is not None:
            event = self.audit_log
            return f"audit log {event.service} {event.method}" + (f" on {event.resource}" if event.resource else "")
        return f"Cloud Scheduler {self.schedule!r} ({self.time_zone or 'Etc/UTC'})"

    @property
    def short_kind(self) -> str:
        """The kind as Google names of its objects carry it."""
        return {"bucket": "gcs", "topic": "pubsub", "audit_log": "audit", "schedule": "cron"}[self.kind]

    @model_validator(mode="after")
    def _exactly_one_event(self) -> Trigger:
        if sum(x is not None for x in (self.bucket, self.topic, self.audit_log, self.schedule)) != 1:
            raise ValueError("set exactly one of bucket, topic, audit_log or schedule")
        if self.prefix is not None and self.bucket is None:
            raise ValueError("prefix filters a bucket's objects: set it with bucket")
        if self.location is not None and self.kind not in ("bucket", "audit_log"):
            raise ValueError(
                "location is a bucket's or an audit-log trigger's: a topic's and a schedule's are the "
                "environment's region"
            )
        if self.time_zone is not None and self.schedule is None:
            raise ValueError("time_zone is the schedule's: set it with schedule")
        return self


class Workflow(Spec):
    """A workflow configuration: runs a release's latest compilation on a schedule, as a runner."""

    name: DataformId = Field(
        description="Workflow config id (unique across all environments, so each keeps one Terraform name)."
    )
    release: DataformId = Field(
        description="Release (in this environment) whose compilation it runs; the workflow config lives in "
        "that release's repository."
    )
    runner: ServiceAccountId = Field(
        description="Runner (in this environment) it executes as. "
        "Required: strict act-as forbids running as the service agent."
    )
    cron: Cron | None = Field(default=None, description="When to run (unix-cron). Stagger it after the release's cron.")
    time_zone: TimeZone = Field(default="Etc/UTC", description="IANA time zone of the cron.")
    tags: list[Text] = Field(default_factory=list, description="Run only actions with these tags.")
    targets: list[Target] = Field(default_factory=list, description="Run only these actions.")
    include_dependencies: bool = Field(default=False, description="Also run the selected actions' dependencies.")
    include_dependents: bool = Field(default=False, description="Also run the selected actions' dependents.")
    full_refresh: bool = Field(default=False, description="Rebuild incremental tables from scratch.")
    disabled: bool = Field(default=False, description="Pause the schedule.")
    triggers: list[Trigger] = Field(
        default_factory=list,
        description="Events that start it besides (or instead of) its cron: an object in a bucket, a Pub/Sub "
        "message, an audit-log entry, or a Cloud Scheduler schedule (provider 8.x).",
    )
    deletion_policy: Literal["DELETE", "PREVENT", "ABANDON"] | None = Field(
        default=None,
        description="What destroying it does: `DELETE` (the provider's default), `PREVENT` (refuse), `ABANDON` "
        "(forget it, leave it in Dataform).",
    )
    existing: bool = _existing("workflow config")

    def trigger_names(self) -> list[str]:
        """Google's name of each trigger (its Cloud Workflows workflow, Eventarc trigger or scheduler job):
        `dataform-<workflow>-<kind>`, numbered from the second of a kind; lowercase and at most 63 characters, as
        Eventarc takes them (a long workflow name is cut, with a hash of the whole so two stay apart)."""
        base = self.name.lower().replace("_", "-")
        if len(base) > 40:
            base = f"{base[:33].rstrip('-')}-{hashlib.sha256(self.name.encode()).hexdigest()[:6]}"
        counted: dict[str, int] = {}
        names = []
        for trigger in self.triggers:
            counted[trigger.short_kind] = counted.get(trigger.short_kind, 0) + 1
            number = counted[trigger.short_kind]
            names.append(f"dataform-{base}-{trigger.short_kind}" + (f"-{number}" if number > 1 else ""))
        return names


ChannelKind = Literal["email", "pubsub", "webhook"]


class NotificationChannel(Spec):
    """Where an alert goes: set exactly one of `email`, `pubsub_topic` or `webhook`."""

    name: DataformId = Field(description="The channel's name in this spec (its display name in Monitoring).")
    email: EmailAddress | None = Field(default=None, description="An e-mail address.")
    pubsub_topic: TopicRef | None = Field(
        default=None,
        description="A Pub/Sub topic (made outside dfinfra): its id in the project the alerts live in (the one "
        "hosting the repository), or `projects/<project>/topics/<id>`. Monitoring's notification service agent "
        "needs `roles/pubsub.publisher` on it, which `dfinfra validate` names.",
    )
    webhook: HttpsUrl | None = Field(
        default=None,
        description="An https:// endpoint Monitoring posts incidents to (`webhook_tokenauth`). The URL is "
        "configuration, kept in Terraform state: it must not carry a token (a query string is refused).",
    )
    token: bool = Field(
        default=False,
        description="The webhook authenticates with a token (its `auth_token`). dfinfra creates a secret for it; "
        "set it like the Git token, `dfinfra secret set ENV --channel NAME` (stdin). Plan and apply read it and "
        "hand it to the provider's write-only `auth_token_wo` through an ephemeral variable: never in the spec, "
        "state, plan or logs. Until it is set the channel has no token (doctor says so).",
    )

    @property
    def kind(self) -> ChannelKind:
        return "email" if self.email is not None else "pubsub" if self.pubsub_topic is not None else "webhook"

    @model_validator(mode="after")
    def _exactly_one_destination(self) -> NotificationChannel:
        if sum(x is not None for x in (self.email, self.pubsub_topic, self.webhook)) != 1:
            raise ValueError("set exactly one of email, pubsub_topic or webhook")
        if self.token and self.webhook is None:
            raise ValueError("token is a webhook's: set it with webhook")
        return self


class Alerts(Spec):
    """Failed-run alerts: a log-based alert policy on Dataform's invocation-completion log of this environment's
    workflow configs, in the project hosting their repository, sent to the channels here."""

    channels: list[NotificationChannel] = Field(min_length=1, description="Where the alerts go.")
    workflows: list[DataformId] | None = Field(
        default=None,
        description="Workflows (of this environment) whose failed runs alert. Unset: every workflow in a "
        "`protected` environment, none elsewhere (name them). A failed assertion fails its run, so it alerts too.",
    )
    per_workflow: bool = Field(default=False, description="One alert policy per workflow instead of one in all.")
    notify_at_most_every: Duration = Field(
        default="300s",
        description="At most one notification per this period (Monitoring requires a limit on log-match "
        "conditions; at least 300s).",
    )
    auto_close_after: Duration = Field(
        default="1800s", description="Close an incident no new failure has renewed after this long (at least 1800s)."
    )

    @model_validator(mode="after")
    def _monitoring_minimums(self) -> Alerts:
        # The minimums Cloud Monitoring's alerting UI enforces (5 minutes, 30 minutes).
        if int(self.notify_at_most_every[:-1]) < 300:
            raise ValueError("notify_at_most_every is at least 300s (Cloud Monitoring's minimum for log alerts)")
        if int(self.auto_close_after[:-1]) < 1800:
            raise ValueError("auto_close_after is at least 1800s (Cloud Monitoring's minimum)")
        return self


class Environment(Spec):
    """One environment: a project Dataform executes into, and (for the host) the repository itself."""

    project: Project = Field(description="The environment's project.")
    region: Region = Field(description="Region of the Dataform repository and configs.")
    bigquery_location: BigQueryLocation = Field(description="Location of created datasets and compilation default.")
    state: StateBackend = Field(description="Terraform state backend.")
    provider_version: ProviderVersion = Field(
        # Unset keeps the line specs had before 8.x: a provider major moves only when a spec says so (`init`
        # writes the current line, ~> 8.7, into every new spec).
        default="~> 7.45",
        pattern=r"^[~><=!, 0-9.]+$",
        description="Version constraint for `hashicorp/google` and `hashicorp/google-beta`: within 7.45 and "
        "later 7.x, or 8.x (the current line); a constraint admitting anything older or newer is refused.",
    )
    protected: bool = Field(default=False, description="Apply and destroy require typing the environment name.")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Labels on every labelled resource.")
    deployers: list[Member] = Field(
        default_factory=list,
        description="Principals that run Terraform for this environment. They get act-as (Service Account User) "
        "on each of its runners its workflow configs (or, in the host, the repository) attach, as strict act-as "
        "mode requires; `dfinfra explain --deployer` lists what else they need.",
    )
    repository: Repository | None = Field(
        default=None, description="The Dataform repository (host environment only; several: `repositories:`)."
    )
    repositories: list[Repository] = Field(
        default_factory=list,
        min_length=1,
        description="Several Dataform repositories in the host project, instead of `repository:` (host "
        "environment only). Each release names its repository with `repository:`; they share the service agent "
        "and may share a Git secret.",
    )
    host: str | None = Field(
        default=None,
        pattern=f"^{ENV_NAME_PATTERN}$",
        description="The environment whose repositories this one's releases compile, when several environments "
        "of the directory host repositories (each in its own project: dev, test and prod each with a "
        "repository). Inferred from the releases' `repository:` when only one host declares it; unset with a "
        "single host.",
    )
    dataform_default_kms_key_name: KmsKeyName | None = Field(
        default=None,
        description="Dataform's default CMEK key for this project and `region` (host environment only; "
        "`google_dataform_config`, provider 8.x): every repository created afterwards without its own "
        "`kms_key_name` is encrypted with it, and Google then refuses new repositories without a key. Changing "
        "it affects only repositories created later. The Dataform service agent needs "
        "`roles/cloudkms.cryptoKeyEncrypterDecrypter` on it, granted or named like a repository's key.",
    )
    datasets: list[Dataset] = Field(default_factory=list, description="BigQuery datasets runners use.")
    runners: list[Runner] = Field(default_factory=list, description="Runner service accounts in this project.")
    people: list[DatasetUser] = Field(
        default_factory=list,
        description="People and groups who query this environment's datasets themselves (analysts, the team "
        "that builds them): Data Viewer or Data Editor on each named dataset, Job User on the project.",
    )
    releases: list[Release] = Field(default_factory=list, description="Release configs compiling for this environment.")
    workflows: list[Workflow] = Field(
        default_factory=list, description="Workflow configs executing in this environment."
    )
    orchestrator: ServiceAccountId = Field(
        default="dataform-orchestrator",
        description="The service account (created in this project when a workflow has `triggers`) that the "
        "event triggers and scheduler jobs call the orchestrating Cloud Workflows as, and that starts the runs: "
        "Dataform Editor on the repository, act-as on the triggered workflows' runners, Workflows Invoker and "
        "Eventarc Event Receiver here.",
    )
    alerts: Alerts | None = Field(default=None, description="Alert on failed runs (provider 8.x).")

    def triggered_workflows(self) -> list[tuple[int, Workflow]]:
        """Workflows with `triggers`, with their index: each gets an orchestrating Cloud Workflows workflow."""
        return [(i, w) for i, w in enumerate(self.workflows) if w.triggers]

    def alerting_workflows(self) -> list[Workflow]:
        """The workflows whose failed runs alert: those `alerts.workflows` names, else all in a protected
        environment."""
        if self.alerts is None:
            return []
        if self.alerts.workflows is None:
            return list(self.workflows) if self.protected else []
        named = set(self.alerts.workflows)
        return [w for w in self.workflows if w.name in named]

    def declared_repositories(self) -> list[tuple[tuple[str | int, ...], Repository]]:
        """Every repository this environment declares, with where it sits in the file (the loader refuses
        both forms at once)."""
        if self.repository is not None:
            return [(("repository",), self.repository)]
        return [(("repositories", i), repository) for i, repository in enumerate(self.repositories)]
