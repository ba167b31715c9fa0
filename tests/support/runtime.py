"""What a deployment needs besides dfinfra's apply before its workflows run in the offline cloud:
a Git credential to set, the repositories' code, and the deployers' own Dataform rights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataform_infra.access.roles import narrowest_roles
from dataform_infra.specset import SpecSet
from tests.fakegcp.store import Store

TOKEN = "ghp_offlineRunTokenx7Qz9Wv3Rt5Yu1Io8Pa2Sd4Fg"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def seed_runtime(store: Store, ws: SpecSet, code: Mapping[str, Any], *, owners: bool = False) -> None:
    """`code` in every repository's remote (or, keyed by repository name, each repository's own), every
    environment's deployers' own Dataform rights on their host project, and with `owners` the grants on accounts
    made elsewhere that their owners make (all outside dfinfra: the access model's `assumed` requirements)."""
    for host in ws.deployment.host_names():
        top = ws.topology_of(host)
        per_repository = {r.name for r in top.repositories} == set(code)
        for repository in top.repositories:
            held = code[repository.name] if per_repository else code
            if repository.spec.git is None:  # no remote: the code is in its workspaces
                store.put("workspace_code", repository.api_name, held)
            else:
                store.put("git_code", repository.spec.git.url, held)
        environments = ws.deployment.part(host).environments.values()
        deployers = dict.fromkeys(d for env in environments for d in env.deployers)
        # Their own rights where alerts are made (in the host project): what `explain --deployer` lists for them.
        alerting = any(env.alerts for env in environments)
        own = ("roles/dataform.admin",) + (
            ("roles/monitoring.alertPolicyEditor", "roles/monitoring.notificationChannelEditor") if alerting else ()
        )
        for k, deployer in enumerate(deployers):
            for j, role in enumerate(own):
                store.put(
                    "external:iam",
                    f"deployer-{host}-{k}" + (f"-{j}" if j else ""),
                    {"role": role, "member": deployer, "resource": top.host_project.full_name},
                )
        if not owners:
            continue
        elsewhere = {
            runner.email_in(env.project.id) for env in environments for runner in env.runners if runner.made_elsewhere
        }
        made_here = {
            r.email_in(e.project.id)
            for e in ws.deployment.environments.values()
            for r in e.runners
            if not r.made_elsewhere
        }
        granted: dict[tuple[str, str], set[str]] = {}
        for req in ws.access_of(host).requirements:
            account = req.resource.id
            if req.assumed and req.resource.kind == "service_account" and account in elsewhere - made_here:
                granted.setdefault((req.principal.member, req.resource.full_name), set()).add(req.permission)
        for k, ((member, resource), permissions) in enumerate(sorted(granted.items())):
            role = narrowest_roles(permissions)[0]
            store.put("external:iam", f"owner-{host}-{k}", {"role": role, "member": member, "resource": resource})
