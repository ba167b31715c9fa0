"""Local Google APIs over gRPC, backed by the offline cloud's store.

Secret Manager, IAM and Service Usage here; Dataform v1 (`dataform.py`), Resource Manager, Policy
Troubleshooter and Org Policy (`policies.py`) on the same server and port.

The real client libraries talk to it (dfinfra points them here with DFINFRA_GOOGLE_API_EMULATOR),
so `secret set`, `secret status` and `doctor` run their production code paths. What Terraform
applied is what these APIs report: service accounts, IAM members, secrets and enabled services all
come from the same store the offline provider writes.

Secret payloads are kept in this process's memory only (Secret Manager does not write tokens to
your disk either); the store records each version's state, time and checksums.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
import grpc
from google.cloud import iam_admin_v1, secretmanager_v1, service_usage_v1
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import timestamp_pb2

from tests.fakegcp.bigquery import FakeBigQuery
from tests.fakegcp.cloud import Cloud
from tests.fakegcp.dataform import FakeDataform
from tests.fakegcp.events import EventApis, Events
from tests.fakegcp.iam import Iam, Resource
from tests.fakegcp.policies import Policies, set_org_policy
from tests.fakegcp.store import Store


def _proto_plus(request_type: Any, response_type: Any, function) -> grpc.RpcMethodHandler:
    def codec(message_type: Any, direction: str):
        if hasattr(message_type, "deserialize"):
            return message_type.deserialize if direction == "in" else message_type.serialize
        return message_type.FromString if direction == "in" else message_type.SerializeToString

    return grpc.unary_unary_rpc_method_handler(
        function, request_deserializer=codec(request_type, "in"), response_serializer=codec(response_type, "out")
    )


def _policy(bindings: dict[str, list[str]]) -> policy_pb2.Policy:
    policy = policy_pb2.Policy(version=1, etag=b"BwYfake")
    for role, members in sorted(bindings.items()):
        policy.bindings.add(role=role, members=sorted(members))
    return policy


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


@dataclass
class FakeGoogleApis:
    store: Store
    caller: str = "serviceAccount:terraform-deployer@acme-ci-automation.iam.gserviceaccount.com"
    port: int = 0  # 0: any free loopback port, chosen when the server binds
    payloads: dict[str, bytes] = field(default_factory=dict)
    # IAM grants younger than this are not yet effective for the runtime fakes (Dataform).
    propagation_seconds: float = 0.0
    # A workflow invocation stays RUNNING this long before it reaches its final state.
    run_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.cloud = Cloud(self.store)
        self.lock = threading.Lock()
        self.dataform = FakeDataform(self)
        self.events = Events(self)
        self.bigquery = FakeBigQuery(self.store)
        self.policies = Policies(self.store)
        # No SO_REUSEPORT (gRPC's default): a port another process holds must fail to bind, not be shared
        # with it (two test runs on one machine would otherwise answer each other's calls).
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers(
            [*self.dataform.handlers(), *self.policies.handlers(), *EventApis(self.events).handlers()]
        )
        self.server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "google.cloud.secretmanager.v1.SecretManagerService",
                    {
                        "GetSecret": _proto_plus(
                            secretmanager_v1.GetSecretRequest, secretmanager_v1.Secret, self.get_secret
                        ),
                        "AddSecretVersion": _proto_plus(
                            secretmanager_v1.AddSecretVersionRequest,
                            secretmanager_v1.SecretVersion,
                            self.add_secret_version,
                        ),
                        "ListSecretVersions": _proto_plus(
                            secretmanager_v1.ListSecretVersionsRequest,
                            secretmanager_v1.ListSecretVersionsResponse,
                            self.list_secret_versions,
                        ),
                        "DisableSecretVersion": _proto_plus(
                            secretmanager_v1.DisableSecretVersionRequest,
                            secretmanager_v1.SecretVersion,
                            self.disable_secret_version,
                        ),
                        "AccessSecretVersion": _proto_plus(
                            secretmanager_v1.AccessSecretVersionRequest,
                            secretmanager_v1.AccessSecretVersionResponse,
                            self.access_secret_version,
                        ),
                        "GetIamPolicy": _proto_plus(
                            iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy, self.secret_iam_policy
                        ),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "google.iam.admin.v1.IAM",
                    {
                        "GetServiceAccount": _proto_plus(
                            iam_admin_v1.GetServiceAccountRequest, iam_admin_v1.ServiceAccount, self.get_service_account
                        ),
                        "GetIamPolicy": _proto_plus(
                            iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy, self.service_account_iam_policy
                        ),
                        "TestIamPermissions": _proto_plus(
                            iam_policy_pb2.TestIamPermissionsRequest,
                            iam_policy_pb2.TestIamPermissionsResponse,
                            self.test_iam_permissions,
                        ),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "google.api.serviceusage.v1.ServiceUsage",
                    {
                        "GetService": _proto_plus(
                            service_usage_v1.GetServiceRequest, service_usage_v1.Service, self.get_service
                        ),
                    },
                ),
            ]
        )
        # Port 0: gRPC binds a free port itself, atomically. Choosing one first (free_port) and binding it later
        # raced with the other pytest-xdist worker: "Failed to bind to address" (a flaky e2e test, seen once).
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeGoogleApis:
        self.server.start()
        self.bigquery.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=0)
        self.bigquery.stop()

    @property
    def env(self) -> dict[str, str]:
        """What points dfinfra's clients here (gRPC APIs, and BigQuery's REST)."""
        return {"DFINFRA_GOOGLE_API_EMULATOR": self.address, "DFINFRA_BIGQUERY_API_EMULATOR": self.bigquery.address}

    # --- test hooks -----------------------------------------------------------------------

    @property
    def iam(self) -> Iam:
        """The IAM evaluator as the runtime fakes see it (with this server's propagation delay)."""
        return Iam(self.store, self.propagation_seconds)

    def set_org_policy(self, project: str, constraint: str, **body: Any) -> None:
        """`enforce=True` (boolean constraint), or `allowed_values`/`denied_values` (list); none removes it."""
        set_org_policy(self.store, project, constraint, **body)

    def run_scheduled(self, workflow_config: str) -> tuple[str, list[str]]:
        """Run a workflow config as Dataform's scheduler does: (final state, failure reasons)."""
        return self.dataform.run_scheduled(workflow_config)

    def run_workspace(
        self, caller: str, repository: str, workspace: str = "dev", invocation_config: dict[str, Any] | None = None
    ) -> tuple[str, list[str]]:
        """A person's workspace run (compile with the workspace overrides, run as the repository's runner)."""
        return self.dataform.run_workspace(caller, repository, workspace, invocation_config)

    # --- helpers --------------------------------------------------------------------------

    def _secret_key(self, name: str, context) -> tuple[str, str]:
        """(store id of the secret, project number) for `projects/<id or number>/secrets/<s>[/...]`."""
        parts = name.split("/")
        if len(parts) < 4 or parts[0] != "projects" or parts[2] != "secrets":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad secret name {name!r}")
        project = parts[1]
        if project.isdigit():  # the API answers with project numbers; map back to the id
            for _, id_, body in self.store.list("google_secret_manager_secret"):
                if id_.endswith(f"/secrets/{parts[3]}") and self.store.project_number(body["project"]) == parts[1]:
                    project = body["project"]
        secret_id = f"projects/{project}/secrets/{parts[3]}"
        if self.store.get("google_secret_manager_secret", secret_id) is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found or has no versions.")
        return secret_id, self.store.project_number(project) or project

    def _versions(self, secret_id: str) -> list[dict[str, Any]]:
        return [body for _, id_, body in self.store.list("secret_version") if id_.startswith(secret_id + "/versions/")]

    def _version_message(self, body: dict[str, Any]) -> secretmanager_v1.SecretVersion:
        return secretmanager_v1.SecretVersion(
            name=body["name"], state=body["state"], create_time=timestamp_pb2.Timestamp(seconds=body["created"])
        )

    def _canonical(self, name: str) -> str:
        """`projects/<number>/...` as `projects/<id>/...`: Google names a project by either."""
        parts = name.split("/")
        if len(parts) > 1 and parts[0] == "projects":
            parts[1] = self.store.project_id(parts[1]) or parts[1]
        return "/".join(parts)

    def _members(self, kind: str, attribute: str, resource: str) -> dict[str, list[str]]:
        bindings: dict[str, list[str]] = {}
        wanted = self._canonical(resource)
        for _, _, body in self.store.list(kind):
            if self._canonical(str(body.get(attribute, ""))) == wanted:
                bindings.setdefault(body["role"], []).append(body["member"])
        return bindings

    # --- Secret Manager -------------------------------------------------------------------

    def get_secret(self, request, context):
        secret_id, number = self._secret_key(request.name, context)
        return secretmanager_v1.Secret(name=f"projects/{number}/secrets/{secret_id.rsplit('/', 1)[-1]}")

    def add_secret_version(self, request, context):
        secret_id, number = self._secret_key(request.parent, context)
        data = request.payload.data
        if request.payload.data_crc32c and google_crc32c.value(data) != request.payload.data_crc32c:
            context.abort(grpc.StatusCode.DATA_LOSS, "Checksum mismatch for the secret payload.")
        with self.lock:
            number_of = len(self._versions(secret_id)) + 1
            name = f"projects/{number}/secrets/{secret_id.rsplit('/', 1)[-1]}/versions/{number_of}"
            body = {
                "name": name,
                "state": "ENABLED",
                "created": _now().seconds,
                "crc32c": google_crc32c.value(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            self.store.put("secret_version", f"{secret_id}/versions/{number_of}", body)
            self.payloads[name] = data
        return self._version_message(body)

    def list_secret_versions(self, request, context):
        secret_id, _ = self._secret_key(request.parent, context)
        versions = sorted(self._versions(secret_id), key=lambda b: -int(b["name"].rsplit("/", 1)[-1]))
        if request.filter == "state:ENABLED":
            versions = [v for v in versions if v["state"] == "ENABLED"]
        return secretmanager_v1.ListSecretVersionsResponse(
            versions=[self._version_message(v) for v in versions], total_size=len(versions)
        )

    def _version_id(self, name: str, context) -> str:
        secret_id, _ = self._secret_key(name, context)
        return f"{secret_id}/versions/{name.rsplit('/', 1)[-1]}"

    def disable_secret_version(self, request, context):
        key = self._version_id(request.name, context)
        body = self.store.get("secret_version", key)
        if body is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{request.name}] not found.")
        body["state"] = "DISABLED"
        self.store.put("secret_version", key, body)
        return self._version_message(body)

    def access_secret_version(self, request, context):
        secret_id, _ = self._secret_key(request.name, context)
        versions = self._versions(secret_id)
        wanted = request.name.rsplit("/", 1)[-1]
        if wanted == "latest":
            versions = [v for v in versions if v["state"] == "ENABLED"]
            body = max(versions, key=lambda b: int(b["name"].rsplit("/", 1)[-1]), default=None)
        else:
            body = next((v for v in versions if v["name"].endswith(f"/versions/{wanted}")), None)
        if body is None or body["state"] != "ENABLED":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"Secret Version [{request.name}] is not enabled.")
        data = self.payloads[body["name"]]
        return secretmanager_v1.AccessSecretVersionResponse(
            name=body["name"], payload={"data": data, "data_crc32c": google_crc32c.value(data)}
        )

    def secret_iam_policy(self, request, context):
        secret_id, _ = self._secret_key(request.resource, context)
        return _policy(self._members("google_secret_manager_secret_iam_member", "secret_id", secret_id))

    # --- IAM ------------------------------------------------------------------------------

    def _account(self, name: str, context) -> str:
        if (
            self.store.get("google_service_account", name) is None
            and self.store.get("external:google_service_account", name) is None
        ):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Service account {name} does not exist.")
        return name

    def get_service_account(self, request, context):
        name = self._account(request.name, context)
        email = name.rsplit("/", 1)[-1]
        return iam_admin_v1.ServiceAccount(name=name, email=email, project_id=name.split("/")[1])

    def service_account_iam_policy(self, request, context):
        name = self._account(request.resource, context)
        return _policy(self._members("google_service_account_iam_member", "service_account_id", name))

    def test_iam_permissions(self, request, context):
        """The caller's effective permissions on the account: grants on it (dfinfra's, or its owner's made outside
        dfinfra) and on its project, as Google evaluates them."""
        name = self._account(request.resource, context)
        account = Resource.service_account(name.rsplit("/", 1)[-1])
        granted = self.iam.permissions(self.caller, account)
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=[p for p in request.permissions if p in granted])

    # --- Service Usage --------------------------------------------------------------------

    def get_service(self, request, context):
        _, project, _, service = request.name.split("/", 3)
        if self.store.project_number(project) is None:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"Permission denied on resource project {project}.")
        state = "ENABLED" if self.cloud.service_enabled(project, service) else "DISABLED"
        return service_usage_v1.Service(name=request.name, state=state)
