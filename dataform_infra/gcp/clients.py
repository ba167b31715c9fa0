"""Authenticated Google API clients, with one readable sentence for every credential problem.

Credentials are Application Default Credentials, optionally impersonating a service account
(`--impersonate-service-account`). `DFINFRA_GOOGLE_API_EMULATOR=host:port` points every client at a
local emulator over plaintext gRPC with anonymous credentials (the test suite's offline cloud).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from dataform_infra.errors import GcpError, GcpNotFound, GcpPermissionDenied

if TYPE_CHECKING:  # the clients import slowly: only the commands that call Google load them
    from google.api_core.retry import Retry
    from google.cloud.bigquery import Client as BigQueryClient
    from google.cloud.dataform_v1 import DataformClient
    from google.cloud.iam_admin_v1 import IAMClient
    from google.cloud.monitoring_v3 import AlertPolicyServiceClient, NotificationChannelServiceClient
    from google.cloud.orgpolicy_v2 import OrgPolicyClient
    from google.cloud.policytroubleshooter_v1 import IamCheckerClient
    from google.cloud.resourcemanager_v3 import ProjectsClient
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient
    from google.cloud.service_usage_v1 import ServiceUsageClient
    from google.cloud.workflows.executions_v1 import ExecutionsClient

EMULATOR_ENV = "DFINFRA_GOOGLE_API_EMULATOR"
# BigQuery's client speaks REST, not gRPC: with an emulator, `host:port` of its HTTP endpoint.
BIGQUERY_EMULATOR_ENV = "DFINFRA_BIGQUERY_API_EMULATOR"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
T = TypeVar("T")


@dataclass
class GoogleApis:
    impersonate: str | None = None

    def __post_init__(self) -> None:
        self._credentials: Any = None
        self.emulator = os.environ.get(EMULATOR_ENV)

    @property
    def plaintext_warning(self) -> str | None:
        """Why the emulator setting may be unsafe: a non-loopback address gets Google calls (and a Git
        token from `secret set`) over plaintext gRPC."""
        if not self.emulator or self.emulator_on_loopback:
            return None
        return (
            f"{EMULATOR_ENV}={self.emulator} is not a loopback address: Google API calls, secrets included, "
            "go there unencrypted and unauthenticated"
        )

    @property
    def emulator_on_loopback(self) -> bool:
        """Is the emulator on this machine: `localhost` or a loopback IP (not a name that merely starts `127.`)?"""
        import ipaddress

        host = (self.emulator or "").rsplit(":", 1)[0].strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def credentials(self) -> Any:
        if self._credentials is not None:
            return self._credentials
        if self.emulator:
            from google.auth.credentials import AnonymousCredentials

            self._credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            return self._credentials
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, _ = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError:
            raise GcpError(
                "no Google credentials found: run `gcloud auth application-default login`, or set "
                "GOOGLE_APPLICATION_CREDENTIALS to a credentials file"
            ) from None
        if self.impersonate:
            from google.auth import impersonated_credentials

            credentials = impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
                source_credentials=credentials, target_principal=self.impersonate, target_scopes=SCOPES
            )
        self._credentials = credentials
        return credentials

    def _client(self, client_class: Callable[..., T], transport_class: Any) -> T:
        if self.emulator:
            import grpc

            return client_class(transport=transport_class(channel=grpc.insecure_channel(self.emulator)))
        return client_class(credentials=self.credentials())

    def secret_manager(self) -> SecretManagerServiceClient:
        from google.cloud.secretmanager_v1 import SecretManagerServiceClient
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        return self._client(SecretManagerServiceClient, SecretManagerServiceGrpcTransport)

    def iam(self) -> IAMClient:
        from google.cloud.iam_admin_v1 import IAMClient
        from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

        return self._client(IAMClient, IAMGrpcTransport)

    def service_usage(self) -> ServiceUsageClient:
        from google.cloud.service_usage_v1 import ServiceUsageClient
        from google.cloud.service_usage_v1.services.service_usage.transports import ServiceUsageGrpcTransport

        return self._client(ServiceUsageClient, ServiceUsageGrpcTransport)

    def dataform(self) -> DataformClient:
        from google.cloud.dataform_v1 import DataformClient
        from google.cloud.dataform_v1.services.dataform.transports import DataformGrpcTransport

        return self._client(DataformClient, DataformGrpcTransport)

    def workflow_executions(self) -> ExecutionsClient:
        from google.cloud.workflows.executions_v1 import ExecutionsClient
        from google.cloud.workflows.executions_v1.services.executions.transports import ExecutionsGrpcTransport

        return self._client(ExecutionsClient, ExecutionsGrpcTransport)

    def alert_policies(self) -> AlertPolicyServiceClient:
        from google.cloud.monitoring_v3 import AlertPolicyServiceClient
        from google.cloud.monitoring_v3.services.alert_policy_service.transports import AlertPolicyServiceGrpcTransport

        return self._client(AlertPolicyServiceClient, AlertPolicyServiceGrpcTransport)

    def notification_channels(self) -> NotificationChannelServiceClient:
        from google.cloud.monitoring_v3 import NotificationChannelServiceClient
        from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
            NotificationChannelServiceGrpcTransport,
        )

        return self._client(NotificationChannelServiceClient, NotificationChannelServiceGrpcTransport)

    def projects(self) -> ProjectsClient:
        from google.cloud.resourcemanager_v3 import ProjectsClient
        from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

        return self._client(ProjectsClient, ProjectsGrpcTransport)

    def troubleshooter(self) -> IamCheckerClient:
        from google.cloud.policytroubleshooter_v1 import IamCheckerClient
        from google.cloud.policytroubleshooter_v1.services.iam_checker.transports import IamCheckerGrpcTransport

        return self._client(IamCheckerClient, IamCheckerGrpcTransport)

    def bigquery(self, project: str) -> BigQueryClient:
        from google.cloud import bigquery

        endpoint = os.environ.get(BIGQUERY_EMULATOR_ENV)
        if endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            options = ClientOptions(api_endpoint=f"http://{endpoint}")
            return bigquery.Client(
                project=project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options=options,
            )
        return bigquery.Client(project=project, credentials=self.credentials())

    def org_policy(self) -> OrgPolicyClient:
        from google.cloud.orgpolicy_v2 import OrgPolicyClient
        from google.cloud.orgpolicy_v2.services.org_policy.transports import OrgPolicyGrpcTransport

        return self._client(OrgPolicyClient, OrgPolicyGrpcTransport)


@contextmanager
def google_errors(what: str) -> Iterator[None]:
    """Google's exceptions as one sentence: what failed, the status, and the credential hint if relevant."""
    from google.api_core import exceptions
    from google.auth.exceptions import GoogleAuthError, RefreshError

    try:
        yield
    except RefreshError:
        raise GcpError(
            f"{what}: the Google credentials are expired or revoked; run `gcloud auth application-default login`"
        ) from None
    except GoogleAuthError as exc:
        raise GcpError(f"{what}: Google authentication failed ({type(exc).__name__})") from None
    except exceptions.PermissionDenied as exc:
        raise GcpPermissionDenied(f"{what}: permission denied ({exc.message})") from None
    except exceptions.NotFound as exc:
        raise GcpNotFound(f"{what}: not found ({exc.message})") from None
    except exceptions.GoogleAPICallError as exc:
        raise GcpError(f"{what}: {getattr(exc.code, 'name', 'error')} ({exc.message})") from None
    except exceptions.RetryError:
        raise GcpError(f"{what}: Google did not answer in time") from None


def call(what: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with google_errors(what):
        return function(*args, **kwargs)


def bigquery_retry() -> Retry:
    """BigQuery's own retry policy, bounded: a dataset read gives up after a minute."""
    from google.cloud.bigquery import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(60)
