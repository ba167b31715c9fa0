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

from dataform_infra import resource_types as types
from dataform_infra.render.module import Module, ReleaseConfig, WorkflowConfig
from dataform_infra.topology import Resource

Key = tuple[str, ...]


def declared(module: Module) -> dict[Key, str]:
    """Identity key -> Terraform address, for every object `module` declares that may change owner or name."""
    keys: dict[Key, str] = {}
    for api in module.apis:
        keys[types.PROJECT_SERVICE.identity_of({"project": api.project, "service": api.service})] = api.address
    for grant in module.grants:
        keys[(grant.resource_type, grant.role, grant.principal.member, grant.resource.full_name)] = grant.address
    configs: list[ReleaseConfig | WorkflowConfig] = [*module.releases, *module.workflows]
    for config in configs:
        home = config.home
        attrs = {"project": home.project, "region": home.region, "repository": home.name, "name": config.config_id}
        keys[config.resource_type.identity_of(attrs)] = config.address
    for repo in module.repositories:
        hosted = repo.hosted
        attrs = {"project": hosted.project, "region": hosted.region, "name": hosted.name}
        keys[types.REPOSITORY.identity_of(attrs)] = repo.address
    for secret in module.secrets:
        keys[types.SECRET.identity_of({"project": secret.project, "secret_id": secret.secret_id})] = secret.address
    return keys


def state_key(resource_type: str, attributes: Mapping[str, Any]) -> Key | None:
    """The identity key of one state entry, or None for types that never change owner."""
    a = {k: str(v) for k, v in attributes.items() if isinstance(v, str | int)}
    type_ = types.get(resource_type)
    if type_ is None:
        return None
    if type_.identity:
        return type_.identity_of(a)
    located = type_.target.locate(a) if type_.target else None
    if type_.target is None or located is None:
        return None
    project, id_, region = located
    return (
        resource_type,
        a.get("role", ""),
        a.get("member", ""),
        Resource(type_.target.kind, project, id_, region).full_name,
    )
