"""Decide what one environment's Terraform root module contains.

This is where intent becomes resources: which APIs, accounts, datasets, grants and Dataform
configs, and which module owns each. The templates only lay these objects out as HCL.

Ownership across environments (why the host module reaches into other projects):
- Each environment's module creates its own runner accounts, datasets and BigQuery grants.
- The host module (the one with `repository:`) creates the repository, the Git secret, every
  release and workflow config (they are children of the repository) and the grants that let the
  host's service agent and deployers use the runners those configs attach — including runners
  in other projects. Putting those grants in the target module would need the host's service
  agent to exist before the target is applied while the host's workflow configs need the target's
  runner: a cycle. With this split, targets are applied first, then the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataform_infra.render.hcl import Expr, Ident
from dataform_infra.render.names import NameAllocator
from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import Environment, Release, Runner, Workflow
from dataform_infra.spec.yamlsource import PathKey, dotted_path
from dataform_infra.topology import (
    AttachedRunner,
    Principal,
    Resource,
    Topology,
    project_resource,
    runner_email,
    service_account_name,
)


@dataclass(frozen=True)
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

    @property
    def address(self) -> str:
        return f"{self.resource_type}.{self.name}"

    @property
    def spec_path(self) -> str:
        """The spec field asking for it, as `runners[0].bigquery.writes[1]` (in `env`'s file)."""
        return dotted_path(self.path)


@dataclass(frozen=True)
class Api:
    name: Ident
    project: str
    service: str


@dataclass(frozen=True)
class ServiceAccount:
    name: Ident
    project: str
    account_id: str
    display_name: str
    description: str | None
    email: str
    depends_on: tuple[Expr, ...]


@dataclass(frozen=True)
class Dataset:
    name: Ident
    project: str
    dataset_id: str
    location: str
    description: str | None
    depends_on: tuple[Expr, ...]


@dataclass(frozen=True)
class RunnerRef:
    """How the host module names a runner: a reference when local, a literal when in another project."""

    env: str
    runner: Runner
    project: str
    email: str
    resource_name: Expr | str
    email_value: Expr | str
    member_value: Expr | str


@dataclass(frozen=True)
class ReleaseConfig:
    name: Ident
    env: str
    release: Release
    database: str
    location: str


@dataclass(frozen=True)
class WorkflowConfig:
    name: Ident
    env: str
    workflow: Workflow
    release_ref: Expr
    service_account: Expr | str
    depends_on: tuple[Expr, ...]


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
    service_agent: str | None = None
    secret_name: Ident | None = None
    secret_version_ref: Expr | None = None
    repository_runner: RunnerRef | None = None
    repository_depends_on: tuple[Expr, ...] = ()
    api_refs: dict[str, Expr] = field(default_factory=dict)
    # The project number the spec declares for this module's project, when HCL uses it (the agent's email).
    checked_project_number: str | None = None

    @property
    def project_number_message(self) -> Expr:
        """The plan-time error when the spec's project number is not the project's real one."""
        return Expr.template(
            f"The project number in {self.spec_files[0]} ({self.checked_project_number}) is not the number of "
            f"project {self.env.project.id} (",
            Expr.ref("self", "number"),
            "): correct project.number there.",
        )

    def needs_api(self, service: str) -> tuple[Expr, ...]:
        """depends_on for a resource that needs `service`, when this module enables it."""
        return (self.api_refs[service],) if service in self.api_refs else ()


def build_module(deployment: Deployment, env_name: str) -> Module:
    return _ModuleBuilder(deployment, env_name).build()


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
        related = [env_name] + ([n for n in deployment.environments if n != env_name] if self.is_host else [])
        files = tuple(f"{envs_dir}/{deployment.spec_file(n).name}" for n in related)
        self.module = Module(env_name, self.env, self.is_host, files)
        self.sa_refs: dict[str, Ident] = {}

    def build(self) -> Module:
        self._apis()
        self._service_accounts()
        self._datasets()
        self._bigquery_grants()
        if self.is_host:
            self._host()
        return self.module

    # --- every environment ----------------------------------------------------------------

    def _apis(self) -> None:
        """Each project's APIs are enabled by one module: the first one applied in that project.

        Targets are applied before the host, so a project shared by a target and the host (the
        single-project layout) gets its APIs, the host's included, from that target's module.
        """
        project = self.env.project.id
        sharing = [n for n, e in self.deployment.environments.items() if e.project.id == project]
        targets = [n for n in sharing if n != self.host_name]
        owner = targets[0] if targets else self.host_name
        if owner != self.env_name:
            return
        services = sorted({s for n in sharing for s in self.topology.apis(n)})
        for service in services:
            name = self.names.name("google_project_service", service.split(".")[0])
            self.module.apis.append(Api(name, project, service))
            self.module.api_refs[service] = Expr.ref("google_project_service", name)

    def _service_accounts(self) -> None:
        for runner in self.env.runners:
            name = self.names.name("google_service_account", runner.name)
            self.sa_refs[runner.name] = name
            self.module.service_accounts.append(
                ServiceAccount(
                    name=name,
                    project=self.env.project.id,
                    account_id=runner.name,
                    display_name=runner.display_name or f"Dataform runner ({self.env_name})",
                    description=runner.description,
                    email=runner_email(runner.name, self.env.project.id),
                    depends_on=self.module.needs_api("iam.googleapis.com"),
                )
            )

    def _datasets(self) -> None:
        self.dataset_refs: dict[str, Expr | str] = {}
        for dataset in self.env.datasets:
            if not dataset.create:
                self.dataset_refs[dataset.id] = dataset.id
                continue
            name = self.names.name("google_bigquery_dataset", dataset.id)
            self.dataset_refs[dataset.id] = Expr.ref("google_bigquery_dataset", name, "dataset_id")
            self.module.datasets.append(
                Dataset(
                    name,
                    self.env.project.id,
                    dataset.id,
                    self.env.bigquery_location,
                    dataset.description,
                    self.module.needs_api("bigquery.googleapis.com"),
                )
            )

    def _runner_ref(self, attached: AttachedRunner) -> RunnerRef:
        """A reference when this module creates the account, a literal when another module does."""
        email = attached.email
        if attached.env == self.env_name:
            name = self.sa_refs[attached.runner.name]
            return RunnerRef(
                env=attached.env,
                runner=attached.runner,
                project=attached.project,
                email=email,
                resource_name=Expr.ref("google_service_account", name, "name"),
                email_value=Expr.ref("google_service_account", name, "email"),
                member_value=Expr.ref("google_service_account", name, "member"),
            )
        return RunnerRef(
            attached.env,
            attached.runner,
            attached.project,
            email,
            resource_name=service_account_name(email),
            email_value=email,
            member_value=f"serviceAccount:{email}",
        )

    def _grant(self, resource_type: str, name_parts: tuple[str, ...], **fields: Any) -> Grant:
        target = {Ident(k): v for k, v in fields.pop("target").items()}
        grant = Grant(
            resource_type=Ident(resource_type),
            name=self.names.name(resource_type, *name_parts),
            target=target,
            env=self.env_name,
            **fields,
        )
        self.module.grants.append(grant)
        return grant

    def _bigquery_grants(self) -> None:
        project = self.env.project.id
        for i, runner in enumerate(self.env.runners):
            ref = self._runner_ref(self.topology.runner(self.env_name, runner.name))
            principal = Principal("runner", f"serviceAccount:{ref.email}")
            path: PathKey = ("runners", i)
            for verb, role, what in (
                ("writes", "roles/bigquery.dataEditor", "writes"),
                ("reads", "roles/bigquery.dataViewer", "reads"),
            ):
                for j, dataset in enumerate(getattr(runner.bigquery, verb)):
                    self._grant(
                        "google_bigquery_dataset_iam_member",
                        (runner.name, verb, dataset),
                        role=role,
                        principal=principal,
                        resource=Resource("dataset", project, dataset),
                        member=ref.member_value,
                        target={"project": project, "dataset_id": self.dataset_refs[dataset]},
                        rule=f"runner-{verb}-dataset",
                        why=f"Runner {runner.name} {what} dataset {dataset}; the role is scoped to that dataset only.",
                        path=(*path, "bigquery", verb, j),
                        # A dataset created elsewhere gives no implicit dependency on the BigQuery API.
                        depends_on=()
                        if isinstance(self.dataset_refs[dataset], Expr)
                        else self.module.needs_api("bigquery.googleapis.com"),
                    )
            for j, wide in enumerate(runner.bigquery.project_wide):
                self._grant(
                    "google_project_iam_member",
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

    # --- host only ------------------------------------------------------------------------

    def _host(self) -> None:
        env = self.env
        top = self.topology
        repo = top.repository_spec
        module = self.module
        module.service_agent = top.agent.email
        module.checked_project_number = env.project.number
        agent_member = Expr.ref("local", "dataform_service_agent")
        identity = Expr.ref("google_project_service_identity", "dataform")
        host_project = env.project.id

        auth = repo.git.https_token or repo.git.ssh
        assert auth is not None
        module.secret_name = Ident("git_ssh_key" if repo.git.ssh else "git_token")
        secret_id = Expr.ref("google_secret_manager_secret", module.secret_name, "id")
        module.secret_version_ref = Expr.interpolate(secret_id, f"/versions/{auth.version}")
        secret_grant = self._grant(
            "google_secret_manager_secret_iam_member",
            ("dataform_agent", "reads", module.secret_name),
            role="roles/secretmanager.secretAccessor",
            principal=top.agent,
            resource=top.secret,
            member=agent_member,
            target={"secret_id": secret_id},
            rule="agent-reads-git-secret",
            why="The Dataform service agent performs every Git operation, so it (and only it) reads the "
            "Git credential - even when workflows run as custom runners.",
            path=("repository", "git"),
            depends_on=(identity,),
        )
        if top.has_schedules:
            self._grant(
                "google_project_iam_member",
                ("dataform_agent", "service_agent_role"),
                role="roles/dataform.serviceAgent",
                principal=top.agent,
                resource=top.host_project,
                member=agent_member,
                target={"project": host_project},
                rule="agent-has-its-role",
                why="Scheduled releases and workflows are started by the Dataform service agent, which needs "
                "roles/dataform.serviceAgent; an agent created through google_project_service_identity may not "
                "have it yet. Granted to the agent only.",
                path=("repository",),
                depends_on=(identity,),
            )

        runner_grants: dict[tuple[str, str], list[Expr]] = {}
        refs: dict[tuple[str, str], RunnerRef] = {}
        attached_runners = {(a.env, a.runner.name): a for a in top.attached_runners()}
        for attached in attached_runners.values():
            ref = refs[(attached.env, attached.runner.name)] = self._runner_ref(attached)
            needed = runner_grants.setdefault((ref.env, ref.runner.name), [])
            local = ref.env == self.env_name
            token_creator = self._grant(
                "google_service_account_iam_member",
                ("dataform_agent", "impersonates", ref.env, ref.runner.name),
                role="roles/iam.serviceAccountTokenCreator",
                principal=top.agent,
                resource=attached.resource,
                member=agent_member,
                target={"service_account_id": ref.resource_name},
                rule="agent-impersonates-runner",
                why=f"The Dataform service agent mints tokens for runner {ref.runner.name} ({ref.env}); "
                "granted on that account only, never on the project.",
                path=attached.path,
                depends_on=(identity,),
            )
            needed.append(Expr.ref(token_creator.resource_type, token_creator.name))
            job_user = self._grant(
                "google_project_iam_member",
                ("" if local else ref.env, ref.runner.name, "bigquery_job_user"),
                role="roles/bigquery.jobUser",
                principal=attached.principal,
                resource=top.host_project,
                member=ref.member_value,
                target={"project": host_project},
                rule="runner-runs-jobs",
                why=f"Runner {ref.runner.name} ({ref.env}) runs its BigQuery jobs in {host_project}, the project "
                "hosting the repository (Job User grants no data access).",
                path=attached.path,
            )
            needed.append(Expr.ref(job_user.resource_type, job_user.name))
            if attached.path[:2] == ("repository", "access"):
                continue  # only people start runs as it: deployers attach it to nothing
            for k, deployer in enumerate(env.deployers):
                act_as = self._grant(
                    "google_service_account_iam_member",
                    ("deployer", deployer, "acts_as", ref.env, ref.runner.name),
                    role="roles/iam.serviceAccountUser",
                    principal=Principal("deployer", deployer),
                    resource=attached.resource,
                    member=deployer,
                    target={"service_account_id": ref.resource_name},
                    rule="deployer-acts-as-runner",
                    why=f"Strict act-as: deployer {deployer} attaches runner {ref.runner.name} ({ref.env}) to "
                    "Dataform configs, which requires iam.serviceAccounts.actAs on it.",
                    path=("deployers", k),
                )
                needed.append(Expr.ref(act_as.resource_type, act_as.name))

        repository_target = {
            "project": host_project,
            "region": env.region,
            "repository": Expr.ref("google_dataform_repository", "this", "name"),
        }
        for k, access in enumerate(repo.access):
            person = Principal("person", access.member)
            self._grant(
                "google_dataform_repository_iam_member",
                ("repository", access.role, access.member),
                role=f"roles/dataform.{access.role}",
                principal=person,
                resource=top.repository,
                member=access.member,
                target=repository_target,
                rule="person-uses-repository",
                why=f"{access.member} is a Dataform {access.role} of this repository only.",
                path=("repository", "access", k),
            )
            for j, run_as in enumerate(access.run_as):
                attached = attached_runners[top.resolve_runner_ref(run_as)]
                ref = refs[(attached.env, attached.runner.name)]
                self._grant(
                    "google_service_account_iam_member",
                    ("person", access.member, "acts_as", ref.env, ref.runner.name),
                    role="roles/iam.serviceAccountUser",
                    principal=person,
                    resource=attached.resource,
                    member=access.member,
                    target={"service_account_id": ref.resource_name},
                    rule="person-starts-runs",
                    why=f"Strict act-as: {access.member} starts runs (workspace or manual) as runner "
                    f"{ref.runner.name} ({ref.env}), which requires iam.serviceAccounts.actAs on that account only.",
                    path=("repository", "access", k, "run_as", j),
                )

        if repo.runner:
            module.repository_runner = refs[(self.env_name, repo.runner)]
        runner_needs = runner_grants[(self.env_name, repo.runner)] if repo.runner else []
        module.repository_depends_on = (Expr.ref(secret_grant.resource_type, secret_grant.name), *runner_needs)

        release_refs: dict[tuple[str, str], Expr] = {}
        for env_name, target in self.deployment.environments.items():
            for release in target.releases:
                name = self.names.name("google_dataform_repository_release_config", release.name)
                release_refs[(env_name, release.name)] = Expr.ref(
                    "google_dataform_repository_release_config", name, "id"
                )
                module.releases.append(
                    ReleaseConfig(
                        name=name,
                        env=env_name,
                        release=release,
                        database=release.compilation.database or target.project.id,
                        location=release.compilation.location or target.bigquery_location,
                    )
                )
        for env_name, target in self.deployment.environments.items():
            for workflow in target.workflows:
                ref = refs[(env_name, workflow.runner)]
                needs = tuple(runner_grants[(env_name, workflow.runner)])
                module.workflows.append(
                    WorkflowConfig(
                        name=self.names.name("google_dataform_repository_workflow_config", workflow.name),
                        env=env_name,
                        workflow=workflow,
                        release_ref=release_refs[(env_name, workflow.release)],
                        service_account=ref.email_value,
                        depends_on=needs,
                    )
                )
