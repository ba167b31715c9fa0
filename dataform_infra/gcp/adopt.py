"""`dfinfra adopt ENV`: which objects an environment's module would create already exist in Google Cloud.

Each is looked up by its Google name through Google's own clients (Dataform, Secret Manager, IAM,
BigQuery); what exists gets `existing: true` in the spec (spec/marks.py), and render then imports it
instead of creating it (no 409 on the first apply). Objects another module owns are not asked about.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dataform_infra.errors import GcpNotFound
from dataform_infra.gcp.clients import GoogleApis, bigquery_retry, call
from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import Release, Workflow
from dataform_infra.spec.yamlsource import PathKey, dotted_path
from dataform_infra.topology import Topology, service_account_name


@dataclass(frozen=True)
class Candidate:
    """One object the module would create, where its mark goes, and whether Google has it."""

    what: str
    name: str  # Google's name for it
    mapping: PathKey  # the spec mapping that gets `existing: true`
    exists: bool
    marked: bool  # already `existing: true`

    def to_dict(self) -> dict[str, object]:
        return {
            "object": self.what,
            "name": self.name,
            "spec_path": dotted_path(self.mapping),
            "exists": self.exists,
            "already_marked": self.marked,
        }


def find_existing(deployment: Deployment, env_name: str, apis: GoogleApis) -> list[Candidate]:
    env = deployment.environments[env_name]
    top = Topology(deployment)
    project = env.project.id
    found: list[Candidate] = []

    def ask(what: str, name: str, mapping: PathKey, marked: bool, lookup: object) -> None:
        try:
            call(f"looking up {what}", lookup)  # type: ignore[arg-type]
            exists = True
        except GcpNotFound:
            exists = False
        found.append(Candidate(what, name, mapping, exists, marked))

    iam = apis.iam()
    for i, runner in enumerate(env.runners):
        if runner.made_elsewhere:
            continue  # referenced, never adopted
        name = service_account_name(runner.email_in(project))
        ask(
            f"service account {runner.name}",
            name,
            ("runners", i),
            runner.existing,
            lambda name=name: iam.get_service_account(request={"name": name}),
        )
    datasets = [(i, d) for i, d in enumerate(env.datasets) if d.create]
    if datasets:
        bigquery = apis.bigquery(project)
        for i, dataset in datasets:
            ref = f"{project}.{dataset.id}"
            ask(
                f"dataset {dataset.id}",
                f"projects/{project}/datasets/{dataset.id}",
                ("datasets", i),
                dataset.existing,
                # BigQuery's client retries for 10 minutes by default: an unreachable API should fail in one.
                lambda ref=ref: bigquery.get_dataset(ref, retry=bigquery_retry(), timeout=30),
            )
    dataform = apis.dataform()
    if env_name == top.host_name:
        adopted_secrets: set[str] = set()
        for hosted in top.repositories:
            repo = hosted.spec
            auth = repo.git_secret
            secret = hosted.secret_name
            # Another project's secret is managed there, and a Developer Connect link has none: never adopted.
            if repo.git and auth and secret is not None and not auth.project and secret not in adopted_secrets:
                adopted_secrets.add(secret)
                ask(
                    f"secret {auth.secret_id}",
                    secret,
                    hosted.at("git", repo.git.auth),
                    auth.existing,
                    lambda secret=secret: apis.secret_manager().get_secret(name=secret),
                )
            ask(
                f"repository {repo.name}",
                hosted.api_name,
                hosted.path,
                repo.existing,
                lambda name=hosted.api_name: dataform.get_repository(name=name),
            )
    configs: tuple[tuple[str, str, Sequence[Release | Workflow], Callable[..., str], Callable[..., object]], ...] = (
        ("releases", "release config", env.releases, top.release_config_name, dataform.get_release_config),
        ("workflows", "workflow config", env.workflows, top.workflow_config_name, dataform.get_workflow_config),
    )
    for key, what, items, named, get in configs:
        for i, item in enumerate(items):
            name = named(env_name, item.name)
            ask(f"{what} {item.name}", name, (key, i), item.existing, lambda name=name, get=get: get(name=name))
    return found
