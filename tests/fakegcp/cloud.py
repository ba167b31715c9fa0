"""Project-level facts of the fake Google Cloud over the store: which projects exist, which APIs and
service agents they have, who may act as whom. The provider engine is `engine.py`; per-type
behaviours are `types.py`.
"""

from __future__ import annotations

import os
import re

from tests.fakegcp.engine import DEFAULT_SERVICES, CloudError, ProviderConfig
from tests.fakegcp.store import Store


class Cloud:
    """Project-level facts over the store: which projects exist, which APIs and agents they have."""

    def __init__(self, store: Store):
        self.store = store
        # The provider block's project/region: the real provider names objects with them when a
        # resource leaves its own unset (x_identity: "resource value or provider project/region").
        self.defaults: ProviderConfig = ProviderConfig()

    def require_project(self, project: str) -> None:
        if self.store.project_id(project) is None:  # Google takes a project's id or its number
            raise CloudError(
                f"googleapi: Error 403: Permission denied on resource project {project}",
                f"project {project} does not exist in the offline cloud (or it may not exist)",
            )

    def service_enabled(self, project: str, service: str) -> bool:
        project = self.store.project_id(project) or project  # named by number: the same project
        return service in DEFAULT_SERVICES or self.store.get("service_enabled", f"{project}/{service}") is not None

    def enable_service(self, project: str, service: str) -> None:
        self.store.put("service_enabled", f"{project}/{service}", {"project": project, "service": service})

    def disable_service(self, project: str, service: str) -> None:
        self.store.delete("service_enabled", f"{project}/{service}")

    def require_service(self, project: str, service: str) -> None:
        if not self.service_enabled(project, service):
            raise CloudError(
                f"googleapi: Error 403: {service} has not been used in project {project} before or it is disabled",
                f"Enable it by enabling {service} in project {project}, then retry.",
            )

    def external(self, kind: str, id_: str) -> bool:
        """Objects created outside Terraform (seeded by the test, like the ingestion team's datasets)."""
        return self.store.get(f"external:{kind}", id_) is not None

    def require_act_as(self, email: str, action: str = "creating WorkflowConfig") -> None:
        """Strict act-as: attaching a runner to a config needs the caller's actAs on it (Google: 403).

        Only when the test names the caller (FAKEGCP_CALLER); grants younger than
        FAKEGCP_IAM_PROPAGATION_SECONDS are not effective yet, as IAM propagates.
        """
        caller = os.environ.get("FAKEGCP_CALLER")
        if not caller:
            return
        from tests.fakegcp.iam import Iam, Resource

        delay = float(os.environ.get("FAKEGCP_IAM_PROPAGATION_SECONDS", "0"))
        if not Iam(self.store, delay).allows(caller, "iam.serviceAccounts.actAs", Resource.service_account(email)):
            raise CloudError(
                f"Error {action}: googleapi: Error 403: Permission 'iam.serviceAccounts.actAs' denied "
                f"on resource (or it may not exist): projects/-/serviceAccounts/{email}",
                "strict act-as: the caller must be able to act as the workflow's service account",
            )

    def require_member(self, member: str) -> None:
        """IAM rejects service-account members that do not exist (agents only after they are created)."""
        email = member.removeprefix("serviceAccount:")
        if email == member:
            return
        agent = re.fullmatch(r"service-(\d+)@gcp-sa-[a-z]+\.iam\.gserviceaccount\.com", email)
        if agent:
            if self.store.get("service_agent", email) is None:
                raise CloudError(
                    "Error 400: Invalid argument: Service account " + email + " does not exist.",
                    "the service agent is created with the first repository or by google_project_service_identity",
                )
            return
        account = re.fullmatch(r"[^@]+@([a-z0-9-]+)\.iam\.gserviceaccount\.com", email)
        if account and self.store.project_number(account[1]) is not None:
            name = f"projects/{account[1]}/serviceAccounts/{email}"
            if self.store.get("google_service_account", name) is None and not self.external(
                "google_service_account", name
            ):
                raise CloudError(f"Error 400: Invalid argument: Service account {email} does not exist.", member)
