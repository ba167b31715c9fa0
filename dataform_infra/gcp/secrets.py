"""The Git credential: added to Secret Manager straight from stdin, never through Terraform.

How the repository finds it: the rendered HCL names `<secret>/versions/latest` by default. The
Dataform API documents `authenticationTokenSecretVersion` as `projects/*/secrets/*/versions/*`, and
`latest` is Secret Manager's alias for the newest version wherever a version name is accepted
(8 of the 24 surveyed setups use it), so rotating is `dfinfra secret set` and nothing else. A spec
may pin `version: N` instead; then `secret set` prints the exact spec line to change, because a
pinned version breaks Git sync once it is disabled or destroyed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from dataform_infra.errors import GcpNotFound, UsageError
from dataform_infra.gcp.clients import GoogleApis, call
from dataform_infra.spec.loader import Deployment

MAX_SECRET_BYTES = 64 * 1024  # Secret Manager's payload limit


@dataclass(frozen=True)
class CredentialSecret:
    """A secret whose payload only `dfinfra secret set` adds, never Terraform: a host repository's Git token or
    SSH key, or a notification channel's token."""

    project: str
    secret_id: str
    kind: str  # "token" or "ssh key"
    pinned: int | None
    spec_file: str
    owner: str  # the host's repository whose Git credential it holds, or the notification channel whose token
    holder: str = "Git"  # whose credential, as messages name it

    @property
    def noun(self) -> str:
        """What it holds, as messages say it: `Git token`, `Git ssh key`, `channel hook's token`."""
        return f"{self.holder} {self.kind}"

    @property
    def name(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret_id}"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    state: str
    created: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "state": self.state, "created": self.created}


def git_secret(deployment: Deployment, env: str, repository: str | None = None) -> CredentialSecret:
    """The Git secret of the host's repository `repository` (may be left out when the host has one)."""
    if env not in deployment.environments:
        raise UsageError(f"no environment {env!r} (found: {', '.join(deployment.environments)})")
    host = deployment.host_name
    if env != host:
        raise UsageError(
            f"the Git secret lives in the host environment {host!r}, not {env!r}: use `dfinfra secret set {host}`"
        )
    repositories = {r.name: r for _, r in deployment.host.declared_repositories()}
    if repository is not None and repository not in repositories:
        raise UsageError(f"{host!r} has no repository {repository!r} (its repositories: {', '.join(repositories)})")
    if repository is None:
        # Several repositories need saying whose, unless one secret serves them all.
        secrets = {(s.project, s.secret_id) for r in repositories.values() if (s := r.git_secret) is not None}
        with_secret = [n for n, r in repositories.items() if r.git_secret is not None]
        if len(secrets) > 1:
            raise UsageError(
                f"{host!r} has several repositories with their own Git secrets ({', '.join(with_secret)}): say "
                "whose with --repository NAME"
            )
        repository = with_secret[0] if with_secret else next(iter(repositories))
    repo = repositories[repository]
    if repo.git is None:
        raise UsageError(
            f"repository {repo.name!r} of {host!r} has no Git remote (no `git:` in {deployment.spec_file(host).name}):"
            " there is no Git secret to set or check until one is connected"
        )
    auth = repo.git.secret
    if auth is None:
        raise UsageError(
            f"repository {repo.name!r} of {host!r} authenticates through the Developer Connect link "
            f"{repo.git.repository_link}: there is no Git secret to set or check"
        )
    pinned = auth.version if isinstance(auth.version, int) else None
    return CredentialSecret(
        auth.project or deployment.host.project.id,
        auth.secret_id,
        "ssh key" if repo.git.ssh else "token",
        pinned,
        str(deployment.spec_file(host)),
        repo.name,
    )


def checked_secret(kind: str, text: str, noun: str = "") -> bytes:
    """The credential as bytes, once it looks like one: a single line for a token, a PEM/OpenSSH
    block for a key, non-empty and within Secret Manager's limit. Where it came from is the CLI's."""
    if kind == "token":
        text = text.removesuffix("\n").removesuffix("\r")
        if "\n" in text or "\r" in text:
            raise UsageError("the token spans several lines; pass exactly one line (a token has no line breaks)")
        if text != text.strip():
            raise UsageError("the token starts or ends with spaces; pass it exactly")
    elif text.strip() and not text.lstrip().startswith("-----BEGIN"):
        raise UsageError("that is not a private key in PEM/OpenSSH format (-----BEGIN ... PRIVATE KEY-----)")
    if not text.strip():
        raise UsageError(f"the {noun or 'Git ' + kind} is empty")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # stdin decoded with surrogateescape: the bytes were not UTF-8
        raise UsageError(f"the {noun or 'Git ' + kind} is not UTF-8 text") from None
    if len(data) > MAX_SECRET_BYTES:
        raise UsageError(f"the {noun or 'Git ' + kind} is larger than Secret Manager's {MAX_SECRET_BYTES} byte limit")
    return data


def add_version(
    apis: GoogleApis, secret: CredentialSecret, data: bytes, disable_previous: bool
) -> tuple[str, list[str]]:
    """Adds `data` as the newest version (with a CRC32C the service verifies); returns its name and the
    names of versions it disabled."""
    import google_crc32c

    with _no_logging():
        client = apis.secret_manager()
        call(f"secret {secret.name}", client.get_secret, name=secret.name)
        version = call(
            f"adding a version to {secret.name}",
            client.add_secret_version,
            request={"parent": secret.name, "payload": {"data": data, "data_crc32c": google_crc32c.value(data)}},
        )
    disabled: list[str] = []
    if disable_previous:
        for old in call(
            f"listing versions of {secret.name}",
            client.list_secret_versions,
            request={"parent": secret.name, "filter": "state:ENABLED"},
        ):
            if old.name != version.name:
                call(f"disabling {old.name}", client.disable_secret_version, name=old.name)
                disabled.append(old.name)
    return version.name, disabled


@contextmanager
def _no_logging() -> Iterator[None]:
    """No logger sees the request that carries the token, at any level, whatever Google's logging
    variables say (GOOGLE_SDK_PYTHON_LOGGING_SCOPE makes the client log request payloads, base64)."""
    for variable in ("GOOGLE_SDK_PYTHON_LOGGING_SCOPE", "GRPC_TRACE", "GRPC_VERBOSITY"):  # gRPC's traces dump frames
        os.environ.pop(variable, None)
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def versions(apis: GoogleApis, secret: CredentialSecret) -> list[VersionInfo]:
    client = apis.secret_manager()
    found = call(f"listing versions of {secret.name}", client.list_secret_versions, request={"parent": secret.name})
    return [VersionInfo(v.name, v.state.name, _when(v.create_time)) for v in found]


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "?"


def channel_secret(deployment: Deployment, env: str, channel: str) -> CredentialSecret:
    """The secret holding the token of notification channel `channel` of `env` (created by its module)."""
    from dataform_infra.topology import Topology

    if env not in deployment.environments:
        raise UsageError(f"no environment {env!r} (found: {', '.join(deployment.environments)})")
    alerts = deployment.environments[env].alerts
    tokens = [c.name for c in (alerts.channels if alerts else []) if c.token]
    if channel not in tokens:
        raise UsageError(
            f"{env!r} has no channel {channel!r} with `token: true` (its token channels: {', '.join(tokens) or 'none'})"
        )
    secret = Topology(deployment).channel_secret(env, channel)
    spec_file = str(deployment.spec_file(env))
    return CredentialSecret(secret.project, secret.id, "token", None, spec_file, channel, f"channel {channel}'s")


def newest_enabled_version(apis: GoogleApis, secret: str) -> str | None:
    """The newest enabled version's name (None before the first apply made the secret, or before `secret set`)."""
    try:
        enabled = call(
            f"listing versions of {secret}",
            apis.secret_manager().list_secret_versions,
            request={"parent": secret, "filter": "state:ENABLED"},
        )
    except GcpNotFound:
        return None
    return max((v.name for v in enabled), key=lambda n: int(n.rsplit("/", 1)[-1]), default=None)


def channel_tokens(apis: GoogleApis, deployment: Deployment, env: str) -> tuple[dict[str, str], list[str]]:
    """What plan and apply hand terraform for `env`'s token channels: `TF_VAR_<variable>` (the token, ephemeral)
    and `TF_VAR_<variable>_version` per channel whose secret has a version, and the channels that have none yet.
    Read with logging off; the values go to terraform's environment only, never argv or disk."""
    from dataform_infra.topology import Topology

    topology = Topology(deployment)
    alerts = deployment.environments[env].alerts
    variables: dict[str, str] = {}
    missing: list[str] = []
    with _no_logging():  # before the first call: gRPC's tracer would print what the channel carries
        for channel in alerts.channels if alerts else []:
            if not channel.token:
                continue
            secret = topology.channel_secret(env, channel.name)
            newest = newest_enabled_version(apis, secret.relative_name)
            if newest is None:
                missing.append(channel.name)
                continue
            found = call(f"reading {newest}", apis.secret_manager().access_secret_version, name=newest)
            # Checked as `secret set` checks it (a version added with gcloud may end in a newline, or not be text).
            try:
                text = found.payload.data.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{newest} is not UTF-8 text: add the token again with `dfinfra secret set`") from None
            token = checked_secret("token", text, f"token in {newest}").decode("utf-8")
            if "\0" in token:
                raise UsageError(f"the token in {newest} holds a NUL character: add it again")
            variable = topology.channel_token_variable(channel.name)
            variables[f"TF_VAR_{variable}"] = token
            variables[f"TF_VAR_{variable}_version"] = found.name.rsplit("/", 1)[-1]
    return variables, missing
