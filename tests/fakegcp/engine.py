"""The generic SDKv2 engine of the fake Google provider: how any resource type plans, creates, reads,
updates and deletes, from the schema facts alone (computed attributes unknown until apply, ForceNew
attributes plan a replacement, defaults, diff suppression, label merging, ids from
`x_identity.id_format`). Per-type behaviours live in `types.py`; project facts in `cloud.py`.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakegcp.constraints import UNKNOWN
from tests.fakegcp.planning import CASE_SENSITIVE_MEMBER, PlanRules
from tests.fakegcp.schema import constraints, provider_schemas
from tests.fakegcp.store import AlreadyExists

if TYPE_CHECKING:
    from tests.fakegcp.cloud import Cloud

FIXED_TIME = "2026-01-05T06:30:00.000000Z"
FIXED_MILLIS = 1767594600000

API_OF_TYPE = {
    "google_dataform_repository": "dataform.googleapis.com",
    "google_dataform_repository_release_config": "dataform.googleapis.com",
    "google_dataform_repository_workflow_config": "dataform.googleapis.com",
    "google_dataform_repository_iam_member": "dataform.googleapis.com",
    "google_project_service_identity": "serviceusage.googleapis.com",
    "google_secret_manager_secret": "secretmanager.googleapis.com",
    "google_secret_manager_secret_iam_member": "secretmanager.googleapis.com",
    "google_service_account": "iam.googleapis.com",
    "google_service_account_iam_member": "iam.googleapis.com",
    "google_bigquery_dataset": "bigquery.googleapis.com",
    "google_bigquery_dataset_iam_member": "bigquery.googleapis.com",
    "google_workflows_workflow": "workflows.googleapis.com",
    "google_eventarc_trigger": "eventarc.googleapis.com",
    "google_cloud_scheduler_job": "cloudscheduler.googleapis.com",
    "google_monitoring_alert_policy": "monitoring.googleapis.com",
    "google_monitoring_notification_channel": "monitoring.googleapis.com",
}
# Enabled on every project from the start, as on a new Google Cloud project.
DEFAULT_SERVICES = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "storage.googleapis.com")


class CloudError(Exception):
    """An error the real API would return; becomes a provider diagnostic."""

    def __init__(self, summary: str, detail: str = "", path: tuple[str | int, ...] = ()):
        super().__init__(summary)
        self.summary = summary
        self.detail = detail
        self.path = path  # the attribute the diagnostic points at, when there is one


@dataclass
class ProviderConfig:
    project: str | None = None
    region: str | None = None
    default_labels: dict[str, str] = field(default_factory=dict)
    add_terraform_attribution_label: bool = True
    terraform_attribution_label_addition_strategy: str = "CREATION_ONLY"
    deletion_policy: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> ProviderConfig:
        """The provider block as ProviderConfigure reads it, with the checks it makes (not schema
        validators: they fail at plan, when the provider is configured)."""
        config = config or {}
        attribution = config.get("add_terraform_attribution_label")
        strategy = config.get("terraform_attribution_label_addition_strategy") or "CREATION_ONLY"
        if attribution is not False and strategy not in ("CREATION_ONLY", "PROACTIVE"):
            raise CloudError(
                "Invalid provider configuration",
                f'unsupported value for terraform_attribution_label_addition_strategy: "{strategy}"',
                ("terraform_attribution_label_addition_strategy",),
            )
        if config.get("prefer_global_endpoints") is True and config.get("prefer_regional_endpoints") is True:
            raise CloudError(
                "Invalid provider configuration",
                "prefer_global_endpoints and prefer_regional_endpoints cannot both be true",
                ("prefer_global_endpoints",),
            )
        universe = config.get("universe_domain")
        if universe and universe != "googleapis.com":  # the offline credentials name no universe
            raise CloudError(
                "Universe domain mismatch",
                f"'{universe}' does not match the universe domain found in the credentials: 'googleapis.com'",
                ("universe_domain",),
            )
        return cls(
            project=config.get("project"),
            region=config.get("region"),
            default_labels=dict(config.get("default_labels") or {}),
            add_terraform_attribution_label=True if attribution is None else bool(attribution),
            terraform_attribution_label_addition_strategy=strategy,
            deletion_policy=config.get("deletion_policy"),
        )


def _substitute(template: str, values: dict[str, Any]) -> str | None:
    """Fill `{{name}}` placeholders; None when one is missing or unknown."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match[1])
        if value is None or value is UNKNOWN:
            missing = True
            return ""
        return str(value)

    result = re.sub(r"\{\{(\w+)\}\}", replace, template)
    return None if missing else result


def normalized_member(member: str) -> str:
    """NormalizeIamPrincipalCasing, as x_identity records it for `member_normalized`: the part after the
    type (`user:`, `serviceAccount:`; after the second ':' for `deleted:` and `iamMember:`) lower-cased,
    unless the principal is case-sensitive (allUsers, allAuthenticatedUsers, principal*:)."""
    if CASE_SENSITIVE_MEMBER.search(member):
        return member
    prefixes = 2 if member.startswith(("deleted:", "iamMember:")) else 1
    pieces = member.split(":", prefixes)
    if len(pieces) <= prefixes:
        return member
    return ":".join([*pieces[:-1], pieces[-1].lower()])


def _is_unknown(value: Any) -> bool:
    return value is UNKNOWN


class ResourceType:
    """One resource or data source type of one provider, with the generic SDKv2 behaviour."""

    def __init__(self, provider_source: str, kind: str, name: str):
        table = "resource_schemas" if kind == "resource" else "data_source_schemas"
        self.name = name
        self.kind = kind
        self.schema = provider_schemas()[provider_source][table][name]
        self.block = self.schema["block"]
        facts = constraints()[provider_source]["resource" if kind == "resource" else "data"][name]
        self.rules: list[dict[str, Any]] = facts.get("x_constraints", [])
        self.identity: dict[str, Any] = facts.get("x_identity", {})
        self.plan_rules = PlanRules(self.rules)

    # --- helpers ------------------------------------------------------------------------

    def attributes(self) -> dict[str, dict[str, Any]]:
        return self.block.get("attributes", {})

    def computed_only(self, name: str) -> bool:
        spec = self.attributes()[name]
        return bool(spec.get("computed")) and not spec.get("optional") and not spec.get("required")

    def object_id(self, state: dict[str, Any]) -> str:
        return state["id"]

    # --- plan ---------------------------------------------------------------------------

    def plan(
        self, prior: dict | None, proposed: dict | None, config: dict | None, provider: ProviderConfig
    ) -> tuple[dict | None, list[tuple[str | int, ...]]]:
        """Planned new state and the attribute paths whose change forces a replacement."""
        if proposed is None:
            return None, []
        planned = copy.deepcopy(proposed)
        config = config or {}
        self.plan_rules.apply_state_funcs(planned)
        self.plan_rules.apply_defaults(planned, config, self.attributes())  # SDKv2 diffs against defaults
        if prior is not None:
            self.plan_rules.suppress_diffs(prior, planned)
        replace = self.plan_rules.replacements(prior, planned, config)
        creating = prior is None or bool(replace)
        if creating:
            # SDKv2: whatever is computed and not set in configuration is unknown until the API answers.
            for name, spec in self.attributes().items():
                if spec.get("computed") and config.get(name) is None:
                    planned[name] = UNKNOWN
            self._unknown_nested_computed(planned, config, self.block)
        self._plan_defaults(planned, config, provider, creating)
        return planned, replace

    def _unknown_nested_computed(self, value: dict, config: dict, block: dict) -> None:
        for name, nested in block.get("block_types", {}).items():
            items, configured = value.get(name), (config or {}).get(name)
            items = [items] if isinstance(items, dict) else (items or [])
            configured = [configured] if isinstance(configured, dict) else (configured or [])
            for i, item in enumerate(items):
                item_config = configured[i] if i < len(configured) and isinstance(configured[i], dict) else {}
                for attr, spec in nested["block"].get("attributes", {}).items():
                    if spec.get("computed") and item_config.get(attr) is None:
                        item[attr] = UNKNOWN
                self._unknown_nested_computed(item, item_config, nested["block"])

    def _plan_defaults(self, planned: dict, config: dict, provider: ProviderConfig, creating: bool) -> None:
        """Values SDKv2 plans itself: schema defaults and the provider's CustomizeDiff functions."""
        attributes = self.attributes()
        unset = {name for name in attributes if config.get(name) is None}
        if "project" in unset and attributes["project"].get("computed") and (creating or not planned.get("project")):
            planned["project"] = provider.project
        if "region" in unset and attributes["region"].get("computed") and creating:
            planned["region"] = provider.region
        if "deletion_policy" in unset and self.kind == "resource":
            planned["deletion_policy"] = provider.deletion_policy or "DELETE"
        if "terraform_labels" in attributes:
            labels = dict(provider.default_labels)
            labels.update(planned.get("labels") or {})
            previous = planned.get("effective_labels") if not creating else None
            if provider.add_terraform_attribution_label and (
                creating or "goog-terraform-provisioned" in (previous or {})
            ):
                labels["goog-terraform-provisioned"] = "true"
            planned["terraform_labels"] = labels
            planned["effective_labels"] = dict(labels)

    # --- apply --------------------------------------------------------------------------

    def values_for_id(self, state: dict[str, Any], cloud: Cloud) -> dict[str, Any]:
        values = dict(state)
        for key in ("project", "region"):
            if not values.get(key) or _is_unknown(values.get(key)):
                values[key] = getattr(cloud.defaults, key)
        if "member" in state and isinstance(state["member"], str):
            values["member_normalized"] = normalized_member(state["member"])
        return values

    def derive(self, state: dict[str, Any], cloud: Cloud) -> None:
        """Fill computed attributes after create/update, as the API and the provider's Read would."""
        derivations = self.identity.get("computed_derivations", {})
        for _ in range(2):  # derivations may build on each other (email -> member)
            for name, how in derivations.items():
                if (
                    name in self.attributes()
                    and _is_unknown(state.get(name))
                    and re.fullmatch(r"[^ ]*\{\{\w+\}\}[^ ]*", how)
                ):
                    value = _substitute(how, self.values_for_id(state, cloud))
                    if value is not None:
                        state[name] = value
        if _is_unknown(state.get("id")) or state.get("id") is None:
            fmt = self.identity.get("id_format", "")
            state["id"] = _substitute(fmt, self.values_for_id(state, cloud)) if fmt else None
        if "etag" in self.attributes() and _is_unknown(state.get("etag")):
            state["etag"] = "BwY" + hashlib.sha256(str(state.get("id")).encode()).hexdigest()[:9]
        self._resolve_remaining(state, self.block)

    def _resolve_remaining(self, value: dict, block: dict) -> None:
        """Computed values the fake does not model become null (or empty collections)."""
        for name, spec in block.get("attributes", {}).items():
            if _is_unknown(value.get(name)):
                kind = spec["type"][0] if isinstance(spec["type"], list) else spec["type"]
                value[name] = [] if kind in ("list", "set") else {} if kind == "map" else None
        for name, nested in block.get("block_types", {}).items():
            items = value.get(name)
            for item in [items] if isinstance(items, dict) else (items or []):
                self._resolve_remaining(item, nested["block"])

    def check_create(self, state: dict[str, Any], cloud: Cloud) -> None:
        service = API_OF_TYPE.get(self.name)
        project = state.get("project")
        if project is not None:
            cloud.require_project(project)
            if service:
                cloud.require_service(project, service)

    def create(self, planned: dict[str, Any], cloud: Cloud) -> dict[str, Any]:
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        self.check_create(state, cloud)
        try:
            cloud.store.create(self.name, self.object_id(state), self.stored(state))
        except AlreadyExists:
            raise CloudError(
                f"Error creating {self.name}: googleapi: Error 409: Requested entity already exists",
                f"{self.object_id(state)} already exists",
            ) from None
        return state

    def stored(self, state: dict[str, Any]) -> dict[str, Any]:
        """The body the store keeps for a new object (the state, plus what only the cloud records)."""
        return state

    def receive_write_only(self, state: dict[str, Any], sent: dict[str, Any], cloud: Cloud) -> None:
        """What the API does with write-only values the configuration sent (never part of any state): nothing."""

    def update(self, prior: dict[str, Any], planned: dict[str, Any], cloud: Cloud) -> dict[str, Any]:
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        if cloud.store.get(self.name, self.object_id(prior)) is None:
            raise CloudError(f"Error updating {self.name}: googleapi: Error 404: not found", self.object_id(prior))
        cloud.store.put(self.name, self.object_id(state), state)
        return state

    def delete(self, prior: dict[str, Any], cloud: Cloud) -> None:
        policy = prior.get("deletion_policy")
        if policy == "PREVENT":
            raise CloudError(
                f"Error deleting {self.name}: deletion_policy is PREVENT",
                f'cannot destroy {self.object_id(prior)} without setting deletion_policy="DELETE"',
            )
        if policy == "ABANDON":
            return
        cloud.store.delete(self.name, self.object_id(prior))

    def read(self, current: dict[str, Any], cloud: Cloud) -> dict[str, Any] | None:
        stored = cloud.store.get(self.name, self.object_id(current))
        if stored is None:
            return None
        state = copy.deepcopy(stored)
        # Client-side-only attributes (timeouts, deletion_policy) live in state, not in the API.
        for name in (
            "timeouts",
            "deletion_policy",
            "delete_contents_on_destroy",
            "disable_on_destroy",
            "disable_dependent_services",
            "check_if_service_has_usage_on_destroy",
            "create_ignore_already_exists",
        ):
            if name in current:
                state[name] = current[name]
        # URL parameters the API does not echo back keep what state holds (the importer set them).
        for name in ("project", "region"):
            if state.get(name) is None and current.get(name) is not None:
                state[name] = current[name]
        return state

    def import_state(self, import_id: str, provider: ProviderConfig, cloud: Cloud) -> dict[str, Any]:
        for fmt in self.identity.get("import_formats", []):
            pattern = (
                fmt
                if fmt.startswith("^")
                else "^" + re.sub(r"\\\{\\\{(\w+)\\\}\\\}", r"(?P<\1>[^/ ]+)", re.escape(fmt.split("  ")[0])) + "$"
            )
            try:
                match = re.match(pattern, import_id)
            except re.error:
                continue
            if not match:
                continue
            values = {k: v for k, v in match.groupdict().items() if v is not None}
            values.setdefault("project", provider.project)
            values.setdefault("region", provider.region)
            candidate = {**{k: None for k in self.attributes()}, **values}
            candidate["id"] = None
            if "email" in values and "project" in values:
                candidate["id"] = f"projects/{values['project']}/serviceAccounts/{values['email']}"
            else:
                candidate["id"] = _substitute(self.identity.get("id_format", ""), self.values_for_id(candidate, cloud))
            stored = cloud.store.get(self.name, candidate["id"]) if candidate["id"] else None
            if stored is not None:
                # The importer sets every field the import id names (the SDK's ParseImportId), then Read.
                named = {k: v for k, v in match.groupdict().items() if v is not None and k in self.attributes()}
                return {**stored, **named}
        raise CloudError("Cannot import non-existent remote object", f"{self.name} {import_id!r} was not found")
