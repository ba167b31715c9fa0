"""What each environment's deployer (whoever runs `dfinfra apply ENV`) needs, on which resource.

Derived from what the environment's module declares (render/module.py decides ownership), with the
permissions Terraform's Google provider uses to create, read, update and delete each resource type
(`resource_types`: each type's `deployer` entry), plus the deployer's own run rights the access
model assumes (starting runs with `dfinfra run`). The narrowest predefined roles come from Google's
role table (`access/roles.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dataform_infra import resource_types as types
from dataform_infra.access import roles
from dataform_infra.render.module import Module, ReleaseConfig, WorkflowConfig
from dataform_infra.specset import SpecSet
from dataform_infra.topology import Resource, project_resource, runner_resource


@dataclass(frozen=True)
class DeployerNeed:
    """Permissions one environment's deployer needs on one resource, and the roles that carry them."""

    env: str
    resource: Resource
    permissions: tuple[str, ...]
    roles: tuple[str, ...]  # the narrowest predefined role carrying them all, or one per permission group
    granted_by_dfinfra: tuple[str, ...] = ()  # roles the spec already grants the deployers here

    def to_dict(self) -> dict[str, object]:
        return {
            "env": self.env,
            "resource": self.resource.label,
            "full_name": self.resource.full_name,
            "permissions": list(self.permissions),
            "roles": list(self.roles),
            "granted_by_dfinfra": list(self.granted_by_dfinfra),
        }


def deployer_needs(specs: SpecSet, env_name: str) -> list[DeployerNeed]:
    """What `env_name`'s deployers need: per resource, the permissions and the narrowest roles."""
    module = specs.module(env_name)
    wanted: dict[Resource, set[str]] = {}
    project = project_resource(module.env.project.id)
    for type_, objects in _declared(module):
        for scope, permissions in type_.deployer:
            for obj in objects:
                where = project if scope == "project" else obj  # "self"/"repository": the object itself
                wanted.setdefault(where, set()).update(permissions)
    deployers = set(module.env.deployers)
    access = specs.access_of(env_name)
    runs_here = {run.id for run in access.runs if run.env == env_name}
    for req in access.requirements:  # their own run rights (`dfinfra run`), assumed by the model
        mine = req.env == env_name or runs_here.intersection(req.runs)
        if req.assumed and req.principal.member in deployers and mine:
            wanted.setdefault(req.resource, set()).add(req.permission)
    granted: dict[Resource, list[str]] = {}
    for other in access.topology.apply_order():
        for g in specs.module(other).grants:
            if g.principal.member in deployers:
                granted.setdefault(g.resource, []).append(g.role)
    return [
        DeployerNeed(
            env_name,
            resource,
            tuple(sorted(perms)),
            tuple(_roles_for(frozenset(perms))),
            tuple(dict.fromkeys(granted.get(resource, []))),
        )
        for resource, perms in sorted(wanted.items(), key=lambda item: (item[0].project, item[0].kind, item[0].id))
    ]


def _declared(module: Module) -> list[tuple[types.ResourceType, list[Resource]]]:
    """Every resource type the module declares, with the objects it applies to (for configs: the
    repositories holding them)."""
    env = module.env
    found: list[tuple[types.ResourceType, list[Resource]]] = []
    if module.apis:
        found.append((types.PROJECT_SERVICE, [project_resource(a.project) for a in module.apis]))
    if module.service_accounts:
        found.append((types.SERVICE_ACCOUNT, [runner_resource(sa.email) for sa in module.service_accounts]))
    if module.datasets:
        found.append((types.BIGQUERY_DATASET, [Resource("dataset", d.project, d.dataset_id) for d in module.datasets]))
    for grant in module.grants:
        found.append((types.BY_NAME[grant.resource_type], [grant.resource]))
    if module.is_host:
        found += [
            (types.PROJECT_SERVICE_IDENTITY, [project_resource(env.project.id)]),
            (types.REPOSITORY, [r.hosted.resource for r in module.repositories]),
            (types.PROJECT, [project_resource(env.project.id)]),
        ]
    if module.secrets:  # the host's Git secrets, and any module's channel tokens
        found.append((types.SECRET, [Resource("secret", s.project, s.secret_id) for s in module.secrets]))
    for item in module.operations():
        found.append((item.resource_type, [project_resource(item.project)]))
    configs: list[tuple[types.ResourceType, list[ReleaseConfig] | list[WorkflowConfig]]] = [
        (types.RELEASE_CONFIG, module.releases),
        (types.WORKFLOW_CONFIG, module.workflows),
    ]
    for type_, items in configs:
        homes = dict.fromkeys(c.home for c in items)
        if homes:
            found.append((type_, [Resource("repository", h.project, h.name, h.region) for h in homes]))
    return found


def _roles_for(permissions: frozenset[str]) -> list[str]:
    """The narrowest role carrying all of `permissions`; else, per service (`bigquery`, `iam`...), the
    narrowest role carrying that service's permissions (or each permission's own)."""
    fitting = roles.narrowest_roles(permissions)
    if fitting:
        return fitting[:1]
    chosen: list[str] = []
    services = sorted({p.split(".", 1)[0] for p in permissions})
    for service in services:
        group = frozenset(p for p in permissions if p.startswith(service + "."))
        narrowest = roles.narrowest_roles(group)
        if narrowest:
            chosen.append(narrowest[0])
            continue
        for permission in sorted(group):
            one = roles.narrowest_roles({permission})
            chosen.append(one[0] if one else f"(no predefined role in the table carries {permission})")
    return list(dict.fromkeys(chosen))


def deployer_table(specs: SpecSet, envs: list[str]) -> str:
    """Markdown: per environment, what its deployers need where, and how to grant the host-side part."""
    lines = [
        "| env | resource | narrowest predefined role(s) | permissions | dfinfra grants the deployers |",
        "|---|---|---|---|---|",
    ]
    hints: list[str] = []
    for env in envs:
        top = specs.topology_of(env)
        needs = deployer_needs(specs, env)
        for n in needs:
            lines.append(
                f"| {env} | {n.resource.label} | {', '.join(f'`{r}`' for r in n.roles)} | "
                f"{', '.join(n.permissions)} | {', '.join(f'`{r}`' for r in n.granted_by_dfinfra) or '-'} |"
            )
        deployers = specs.deployment.environments[env].deployers
        for hosted in top.repositories:
            repository = next((n for n in needs if n.resource == hosted.resource), None)
            if env == top.host_name or not repository or "roles/dataform.admin" in repository.granted_by_dfinfra:
                continue
            members = ", ".join(f'{{member: "{d}", role: admin}}' for d in deployers) or "{member: ..., role: admin}"
            hints.append(
                f"- {env}'s deployers manage their configs in the {hosted.name} repository: grant it on that "
                f"repository only from {top.host_name}'s spec, `{hosted.field('access')}: [{members}]`, "
                f"then `dfinfra apply {top.host_name}`."
            )
    if any(not specs.deployment.environments[e].deployers for e in envs):
        hints.append("- An environment without `deployers:` gets no act-as from dfinfra: whoever applies it needs it.")
    text = "\n".join(lines) + "\n"
    if hints:
        text += "\n" + "\n".join(hints) + "\n"
    return text
