"""What a deployment needs besides dfinfra's apply before its workflows run in the offline cloud:
a Git credential to set, the repositories' code, and the deployers' own Dataform rights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataform_infra.workspace import Workspace
from tests.fakegcp.store import Store

TOKEN = "ghp_offlineRunTokenx7Qz9Wv3Rt5Yu1Io8Pa2Sd4Fg"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def seed_runtime(store: Store, ws: Workspace, code: Mapping[str, Any]) -> None:
    """`code` in every repository's remote (or, keyed by repository name, each repository's own), and every
    environment's deployers' own Dataform rights on the host project (outside dfinfra: the access model's
    `assumed` requirements)."""
    top = ws.topology
    per_repository = {r.name for r in top.repositories} == set(code)
    for repository in top.repositories:
        store.put("git_code", repository.spec.git.url, code[repository.name] if per_repository else code)
    deployers = dict.fromkeys(d for env in ws.deployment.environments.values() for d in env.deployers)
    for k, deployer in enumerate(deployers):
        store.put(
            "external:iam",
            f"deployer-{k}",
            {"role": "roles/dataform.admin", "member": deployer, "resource": top.host_project.full_name},
        )
