"""Who is who in a deployment, and what Google calls each thing: the one home for both.

Host vs targets, which runners the host's repository and configs attach, the APIs each project
needs, service-account emails, the service agent, and the full resource names Google's APIs and
the IAM Policy Troubleshooter use. Render, the access model, policy, graph, explain and doctor
all ask here instead of spelling a name or a rule out again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Literal

from dataform_infra.resource_types import ObjectKind, full_name
from dataform_infra.spec.formats import provider_floor, slug
from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import (
    Environment,
    Release,
    Repository,
    RepositoryAccess,
    Runner,
    Trigger,
)
from dataform_infra.spec.yamlsource import dotted_path

HOST_APIS = (
    "bigquery.googleapis.com",
    "dataform.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "secretmanager.googleapis.com",
)
TARGET_APIS = ("bigquery.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com")

# Dataform's default assertion dataset when neither the release nor workflow_settings.yaml names one.
DEFAULT_ASSERTION_SCHEMA = "dataform_assertions"

# `views`: the views of a dataset another one authorizes (its member is `views:<project>.<dataset>`, no IAM member).
# `orchestrator`: the account triggers and scheduler jobs start runs as; `storage_agent`: Cloud Storage's service
# agent, which publishes a bucket's events (Eventarc); `monitoring_agent`: Monitoring's notification agent.
PrincipalKind = Literal[
    "service_agent", "runner", "deployer", "person", "views", "orchestrator", "storage_agent", "monitoring_agent"
]
ResourceKind = ObjectKind


def service_account_name(email: str) -> str:
    """`projects/<project>/serviceAccounts/<email>`: the name IAM and Terraform use."""
    project = email.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com")
    return f"projects/{project}/serviceAccounts/{email}"


def service_agent_email(project_number: str) -> str:
    return f"service-{project_number}@gcp-sa-dataform.iam.gserviceaccount.com"


def storage_agent_email(project_number: str) -> str:
    """Cloud Storage's service agent of a project: it publishes the project's bucket events to Eventarc."""
    return f"service-{project_number}@gs-project-accounts.iam.gserviceaccount.com"


def monitoring_agent_email(project_number: str) -> str:
    """Monitoring's notification service agent: it publishes alerts to a Pub/Sub channel's topic."""
    return f"service-{project_number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"


# The APIs event-driven runs need in the environment's project (dataform-operations.md §e), and alerts in the
# project whose logs they match. Enabled, never disabled on destroy, like every API dfinfra enables.
TRIGGER_APIS = (
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "workflowexecutions.googleapis.com",
    "workflows.googleapis.com",
)
TRIGGER_KIND_APIS = {"bucket": ("storage.googleapis.com",), "schedule": ("cloudscheduler.googleapis.com",)}
ALERT_APIS = ("logging.googleapis.com", "monitoring.googleapis.com")


@dataclass(frozen=True, slots=True)
class Principal:
    """Someone IAM grants to, keyed by the exact IAM member string."""

    kind: PrincipalKind
    member: str

    @property
    def email(self) -> str:
        return self.member.split(":", 1)[-1]

    @property
    def label(self) -> str:
        if self.kind == "service_agent":
            return "Dataform service agent"
        if self.kind == "runner":
            return f"runner {self.email.split('@', 1)[0]}"
        if self.kind == "views":
            return f"views of dataset {self.email}"
        return self.member


@dataclass(frozen=True, slots=True)
class Resource:
    """Something IAM grants on. `id` is the project id, account email, dataset id, secret id or repository id."""

    kind: ResourceKind
    project: str
    id: str
    region: str = ""
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Hashed once: a resource keys the access model's requirements and coverage (half a million
        # look-ups for a 1 MB spec), and the generated hash rebuilt its field tuple each time.
        object.__setattr__(self, "_hash", hash((self.kind, self.project, self.id, self.region)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def label(self) -> str:
        if self.kind == "dataset":
            return f"dataset {self.project}.{self.id}"
        if self.kind == "connection":
            return f"connection {self.project}.{self.region}.{self.id}"
        return f"{self.kind.replace('_', ' ')} {self.id}"

    @property
    def full_name(self) -> str:
        """The full resource name (`//service.googleapis.com/...`) the Policy Troubleshooter takes."""
        return full_name(self.kind, self.project, self.id, self.region)

    @property
    def relative_name(self) -> str:
        """The full name without its service (`projects/<p>/secrets/<id>`): what the object's own API takes."""
        return self.full_name.split("/", 3)[3]


# One object per resource: the access model and coverage key dicts by resource hundreds of thousands of times
# for a large spec, and a dict compares the same object by identity without calling __eq__.
@lru_cache(maxsize=4096)
def project_resource(project: str) -> Resource:
    return Resource("project", project, project)


def key_resource(name: str) -> Resource:
    """A Cloud KMS key, by its full name `projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`."""
    return Resource("crypto_key", name.split("/")[1], name)


def bucket_resource(name: str) -> Resource:
    """A Cloud Storage bucket: its name is global, so it carries no project (`_`, as Google's full name)."""
    return Resource("bucket", "_", name)


def views_of(project: str, ref: str) -> Principal:
    """The views of dataset `ref` (`id` in `project`, or `other-project.id`), as a dataset authorizes them."""
    dataset = dataset_resource(project, ref)
    return Principal("views", f"views:{dataset.project}.{dataset.id}")


def connection_resource(ref: str) -> Resource:
    """A BigQuery connection, by `project-id.location.connection_id` (how SQL names it)."""
    project, location, connection = ref.split(".", 2)
    return Resource("connection", project, connection, location.lower())


@dataclass(frozen=True)
class ObjectGrant:
    """A runner's grant on an object that is neither a dataset nor a project: a bucket its code reads (external
    tables, LOAD DATA) or a connection it queries through (BigLake and object tables, remote functions). The one
    home of its role, object, permissions and words: render grants it (provider 8.x), the access model needs it."""

    chain: Literal["runner-reads", "runner-uses-connection"]
    field: tuple[str | int, ...]  # inside the runner's entry
    resource: Resource
    permissions: tuple[str, ...]  # what a run needs on it
    role: str
    rule: str
    name_parts: tuple[str, str]  # in the grant's Terraform name, after the runner's
    target: dict[str, str]
    what: str  # "reads objects of bucket b (...)", after the runner's name


def object_grants(runner: Runner) -> list[ObjectGrant]:
    found = [
        ObjectGrant(
            "runner-reads",
            ("storage", "reads", j),
            bucket_resource(bucket),
            ("storage.objects.get", "storage.objects.list"),
            "roles/storage.objectViewer",
            "runner-reads-bucket",
            ("reads_bucket", bucket),
            {"bucket": bucket},
            f"reads objects of bucket {bucket} (external tables, LOAD DATA)",
        )
        for j, bucket in enumerate(runner.storage.reads)
    ]
    for j, name in enumerate(runner.bigquery.connections):
        connection = connection_resource(name)
        found.append(
            ObjectGrant(
                "runner-uses-connection",
                ("bigquery", "connections", j),
                connection,
                ("bigquery.connections.use",),
                "roles/bigquery.connectionUser",
                "runner-uses-connection",
                ("uses_connection", name),
                {"project": connection.project, "location": connection.region, "connection_id": connection.id},
                f"queries through connection {name} (BigLake and object tables, remote functions)",
            )
        )
    return found


@lru_cache(maxsize=65536)
def dataset_resource(project: str, ref: str) -> Resource:
    """A runner's `reads`/`writes` entry as a dataset: `id` in `project`, or `other-project.id`."""
    other, _, dataset = ref.rpartition(".")
    return Resource("dataset", other or project, dataset)


def runner_resource(email: str) -> Resource:
    return Resource("service_account", email.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com"), email)


@dataclass(frozen=True, eq=False)
class HostedRepository:
    """One of the host's repositories, with what Google calls it and the secrets it reads.

    `path` is where the host's spec declares it: `("repository",)` or `("repositories", i)`. Two are
    the same repository when Google's name for them is.
    """

    spec: Repository
    path: tuple[str | int, ...]
    project: str
    region: str
    # The host's Dataform default key (`dataform_default_kms_key_name`): a repository without a key of its own
    # is created with it (dataform-operations.md §c).
    default_key: str | None = None

    @property
    def name(self) -> str:
        """The repository id (`spec.name`)."""
        return self.spec.name

    @property
    def resource(self) -> Resource:
        return Resource("repository", self.project, self.spec.name, self.region)

    @cached_property
    def api_name(self) -> str:
        """`projects/<host>/locations/<region>/repositories/<name>`, as the Dataform API names it."""
        return f"projects/{self.project}/locations/{self.region}/repositories/{self.spec.name}"

    @property
    def secret(self) -> Resource | None:
        """The Git credential's secret: in the host project, unless the spec names another (`project:`).
        None when the repository authenticates through a Developer Connect link instead."""
        auth = self.spec.git_secret
        return Resource("secret", auth.project or self.project, auth.secret_id) if auth else None

    @property
    def secret_name(self) -> str | None:
        """`projects/<p>/secrets/<id>`, as Secret Manager names it (None: no Git secret)."""
        return self.secret.relative_name if self.secret else None

    @property
    def repository_link(self) -> Resource | None:
        """The Developer Connect Git repository link the repository fetches through, if it uses one."""
        link = self.spec.git.repository_link if self.spec.git else None
        return Resource("git_repository_link", link.split("/")[1], link) if link else None

    @property
    def kms_key_name(self) -> str | None:
        """The key the repository is created with: its own, else the project's Dataform default. An adopted
        repository (`existing: true`) keeps the one it was made with, which only its own `kms_key_name` states."""
        return self.spec.kms_key_name or (None if self.spec.existing else self.default_key)

    @property
    def kms_key(self) -> Resource | None:
        """The Cloud KMS key encrypting the repository (CMEK), as a resource the agent's grant is on."""
        key = self.kms_key_name
        return key_resource(key) if key else None

    @property
    def kms_key_path(self) -> tuple[str | int, ...]:
        """The spec field naming that key: the repository's `kms_key_name`, or the host's default."""
        return self.at("kms_key_name") if self.spec.kms_key_name else ("dataform_default_kms_key_name",)

    @property
    def npmrc_secret(self) -> Resource | None:
        """The secret holding `.npmrc` variables, when the repository names one."""
        npmrc = self.spec.npmrc
        return Resource("secret", npmrc.project or self.project, npmrc.secret_id) if npmrc else None

    def at(self, *path: str | int) -> tuple[str | int, ...]:
        """A spec path inside this repository's section, e.g. `at("git")`."""
        return (*self.path, *path)

    def field(self, *path: str | int) -> str:
        """`at(*path)` as written in messages: `repositories[1].access`."""
        return dotted_path(self.at(*path))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostedRepository) and other.api_name == self.api_name

    def __hash__(self) -> int:
        return hash(self.api_name)


@dataclass(frozen=True)
class AttachedRunner:
    """A runner the host's repository or a workflow config attaches, and where the spec attaches it first."""

    env: str
    runner: Runner
    project: str
    path: tuple[str | int, ...]

    @property
    def email(self) -> str:
        return self.runner.email_in(self.project)

    @property
    def made_elsewhere(self) -> bool:
        """Referenced by email (`Runner.email`): the grants on the account itself are its owner's to make."""
        return self.runner.made_elsewhere

    @property
    def principal(self) -> Principal:
        return Principal("runner", f"serviceAccount:{self.email}")

    @property
    def resource(self) -> Resource:
        return runner_resource(self.email)

    def spec_env(self, host_name: str) -> str:
        """The environment whose spec file holds `path`: the host's for a repository's runner and
        people's `run_as`, the runner's own for a workflow."""
        return host_name if self.path[:1] in (("repository",), ("repositories",)) else self.env

    @property
    def only_run_as(self) -> bool:
        """Attached by a person's `run_as` alone (no config or repository): deployers attach it to nothing."""
        return len(self.path) >= 2 and self.path[-2] == "run_as"


class Topology:
    """The shape of one deployment: the host, its targets, and the objects that connect them."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.environments = deployment.environments
        self.host_name = deployment.host_name
        self.host: Environment = deployment.host

    @cached_property
    def agent(self) -> Principal:
        return Principal("service_agent", f"serviceAccount:{service_agent_email(self.host.project.number)}")

    @cached_property
    def repositories(self) -> list[HostedRepository]:
        """The host's repositories, in spec order."""
        default_key = self.host.dataform_default_kms_key_name
        return [
            HostedRepository(spec, path, self.host.project.id, self.host.region, default_key)
            for path, spec in self.host.declared_repositories()
        ]

    def repository(self, name: str) -> HostedRepository:
        return next(r for r in self.repositories if r.name == name)

    def repository_of(self, release: Release) -> HostedRepository:
        """The repository a release (and the workflows running it) lives in: the one it names, or the only one."""
        return self.repository(release.repository) if release.repository else self.repositories[0]

    def workflow_repository(self, env_name: str, release_name: str) -> HostedRepository:
        env = self.environments[env_name]
        return self.repository_of(next(r for r in env.releases if r.name == release_name))

    def release_config_name(self, env_name: str, release_name: str) -> str:
        """The Dataform API's name of a release config: `<repository>/releaseConfigs/<release>`."""
        return f"{self.workflow_repository(env_name, release_name).api_name}/releaseConfigs/{release_name}"

    def workflow_config_name(self, env_name: str, workflow_name: str) -> str:
        """The Dataform API's name of a workflow config, a child of the repository its release names."""
        env = self.environments[env_name]
        release = next(w.release for w in env.workflows if w.name == workflow_name)
        return f"{self.workflow_repository(env_name, release).api_name}/workflowConfigs/{workflow_name}"

    @property
    def default_key(self) -> Resource | None:
        """Dataform's default key for the host's project and region (`google_dataform_config`), if set."""
        key = self.host.dataform_default_kms_key_name
        return key_resource(key) if key else None

    def grants_key(self, repository: HostedRepository) -> bool:
        """Does the host's module grant the Dataform service agent the repository's CMEK key? Yes for a key in a
        project of this deployment, on the provider line whose facts have a KMS IAM type (8.x); otherwise
        the grant is made outside dfinfra, and `validate` names it and `doctor` checks it."""
        return self.manages_key_grant(repository.kms_key)

    def manages_key_grant(self, key: Resource | None) -> bool:
        if key is None:
            return False
        managed = {env.project.id for env in self.environments.values()}
        return key.project in managed and self.on_provider_8(self.host_name)

    def on_provider_8(self, env_name: str) -> bool:
        """Does `env_name`'s module render on the 8.x line? Types only its facts hold (KMS and Cloud Storage IAM)
        are rendered there; on 7.x their grants are named by `validate` and checked by `doctor` instead."""
        return provider_floor(self.environments[env_name].provider_version) >= (8, 0, 0)

    @property
    def single_repository(self) -> bool:
        return len(self.repositories) == 1

    def secret_set_command(self, hosted: HostedRepository) -> str:
        """How a person sets this repository's Git secret, as the rendered module's comment and doctor's fix
        both print it (`--repository` once the host has several)."""
        repository = "" if self.single_repository else f" --repository {hosted.name}"
        return f"dfinfra secret set {self.host_name}{repository}"

    @property
    def host_project(self) -> Resource:
        return project_resource(self.host.project.id)

    def apis(self, env_name: str) -> tuple[str, ...]:
        env = self.environments[env_name]
        events: set[str] = set()
        for _, workflow in env.triggered_workflows():
            events.update(TRIGGER_APIS)
            for trigger in workflow.triggers:
                events.update(TRIGGER_KIND_APIS.get(trigger.kind, ()))
        if env_name != self.host_name:
            return tuple(sorted({*TARGET_APIS, *events}))
        # Dataform reaches a Developer Connect link through that API (dataform-operations.md §g: enable it).
        linked = any(r.repository_link is not None for r in self.repositories)
        # Alerts match the completion log of the project hosting the repositories: theirs, whoever declares them.
        alerted = any(e.alerts is not None for e in self.environments.values())
        extra = {*events, *(["developerconnect.googleapis.com"] if linked else []), *(ALERT_APIS if alerted else ())}
        return tuple(sorted({*HOST_APIS, *extra}))

    # --- operating runs: triggers and alerts ------------------------------------------------------

    def orchestrator(self, env_name: str) -> Principal:
        """The account `env_name`'s triggers start runs as (its `orchestrator`, in its own project)."""
        env = self.environments[env_name]
        return Principal("orchestrator", f"serviceAccount:{env.orchestrator}@{env.project.id}.iam.gserviceaccount.com")

    def storage_agent(self, env_name: str) -> Principal:
        return Principal(
            "storage_agent", f"serviceAccount:{storage_agent_email(self.environments[env_name].project.number)}"
        )

    def monitoring_agent(self) -> Principal:
        """Monitoring's notification agent of the project the alert policies live in (the host's)."""
        return Principal("monitoring_agent", f"serviceAccount:{monitoring_agent_email(self.host.project.number)}")

    @staticmethod
    def channel_display_name(env_name: str, channel: str) -> str:
        """A notification channel's display name in Monitoring (how doctor finds it: Google names it by a number)."""
        return f"{channel} (Dataform {env_name})"

    def channel_secret(self, env_name: str, channel: str) -> Resource:
        """The secret holding a webhook channel's token: in the project the channels live in (the host's)."""
        return Resource("secret", self.host.project.id, f"dataform-alerts-{env_name}-{channel}")

    @staticmethod
    def channel_token_variable(channel: str) -> str:
        """The ephemeral Terraform variable that carries a channel's token from Secret Manager to the provider
        (set by dfinfra as `TF_VAR_<name>`, with `<name>_version` naming the secret version it came from)."""
        return f"{slug(channel)}_auth_token"

    def alert_policies(self, env_name: str) -> list[tuple[str, tuple[str, ...]]]:
        """(display name, workflows) of each alert policy `env_name` declares: one for all its alerting workflows,
        or one per workflow (`per_workflow`). Doctor finds them by this name."""
        env = self.environments[env_name]
        names = tuple(w.name for w in env.alerting_workflows())
        if env.alerts is None or not names:
            return []
        if env.alerts.per_workflow:
            return [(f"Dataform {env_name}: {name} failed", (name,)) for name in names]
        return [(f"Dataform {env_name}: a run failed", names)]

    def trigger_location(self, env_name: str, trigger: Trigger) -> str:
        """Where a trigger (and its job) lives: its `location`, else `global` for audit logs (every region's
        entries, multi-region datasets included), else the environment's region."""
        if trigger.location:
            return trigger.location
        return "global" if trigger.kind == "audit_log" else self.environments[env_name].region

    def apply_order(self) -> list[str]:
        """The host first (its repository and service agent), then the targets whose configs live in
        that repository and whose runners the agent impersonates. Destroy in reverse."""
        return [self.host_name] + [n for n in self.environments if n != self.host_name]

    def api_owner(self, env_name: str) -> str:
        """The module enabling `env_name`'s project's APIs: the first one applied in that project."""
        project = self.environments[env_name].project.id
        return next(n for n in self.apply_order() if self.environments[n].project.id == project)

    def runner(self, env_name: str, name: str) -> AttachedRunner:
        _, runner = self.runner_at(env_name, name)
        return AttachedRunner(env_name, runner, self.environments[env_name].project.id, ())

    def runner_at(self, env_name: str, name: str) -> tuple[int, Runner]:
        """Runner `name` of `env_name`, with its index under `runners:`."""
        return self._runners[(env_name, name)]

    @cached_property
    def _runners(self) -> dict[tuple[str, str], tuple[int, Runner]]:
        return {(n, r.name): (i, r) for n, e in self.environments.items() for i, r in enumerate(e.runners)}

    def attached_runners(self) -> list[AttachedRunner]:
        """Every runner a repository, a workflow config or a person's `run_as` attaches, once, in spec order."""
        wanted: list[tuple[str, str, tuple[str | int, ...]]] = []
        for repo in self.repositories:
            if repo.spec.runner:
                wanted.append((self.host_name, repo.spec.runner, repo.at("runner")))
        for env_name, env in self.environments.items():
            for i, workflow in enumerate(env.workflows):
                wanted.append((env_name, workflow.runner, ("workflows", i, "runner")))
        for repo, k, access in self.people():
            for j, ref in enumerate(access.run_as):
                env_name, name = self.resolve_runner_ref(ref)
                wanted.append((env_name, name, repo.at("access", k, "run_as", j)))
        seen: dict[tuple[str, str], AttachedRunner] = {}
        for env_name, name, path in wanted:
            if (env_name, name) not in seen:
                found = self.runner(env_name, name)
                seen[(env_name, name)] = AttachedRunner(env_name, found.runner, found.project, path)
        return list(seen.values())

    def attached_where_made(self, email: str) -> bool:
        """Does the environment that creates the runner with this email attach it itself (so its module grants
        the runner's Job User on the host project, which another environment naming it by email must not)?"""
        return any(a.email == email and not a.made_elsewhere for a in self.attached_runners())

    def people(self) -> list[tuple[HostedRepository, int, RepositoryAccess]]:
        """Every person's access entry: (repository, index under its `access:`, entry)."""
        return list(self._people)

    @cached_property
    def _people(self) -> tuple[tuple[HostedRepository, int, RepositoryAccess], ...]:
        return tuple((repo, k, access) for repo in self.repositories for k, access in enumerate(repo.spec.access))

    def access_index(self, repository: HostedRepository, member: str) -> int | None:
        """Where `member`'s first access entry stands under `repository`'s `access:`, or None."""
        return self._access_indexes.get((repository.api_name, member))

    @cached_property
    def _access_indexes(self) -> dict[tuple[str, str], int]:
        """(repository, member) -> index of the first entry: one pass, so lookups stay linear in people."""
        found: dict[tuple[str, str], int] = {}
        for repo, k, access in self._people:
            found.setdefault((repo.api_name, access.member), k)
        return found

    def resolve_runner_ref(self, ref: str) -> tuple[str, str]:
        """`name` (a runner of the host) or `env/name` -> (environment, runner name)."""
        env_name, _, name = ref.rpartition("/")
        return (env_name or self.host_name, name)
