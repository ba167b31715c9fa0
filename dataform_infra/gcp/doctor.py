"""Live pre-flight checks: would Dataform actually work in this environment right now?

Each check reports pass / fail / skipped, and a failure carries the exact fix (a command to run or
the grant to make). Checks that depend on an earlier failure are skipped rather than piling up
errors with one cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from dataform_infra.errors import GcpError
from dataform_infra.gcp.clients import GoogleApis, call
from dataform_infra.render.module import HOST_APIS, TARGET_APIS, runner_email, service_agent_email
from dataform_infra.spec.loader import Deployment

ACT_AS = "iam.serviceAccounts.actAs"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, fail, skipped
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _runner_name(project: str, account: str) -> tuple[str, str]:
    email = runner_email(account, project)
    return email, f"projects/{project}/serviceAccounts/{email}"


class Doctor:
    def __init__(self, deployment: Deployment, env: str, apis: GoogleApis):
        self.deployment = deployment
        self.env_name = env
        self.env = deployment.environments[env]
        self.host_name = deployment.host_name
        self.host = deployment.host
        self.apis = apis
        self.agent = service_agent_email(self.host.project.number)

    def run(self) -> list[Check]:
        return list(self._checks())

    def _checks(self) -> Iterator[Check]:
        yield from self._apis()
        iam = self.apis.iam()
        existing: set[str] = set()
        for env_name, runner in self._runners_to_check():
            project = self.deployment.environments[env_name].project.id
            email, name = _runner_name(project, runner)
            check = self._runner_exists(iam, env_name, email, name)
            yield check
            if check.status == "pass":
                existing.add(name)
            yield from self._runner_grants(iam, env_name, email, name, name in existing)
        if self.env_name == self.host_name:
            yield from self._git_secret()

    def _runners_to_check(self) -> list[tuple[str, str]]:
        """This environment's runners; for the host also every runner its configs attach elsewhere."""
        wanted = [(self.env_name, r.name) for r in self.env.runners]
        if self.env_name == self.host_name:
            for env_name, env in self.deployment.environments.items():
                wanted += [(env_name, w.runner) for w in env.workflows]
        return list(dict.fromkeys(wanted))

    def _attached(self, env_name: str, runner: str) -> bool:
        repo = self.host.repository
        env = self.deployment.environments[env_name]
        return any(w.runner == runner for w in env.workflows) or (
            env_name == self.host_name and repo is not None and repo.runner == runner
        )

    # --- APIs -----------------------------------------------------------------------------

    def _apis(self) -> Iterator[Check]:
        project = self.env.project.id
        wanted = HOST_APIS if self.env_name == self.host_name else TARGET_APIS
        client = self.apis.service_usage()
        disabled = []
        for api in wanted:
            service = call(
                f"reading {api} in {project}",
                client.get_service,
                request={"name": f"projects/{project}/services/{api}"},
            )
            if service.state.name != "ENABLED":
                disabled.append(api)
        if disabled:
            yield Check(
                "apis-enabled",
                "fail",
                f"not enabled in {project}: {', '.join(disabled)}",
                f"dfinfra apply {self.env_name}   (or: gcloud services enable {' '.join(disabled)} "
                f"--project {project})",
            )
        else:
            yield Check("apis-enabled", "pass", f"{len(wanted)} APIs enabled in {project}")

    # --- runners --------------------------------------------------------------------------

    def _runner_exists(self, iam, env_name: str, email: str, name: str) -> Check:
        try:
            call(f"reading service account {email}", iam.get_service_account, request={"name": name})
        except GcpError as exc:
            if "not found" not in str(exc):
                raise
            why = "" if env_name == self.env_name else f" (the host's workflow configs in {self.host_name} use it)"
            return Check(
                f"runner-exists:{email}",
                "fail",
                f"service account {email} does not exist{why}",
                f"dfinfra apply {env_name}",
            )
        return Check(f"runner-exists:{email}", "pass", f"{email} exists")

    def _runner_grants(self, iam, env_name: str, email: str, name: str, exists: bool) -> Iterator[Check]:
        if not self._attached(env_name, email.split("@")[0]):
            return
        checks = (f"agent-token-creator:{email}", f"caller-act-as:{email}")
        if not exists:
            for check in checks:
                yield Check(check, "skipped", f"{email} does not exist")
            return
        policy = call(f"reading the IAM policy of {email}", iam.get_iam_policy, request={"resource": name})
        members = {m for b in policy.bindings if b.role == "roles/iam.serviceAccountTokenCreator" for m in b.members}
        if f"serviceAccount:{self.agent}" in members:
            yield Check(checks[0], "pass", f"the Dataform service agent may impersonate {email}")
        else:
            yield Check(
                checks[0],
                "fail",
                f"{self.agent} has no roles/iam.serviceAccountTokenCreator on {email}: workflows running as it fail",
                f"dfinfra apply {self.host_name}   (or: gcloud iam service-accounts add-iam-policy-binding "
                f"{email} --member=serviceAccount:{self.agent} --role=roles/iam.serviceAccountTokenCreator)",
            )
        allowed = call(
            f"testing actAs on {email}", iam.test_iam_permissions, request={"resource": name, "permissions": [ACT_AS]}
        )
        if ACT_AS in allowed.permissions:
            yield Check(checks[1], "pass", f"you may act as {email} (strict act-as)")
        else:
            yield Check(
                checks[1],
                "fail",
                f"your credentials lack {ACT_AS} on {email}: creating or updating configs that use it fails",
                f"add your deployer to `deployers:` in {self.deployment.spec_file(self.host_name)} and run "
                f"dfinfra apply {self.host_name}   (or grant roles/iam.serviceAccountUser on {email})",
            )

    # --- the Git secret -------------------------------------------------------------------

    def _git_secret(self) -> Iterator[Check]:
        from dataform_infra.gcp.secrets import git_secret

        secret = git_secret(self.deployment, self.host_name)
        client = self.apis.secret_manager()
        try:
            call(f"reading {secret.name}", client.get_secret, name=secret.name)
        except GcpError as exc:
            if "not found" not in str(exc):
                raise
            yield Check(
                "git-secret-version",
                "fail",
                f"secret {secret.name} does not exist",
                f"dfinfra apply {self.host_name}, then dfinfra secret set {self.host_name}",
            )
            yield Check("agent-reads-git-secret", "skipped", "the secret does not exist")
            return
        found = list(
            call(f"listing versions of {secret.name}", client.list_secret_versions, request={"parent": secret.name})
        )
        enabled = [v for v in found if v.state.name == "ENABLED"]
        if secret.pinned is not None:
            pinned = [v for v in enabled if v.name.rsplit("/", 1)[-1] == str(secret.pinned)]
            ok, what = bool(pinned), f"pinned version {secret.pinned}"
        else:
            ok, what = bool(enabled), "an enabled version (the repository uses versions/latest)"
        if ok:
            yield Check("git-secret-version", "pass", f"{secret.name} has {what}")
        else:
            yield Check(
                "git-secret-version", "fail", f"{secret.name} has no {what}", f"dfinfra secret set {self.host_name}"
            )
        policy = call(
            f"reading the IAM policy of {secret.name}", client.get_iam_policy, request={"resource": secret.name}
        )
        readers = {m for b in policy.bindings if b.role == "roles/secretmanager.secretAccessor" for m in b.members}
        if f"serviceAccount:{self.agent}" in readers:
            yield Check("agent-reads-git-secret", "pass", f"the Dataform service agent can read {secret.name}")
        else:
            yield Check(
                "agent-reads-git-secret",
                "fail",
                f"{self.agent} cannot read {secret.name}: Git sync fails (the agent does every Git "
                "operation, even with custom runners)",
                f"dfinfra apply {self.host_name}   (or: gcloud secrets add-iam-policy-binding "
                f"{secret.secret_id} --project {secret.project} --member=serviceAccount:{self.agent} "
                "--role=roles/secretmanager.secretAccessor)",
            )
