"""Which module declares a Google object, by the object's identity rather than its Terraform address.

An IAM membership, a config or an enabled API is the same object whichever module manages it: it is
identified by what Google names it by (type, role, member, resource; type, repository, name). A
repository or a secret never changes module, but may change address (dfinfra named the one repository
`this` before a host could hold several). Rendered
modules and Terraform state entries both map to these keys, so `dfinfra migrate` can move a state entry
to the module (and address) that now declares it instead of destroying and recreating the object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataform_infra.render.module import Module
from dataform_infra.topology import Resource, project_resource, runner_resource

Key = tuple[str, ...]

RELEASE = "google_dataform_repository_release_config"
WORKFLOW = "google_dataform_repository_workflow_config"
REPOSITORY = "google_dataform_repository"
SECRET = "google_secret_manager_secret"


def declared(module: Module) -> dict[Key, str]:
    """Identity key -> Terraform address, for every object `module` declares that may change owner or name."""
    keys: dict[Key, str] = {}
    for api in module.apis:
        keys[("google_project_service", api.project, api.service)] = f"google_project_service.{api.name}"
    for grant in module.grants:
        keys[(grant.resource_type, grant.role, grant.principal.member, grant.resource.full_name)] = grant.address
    for release in module.releases:
        home = release.home
        keys[(RELEASE, home.project, home.region, home.name, release.release.name)] = f"{RELEASE}.{release.name}"
    for workflow in module.workflows:
        home = workflow.home
        keys[(WORKFLOW, home.project, home.region, home.name, workflow.workflow.name)] = f"{WORKFLOW}.{workflow.name}"
    for repo in module.repositories:
        hosted = repo.hosted
        keys[(REPOSITORY, hosted.project, hosted.region, hosted.name)] = f"{REPOSITORY}.{repo.name}"
    for secret in module.secrets:
        keys[(SECRET, secret.project, secret.secret_id)] = f"{SECRET}.{secret.name}"
    return keys


def state_key(resource_type: str, attributes: Mapping[str, Any]) -> Key | None:
    """The identity key of one state entry, or None for types that never change owner."""
    a = {k: str(v) for k, v in attributes.items() if isinstance(v, str | int)}
    if resource_type == "google_project_service":
        return (resource_type, a.get("project", ""), a.get("service", ""))
    if resource_type in (RELEASE, WORKFLOW):
        return (resource_type, a.get("project", ""), a.get("region", ""), a.get("repository", ""), a.get("name", ""))
    if resource_type == REPOSITORY:
        return (resource_type, a.get("project", ""), a.get("region", ""), a.get("name", ""))
    if resource_type == SECRET:
        return (resource_type, a.get("project", ""), a.get("secret_id", ""))
    scope = _scope(resource_type, a)
    if scope is None:
        return None
    return (resource_type, a.get("role", ""), a.get("member", ""), scope.full_name)


def _scope(resource_type: str, a: Mapping[str, str]) -> Resource | None:
    if resource_type == "google_service_account_iam_member":
        email = a.get("service_account_id", "").rsplit("/", 1)[-1]
        return runner_resource(email) if "@" in email else None
    if resource_type == "google_project_iam_member":
        return project_resource(a.get("project", ""))
    if resource_type == "google_bigquery_dataset_iam_member":
        return Resource("dataset", a.get("project", ""), a.get("dataset_id", ""))
    if resource_type == "google_secret_manager_secret_iam_member":
        parts = a.get("secret_id", "").split("/")  # projects/P/secrets/S
        return Resource("secret", parts[1] if len(parts) == 4 else a.get("project", ""), parts[-1])
    if resource_type == "google_dataform_repository_iam_member":
        # The provider records the repository's full name (projects/P/locations/R/repositories/N) once applied.
        full = a.get("repository", "").split("/")
        if len(full) == 6 and full[0] == "projects":
            return Resource("repository", full[1], full[5], full[3])
        return Resource("repository", a.get("project", ""), a.get("repository", ""), a.get("region", ""))
    return None
