"""What every Dataform run of a deployment needs, derived from the spec as data.

A requirement is `(principal, permission, resource, why)` plus the runs that fail without it and
the spec line that causes it. The chains follow Google's "Grant Dataform required access" and
"Use strict act-as mode" pages, numbered as in the shared runtime-access notes:

1. git-sync               the service agent reads the Git credential (every compilation)
   agent-uses-key         with CMEK, the service agent encrypts and decrypts with the repository's key
2. agent-schedules        the service agent creates compilation results and invocations (scheduled runs)
3. agent-impersonates     the service agent mints tokens for the runner
4. runner-runs-jobs       the runner creates BigQuery jobs in the project hosting the repository
5. runner-writes          the runner writes each dataset the run writes (release schema, assertions, targets)
6. runner-reads           the runner reads what the spec says it reads
7. workspace-writes       workspace runs write `<schema>_<suffix>` datasets
8. act-as                 strict act-as: whoever starts a run or attaches a runner acts as it
9. manage-configs         deployers create and update release/workflow configs

plus `start-runs` (whoever starts a run creates the compilation result and the invocation) and
`use-repository` (the access people are declared to have). Render decides the grants on its own;
`dataform_infra.access.coverage` proves that the grants meet every requirement here and that each
grant serves at least one. Facts the docs leave open are listed in `OPEN_FACTS`, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from dataform_infra.spec.formats import WORKSPACE_NAME
from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import Environment, Release, Trigger, Workflow
from dataform_infra.topology import (
    DEFAULT_ASSERTION_SCHEMA,
    AttachedRunner,
    HostedRepository,
    Principal,
    Resource,
    Topology,
    dataset_resource,
    object_grants,
    project_resource,
    runner_resource,
    views_of,
)

PathKey = tuple[str | int, ...]
Chain = Literal[
    "git-sync",
    "agent-uses-key",
    "agent-schedules",
    "agent-impersonates",
    "runner-runs-jobs",
    "runner-writes",
    "runner-reads",
    "runner-uses-connection",
    "runner-owns",
    "workspace-writes",
    "workspace-creates-datasets",
    "act-as",
    "manage-configs",
    "start-runs",
    "use-repository",
    "person-queries",
    "authorized-views",
    "trigger-invokes",
    "event-delivery",
]
CHAINS: dict[str, str] = {
    "git-sync": "the Dataform service agent reads the Git credential to fetch and compile the code",
    "agent-uses-key": "with a customer-managed key, the Dataform service agent encrypts and decrypts the "
    "repository's data with it (every compilation, run and Git operation)",
    "agent-schedules": "the Dataform service agent creates compilation results and workflow invocations on schedule",
    "agent-impersonates": "the Dataform service agent mints access tokens for the runner",
    "runner-runs-jobs": "the runner creates BigQuery jobs in the project hosting the repository",
    "runner-writes": "the runner creates and updates tables in each dataset the run writes",
    "runner-reads": "the runner reads the datasets the spec says its code reads",
    "runner-uses-connection": "the runner uses the BigQuery connections its code names (BigLake and object "
    "tables, remote functions); each connection reads its sources as its own service account",
    "runner-owns": "the runner manages a dataset it owns (its IAM, row access policies, metadata), by opt-in",
    "workspace-writes": "workspace runs write each schema with the workspace suffix",
    "workspace-creates-datasets": "with `${workspaceName}` in the suffix, each workspace's first run creates its "
    "datasets (BigQuery makes the creator their owner)",
    "act-as": "strict act-as: whoever starts a run, or attaches a runner to a config, may act as the runner",
    "manage-configs": "deployers create and update release and workflow configs",
    "start-runs": "whoever starts a run creates its workflow invocation (and, from a workspace or ad hoc, the "
    "compilation result it runs)",
    "use-repository": "people use the repository with the access the spec declares",
    "person-queries": "people query the datasets the spec gives them (`people:`), with jobs in the environment's "
    "project",
    "authorized-views": "an authorized dataset's views read the dataset that authorizes them on behalf of whoever "
    "reads the views",
    "trigger-invokes": "an event trigger or scheduler job starts the orchestrating Cloud Workflows workflow as the "
    "orchestrator, which then starts the Dataform run (start-runs, act-as) and waits for it",
    "event-delivery": "Eventarc delivers the event: Cloud Storage's service agent publishes a bucket's events, and "
    "the trigger's account receives Cloud Storage and audit-log events",
}

# Chains 5 and 6 of the runtime-access notes.
WRITE = (
    "bigquery.datasets.get",
    "bigquery.tables.create",
    "bigquery.tables.delete",
    "bigquery.tables.getData",
    "bigquery.tables.update",
    "bigquery.tables.updateData",
)


def link_accessor_role(pushes: bool) -> str:
    """The Developer Connect role the Dataform service agent needs on a link: the read-write token accessor
    when workspace commits are pushed through it, the read one when Dataform only fetches."""
    return "roles/developerconnect.tokenAccessor" if pushes else "roles/developerconnect.readTokenAccessor"


READ = ("bigquery.datasets.get", "bigquery.tables.get", "bigquery.tables.getData")
# Reading what a dataset holds without its data: table lists, schemas, INFORMATION_SCHEMA views.
READ_METADATA = ("bigquery.datasets.get", "bigquery.tables.get", "bigquery.tables.list")
# What only Data Owner adds on a dataset that Dataform code uses: its IAM (authorized views, sharing),
# its metadata, and row access policies.
OWN = (*WRITE, "bigquery.datasets.update", "bigquery.datasets.setIamPolicy", "bigquery.rowAccessPolicies.create")
START = ("dataform.compilationResults.create", "dataform.workflowInvocations.create")
MANAGE = (
    "dataform.releaseConfigs.create",
    "dataform.releaseConfigs.update",
    "dataform.workflowConfigs.create",
    "dataform.workflowConfigs.update",
)
# The permission that distinguishes each repository access level (from the role table).
ACCESS = {
    "viewer": "dataform.repositories.get",
    "editor": "dataform.workspaces.commit",
    "admin": "dataform.repositories.setIamPolicy",
}

OPEN_FACTS: dict[str, str] = {
    "jobs-project": "Google documents Job User 'on the project hosting your Dataform repository' for every runner; "
    "whether jobs of a release compiled into another project are also billed there is not documented. dfinfra "
    "grants the documented role only; `dfinfra doctor` checks it and `dfinfra run` proves a run end to end.",
    "agent-role": "An agent created through google_project_service_identity may lack roles/dataform.serviceAgent "
    "(Google grants it when the first repository creates the agent). dfinfra grants it to the agent only; "
    "`dfinfra doctor` checks it live.",
    "assertion-schema": "A release without assertion_schema writes assertions to workflow_settings.yaml's "
    f"defaultAssertionDataset (`{DEFAULT_ASSERTION_SCHEMA}` unless it says otherwise), and an unset schema to its "
    "defaultDataset; dfinfra cannot read that file or the code, so both are left unchecked and `validate` says so "
    "with the release's line. `has_assertions: false` states that the code has none.",
    "selection": "Which actions a tag selects lives in the code, not the spec: a workflow selecting by tags (or "
    "everything) is taken to write its release's default and assertion schemas, one selecting targets to write "
    "the targets' schemas; schemas the code names otherwise belong in the runner's `writes`.",
    "deployer-rights": "Deployers bring their own Dataform rights to manage configs and start runs "
    "(e.g. roles/dataform.admin); dfinfra does not grant them, `dfinfra explain --runs` lists them and "
    "`dfinfra doctor` checks them live.",
    "scheduler-token": "A Cloud Scheduler job calls Workflows with an OAuth token it mints for the orchestrator: "
    "Cloud Scheduler's service agent does so with roles/cloudscheduler.serviceAgent, which Google grants when the "
    "API is enabled (agents made before 2019 may lack it). Pub/Sub's agent needs Token Creator only if enabled "
    "before 2021-04-08. dfinfra grants neither; `dfinfra run --via-trigger` proves the path end to end.",
    "declared-access": "The spec's `reads`, `writes` and `project_wide` are what the team says its code does: "
    "dfinfra cannot read the code, so it takes them as requirements of every run of that runner. Least "
    "privilege for them is their scope (one dataset each), which the policy rules enforce.",
}


@dataclass(frozen=True)
class Run:
    """One way a Dataform run starts: on schedule, by hand, or from a workspace."""

    id: str
    kind: Literal["scheduled", "manual", "workspace", "triggered"]
    env: str
    runner: AttachedRunner
    repository: HostedRepository
    workflow: str | None = None
    started_by: Principal | None = None
    trigger: Trigger | None = None  # a triggered run's event
    trigger_name: str = ""  # Google's name of its trigger (or scheduler job) and orchestrating workflow

    @property
    def label(self) -> str:
        if self.kind == "scheduled":
            return f"{self.workflow} (scheduled)"
        if self.trigger is not None:
            return f"{self.workflow} (on {self.trigger.describe()})"
        if self.started_by is None:
            return f"workspace runs by people outside this spec in {self.repository.name}"
        if self.kind == "manual":
            return f"{self.workflow} (started by {self.started_by.member})"
        return f"workspace run by {self.started_by.member} in {self.repository.name}"


RequirementKey = tuple[Chain, str, str, Resource, bool]  # chain, member, permission, resource, assumed


@dataclass(frozen=True, slots=True)
class Requirement:
    """`principal` needs `permission` on `resource` for `runs` (none: config management or declared
    access). `env` and `spec_path` locate the spec field that causes it; `assumed` requirements are
    met outside dfinfra (the deployers' own rights)."""

    chain: Chain
    principal: Principal
    permission: str
    resource: Resource
    why: str
    env: str
    spec_path: PathKey
    runs: tuple[str, ...] = ()
    assumed: bool = False

    @property
    def key(self) -> RequirementKey:
        return (self.chain, self.principal.member, self.permission, self.resource, self.assumed)


@dataclass(frozen=True)
class DatasetWrite:
    """A dataset a run writes, and the spec field (in the run's own file) that sends it there."""

    resource: Resource
    path: PathKey


class AccessModel:
    """Every run of a deployment and every requirement of each, deduplicated."""

    def __init__(self, deployment: Deployment, topology: Topology | None = None):
        self.deployment = deployment
        self.topology = topology or Topology(deployment)
        # (chain, member, permission, resource, assumed) -> what the first cause said: (principal, why, env, path)
        self._found: dict[RequirementKey, tuple[Principal, str, str, PathKey]] = {}
        # A requirement's runs: the tuple its first cause gave (shared by that cause's permissions), made a
        # dict only when a later cause adds runs; most requirements have one cause, and 90,000 dicts were a
        # third of a 1 MB spec's model.
        self._runs_of: dict[RequirementKey, tuple[str, ...] | dict[str, None]] = {}
        self.notes: list[tuple[str, PathKey, str]] = []  # (env, path, message): what cannot be checked

    @cached_property
    def runs(self) -> list[Run]:
        self._derive()
        return self._runs

    @cached_property
    def requirements(self) -> list[Requirement]:
        self._derive()
        return [
            Requirement(chain, principal, permission, resource, why, env, path, tuple(runs), assumed)
            for ((chain, _, permission, resource, assumed), (principal, why, env, path)), runs in zip(
                self._found.items(), self._runs_of.values(), strict=True
            )
        ]

    # --- derivation -----------------------------------------------------------------------

    def _need(
        self,
        chain: Chain,
        principal: Principal,
        permissions: tuple[str, ...],
        resource: Resource,
        why: str,
        env: str,
        path: PathKey,
        runs: tuple[str, ...] = (),
        assumed: bool = False,
    ) -> None:
        """Record a requirement once (the first cause names it); later causes only add their runs."""
        added = tuple(dict.fromkeys(runs))
        for permission in permissions:
            key = (chain, principal.member, permission, resource, assumed)
            known = self._runs_of.get(key)
            if known is None:
                self._found[key] = (principal, why, env, path)
                self._runs_of[key] = added
            elif added:
                if isinstance(known, tuple):
                    known = self._runs_of[key] = dict.fromkeys(known)
                known.update(dict.fromkeys(added))

    def _derive(self) -> None:
        if hasattr(self, "_runs"):
            return
        self._runs: list[Run] = []
        # Runner member -> runs whose writes the spec leaves unchecked: its declared writes may serve them.
        self._unchecked_runs: dict[str, dict[str, None]] = {}
        self._writes_unchecked = False
        top = self.topology
        self._repository_needs()
        self._people_queries()

        for env_name, env in self.deployment.environments.items():
            # Each environment's module creates its own configs: its deployers attach its runners.
            deployers = [Principal("deployer", d) for d in env.deployers]
            releases = {r.name: (j, r) for j, r in enumerate(env.releases)}
            for i, workflow in enumerate(env.workflows):
                found = top.runner(env_name, workflow.runner)
                runner = AttachedRunner(env_name, found.runner, found.project, ("workflows", i, "runner"))
                j, release = releases[workflow.release]
                repository = top.repository_of(release)
                runs: list[Run] = []
                if workflow.cron:
                    runs.append(
                        Run(
                            f"scheduled:{env_name}/{workflow.name}",
                            "scheduled",
                            env_name,
                            runner,
                            repository,
                            workflow.name,
                        )
                    )
                runs += self._triggered_runs(env_name, i, workflow, runner, repository)
                # People start runs in the repository whose access declares them (`run_as`).
                starters = [*deployers, *self._people_running_as(env_name, workflow.runner, repository)]
                runs += [
                    Run(
                        f"manual:{env_name}/{workflow.name}:{w.member}",
                        "manual",
                        env_name,
                        runner,
                        repository,
                        workflow.name,
                        w,
                    )
                    for w in starters
                ]
                self._runs += runs
                ids = tuple(r.id for r in runs)
                self._run_basics(runs, runner)
                self._writes_unchecked = False
                for w in self._workflow_writes(env_name, env, i, workflow, j, release):
                    self._need(
                        "runner-writes",
                        runner.principal,
                        WRITE,
                        w.resource,
                        f"{workflow.name} writes {w.resource.label}",
                        env_name,
                        w.path,
                        ids,
                    )
                if self._writes_unchecked:
                    self._unchecked_runs.setdefault(runner.principal.member, {}).update(dict.fromkeys(ids))
                self._runner_reads(env_name, env, workflow.runner, ids)
                for d in deployers:
                    self._need(
                        "act-as",
                        d,
                        ("iam.serviceAccounts.actAs",),
                        runner.resource,
                        f"{d.member} creates and updates workflow config {workflow.name}, which runs as "
                        f"{runner.email} (strict act-as)",
                        env_name,
                        ("deployers",),
                        assumed=runner.made_elsewhere,
                    )
                # Under strict act-as, repositories.patch needs act-as on the account of every workflow config
                # in the repository (dataform-operations.md §b): the host's deployers update it.
                for updater in top.host.deployers:
                    if updater not in env.deployers:
                        self._need(
                            "act-as",
                            Principal("deployer", updater),
                            ("iam.serviceAccounts.actAs",),
                            runner.resource,
                            f"{updater} updates repository {repository.name}, which holds workflow config "
                            f"{workflow.name} running as {runner.email} (strict act-as checks every config's "
                            "account on a repository update)",
                            top.host_name,
                            ("deployers",),
                            assumed=runner.made_elsewhere,
                        )
            if env.triggered_workflows():  # once per environment: its deployers attach its one orchestrator
                orchestrator = top.orchestrator(env_name)
                for d in deployers:
                    self._need(
                        "act-as",
                        d,
                        ("iam.serviceAccounts.actAs",),
                        runner_resource(orchestrator.email),
                        f"{d.member} attaches {orchestrator.email} to the orchestrating workflows, triggers and "
                        "scheduler jobs (strict act-as)",
                        env_name,
                        ("deployers",),
                    )
            if not deployers and env.workflows:
                self.notes.append(
                    (
                        env_name,
                        ("deployers",),
                        "no deployers: whoever applies the configs needs iam.serviceAccounts.actAs "
                        "on each runner they attach (strict act-as), and dfinfra grants it only to `deployers`",
                    )
                )

        self._alert_notes()
        for repository in top.repositories:
            self._workspace_runs(repository)
        self._ad_hoc_runs()
        self._declared_intents()
        self._authorized_views()

    def _alert_notes(self) -> None:
        """A Pub/Sub channel's topic is made outside dfinfra, and the provider facts dfinfra holds have no topic IAM
        type to grant with: Monitoring's notification agent needs roles/pubsub.publisher on it, from the topic's
        owner."""
        agent = self.topology.monitoring_agent()
        for env_name, env in self.deployment.environments.items():
            for k, channel in enumerate(env.alerts.channels if env.alerts else []):
                if channel.pubsub_topic is not None:
                    self._note_once(
                        (
                            env_name,
                            ("alerts", "channels", k, "pubsub_topic"),
                            f"channel {channel.name} publishes to topic {channel.pubsub_topic}: its owner grants "
                            f"{agent.member} roles/pubsub.publisher on it (the provider facts dfinfra holds have "
                            "no topic IAM type to grant it with)",
                        )
                    )

    def _triggered_runs(
        self, env_name: str, i: int, workflow: Workflow, runner: AttachedRunner, repository: HostedRepository
    ) -> list[Run]:
        """A run per trigger: the event reaches the orchestrating workflow (event-delivery, trigger-invokes), which
        starts the workflow config as the orchestrator (start-runs and act-as, in `_run_basics`)."""
        if not workflow.triggers:
            return []
        top = self.topology
        env = self.deployment.environments[env_name]
        project = project_resource(env.project.id)
        orchestrator = top.orchestrator(env_name)
        runs = []
        for j, (trigger, name) in enumerate(zip(workflow.triggers, workflow.trigger_names(), strict=True)):
            run = Run(
                f"triggered:{env_name}/{workflow.name}:{name}",
                "triggered",
                env_name,
                runner,
                repository,
                workflow.name,
                orchestrator,
                trigger,
                name,
            )
            runs.append(run)
            at: PathKey = ("workflows", i, "triggers", j)
            self._need(
                "trigger-invokes",
                orchestrator,
                ("workflows.executions.create",),
                project,
                f"{trigger.describe()} starts orchestrating workflow {name} as {orchestrator.email}",
                env_name,
                at,
                (run.id,),
            )
            if trigger.receives_events:
                self._need(
                    "event-delivery",
                    orchestrator,
                    ("eventarc.events.receiveEvent",),
                    project,
                    f"Eventarc delivers {trigger.describe()} to trigger {name}, whose account must receive it",
                    env_name,
                    at,
                    (run.id,),
                )
            if trigger.published_by_storage:
                self._need(
                    "event-delivery",
                    top.storage_agent(env_name),
                    ("pubsub.topics.publish",),
                    project,
                    f"Cloud Storage's service agent publishes {trigger.describe()} to Eventarc",
                    env_name,
                    at,
                    (run.id,),
                )
        return runs

    def _authorized_views(self) -> None:
        """An authorized dataset's views read the dataset that authorizes them on their readers' behalf: every run
        whose runner reads (or writes) the views' dataset, and every person who queries it, depends on that
        authorization instead of reading the source itself."""
        for env_name, env in self.deployment.environments.items():
            project = env.project.id
            for i, source in enumerate(env.datasets):
                for j, ref in enumerate(source.authorized_datasets):
                    views = dataset_resource(project, ref)
                    runs = tuple(
                        run.id
                        for run in self._runs
                        if views in self._datasets_used_by(run.runner.env, run.runner.runner.name)
                    )
                    people = [p for p in env.people if views in {dataset_resource(project, d) for d in p.reads}]
                    if not runs and not people:
                        continue
                    readers = "; ".join(
                        filter(None, [f"{len(runs)} run(s)" if runs else "", *(p.member for p in people)])
                    )
                    self._need(
                        "authorized-views",
                        views_of(project, ref),
                        ("bigquery.tables.getData",),
                        dataset_resource(project, source.id),
                        f"views in {views.project}.{views.id} read {source.id} for their readers ({readers})",
                        env_name,
                        ("datasets", i, "authorized_datasets", j),
                        runs,
                    )

    def _datasets_used_by(self, env_name: str, runner_name: str) -> set[Resource]:
        """The datasets a runner's spec entry says its code reads or writes."""
        project = self.deployment.environments[env_name].project.id
        _, runner = self.topology.runner_at(env_name, runner_name)
        return {dataset_resource(project, d) for d in (*runner.bigquery.reads, *runner.bigquery.writes)}

    def _workspace_runs(self, repository: HostedRepository) -> None:
        """Runs started from `repository`'s workspaces, as its runner, by the people who may run as it."""
        top = self.topology
        host = top.host_name
        runner_name = repository.spec.runner
        if not runner_name:
            return
        found = top.runner(host, runner_name)
        runner = AttachedRunner(host, found.runner, found.project, repository.at("runner"))
        for d in (Principal("deployer", d) for d in top.host.deployers):
            self._need(
                "act-as",
                d,
                ("iam.serviceAccounts.actAs",),
                runner.resource,
                f"{d.member} sets repository {repository.name}'s runner {runner.email} (strict act-as)",
                host,
                ("deployers",),
                assumed=runner.made_elsewhere,
            )
        people = self._people_running_as(host, runner_name, repository)
        runs = [
            Run(f"workspace:{host}/{repository.name}:{p.member}", "workspace", host, runner, repository, None, p)
            for p in people
        ]
        if repository.spec.outside_users:
            runs.append(Run(f"workspace:{host}/{repository.name}:outside", "workspace", host, runner, repository))
        elif not people:
            self.notes.append(
                (
                    host,
                    repository.at("runner"),
                    f"nobody in this spec may start runs as repository {repository.name}'s runner {runner_name} "
                    "(no `run_as` names it): if people outside the spec (project owners) run workspaces as it, "
                    "say so with `outside_users: true` so their runs are checked; otherwise drop `runner`",
                )
            )
        self._runs += runs
        if not runs:
            return
        ids = tuple(r.id for r in runs)
        self._run_basics(runs, runner)
        self._writes_unchecked = False
        for w in self._workspace_writes(repository):
            self._need(
                "workspace-writes",
                runner.principal,
                WRITE,
                w.resource,
                f"workspace runs write {w.resource.label}",
                host,
                w.path,
                ids,
            )
        if self._writes_unchecked:
            self._unchecked_runs.setdefault(runner.principal.member, {}).update(dict.fromkeys(ids))
        database = self._per_workspace_database(repository)
        if database is not None:
            self._need(
                "workspace-creates-datasets",
                runner.principal,
                ("bigquery.datasets.create",),
                project_resource(database),
                f"each workspace writes its own <schema>_<workspace> datasets in {database}, created on its first run",
                host,
                repository.at("workspace_compilation", "schema_suffix"),
                ids,
            )
        self._runner_reads(host, top.host, runner_name, ids)

    def _repository_needs(self) -> None:
        """What the repository needs whatever runs: Git sync for every compilation (scheduled releases,
        workspaces, people's compilations), the agent's own role (always), config management
        by each environment's deployers, and people's declared access."""
        top = self.topology
        host = top.host_name
        for repository in top.repositories:
            self._git_sync(repository, ())
            self._repository_key(repository, ())
        for env_name, env in self.deployment.environments.items():
            for j, release in enumerate(env.releases):
                if release.cron:
                    self._need(
                        "agent-schedules",
                        top.agent,
                        ("dataform.compilationResults.create",),
                        top.host_project,
                        f"release {release.name} is compiled on schedule by the Dataform service agent",
                        env_name,
                        ("releases", j, "cron"),
                    )
        default_key = top.default_key
        if default_key is not None:
            managed = top.manages_key_grant(default_key)
            # Google creates every later repository of the region with it, so the agent needs it even while
            # each repository declared here has a key of its own (dataform-operations.md §c).
            self._need(
                "agent-uses-key",
                top.agent,
                ("cloudkms.cryptoKeyVersions.useToDecrypt", "cloudkms.cryptoKeyVersions.useToEncrypt"),
                default_key,
                f"repositories created in {top.host.region} without a key of their own are encrypted with Dataform's "
                f"default key {default_key.id}",
                host,
                ("dataform_default_kms_key_name",),
                assumed=not managed,
            )
            if not managed:
                self.notes.append(
                    (
                        host,
                        ("dataform_default_kms_key_name",),
                        f"the Dataform service agent {top.agent.member} needs "
                        f"roles/cloudkms.cryptoKeyEncrypterDecrypter on Dataform's default key {default_key.id} "
                        "before any repository is created with it; the key is outside this deployment's projects, "
                        "so grant it yourself; `dfinfra doctor` checks it",
                    )
                )
        if top.repositories:
            self._need(
                "agent-schedules",
                top.agent,
                START,
                top.host_project,
                "the Dataform service agent holds its own role whether or not anything is scheduled yet: Google "
                "grants it unconditionally, and a cron added later to any environment's spec must not wait for "
                "an apply of the host",
                host,
                top.repositories[0].path,
            )
        for env_name in top.apply_order():  # a deployer of several environments is recorded at the host's
            env = self.deployment.environments[env_name]
            if not (env.releases or env.workflows or env_name == host):
                continue
            # The host's deployers manage every repository; a target's, the ones its releases name.
            used = {top.repository_of(r).name for r in env.releases}
            for repository in top.repositories:
                if env_name != host and repository.name not in used:
                    continue
                for d in env.deployers:
                    self._need(
                        "manage-configs",
                        Principal("deployer", d),
                        MANAGE,
                        repository.resource,
                        f"{d} manages {env_name}'s release and workflow configs in repository {repository.name}",
                        env_name,
                        ("deployers",),
                        assumed=True,
                    )
        for repository, k, access in top.people():
            self._need(
                "use-repository",
                Principal("person", access.member),
                (ACCESS[access.role],),
                repository.resource,
                f"{access.member} is a Dataform {access.role} of repository {repository.name}",
                host,
                repository.at("access", k, "role"),
            )

    def _people_queries(self) -> None:
        """`people:`: what their own queries need, outside any run (doctor checks it like the rest)."""
        for env_name, env in self.deployment.environments.items():
            project = env.project.id
            for k, person in enumerate(env.people):
                principal = Principal("person", person.member)
                for verb, permissions in (("reads", READ), ("writes", WRITE)):
                    for j, dataset in enumerate(getattr(person, verb)):
                        used = dataset_resource(project, dataset)
                        self._need(
                            "person-queries",
                            principal,
                            permissions,
                            used,
                            f"{person.member} {verb} {used.project}.{used.id} in their own queries",
                            env_name,
                            ("people", k, verb, j),
                        )
                if person.jobs_here:
                    self._need(
                        "person-queries",
                        principal,
                        ("bigquery.jobs.create",),
                        project_resource(project),
                        f"{person.member}'s queries run in {project}",
                        env_name,
                        ("people", k, "jobs_here"),
                    )

    @staticmethod
    def _pushes(repository: HostedRepository) -> bool:
        """Do people commit in its workspaces (and Dataform push those commits to the remote)?"""
        return bool(repository.spec.access)

    def _repository_key(self, repository: HostedRepository, runs: tuple[str, ...]) -> None:
        """CMEK: every compilation, run (a workflow config's run started by hand included: it executes a
        compilation result stored under the key) and Git operation of the repository uses its key."""
        top = self.topology
        if repository.kms_key is None:
            return
        # CMEK (dataform-operations.md §c): rendered where dfinfra may (Topology.grants_key), else granted
        # outside dfinfra, named here and checked by doctor.
        key = repository.kms_key.id
        outside = not top.grants_key(repository)
        self._need(
            "agent-uses-key",
            top.agent,
            ("cloudkms.cryptoKeyVersions.useToDecrypt", "cloudkms.cryptoKeyVersions.useToEncrypt"),
            repository.kms_key,
            f"every compilation, run and Git operation of {repository.name} uses its key {key}",
            top.host_name,
            repository.kms_key_path,
            runs,
            assumed=outside,
        )
        note = (
            top.host_name,
            repository.kms_key_path,
            f"the Dataform service agent {top.agent.member} needs roles/cloudkms.cryptoKeyEncrypterDecrypter "
            f"on {key} before the repository is created and for every compilation, run and Git operation; "
            "dfinfra grants it only on a key in a project of this deployment with provider 8.x, so grant it "
            "yourself; `dfinfra doctor` checks it",
        )
        if outside:
            self._note_once(note)

    def _git_sync(self, repository: HostedRepository, runs: tuple[str, ...]) -> None:
        """Chain 1: every compilation (scheduled releases, workspaces, runs) fetches the code with Git, and
        installs npm packages with the `.npmrc` variables when the repository names them."""
        top = self.topology
        git_spec = repository.spec.git
        git = repository.at("git", git_spec.auth) if git_spec else repository.at()
        reads: list[tuple[Resource, str, PathKey]] = []
        # Without a remote (no secret, no link) compilations read the workspace's own files: nothing is fetched.
        if repository.secret is not None:
            reads.append((repository.secret, f"fetches {repository.name}'s code with the Git credential", git))
        elif repository.repository_link is not None:  # Developer Connect: granted outside dfinfra, checked by doctor
            # Compilations fetch with the read token; workspace commits are pushed with the read-write one
            # (dataform-operations.md §g), so a repository people work in needs the read-write accessor.
            fetches = ["developerconnect.gitRepositoryLinks.fetchReadToken"]
            if self._pushes(repository):
                fetches.append("developerconnect.gitRepositoryLinks.fetchReadWriteToken")
            self._need(
                "git-sync",
                top.agent,
                tuple(fetches),
                repository.repository_link,
                f"every compilation (scheduled releases, workspaces, runs) fetches {repository.name}'s code through "
                "the Developer Connect link",
                top.host_name,
                git,
                runs,
                assumed=True,
            )
            note = (
                top.host_name,
                git,
                f"Dataform fetches the code through {repository.repository_link.id}: grant the Dataform service "
                f"agent {top.agent.member} {link_accessor_role(self._pushes(repository))} on that link (dfinfra "
                "cannot: the provider types it renders have no Developer Connect IAM resource); `dfinfra doctor` "
                "checks that it holds",
            )
            self._note_once(note)
        if repository.npmrc_secret:
            reads.append(
                (
                    repository.npmrc_secret,
                    f"installs {repository.name}'s npm packages with its .npmrc variables",
                    repository.at("npmrc"),
                )
            )
        for secret, what, path in reads:
            self._need(
                "git-sync",
                top.agent,
                ("secretmanager.versions.access",),
                secret,
                f"every compilation (scheduled releases, workspaces, runs) {what}",
                top.host_name,
                path,
                runs,
            )

    def _ad_hoc_runs(self) -> None:
        """Runners a person may start runs as (`run_as`) that no config or the repository uses: the
        person starts invocations as them directly (the API, an orchestrator)."""
        top = self.topology
        # People start runs in the repository whose access declares them: a runner counts as used there only.
        used = {(r.repository, r.runner.env, r.runner.runner.name) for r in self._runs}
        for repository, k, access in top.people():
            for j, ref in enumerate(access.run_as):
                env_name, name = top.resolve_runner_ref(ref)
                if (repository, env_name, name) in used:
                    continue
                found = top.runner(env_name, name)
                runner = AttachedRunner(env_name, found.runner, found.project, repository.at("access", k, "run_as", j))
                person = Principal("person", access.member)
                run_id = f"adhoc:{top.host_name}/{repository.name}:{env_name}/{name}:{access.member}"
                run = Run(run_id, "manual", env_name, runner, repository, None, person)
                self._runs.append(run)
                self._run_basics([run], runner)
                self._runner_reads(env_name, self.deployment.environments[env_name], name, (run.id,))

    def _people_running_as(self, env_name: str, runner: str, repository: HostedRepository) -> list[Principal]:
        """Who may start runs in `repository` as `runner`: its access entries whose `run_as` names it."""
        top = self.topology
        people = {
            a.member: None
            for repo, _, a in top.people()
            if repo == repository and any(top.resolve_runner_ref(ref) == (env_name, runner) for ref in a.run_as)
        }
        return [Principal("person", member) for member in people]

    def _run_basics(self, runs: list[Run], runner: AttachedRunner) -> None:
        """Chains 1-4 and 8 for runs that all use `runner`."""
        top = self.topology
        host = top.host_name
        every = tuple(r.id for r in runs)
        scheduled = tuple(r.id for r in runs if r.kind == "scheduled")
        # A run compiles (and so fetches Git) unless it is a workflow config's run started by hand: that one
        # executes the release's live compilation, made earlier by the cron or `dfinfra release`.
        compiling = [r for r in runs if r.kind not in ("manual", "triggered") or r.workflow is None]
        for repository in dict.fromkeys(r.repository for r in compiling):
            self._git_sync(repository, tuple(r.id for r in compiling if r.repository == repository))
        for repository in dict.fromkeys(r.repository for r in runs):
            self._repository_key(repository, tuple(r.id for r in runs if r.repository == repository))
        if scheduled:
            self._need(
                "agent-schedules",
                top.agent,
                START,
                top.host_project,
                "scheduled runs are created by the Dataform service agent",
                host,
                top.repositories[0].path,
                scheduled,
            )
        self._need(
            "agent-impersonates",
            top.agent,
            ("iam.serviceAccounts.getAccessToken",),
            runner.resource,
            f"the run executes as {runner.email}",
            runner.spec_env(host),
            runner.path,
            every,
            assumed=runner.made_elsewhere,
        )
        if runner.made_elsewhere:
            env_name = runner.env
            index, _ = top.runner_at(env_name, runner.runner.name)
            note = (
                env_name,
                ("runners", index, "email"),
                f"runner {runner.runner.name} ({runner.email}) is made elsewhere, so the grants on the account "
                f"itself are its owner's: roles/iam.serviceAccountTokenCreator to the Dataform service agent "
                f"{top.agent.member}, and roles/iam.serviceAccountUser to whoever attaches it or starts runs as it "
                "(strict act-as); `dfinfra explain --runs` lists them and `dfinfra doctor` checks them",
            )
            self._note_once(note)
        self._need(
            "runner-runs-jobs",
            runner.principal,
            ("bigquery.jobs.create",),
            top.host_project,
            f"{runner.email} runs BigQuery jobs in {top.host.project.id}, the project hosting the repository",
            runner.spec_env(host),
            runner.path,
            every,
        )
        for run in runs:
            if run.started_by is None:
                continue
            self._need(
                "act-as",
                run.started_by,
                ("iam.serviceAccounts.actAs",),
                runner.resource,
                f"{run.started_by.member} starts runs as {runner.email} (strict act-as)",
                host if run.started_by.kind == "person" else run.env,
                self._start_path(run.started_by, run.repository),
                (run.id,),
                assumed=runner.made_elsewhere,
            )
            self._need(
                "start-runs",
                run.started_by,
                # A workflow config's run executes its release's live compilation: nothing to compile. The
                # orchestrator also reads the invocation until it ends.
                START
                if run.workflow is None
                else ("dataform.workflowInvocations.create", "dataform.workflowInvocations.get")
                if run.kind == "triggered"
                else ("dataform.workflowInvocations.create",),
                run.repository.resource,
                f"{run.started_by.member} starts runs in repository {run.repository.name}",
                host if run.started_by.kind == "person" else run.env,
                self._start_path(run.started_by, run.repository),
                (run.id,),
                assumed=run.started_by.kind == "deployer",
            )

    def _start_path(self, who: Principal, repository: HostedRepository) -> PathKey:
        """The spec field that lets `who` start runs in `repository`: `deployers`, or their access entry there."""
        if who.kind == "deployer":
            return ("deployers",)
        if who.kind == "orchestrator":
            return ("orchestrator",)
        k = self.topology.access_index(repository, who.member)
        return repository.at("access", k, "run_as") if k is not None else repository.at("access")

    def _runner_reads(self, env_name: str, env: Environment, runner_name: str, ids: tuple[str, ...]) -> None:
        i, runner = self.topology.runner_at(env_name, runner_name)
        principal = self.topology.runner(env_name, runner_name).principal
        for verb, permissions, what in (
            ("reads", READ, ""),
            ("reads_metadata", READ_METADATA, "the metadata of "),
        ):
            for j, dataset in enumerate(getattr(runner.bigquery, verb)):
                read = dataset_resource(env.project.id, dataset)
                self._need(
                    "runner-reads",
                    principal,
                    permissions,
                    read,
                    f"{runner_name}'s code reads {what}{read.project}.{read.id}",
                    env_name,
                    ("runners", i, "bigquery", verb, j),
                    ids,
                )
        # The 7.45 facts hold no bucket or connection IAM type: on 7.x these grants are the user's to make.
        rendered = self.topology.on_provider_8(env_name)
        for grant in object_grants(runner):
            path: PathKey = ("runners", i, *grant.field)
            why = f"{runner_name}'s code {grant.what}"
            self._need(
                grant.chain,
                principal,
                grant.permissions,
                grant.resource,
                why,
                env_name,
                path,
                ids,
                assumed=not rendered,
            )
            if not rendered:
                self._note_once(
                    (
                        env_name,
                        path,
                        f"{principal.member} needs {grant.role} on {grant.resource.label}: dfinfra grants it with "
                        "provider_version ~> 8.7 (the 7.x facts it renders against have no such IAM type), so on "
                        "this line grant it yourself; `dfinfra doctor` checks it",
                    )
                )
        for j, wide in enumerate(runner.bigquery.project_wide):
            reads_only = wide.role == "dataViewer"
            self._need(
                "runner-reads" if reads_only else "runner-writes",
                principal,
                READ if reads_only else WRITE,
                project_resource(env.project.id),
                f"{runner_name}'s code {'reads' if reads_only else 'writes'} any dataset of {env.project.id} "
                f"({wide.reason})",
                env_name,
                ("runners", i, "bigquery", "project_wide", j),
                ids,
            )

    def _note_once(self, note: tuple[str, PathKey, str]) -> None:
        """A warning said once however many runs or repositories reach it."""
        if note not in self.notes:
            self.notes.append(note)

    def _not_checked(self, env: str, path: PathKey, text: str) -> None:
        """A write the spec leaves to workflow_settings.yaml (or the code): said once, and remembered, so the runs
        concerned keep the runner's declared writes in use instead of calling them unused."""
        self.notes.append((env, path, text))
        self._writes_unchecked = True

    def _workflow_writes(
        self, env_name: str, env: Environment, i: int, workflow: Workflow, j: int, release: Release
    ) -> list[DatasetWrite]:
        """Datasets a workflow's run writes: its targets' schemas (as compiled), and the release's
        default and assertion schemas when it selects by tags, everything, or the targets' neighbours."""
        c = release.compilation
        if c.database_suffix:
            self._not_checked(
                env_name,
                ("releases", j, "compilation", "database_suffix"),
                f"database_suffix: the database release {release.name!r} writes to is not checked",
            )
            return []
        database = c.database or (env.project.id if c.defaults_from == "environment" else None)
        if database is None:
            self._not_checked(
                env_name,
                ("releases", j, "compilation", "defaults_from"),
                f"release {release.name!r} leaves its default database to workflow_settings.yaml: the datasets "
                "it writes are not checked (set compilation.database to have them checked)",
            )
            return []
        suffix = f"_{c.schema_suffix}" if c.schema_suffix else ""
        found: list[DatasetWrite] = []
        for k, target in enumerate(workflow.targets):
            if target.schema_ is None:
                self._not_checked(
                    env_name,
                    ("workflows", i, "targets", k),
                    f"target {target.name!r} of workflow "
                    f"{workflow.name!r} names no schema: the dataset it writes is not checked",
                )
                continue
            resource = Resource("dataset", target.database or database, target.schema_)
            found.append(DatasetWrite(resource, ("workflows", i, "targets", k, "schema")))
        neighbours = workflow.include_dependencies or workflow.include_dependents
        if workflow.targets and not neighbours:
            return found
        if c.schema_ is None:
            self._not_checked(
                env_name,
                ("releases", j, "compilation"),
                f"release {release.name!r} leaves its default schema to "
                "workflow_settings.yaml: the datasets it writes are not checked (set compilation.schema)",
            )
        else:
            path: PathKey = ("releases", j, "compilation", "schema")
            found.append(DatasetWrite(Resource("dataset", database, c.schema_ + suffix), path))
        if c.assertion_schema:
            apath: PathKey = ("releases", j, "compilation", "assertion_schema")
            found.append(DatasetWrite(Resource("dataset", database, c.assertion_schema + suffix), apath))
        elif c.has_assertions is not False:
            self._not_checked(
                env_name,
                ("releases", j, "compilation"),
                f"release {release.name!r} leaves its assertion dataset to workflow_settings.yaml "
                f"(defaultAssertionDataset, `{DEFAULT_ASSERTION_SCHEMA}` unless it says otherwise): the dataset "
                "its assertions write is not checked (set compilation.assertion_schema, or "
                "compilation.has_assertions: false if the code has none)",
            )
        writes = list({w.resource: w for w in found}.values())
        self._locations_agree(env_name, env, release, j, writes)
        return writes

    def _locations_agree(
        self, env_name: str, env: Environment, release: Release, j: int, writes: list[DatasetWrite]
    ) -> None:
        """A release's jobs run in its location, and BigQuery refuses to write a dataset in another one: say so
        for each dataset of this environment that the spec places elsewhere."""
        location = release.compilation.location or (
            env.bigquery_location if release.compilation.defaults_from == "environment" else None
        )
        if location is None:
            return
        # Where each dataset this environment creates lives (one it does not create: unknown, not compared).
        placed = {d.id: (k, d) for k, d in enumerate(env.datasets) if d.create}
        for w in writes:
            found = placed.get(w.resource.id) if w.resource.project == env.project.id else None
            if found is None:
                continue
            k, declared = found
            elsewhere = declared.location or env.bigquery_location
            if elsewhere.lower() != location.lower():
                self.notes.append(
                    (
                        env_name,
                        ("datasets", k, "location") if declared.location else ("datasets", k),
                        f"dataset {w.resource.id} is in {elsewhere}, but release {release.name!r} runs its jobs in "
                        f"{location}: BigQuery refuses a job's writes to a dataset in another location (set "
                        f"releases[{j}].compilation.location, or move the dataset)",
                    )
                )

    def _per_workspace_database(self, repository: HostedRepository) -> str | None:
        """The project where workspaces create datasets of their own (`${workspaceName}` in the suffix)."""
        ws = repository.spec.workspace_compilation
        if ws is None or WORKSPACE_NAME not in (ws.schema_suffix or ""):
            return None
        return ws.default_database

    def _workspace_writes(self, repository: HostedRepository) -> list[DatasetWrite]:
        top = self.topology
        ws = repository.spec.workspace_compilation
        if ws is not None and ws.default_database is None:
            # Dataform compiles a workspace into workflow_settings.yaml's defaultProject, which dfinfra cannot
            # read: proving the writes against the host project would prove the wrong project.
            self._not_checked(
                top.host_name,
                repository.at("workspace_compilation"),
                "workspace runs compile into workflow_settings.yaml's defaultProject: the datasets they write "
                "are not checked (set workspace_compilation.default_database)",
            )
            return []
        if self._per_workspace_database(repository) is not None:
            return []  # named per workspace: nothing to declare or grant ahead (the creator owns them)
        if ws is None or not ws.schemas or ws.default_database is None:
            self._not_checked(
                top.host_name,
                repository.at("workspace_compilation"),
                "workspace runs are possible but "
                "workspace_compilation.schemas is empty: the datasets they write are not checked",
            )
            return []
        database = ws.default_database
        suffix = f"_{ws.schema_suffix}" if ws.schema_suffix else ""
        return [
            DatasetWrite(
                Resource("dataset", database, schema + suffix), repository.at("workspace_compilation", "schemas", k)
            )
            for k, schema in enumerate(ws.schemas)
        ]

    def _declared_intents(self) -> None:
        """Writes the spec declares but no run derives: kept as requirements so their grants are accounted for."""
        needed = {(cause[0], key[3]) for key, cause in self._found.items()}  # one pass: linear in the grants
        for env_name, env in self.deployment.environments.items():
            for i, runner in enumerate(env.runners):
                self._runner_reads(env_name, env, runner.name, ())
                principal = self.topology.runner(env_name, runner.name).principal
                for j, owned in enumerate(runner.bigquery.owns):
                    res = Resource("dataset", env.project.id, owned.dataset)
                    writing = {  # the runs that write the dataset are the ones that use what owning adds
                        run: None
                        for key, runs in self._runs_of.items()
                        if key[0] == "runner-writes" and key[1] == principal.member and key[3] == res
                        for run in runs
                    }
                    self._need(
                        "runner-owns",
                        principal,
                        OWN,
                        res,
                        f"{runner.name} is declared to own {env.project.id}.{owned.dataset}: {owned.reason}",
                        env_name,
                        ("runners", i, "bigquery", "owns", j),
                        tuple(writing),
                    )
                for j, dataset in enumerate(runner.bigquery.writes):
                    res = Resource("dataset", env.project.id, dataset)
                    if (principal, res) not in needed:
                        needed.add((principal, res))
                        self._need(
                            "runner-writes",
                            principal,
                            WRITE,
                            res,
                            f"{runner.name} is declared to write {env.project.id}.{dataset}",
                            env_name,
                            ("runners", i, "bigquery", "writes", j),
                            # Runs whose writes workflow_settings.yaml decides may be the ones writing it.
                            tuple(self._unchecked_runs.get(principal.member, ())),
                        )
