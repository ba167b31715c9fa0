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
from typing import Literal

from dataform_infra.render.hcl import Expr, Ident
from dataform_infra.render.names import NameAllocator
from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import Environment, Release, Runner, Workflow

HOST_APIS = (
    "bigquery.googleapis.com",
    "dataform.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "secretmanager.googleapis.com",
)
TARGET_APIS = ("bigquery.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com")

PrincipalKind = Literal["service_agent", "runner", "deployer", "person"]
ScopeKind = Literal["project", "service_account", "secret", "dataset", "repository"]


@dataclass(frozen=True)
class Grant:
    """One additive IAM membership: who gets which role on what, and the rule that asked for it."""

    resource_type: Ident
    name: Ident
    role: str
    member: str | Expr
    member_label: str
    principal_kind: PrincipalKind
    scope_kind: ScopeKind
    scope_label: str
    target: dict[Ident, str | Expr]
    rule: str
    why: str
    spec_path: str
    depends_on: tuple[Expr, ...] = ()
    opt_in_reason: str | None = None

    @property
    def address(self) -> str:
        return f"{self.resource_type}.{self.name}"


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

    def needs_api(self, service: str) -> tuple[Expr, ...]:
        """depends_on for a resource that needs `service`, when this module enables it."""
        return (self.api_refs[service],) if service in self.api_refs else ()


def runner_email(account_id: str, project: str) -> str:
    return f"{account_id}@{project}.iam.gserviceaccount.com"


def service_agent_email(project_number: str) -> str:
    return f"service-{project_number}@gcp-sa-dataform.iam.gserviceaccount.com"


def build_module(deployment: Deployment, env_name: str) -> Module:
    return _ModuleBuilder(deployment, env_name).build()


class _ModuleBuilder:
    def __init__(self, deployment: Deployment, env_name: str):
        self.deployment = deployment
        self.env_name = env_name
        self.env = deployment.environments[env_name]
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
        services = sorted({s for n in sharing for s in (HOST_APIS if n == self.host_name else TARGET_APIS)})
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

    def _local_runner(self, runner: Runner) -> RunnerRef:
        name = self.sa_refs[runner.name]
        return RunnerRef(
            env=self.env_name,
            runner=runner,
            project=self.env.project.id,
            email=runner_email(runner.name, self.env.project.id),
            resource_name=Expr.ref("google_service_account", name, "name"),
            email_value=Expr.ref("google_service_account", name, "email"),
            member_value=Expr.ref("google_service_account", name, "member"),
        )

    def _grant(self, resource_type: str, name_parts: tuple[str, ...], **fields) -> Grant:
        target = {Ident(k): v for k, v in fields.pop("target").items()}
        grant = Grant(
            resource_type=Ident(resource_type),
            name=self.names.name(resource_type, *name_parts),
            target=target,
            **fields,
        )
        self.module.grants.append(grant)
        return grant

    def _bigquery_grants(self) -> None:
        project = self.env.project.id
        for i, runner in enumerate(self.env.runners):
            ref = self._local_runner(runner)
            path = f"runners[{i}]"
            self._grant(
                "google_project_iam_member",
                (runner.name, "bigquery_job_user"),
                role="roles/bigquery.jobUser",
                member=ref.member_value,
                member_label=f"runner {runner.name}",
                principal_kind="runner",
                scope_kind="project",
                scope_label=f"project {project}",
                target={"project": project},
                rule="runner-runs-jobs",
                why=f"Runner {runner.name} runs BigQuery jobs in {project} (Job User grants no data access).",
                spec_path=path,
            )
            for verb, role, what in (
                ("writes", "roles/bigquery.dataEditor", "writes"),
                ("reads", "roles/bigquery.dataViewer", "reads"),
            ):
                for j, dataset in enumerate(getattr(runner.bigquery, verb)):
                    self._grant(
                        "google_bigquery_dataset_iam_member",
                        (runner.name, verb, dataset),
                        role=role,
                        member=ref.member_value,
                        member_label=f"runner {runner.name}",
                        principal_kind="runner",
                        scope_kind="dataset",
                        scope_label=f"dataset {project}.{dataset}",
                        target={"project": project, "dataset_id": self.dataset_refs[dataset]},
                        rule=f"runner-{verb}-dataset",
                        why=f"Runner {runner.name} {what} dataset {dataset}; the role is scoped to that dataset only.",
                        spec_path=f"{path}.bigquery.{verb}[{j}]",
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
                    member=ref.member_value,
                    member_label=f"runner {runner.name}",
                    principal_kind="runner",
                    scope_kind="project",
                    scope_label=f"project {project}",
                    target={"project": project},
                    rule="runner-project-wide-opt-in",
                    why=f"Runner {runner.name} gets roles/bigquery.{wide.role} on the whole project {project}, "
                    "by explicit opt-in.",
                    spec_path=f"{path}.bigquery.project_wide[{j}]",
                    opt_in_reason=wide.reason,
                )

    # --- host only ------------------------------------------------------------------------

    def _host(self) -> None:
        env = self.env
        repo = env.repository
        assert repo is not None
        module = self.module
        module.service_agent = service_agent_email(env.project.number)
        agent_member = Expr.ref("local", "dataform_service_agent")
        identity = Expr.ref("google_project_service_identity", "dataform")

        auth = repo.git.https_token or repo.git.ssh
        assert auth is not None
        module.secret_name = Ident("git_ssh_key" if repo.git.ssh else "git_token")
        secret_id = Expr.ref("google_secret_manager_secret", module.secret_name, "id")
        module.secret_version_ref = Expr.interpolate(secret_id, f"/versions/{auth.version}")
        secret_grant = self._grant(
            "google_secret_manager_secret_iam_member",
            ("dataform_agent", "reads", module.secret_name),
            role="roles/secretmanager.secretAccessor",
            member=agent_member,
            member_label="Dataform service agent",
            principal_kind="service_agent",
            scope_kind="secret",
            scope_label=f"secret {auth.secret_id}",
            target={"secret_id": secret_id},
            rule="agent-reads-git-secret",
            why="The Dataform service agent performs every Git operation, so it (and only it) reads the "
            "Git credential - even when workflows run as custom runners.",
            spec_path="repository.git",
            depends_on=(identity,),
        )

        attached = self._attached_runners()
        runner_grants: dict[tuple[str, str], list[Expr]] = {}
        for ref, path in attached:
            needed = runner_grants.setdefault((ref.env, ref.runner.name), [])
            token_creator = self._grant(
                "google_service_account_iam_member",
                ("dataform_agent", "impersonates", ref.env, ref.runner.name),
                role="roles/iam.serviceAccountTokenCreator",
                member=agent_member,
                member_label="Dataform service agent",
                principal_kind="service_agent",
                scope_kind="service_account",
                scope_label=f"service account {ref.email}",
                target={"service_account_id": ref.resource_name},
                rule="agent-impersonates-runner",
                why=f"The Dataform service agent mints tokens for runner {ref.runner.name} ({ref.env}); "
                "granted on that account only, never on the project.",
                spec_path=path,
                depends_on=(identity,),
            )
            needed.append(Expr.ref(token_creator.resource_type, token_creator.name))
            for k, deployer in enumerate(env.deployers):
                act_as = self._grant(
                    "google_service_account_iam_member",
                    ("deployer", deployer, "acts_as", ref.env, ref.runner.name),
                    role="roles/iam.serviceAccountUser",
                    member=deployer,
                    member_label=deployer,
                    principal_kind="deployer",
                    scope_kind="service_account",
                    scope_label=f"service account {ref.email}",
                    target={"service_account_id": ref.resource_name},
                    rule="deployer-acts-as-runner",
                    why=f"Strict act-as: deployer {deployer} attaches runner {ref.runner.name} ({ref.env}) to "
                    "Dataform configs, which requires iam.serviceAccounts.actAs on it.",
                    spec_path=f"deployers[{k}]",
                )
                needed.append(Expr.ref(act_as.resource_type, act_as.name))

        for k, access in enumerate(repo.access):
            self._grant(
                "google_dataform_repository_iam_member",
                ("repository", access.role, access.member),
                role=f"roles/dataform.{access.role}",
                member=access.member,
                member_label=access.member,
                principal_kind="person",
                scope_kind="repository",
                scope_label=f"repository {repo.name}",
                target={
                    "project": env.project.id,
                    "region": env.region,
                    "repository": Expr.ref("google_dataform_repository", "this", "name"),
                },
                rule="person-uses-repository",
                why=f"{access.member} is a Dataform {access.role} of this repository only.",
                spec_path=f"repository.access[{k}]",
            )

        refs = {(ref.env, ref.runner.name): ref for ref, _ in attached}
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

    def _attached_runners(self) -> list[tuple[RunnerRef, str]]:
        """Every runner the host's repository or workflow configs attach, once, in spec order."""
        seen: dict[tuple[str, str], tuple[RunnerRef, str]] = {}
        repo = self.env.repository
        assert repo is not None
        wanted: list[tuple[str, str, str]] = []
        if repo.runner:
            wanted.append((self.env_name, repo.runner, "repository.runner"))
        for env_name, env in self.deployment.environments.items():
            for i, workflow in enumerate(env.workflows):
                wanted.append((env_name, workflow.runner, f"workflows[{i}].runner"))
        for env_name, runner_name, path in wanted:
            if (env_name, runner_name) in seen:
                continue
            env = self.deployment.environments[env_name]
            runner = next(r for r in env.runners if r.name == runner_name)
            if env_name == self.env_name:
                ref = self._local_runner(runner)
            else:
                email = runner_email(runner.name, env.project.id)
                ref = RunnerRef(
                    env_name,
                    runner,
                    env.project.id,
                    email,
                    resource_name=f"projects/{env.project.id}/serviceAccounts/{email}",
                    email_value=email,
                    member_value=f"serviceAccount:{email}",
                )
            seen[(env_name, runner_name)] = (ref, path)
        return list(seen.values())
