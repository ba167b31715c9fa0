"""What the fake Google Cloud does with each resource type: plan, create, read, update, delete.

Generic SDKv2 behaviour comes from the schema facts (computed attributes unknown until apply,
ForceNew attributes plan a replacement, defaults, diff suppression, label merging, ids from
`x_identity.id_format`). What the real APIs enforce is modelled where dfinfra's correctness
depends on it: an API must be enabled before its resources exist, IAM grants need their resource
and their member to exist (the Dataform service agent only after it was created), a repository
with children cannot be deleted unless `deletion_policy = "FORCE"`, creating an existing object
is a 409.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakegcp.constraints import UNKNOWN
from tests.fakegcp.iam import CREATED_KEY
from tests.fakegcp.planning import PlanRules
from tests.fakegcp.schema import constraints, provider_schemas
from tests.fakegcp.store import AlreadyExists, Store

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
            values["member_normalized"] = state["member"].lower()
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


class ServiceAccount(ResourceType):
    def derive(self, state: dict[str, Any], cloud: Cloud) -> None:
        if _is_unknown(state.get("unique_id")):
            digest = int(hashlib.sha256(f"{state.get('project')}/{state['account_id']}".encode()).hexdigest(), 16)
            state["unique_id"] = str(100000000000000000000 + digest % 10**20)
        super().derive(state, cloud)


class IamMember(ResourceType):
    """`*_iam_member`: the parent and the member must exist; the parent is stored in its long form."""

    parent_attr = ""

    def parent(self, state: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def check_create(self, state: dict[str, Any], cloud: Cloud) -> None:
        super().check_create(state, cloud)
        kind, id_ = self.parent(state)
        if kind == "project":
            cloud.require_project(id_)
        elif cloud.store.get(kind, id_) is None and not cloud.external(kind, id_):
            raise CloudError(
                f"Error applying IAM policy for {self.name}: googleapi: Error 404: {id_} not found",
                f"the {kind.removeprefix('google_')} {id_} does not exist",
            )
        cloud.require_member(state["member"])

    # IAM propagation (tests/fakegcp/iam.py): the store records when the member was created;
    # Terraform state never sees it.

    def stored(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, CREATED_KEY: time.time()}

    def update(self, prior: dict[str, Any], planned: dict[str, Any], cloud: Cloud) -> dict[str, Any]:
        stored = cloud.store.get(self.name, self.object_id(prior)) or {}
        state = super().update(prior, planned, cloud)
        if CREATED_KEY in stored:
            cloud.store.put(self.name, self.object_id(state), {**state, CREATED_KEY: stored[CREATED_KEY]})
        return state

    def read(self, current: dict[str, Any], cloud: Cloud) -> dict[str, Any] | None:
        state = super().read(current, cloud)
        if state is not None:
            state.pop(CREATED_KEY, None)
        return state

    def import_state(self, import_id: str, provider: ProviderConfig, cloud: Cloud) -> dict[str, Any]:
        state = copy.deepcopy(super().import_state(import_id, provider, cloud))
        state.pop(CREATED_KEY, None)
        return state


class ServiceAccountIamMember(IamMember):
    def parent(self, state):
        return "google_service_account", state["service_account_id"]


class ProjectIamMember(IamMember):
    def parent(self, state):
        return "project", state["project"].removeprefix("projects/")


class SecretIamMember(IamMember):
    def derive(self, state, cloud):
        secret = state["secret_id"]
        if not secret.startswith("projects/"):
            state["secret_id"] = f"projects/{state['project']}/secrets/{secret}"
        state["project"] = state["secret_id"].split("/")[1]
        super().derive(state, cloud)

    def values_for_id(self, state, cloud):
        values = super().values_for_id(state, cloud)
        values["secret_id"] = state["secret_id"].rsplit("/", 1)[-1]
        return values

    def parent(self, state):
        return "google_secret_manager_secret", state["secret_id"]


class DatasetIamMember(IamMember):
    def parent(self, state):
        return "google_bigquery_dataset", f"projects/{state['project']}/datasets/{state['dataset_id']}"


class RepositoryIamMember(IamMember):
    def derive(self, state, cloud):
        repo = state["repository"]
        if not repo.startswith("projects/"):
            where = self.values_for_id(state, cloud)
            state["repository"] = f"projects/{where['project']}/locations/{where['region']}/repositories/{repo}"
        super().derive(state, cloud)

    def values_for_id(self, state, cloud):
        values = super().values_for_id(state, cloud)
        values["repository"] = state["repository"].rsplit("/", 1)[-1]
        return values

    def parent(self, state):
        return "google_dataform_repository", state["repository"]


class Secret(ResourceType):
    def derive(self, state, cloud):
        number = cloud.store.project_number(state["project"]) or state["project"]
        if _is_unknown(state.get("name")):
            state["name"] = f"projects/{number}/secrets/{state['secret_id']}"
        if _is_unknown(state.get("create_time")):
            state["create_time"] = FIXED_TIME
        if _is_unknown(state.get("effective_annotations")):
            state["effective_annotations"] = dict(state.get("annotations") or {})
        super().derive(state, cloud)


class Dataset(ResourceType):
    def derive(self, state, cloud):
        for name, value in (
            ("creation_time", FIXED_MILLIS),
            ("last_modified_time", FIXED_MILLIS),
            ("is_case_insensitive", False),
            ("max_time_travel_hours", "168"),
            ("storage_billing_model", "LOGICAL"),
            (
                "self_link",
                f"https://bigquery.googleapis.com/bigquery/v2/projects/{state['project']}/datasets/{state['dataset_id']}",
            ),
        ):
            if _is_unknown(state.get(name)):
                state[name] = value
        super().derive(state, cloud)


class Repository(ResourceType):
    def derive(self, state, cloud):
        for git in state.get("git_remote_settings") or []:
            if _is_unknown(git.get("token_status")):
                git["token_status"] = (
                    "VALID" if git.get("authentication_token_secret_version") else "TOKEN_STATUS_UNSPECIFIED"
                )
        super().derive(state, cloud)

    def check_create(self, state, cloud):
        super().check_create(state, cloud)
        for git in state.get("git_remote_settings") or []:
            version = git.get("authentication_token_secret_version") or next(
                (s.get("user_private_key_secret_version") for s in git.get("ssh_authentication_config") or []), None
            )
            secret = re.match(r"(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$", version or "")
            if version and not secret:
                raise CloudError(
                    "Error creating Repository: googleapi: Error 400: invalid secret version name",
                    f"{version!r} is not projects/*/secrets/*/versions/*",
                )

    def delete(self, prior, cloud):
        children = [
            i
            for kind in ("google_dataform_repository_release_config", "google_dataform_repository_workflow_config")
            for _, i, s in cloud.store.list(kind)
            if i.startswith(prior["id"] + "/")
        ]
        if children and prior.get("deletion_policy") != "FORCE":
            raise CloudError(
                "Error deleting Repository: googleapi: Error 400: FAILED_PRECONDITION: the repository has "
                "child resources",
                f'{len(children)} release/workflow configs; set deletion_policy = "FORCE"',
            )
        for child in children:
            for kind in ("google_dataform_repository_release_config", "google_dataform_repository_workflow_config"):
                cloud.store.delete(kind, child)
        super().delete(prior, cloud)


class RepositoryChild(ResourceType):
    def check_create(self, state, cloud):
        super().check_create(state, cloud)
        where = self.values_for_id(state, cloud)
        repo = f"projects/{where['project']}/locations/{where['region']}/repositories/{state['repository']}"
        if cloud.store.get("google_dataform_repository", repo) is None:
            raise CloudError(f"Error creating {self.name}: googleapi: Error 404: repository not found", repo)
        if self.name.endswith("workflow_config"):
            if cloud.store.get("google_dataform_repository_release_config", state["release_config"]) is None:
                raise CloudError(
                    "Error creating WorkflowConfig: googleapi: Error 404: release config not found",
                    str(state["release_config"]),
                )
            for invocation in state.get("invocation_config") or []:
                if invocation.get("service_account"):
                    cloud.require_member(f"serviceAccount:{invocation['service_account']}")
                    cloud.require_act_as(invocation["service_account"])


class ProjectService(ResourceType):
    """Enabling is project state, not an object: with disable_on_destroy = false it outlives the resource."""

    def check_create(self, state, cloud):
        cloud.require_project(state["project"])

    def create(self, planned, cloud):
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        self.check_create(state, cloud)
        cloud.enable_service(state["project"], state["service"])
        return state

    def update(self, prior, planned, cloud):
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        return state

    def read(self, current, cloud):
        return current if cloud.service_enabled(current["project"], current["service"]) else None

    def delete(self, prior, cloud):
        if prior.get("disable_on_destroy"):
            cloud.disable_service(prior["project"], prior["service"])


class ServiceIdentity(ResourceType):
    """The service agent exists once requested; destroying the resource only forgets it."""

    def derive(self, state, cloud):
        number = cloud.store.project_number(state["project"])
        prefix = state["service"].split(".")[0]
        state["email"] = f"service-{number}@gcp-sa-{prefix}.iam.gserviceaccount.com"
        state["member"] = f"serviceAccount:{state['email']}"
        super().derive(state, cloud)

    def create(self, planned, cloud):
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        self.check_create(state, cloud)
        cloud.store.put("service_agent", state["email"], {"project": state["project"], "service": state["service"]})
        return state

    def read(self, current, cloud):
        return current if cloud.store.get("service_agent", current.get("email") or "") else None

    def delete(self, prior, cloud):
        return None


class Bucket(ResourceType):
    """A bucket exists in fake-gcs-server (when `FAKEGCP_GCS_ENDPOINT` is set), so the gcs state backend
    can use the bucket `dfinfra bootstrap` creates; its Terraform view is kept in the store."""

    def _gcs(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        import json
        import os
        import urllib.error
        import urllib.request

        endpoint = os.environ.get("FAKEGCP_GCS_ENDPOINT")
        if not endpoint:
            return 0, {}
        request = urllib.request.Request(
            f"{endpoint}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
                return response.status, json.loads(payload) if payload else {}
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def derive(self, state, cloud):
        state["location"] = str(state["location"]).upper()  # the provider's StateFunc
        number = cloud.store.project_number(state["project"])
        for name, value in (
            ("url", f"gs://{state['name']}"),
            ("project_number", int(number) if number else None),
            ("self_link", f"https://www.googleapis.com/storage/v1/b/{state['name']}"),
            ("storage_class", "STANDARD"),
            ("time_created", FIXED_TIME),
            ("updated", FIXED_TIME),
            ("public_access_prevention", "inherited"),
            ("uniform_bucket_level_access", False),
        ):
            if _is_unknown(state.get(name)):
                state[name] = value
        super().derive(state, cloud)

    def plan(self, prior, proposed, config, provider):
        if proposed is not None and isinstance(proposed.get("location"), str):
            proposed = {**proposed, "location": proposed["location"].upper()}
        return super().plan(prior, proposed, config, provider)

    def create(self, planned, cloud):
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        self.check_create(state, cloud)
        versioning = any(v.get("enabled") for v in state.get("versioning") or [])
        status, _ = self._gcs(
            "POST",
            f"/storage/v1/b?project={state['project']}",
            {"name": state["name"], "versioning": {"enabled": versioning}},
        )
        if status == 409 or cloud.store.get(self.name, state["id"]) is not None:
            raise CloudError(
                "Error creating bucket: googleapi: Error 409: Your previous request to create the named "
                "bucket succeeded and you already own it., conflict",
                state["name"],
            )
        cloud.store.put(self.name, state["id"], state)
        return state

    def read(self, current, cloud):
        status, _ = self._gcs("GET", f"/storage/v1/b/{current['id']}")
        if status == 404:
            return None
        return super().read(current, cloud)

    def import_state(self, import_id, provider, cloud):
        name = import_id.split("/")[-1]
        stored = cloud.store.get(self.name, name)
        if stored is not None:
            return stored
        status, bucket = self._gcs("GET", f"/storage/v1/b/{name}")
        if status != 200:
            raise CloudError("Cannot import non-existent remote object", f"bucket {name!r} was not found")
        state = {attr: None for attr in self.attributes()}
        state.update(
            id=name,
            name=name,
            project=import_id.split("/")[0] if "/" in import_id else provider.project,
            location=str(bucket.get("location", "US")).upper(),
            force_destroy=False,
            versioning=[{"enabled": bool(bucket.get("versioning", {}).get("enabled"))}],
        )
        cloud.store.put(self.name, name, state)
        return state

    def delete(self, prior, cloud):
        if prior.get("deletion_policy") == "ABANDON":
            return
        status, _ = self._gcs("DELETE", f"/storage/v1/b/{prior['id']}")
        if status == 409:
            raise CloudError(
                "Error deleting bucket: googleapi: Error 409: The bucket you tried to delete is not empty.", prior["id"]
            )
        cloud.store.delete(self.name, prior["id"])


class ProjectData(ResourceType):
    def read_data(self, config: dict[str, Any], provider: ProviderConfig, cloud: Cloud) -> dict[str, Any]:
        project = config.get("project_id") or provider.project
        number = cloud.store.project_number(project or "")
        if number is None:
            raise CloudError(
                "Error when reading or editing Project", f"project {project!r} not found or permission denied"
            )
        state = {name: None for name in self.attributes()}
        state.update(
            project_id=project,
            id=f"projects/{project}",
            number=number,
            name=project,
            labels={},
            effective_labels={},
            terraform_labels={},
            deletion_policy=provider.deletion_policy or "PREVENT",
        )
        return state


SPECIAL = {
    "google_service_account": ServiceAccount,
    "google_service_account_iam_member": ServiceAccountIamMember,
    "google_project_iam_member": ProjectIamMember,
    "google_secret_manager_secret_iam_member": SecretIamMember,
    "google_bigquery_dataset_iam_member": DatasetIamMember,
    "google_dataform_repository_iam_member": RepositoryIamMember,
    "google_secret_manager_secret": Secret,
    "google_bigquery_dataset": Dataset,
    "google_dataform_repository": Repository,
    "google_dataform_repository_release_config": RepositoryChild,
    "google_dataform_repository_workflow_config": RepositoryChild,
    "google_project_service": ProjectService,
    "google_project_service_identity": ServiceIdentity,
    "google_storage_bucket": Bucket,
}


def resource_type(provider_source: str, kind: str, name: str) -> ResourceType:
    if kind == "data":
        return ProjectData(provider_source, kind, name)
    return SPECIAL.get(name, ResourceType)(provider_source, kind, name)


class Cloud:
    """Project-level facts over the store: which projects exist, which APIs and agents they have."""

    def __init__(self, store: Store):
        self.store = store
        # The provider block's project/region: the real provider names objects with them when a
        # resource leaves its own unset (x_identity: "resource value or provider project/region").
        self.defaults: ProviderConfig = ProviderConfig()

    def require_project(self, project: str) -> None:
        if self.store.project_number(project) is None:
            raise CloudError(
                f"googleapi: Error 403: Permission denied on resource project {project}",
                f"project {project} does not exist in the offline cloud (or it may not exist)",
            )

    def service_enabled(self, project: str, service: str) -> bool:
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

    def require_act_as(self, email: str) -> None:
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
                "Error creating WorkflowConfig: googleapi: Error 403: Permission 'iam.serviceAccounts.actAs' denied "
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
