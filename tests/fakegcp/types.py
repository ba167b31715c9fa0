"""What the real APIs do that dfinfra's correctness depends on, per resource type: an API must be
enabled before its resources exist, IAM grants need their resource and their member to exist (the
Dataform service agent only after it was created), a repository with children cannot be deleted
unless `deletion_policy = "FORCE"`, creating an existing object is a 409 (except an IAM member: its
create adds the member to the parent's IAM policy, and a policy that already holds it is no error).
Built on `engine.ResourceType`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

from tests.fakegcp.engine import FIXED_MILLIS, FIXED_TIME, CloudError, ProviderConfig, ResourceType, _is_unknown
from tests.fakegcp.gcs import gcs_call
from tests.fakegcp.iam import CREATED_KEY
from tests.fakegcp.store import DEFAULT_KEY_OF, RELEASE_STATE, AlreadyExists

if TYPE_CHECKING:
    from tests.fakegcp.cloud import Cloud


class ServiceAccount(ResourceType):
    def derive(self, state: dict[str, Any], cloud: Cloud) -> None:
        if _is_unknown(state.get("unique_id")):
            digest = int(hashlib.sha256(f"{state.get('project')}/{state['account_id']}".encode()).hexdigest(), 16)
            state["unique_id"] = str(100000000000000000000 + digest % 10**20)
        super().derive(state, cloud)


class IamMember(ResourceType):
    """`*_iam_member`: the parent and the member must exist; the parent is stored in its long form.

    Every `*_iam_member` type must be one of these (`resource_type` refuses one that is not): the
    provider's create is a read-modify-write of the parent's IAM policy (x_identity.api), so a member
    the policy already holds is no 409: the policy stays as it is and the resource takes the id
    `x_identity.id_format` names, that of the object already there.
    """

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

    def create(self, planned: dict[str, Any], cloud: Cloud) -> dict[str, Any]:
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        self.check_create(state, cloud)
        # Already in the policy: setIamPolicy with the bindings unchanged, the member's creation time kept.
        with contextlib.suppress(AlreadyExists):
            cloud.store.create(self.name, self.object_id(state), self.stored(state))
        return state

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

    def check_create(self, state, cloud):
        # Google takes a project number or id in the secret's name; the store keys secrets by id.
        project = state["secret_id"].split("/")[1]
        canonical = cloud.store.project_id(project) or project
        IamMember.check_create(self, {**state, "secret_id": state["secret_id"].replace(project, canonical, 1)}, cloud)


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


class StorageBucketIamMember(IamMember):
    """8.7.0 facts: a bucket's policy, the bucket named alone (`b/<bucket>` in the id)."""

    def values_for_id(self, state, cloud):
        values = super().values_for_id(state, cloud)
        values["bucket"] = state["bucket"].removeprefix("b/")
        return values

    def parent(self, state):
        return "google_storage_bucket", state["bucket"].removeprefix("b/")


class DatasetAccess(ResourceType):
    """8.7.0 facts: one entry of a dataset's access list, a role for a member or an authorized view, dataset or
    routine. Create and delete are read-modify-writes of the dataset's list, so entries never collide; the
    Terraform id is the dataset's (x_identity), and the store keeps one object per entry."""

    ENTRY = ("role", "user_by_email", "group_by_email", "domain", "special_group", "iam_member", "view", "dataset")

    def object_id(self, state):
        entry = json.dumps({k: state.get(k) for k in self.ENTRY}, sort_keys=True, default=str)
        return f"{state['id']}#{hashlib.sha256(entry.encode()).hexdigest()[:12]}"

    def check_create(self, state, cloud):
        super().check_create(state, cloud)
        dataset = f"projects/{state['project']}/datasets/{state['dataset_id']}"
        if cloud.store.get("google_bigquery_dataset", dataset) is None and not cloud.external(
            "google_bigquery_dataset", dataset
        ):
            raise CloudError(
                f"Error creating DatasetAccess: googleapi: Error 404: Not found: Dataset {state['project']}:"
                f"{state['dataset_id']}",
                "the dataset does not exist",
            )
        member = state.get("user_by_email") or state.get("group_by_email")
        if member:
            cloud.require_member(("serviceAccount:" if member.endswith(".gserviceaccount.com") else "user:") + member)


class ConnectionIamMember(IamMember):
    """8.7.0 facts: a BigQuery connection's policy (project, location, connection_id)."""

    def values_for_id(self, state, cloud):
        values = super().values_for_id(state, cloud)
        values["location"] = state.get("location") or values.get("region")
        return values

    def parent(self, state):
        where = f"projects/{state['project']}/locations/{state['location']}"
        return "google_bigquery_connection", f"{where}/connections/{state['connection_id']}"


class CryptoKeyIamMember(IamMember):
    """Keys are made outside dfinfra: the test seeds `external:google_kms_crypto_key` (8.7.0 facts only)."""

    def values_for_id(self, state, cloud):
        values = super().values_for_id(state, cloud)
        found = re.fullmatch(
            r"projects/([^/]+)/locations/([^/]+)/keyRings/([^/]+)/cryptoKeys/([^/]+)", state["crypto_key_id"]
        )
        if found:
            values["project"], values["location"], values["key_ring"], values["name"] = found.groups()
        return values

    def parent(self, state):
        return "google_kms_crypto_key", state["crypto_key_id"]


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

    def create(self, planned, cloud):
        state = super().create(planned, cloud)
        if not state.get("kms_key_name"):
            # A region with a default key creates every repository without its own with it (§c).
            project = state["id"].split("/")[1]
            config = cloud.store.get("google_dataform_config", f"projects/{project}/locations/{state['region']}/config")
            if config and config.get("default_kms_key_name"):
                cloud.store.put(DEFAULT_KEY_OF, state["id"], {"kms_key_name": config["default_kms_key_name"]})
        return state

    def update(self, prior, planned, cloud):
        # Strict act-as: repositories.patch needs act-as on the account of every workflow config in the
        # repository (dataform-operations.md §b), whoever's environment the config belongs to.
        for _, id_, workflow in cloud.store.list("google_dataform_repository_workflow_config"):
            if id_.startswith(prior["id"] + "/"):
                for invocation in workflow.get("invocation_config") or []:
                    if invocation.get("service_account"):
                        cloud.require_act_as(invocation["service_account"], "updating Repository")
        return super().update(prior, planned, cloud)

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
        cloud.store.delete(DEFAULT_KEY_OF, prior["id"])
        super().delete(prior, cloud)


class DataformConfig(ResourceType):
    """`google_dataform_config`: the project's Dataform settings in a region, which always exist. The provider
    creates and updates it with a PATCH (no 409), and its destroy calls no API: Google keeps the setting."""

    def create(self, planned, cloud):
        state = copy.deepcopy(planned)
        self.derive(state, cloud)
        self.check_create(state, cloud)
        cloud.store.put(self.name, self.object_id(state), self.stored(state))
        return state

    def delete(self, prior, cloud):
        return None  # removed from state only


class RepositoryChild(ResourceType):
    def update(self, prior, planned, cloud):
        state = super().update(prior, planned, cloud)
        if self.name.endswith("release_config"):
            # The provider PATCHes a release config whole, with no update mask and without the field it does
            # not model: the live compilation is emptied (terraform-provider-google#29179).
            cloud.store.delete(RELEASE_STATE, self.object_id(state))
        return state

    def delete(self, prior, cloud):
        super().delete(prior, cloud)
        cloud.store.delete(RELEASE_STATE, self.object_id(prior))  # a release config made again starts with none

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
        endpoint = os.environ.get("FAKEGCP_GCS_ENDPOINT")
        if not endpoint:
            return 0, {}
        status, payload = gcs_call(endpoint, method, path, body)
        return status, payload or {}

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


# Monitoring's copy of a channel's sensitive labels: Google's side only, never Terraform state or plan.
CHANNEL_SECRETS = "monitoring:channel_sensitive_labels"


class MonitoringObject(ResourceType):
    """Alert policies and notification channels: Monitoring names them `projects/<p>/<collection>/<id>`, with an id
    it chooses (x_identity: "API name ... {{server id}}")."""

    collection = ""

    def derive(self, state: dict[str, Any], cloud: Cloud) -> None:
        if _is_unknown(state.get("name")) or not state.get("name"):
            digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
            state["name"] = f"projects/{state['project']}/{self.collection}/{int(digest[:15], 16)}"
        if self.collection == "notificationChannels" and _is_unknown(state.get("verification_status")):
            # E-mail and Pub/Sub channels need no verification (Monitoring reports them unverified-free).
            state["verification_status"] = "VERIFICATION_STATUS_UNSPECIFIED"
        super().derive(state, cloud)


class AlertPolicy(MonitoringObject):
    collection = "alertPolicies"

    def check_create(self, state: dict[str, Any], cloud: Cloud) -> None:
        super().check_create(state, cloud)
        for channel in state.get("notification_channels") or []:
            if cloud.store.get("google_monitoring_notification_channel", channel) is None:
                raise CloudError(f"Error creating AlertPolicy: googleapi: Error 404: {channel} not found", channel)
        for condition in state.get("conditions") or []:
            if condition.get("condition_matched_log") and not (state.get("alert_strategy") or [{}])[0].get(
                "notification_rate_limit"
            ):
                raise CloudError(
                    "Error creating AlertPolicy: googleapi: Error 400: notificationRateLimit is required for "
                    "policies with a LogMatch condition",
                    "alert_strategy.notification_rate_limit",
                )


class NotificationChannel(MonitoringObject):
    collection = "notificationChannels"

    def receive_write_only(self, state: dict[str, Any], sent: dict[str, Any], cloud: Cloud) -> None:
        """Monitoring keeps a channel's sensitive labels (obfuscated on read): the fake keeps the write-only token
        it was sent under the channel's name, where only a test reads it."""
        token = sent.get("sensitive_labels.0.auth_token_wo")
        if token is not None:
            cloud.store.put(CHANNEL_SECRETS, state["name"], {"auth_token": token})


class Workflow(ResourceType):
    """A Cloud Workflows workflow runs as an account that must exist, and its creator must act as it."""

    def check_create(self, state: dict[str, Any], cloud: Cloud) -> None:
        super().check_create(state, cloud)
        if state.get("service_account"):
            email = state["service_account"].rsplit("/", 1)[-1]
            cloud.require_member(f"serviceAccount:{email}")
            cloud.require_act_as(email, "creating Workflow")


class SchedulerJob(ResourceType):
    """Cloud Scheduler mints tokens for the job's account: its creator must act as it."""

    def check_create(self, state: dict[str, Any], cloud: Cloud) -> None:
        super().check_create(state, cloud)
        for target in state.get("http_target") or []:
            for token in (target.get("oauth_token") or []) + (target.get("oidc_token") or []):
                cloud.require_act_as(token["service_account_email"], "creating Job")


class EventarcTrigger(ResourceType):
    """Eventarc refuses a trigger whose destination workflow does not exist, and a Cloud Storage trigger whose
    project's storage agent cannot publish (Google's create error for Cloud Storage triggers)."""

    def check_create(self, state: dict[str, Any], cloud: Cloud) -> None:
        super().check_create(state, cloud)
        if state.get("service_account"):
            cloud.require_act_as(state["service_account"], "creating Trigger")
        workflow = ((state.get("destination") or [{}])[0]).get("workflow") or ""
        if cloud.store.get("google_workflows_workflow", workflow) is None:
            raise CloudError(f"Error creating Trigger: googleapi: Error 400: workflow {workflow} not found", workflow)
        criteria = {c["attribute"]: c["value"] for c in state.get("matching_criteria") or []}
        if criteria.get("type") == "google.cloud.storage.object.v1.finalized":
            from tests.fakegcp.iam import Iam, Resource

            project = state["project"]
            number = cloud.store.project_number(project)
            agent = f"serviceAccount:service-{number}@gs-project-accounts.iam.gserviceaccount.com"
            if not Iam(cloud.store).allows(agent, "pubsub.topics.publish", Resource.project_(project)):
                raise CloudError(
                    "Error creating Trigger: googleapi: Error 400: The Cloud Storage service account for your bucket "
                    "is unable to publish to Cloud Pub/Sub topics in the specified project.",
                    f"grant roles/pubsub.publisher to {agent}",
                )


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
    "google_kms_crypto_key_iam_member": CryptoKeyIamMember,
    "google_storage_bucket_iam_member": StorageBucketIamMember,
    "google_bigquery_connection_iam_member": ConnectionIamMember,
    "google_bigquery_dataset_access": DatasetAccess,
    "google_secret_manager_secret": Secret,
    "google_bigquery_dataset": Dataset,
    "google_dataform_repository": Repository,
    "google_dataform_repository_release_config": RepositoryChild,
    "google_dataform_repository_workflow_config": RepositoryChild,
    "google_dataform_config": DataformConfig,
    "google_project_service": ProjectService,
    "google_project_service_identity": ServiceIdentity,
    "google_storage_bucket": Bucket,
    "google_monitoring_alert_policy": AlertPolicy,
    "google_monitoring_notification_channel": NotificationChannel,
    "google_workflows_workflow": Workflow,
    "google_eventarc_trigger": EventarcTrigger,
    "google_cloud_scheduler_job": SchedulerJob,
}


def resource_type(provider_source: str, kind: str, name: str) -> ResourceType:
    if kind == "data":
        return ProjectData(provider_source, kind, name)
    special = SPECIAL.get(name, ResourceType)
    if name.endswith("_iam_member") and not issubclass(special, IamMember):
        # The generic create would answer 409 where the provider adds to a policy: teach SPECIAL its parent.
        raise NotImplementedError(f"{name}: an IAM member type needs an IamMember subclass in types.SPECIAL")
    return special(provider_source, kind, name)
