"""Live pre-flight checks: would Dataform actually work in this environment right now?

Each check reports pass / fail / skipped, and a failure carries the exact fix (a command to run or
the grant to make). Checks that depend on an earlier failure are skipped rather than piling up
errors with one cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dataform_infra.access import AccessModel, Requirement, roles
from dataform_infra.access.model import link_accessor_role
from dataform_infra.errors import GcpError, GcpNotFound, GcpPermissionDenied
from dataform_infra.gcp.clients import GoogleApis, bigquery_retry, call
from dataform_infra.spec.loader import Deployment
from dataform_infra.topology import (
    HostedRepository,
    Resource,
    Topology,
    runner_resource,
    service_account_name,
)

if TYPE_CHECKING:
    from google.cloud.iam_admin_v1 import IAMClient
    from google.cloud.orgpolicy_v2 import Policy
    from google.cloud.policytroubleshooter_v1 import IamCheckerClient

ACT_AS = "iam.serviceAccounts.actAs"


def _by_display_name(project: str, what: str, lister: Any) -> dict[str, Any]:
    """Monitoring's objects of one kind in `project`, by display name (Google names them by a number)."""
    listed = call(f"listing {what} in {project}", lister, name=f"projects/{project}")
    return {item.display_name: item for item in listed}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, fail, skipped
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Doctor:
    def __init__(self, deployment: Deployment, env: str, apis: GoogleApis):
        self.deployment = deployment
        self.env_name = env
        self.env = deployment.environments[env]
        self.host_name = deployment.host_name
        self.host = deployment.host
        self.apis = apis
        self.topology = Topology(deployment)
        self.agent = self.topology.agent.email
        self.is_host = env == self.host_name

    def run(self) -> list[Check]:
        return list(self._checks())

    def _checks(self) -> Iterator[Check]:
        yield from self._project_numbers()
        yield from self._apis()
        iam = self.apis.iam()
        existing: set[str] = set()
        self.missing_runners: set[str] = set()
        for env_name, runner in self._runners_to_check():
            email = self.topology.runner(env_name, runner).email
            name = service_account_name(email)
            check = self._runner_exists(iam, env_name, runner, email, name)
            yield check
            if check.status == "fail":
                self.missing_runners.add(email)
            else:  # or not ours to read (another team's account): its grants are still asked
                existing.add(name)
            yield from self._runner_grants(iam, env_name, runner, email, name, name in existing)
        # With a Developer Connect link there is no secret: the link's grant is a run requirement below.
        # Repositories sharing a secret are each checked: they may pin different versions.
        for hosted in self.topology.repositories if self.env_name == self.host_name else []:
            if hosted.secret_name is None:
                continue
            secret_checks = list(self._git_secret(hosted))
            yield from secret_checks
            if hosted.spec.git is not None and hosted.spec.git.https_token:
                if any(c.status != "pass" for c in secret_checks):
                    not_yet = "the Git secret is not usable yet"
                    yield Check(self._named("repository-token-status", hosted), "skipped", not_yet)
                else:
                    yield from self._token_status(hosted)
        yield from self._org_policies()
        yield from self._default_key()
        yield from self._run_requirements()
        yield from self._releases()
        yield from self._alerts()

    def _has_token(self, channel: str) -> bool:
        from dataform_infra.gcp.secrets import newest_enabled_version

        secret = self.topology.channel_secret(self.env_name, channel)
        return newest_enabled_version(self.apis, secret.relative_name) is not None

    def _alerts(self) -> Iterator[Check]:
        """Each notification channel exists, is enabled and not left unverified; each alert policy exists and is
        enabled (Monitoring names both by a number: doctor finds them by the display names dfinfra gives them)."""
        alerts = self.env.alerts
        if alerts is None:
            return
        project = self.host.project.id
        try:
            channels = _by_display_name(
                project, "notification channels", self.apis.notification_channels().list_notification_channels
            )
            policies = _by_display_name(project, "alert policies", self.apis.alert_policies().list_alert_policies)
        except GcpError as exc:
            yield Check("alerts", "skipped", str(exc))
            return
        apply = f"dfinfra apply {self.env_name}"
        for channel in alerts.channels:
            name = self.topology.channel_display_name(self.env_name, channel.name)
            found = channels.get(name)
            check = f"alert-channel:{channel.name}"
            if found is None:
                yield Check(check, "fail", f"notification channel {name!r} does not exist in {project}", apply)
            elif not found.enabled:
                yield Check(check, "fail", f"notification channel {name!r} is disabled", f"enable {found.name}")
            elif found.verification_status.name == "UNVERIFIED":
                fix = f"verify {found.name} (Monitoring > Alerting > Edit notification channels)"
                yield Check(check, "fail", f"notification channel {name!r} is not verified: it sends nothing", fix)
            elif channel.token and not self._has_token(channel.name):
                fix = f"dfinfra secret set {self.env_name} --channel {channel.name}, then dfinfra apply {self.env_name}"
                yield Check(
                    check, "fail", f"notification channel {name!r} has no token set: its webhook refuses it", fix
                )
            else:
                yield Check(check, "pass", f"notification channel {name!r} ({found.type_}) is ready")
        for title, workflows in self.topology.alert_policies(self.env_name):
            policy = policies.get(title)
            check = f"alert-policy:{self.env_name}" + (f"/{workflows[0]}" if alerts.per_workflow else "")
            if policy is None:
                yield Check(check, "fail", f"alert policy {title!r} does not exist in {project}", apply)
            elif not policy.enabled:
                yield Check(check, "fail", f"alert policy {title!r} is disabled: failed runs alert nobody", apply)
            else:
                yield Check(check, "pass", f"alert policy {title!r} is enabled ({', '.join(workflows)})")

    def _default_key(self) -> Iterator[Check]:
        """The host's Dataform default key is the one Google holds for the region (§c: it decides the key of
        every repository created afterwards); the agent's use of it is a run requirement below."""
        wanted = self.env.dataform_default_kms_key_name
        if wanted is None or self.env_name != self.host_name:
            return
        name = f"projects/{self.env.project.id}/locations/{self.env.region}/config"
        try:
            found = call(f"reading {name}", self.apis.dataform().get_config, name=name).default_kms_key_name
        except GcpError as exc:  # e.g. no dataform.config.get: say so, and go on with the other checks
            yield Check("dataform-default-key", "skipped", str(exc))
            return
        if found == wanted:
            yield Check(
                "dataform-default-key", "pass", f"new repositories in {self.env.region} are encrypted with {wanted}"
            )
        else:
            yield Check(
                "dataform-default-key",
                "fail",
                f"Dataform's default key in {self.env.project.id} ({self.env.region}) is {found or 'not set'}, not "
                f"{wanted}: repositories created now are encrypted otherwise",
                f"dfinfra apply {self.env_name}",
            )

    def _runners_to_check(self) -> list[tuple[str, str]]:
        """This environment's runners: its module creates them and every grant that makes them usable."""
        return [(self.env_name, r.name) for r in self.env.runners]

    def _attached(self, env_name: str, runner: str) -> bool:
        """Attached by the repository or a config (people's `run_as` alone attaches nothing to configs)."""
        return any(
            (a.env, a.runner.name) == (env_name, runner) and not a.only_run_as for a in self.topology.attached_runners()
        )

    # --- APIs -----------------------------------------------------------------------------

    def _apis(self) -> Iterator[Check]:
        project = self.env.project.id
        wanted = self.topology.apis(self.env_name)
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

    def _runner_exists(self, iam: IAMClient, env_name: str, runner: str, email: str, name: str) -> Check:
        try:
            call(f"reading service account {email}", iam.get_service_account, request={"name": name})
        except GcpPermissionDenied as exc:  # another team's account: it may exist where we may not look
            return Check(f"runner-exists:{email}", "skipped", str(exc))
        except GcpNotFound:
            index, _ = self.topology.runner_at(env_name, runner)
            elsewhere = self.topology.runner(env_name, runner).made_elsewhere
            return Check(
                f"runner-exists:{email}",
                "fail",
                f"service account {email} does not exist",
                f"it is made elsewhere: ask its owner, or correct runners[{index}].email in "
                f"{self.deployment.spec_file(env_name)}"
                if elsewhere
                else f"dfinfra apply {env_name}",
            )
        return Check(f"runner-exists:{email}", "pass", f"{email} exists")

    def _runner_grants(
        self, iam: IAMClient, env_name: str, runner: str, email: str, name: str, exists: bool
    ) -> Iterator[Check]:
        if not self._attached(env_name, runner):
            return
        # A runner made elsewhere: the grants on its account are its owner's, so the fix is theirs too.
        elsewhere = self.topology.runner(env_name, runner).made_elsewhere
        checks = (f"agent-token-creator:{email}", f"caller-act-as:{email}")
        if not exists:
            for check in checks:
                yield Check(check, "skipped", f"{email} does not exist")
            return
        # Asked of the troubleshooter, not read from the account's own policy: Token Creator granted on the
        # runner's project (or folder) serves as well.
        minted = self._troubleshoot(
            self.apis.troubleshooter(), self.agent, runner_resource(email), "iam.serviceAccounts.getAccessToken"
        )
        if minted == "GRANTED":
            yield Check(checks[0], "pass", f"the Dataform service agent may impersonate {email}")
        elif minted != "NOT_GRANTED":
            yield Check(
                checks[0],
                "skipped",
                f"the Policy Troubleshooter cannot tell whether the Dataform service agent may impersonate {email} "
                "(a conditional grant, or a policy your credentials may not read)",
            )
        else:
            yield Check(
                checks[0],
                "fail",
                f"{self.agent} has no roles/iam.serviceAccountTokenCreator on {email}: workflows running as it fail",
                _owners_grant(email, f"serviceAccount:{self.agent}", "roles/iam.serviceAccountTokenCreator")
                if elsewhere
                else f"dfinfra apply {env_name}   (or: gcloud iam service-accounts add-iam-policy-binding {email} "
                f"--member=serviceAccount:{self.agent} --role=roles/iam.serviceAccountTokenCreator)",
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
                _owners_grant(email, "<your deployer>", "roles/iam.serviceAccountUser")
                if elsewhere
                else f"add your deployer to `deployers:` in {self.deployment.spec_file(env_name)} and run "
                f"dfinfra apply {env_name}   (or grant roles/iam.serviceAccountUser on {email})",
            )

    # --- the Git secret -------------------------------------------------------------------

    def _named(self, check: str, hosted: HostedRepository) -> str:
        """A per-repository check's name: the repository is named once the host has several."""
        return check if self.topology.single_repository else f"{check}:{hosted.name}"

    def _git_secret(self, hosted: HostedRepository) -> Iterator[Check]:
        from dataform_infra.gcp.secrets import git_secret

        secret = git_secret(self.deployment, self.host_name, hosted.name)
        set_it = self.topology.secret_set_command(hosted)
        client = self.apis.secret_manager()
        try:
            call(f"reading {secret.name}", client.get_secret, name=secret.name)
        except GcpNotFound:
            yield Check(
                self._named("git-secret-version", hosted),
                "fail",
                f"secret {secret.name} does not exist",
                f"dfinfra apply {self.host_name}, then {set_it}",
            )
            yield Check(self._named("agent-reads-git-secret", hosted), "skipped", "the secret does not exist")
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
            yield Check(self._named("git-secret-version", hosted), "pass", f"{secret.name} has {what}")
        else:
            yield Check(self._named("git-secret-version", hosted), "fail", f"{secret.name} has no {what}", set_it)
        policy = call(
            f"reading the IAM policy of {secret.name}", client.get_iam_policy, request={"resource": secret.name}
        )
        readers = {m for b in policy.bindings if b.role == "roles/secretmanager.secretAccessor" for m in b.members}
        if f"serviceAccount:{self.agent}" in readers:
            can = f"the Dataform service agent can read {secret.name}"
            yield Check(self._named("agent-reads-git-secret", hosted), "pass", can)
        else:
            yield Check(
                self._named("agent-reads-git-secret", hosted),
                "fail",
                f"{self.agent} cannot read {secret.name}: Git sync fails (the agent does every Git "
                "operation, even with custom runners)",
                f"dfinfra apply {self.host_name}   (or: gcloud secrets add-iam-policy-binding "
                f"{secret.secret_id} --project {secret.project} --member=serviceAccount:{self.agent} "
                "--role=roles/secretmanager.secretAccessor)",
            )

    def _token_status(self, hosted: HostedRepository) -> Iterator[Check]:
        """What Dataform itself says of the token: the check Google runs before every Git fetch."""
        name = hosted.api_name
        check = self._named("repository-token-status", hosted)
        set_it = self.topology.secret_set_command(hosted)
        client = self.apis.dataform()
        try:
            found = call(
                f"checking the Git token of {name}",
                client.compute_repository_access_token_status,
                request={"name": name},
            )
        except GcpNotFound:
            yield Check(check, "fail", f"{name} does not exist", f"dfinfra apply {self.host_name}")
            return
        status = found.token_status.name
        if status == "VALID":
            yield Check(check, "pass", f"Dataform can fetch {name}'s remote with the token")
        else:
            yield Check(
                check,
                "fail",
                f"Dataform reports the token of {name} as {status}",
                f"{set_it}   (a token with read/write access to the remote)"
                if status == "NOT_FOUND"
                else f"check the token's scopes and expiry at the Git host, then {set_it}",
            )

    # --- releases -------------------------------------------------------------------------------

    def _releases(self) -> Iterator[Check]:
        """Each release's live compilation (what its workflows' scheduled runs execute), its age and the
        last cron error: a release with none fails every scheduled run (dataform-operations.md §a)."""
        from datetime import datetime, timezone

        from dataform_infra.gcp.releases import config_names

        client = self.apis.dataform()
        for release, name in config_names(self.deployment, self.env_name).items():
            check = f"release-live:{release}"
            try:
                found = call(f"reading release config {name}", client.get_release_config, name=name)
            except GcpNotFound:
                yield Check(check, "fail", f"{name} does not exist", f"dfinfra apply {self.env_name}")
                continue
            records = list(found.recent_scheduled_release_records)  # newest first
            failed = records[0].error_status if records and records[0].error_status.code else None
            last_error = f"; its last cron compile failed: {failed.message}" if failed else ""
            live = found.release_compilation_result
            if not live:
                yield Check(
                    check,
                    "fail",
                    f"release {release} has no live compilation: its workflows' scheduled runs fail{last_error}",
                    f"dfinfra release {self.env_name} {release}",
                )
                continue
            try:
                compiled = call(f"reading {live}", client.get_compilation_result, name=live)
            except GcpNotFound:
                fix = f"dfinfra release {self.env_name} {release}"
                yield Check(check, "fail", f"release {release} serves {live}, which no longer exists", fix)
                continue
            made = compiled.create_time
            age = datetime.now(timezone.utc) - made if made else None
            since = f", compiled {age.days}d {age.seconds // 3600}h ago" if age is not None else ""
            commit = f" from commit {compiled.resolved_git_commit_sha[:12]}" if compiled.resolved_git_commit_sha else ""
            yield Check(check, "pass", f"release {release} serves {live.rsplit('/', 1)[-1]}{commit}{since}{last_error}")

    # --- project numbers --------------------------------------------------------------------

    def _project_numbers(self) -> Iterator[Check]:
        """The number names the service agent: a typo hands its grants to another project's agent."""
        names = dict.fromkeys([self.env_name, self.host_name])
        client = self.apis.projects()
        for env_name in names:
            project = self.deployment.environments[env_name].project
            found = call(f"reading project {project.id}", client.get_project, name=f"projects/{project.id}")
            number = found.name.removeprefix("projects/")
            if number == project.number:
                yield Check(f"project-number:{project.id}", "pass", f"{project.id} is project number {number}")
            else:
                yield Check(
                    f"project-number:{project.id}",
                    "fail",
                    f"{self.deployment.spec_file(env_name)} says project.number {project.number}, but {project.id} "
                    f"is number {number}",
                    f"set project.number: {number} in {self.deployment.spec_file(env_name)}",
                )

    # --- org policies -----------------------------------------------------------------------

    def _policy(self, project: str, constraint: str) -> Policy:
        client = self.apis.org_policy()
        name = f"projects/{project}/policies/{constraint}"
        return call(f"reading the effective {constraint} of {project}", client.get_effective_policy, name=name)

    def _org_policies(self) -> Iterator[Check]:
        top = self.topology
        host_project = top.host.project.id
        attached = {a.project for a in top.attached_runners() if a.env == self.env_name}
        runner_projects = sorted(attached - {host_project})
        constraint = "iam.disableCrossProjectServiceAccountUsage"
        for project in runner_projects:
            policy = self._policy(project, constraint)
            if any(rule.enforce for rule in policy.spec.rules):
                yield Check(
                    f"org-policy:{constraint}:{project}",
                    "fail",
                    f"{constraint} is enforced on {project}: the repository in {host_project} cannot run workflows "
                    f"as its runners",
                    f"ask your organization admin to stop enforcing constraints/{constraint} on {project} "
                    f"(or host the runners in {host_project})",
                )
            else:
                yield Check(
                    f"org-policy:{constraint}:{project}", "pass", f"{project}'s runners may serve {host_project}"
                )
        if not self.is_host:
            return
        remotes = self._policy(host_project, "dataform.restrictGitRemotes")
        allowed = [v for rule in remotes.spec.rules for v in rule.values.allowed_values]
        refused = [v for rule in remotes.spec.rules for v in rule.values.denied_values]
        for hosted in top.repositories:
            if hosted.spec.git is None:
                continue  # no remote: nothing for the constraint to allow
            url = hosted.spec.git.url
            check = self._named("org-policy:dataform.restrictGitRemotes", hosted)
            # The constraint lists full remote URLs, matched whole (Dataform's "Restrict remote repositories"
            # page: the Repository source URL, never a shortened or prefix form).
            denied = any(rule.deny_all for rule in remotes.spec.rules) or url in refused
            if denied or (allowed and url not in allowed):
                yield Check(
                    check,
                    "fail",
                    f"dataform.restrictGitRemotes on {host_project} does not allow {url}: Git sync fails",
                    f"ask your organization admin to add {url} to constraints/dataform.restrictGitRemotes",
                )
            else:
                yield Check(check, "pass", f"{url} is an allowed Git remote")
        automatic = sorted(
            {
                secret.secret_id
                for hosted in top.repositories
                if (secret := hosted.spec.git_secret) is not None and not secret.project and not secret.replicas
            }
        )
        if not automatic:
            return  # user-managed replicas (or no secret here): the location policy is checked at apply
        locations = self._policy(host_project, "gcp.resourceLocations")
        allowed_locations = [v for rule in locations.spec.rules for v in rule.values.allowed_values]
        denied_locations = [v for rule in locations.spec.rules for v in rule.values.denied_values]
        # Automatic replication is a global resource: refused when the denied values name it, or when allowed
        # values exist and none includes it.
        restricted = (
            any(rule.deny_all for rule in locations.spec.rules)
            or any("global" in v for v in denied_locations)
            or (allowed_locations and not any("global" in v for v in allowed_locations))
        )
        if restricted:
            yield Check(
                "org-policy:gcp.resourceLocations",
                "fail",
                f"gcp.resourceLocations restricts locations in {host_project}: automatic replication of the Git "
                f"secret {', '.join(automatic)} is refused",
                "list allowed regions under the secret's `replicas:` in the host's spec (user-managed replication), "
                "or lift the constraint for Secret Manager",
            )
        else:
            yield Check("org-policy:gcp.resourceLocations", "pass", f"no location restriction in {host_project}")

    # --- every requirement of every run, checked by the IAM Policy Troubleshooter -------------

    def _run_requirements(self) -> Iterator[Check]:
        """Each (chain, principal, resource) the environment's runs need, with all its permissions; for
        the host also what the repository needs whatever runs (Git sync, config management, access)."""
        model = AccessModel(self.deployment, self.topology)
        runs = {r.id: r for r in model.runs if r.env == self.env_name}
        groups: dict[tuple[str, str, Resource], list[Requirement]] = {}
        for req in model.requirements:
            if any(r in runs for r in req.runs) or (not req.runs and req.env == self.env_name):
                groups.setdefault((req.chain, req.principal.member, req.resource), []).append(req)
        client = self.apis.troubleshooter()
        for (chain, member, resource), reqs in groups.items():
            principal = reqs[0].principal
            name = f"run:{chain}:{principal.email}:{resource.label.replace(' ', ':')}"
            gone = {principal.email, resource.id} & self.missing_runners
            if gone:
                yield Check(name, "skipped", f"{gone.pop()} does not exist")
                continue
            if principal.kind == "views":  # an authorization, not an IAM member: read the dataset's access list
                yield self._authorization(name, reqs[0])
                continue
            if not member.startswith(("serviceAccount:", "user:")):
                yield Check(
                    name, "skipped", f"the Policy Troubleshooter checks users and service accounts, not {member}"
                )
                continue
            answers = {
                req.permission: self._troubleshoot(client, principal.email, resource, req.permission) for req in reqs
            }
            missing = [p for p, access in answers.items() if access == "NOT_GRANTED"]
            unknown = [p for p, access in answers.items() if access not in ("GRANTED", "NOT_GRANTED")]
            labels = sorted({runs[r].label for req in reqs for r in req.runs if r in runs})
            stake = f"failing runs: {'; '.join(labels)}" if labels else "no run, but the repository needs it"
            first = reqs[0]
            if missing:
                yield Check(
                    name,
                    "fail",
                    f"{principal.label} lacks {', '.join(missing)} on {resource.label} ({first.why}); {stake}",
                    self._requirement_fix(first, missing),
                )
            elif unknown:
                yield Check(
                    name,
                    "skipped",
                    f"the Policy Troubleshooter cannot tell whether {principal.label} has {', '.join(unknown)} on "
                    f"{resource.label} (a conditional grant, or a policy your credentials may not read)",
                )
            else:
                what = f"what {len(labels)} run(s) need" if labels else "what the spec declares"
                yield Check(name, "pass", f"{principal.label} has {what} on {resource.label}")

    def _authorization(self, name: str, req: Requirement) -> Check:
        """An authorized dataset: the source dataset's access list holds an entry for the views' dataset."""
        source, views = req.resource, req.principal.email  # `views:<project>.<dataset>`
        try:
            dataset = call(
                f"reading dataset {source.project}.{source.id}",
                lambda: self.apis.bigquery(source.project).get_dataset(
                    f"{source.project}.{source.id}", retry=bigquery_retry(), timeout=30
                ),
            )
        except GcpNotFound:
            return Check(name, "fail", f"{source.label} does not exist", f"dfinfra apply {req.env}")
        except GcpPermissionDenied as denied:
            return Check(name, "skipped", f"cannot read {source.label}'s access list: {denied}")
        project, dataset_id = views.split(".", 1)
        held = any(
            entry.entity_type == "dataset"
            and (entry.entity_id or {}).get("dataset", {}) == {"projectId": project, "datasetId": dataset_id}
            for entry in dataset.access_entries
        )
        if held:
            return Check(name, "pass", f"{source.label} authorizes the views in {views}")
        return Check(
            name,
            "fail",
            f"{source.label} does not authorize the views in {views} ({req.why}): their readers are refused",
            f"dfinfra apply {req.env}",
        )

    def _troubleshoot(self, client: IamCheckerClient, email: str, resource: Resource, permission: str) -> str:
        """GRANTED, NOT_GRANTED, UNKNOWN_CONDITIONAL or UNKNOWN_INFO_DENIED, from Google's troubleshooter."""
        answer = call(
            f"troubleshooting {permission} for {email}",
            client.troubleshoot_iam_policy,
            request={
                "access_tuple": {"principal": email, "full_resource_name": resource.full_name, "permission": permission}
            },
        )
        return str(answer.access.name)

    def _requirement_fix(self, req: Requirement, missing: list[str]) -> str:
        if req.resource.kind == "crypto_key" and req.assumed:  # else a grant this deployment renders
            return (
                f"gcloud kms keys add-iam-policy-binding {req.resource.id} --member={req.principal.member} "
                "--role=roles/cloudkms.cryptoKeyEncrypterDecrypter   (a key dfinfra does not manage)"
            )
        if req.resource.kind == "bucket" and req.assumed:  # else a grant this deployment renders (8.x)
            return (
                f"gcloud storage buckets add-iam-policy-binding gs://{req.resource.id} --member={req.principal.member} "
                '--role=roles/storage.objectViewer   (or set provider_version: "~> 8.7" and dfinfra grants it)'
            )
        if req.resource.kind == "git_repository_link":
            pushes = any(p.endswith(".fetchReadWriteToken") for p in missing)
            return (
                f"grant {link_accessor_role(pushes)} to {req.principal.member} on {req.resource.id} "
                "(Developer Connect; dfinfra cannot make this grant)"
            )
        if req.resource.kind == "service_account" and req.assumed:  # a runner made elsewhere
            role = (
                "roles/iam.serviceAccountTokenCreator"
                if req.chain == "agent-impersonates"
                else "roles/iam.serviceAccountUser"
            )
            return _owners_grant(req.resource.id, req.principal.member, role)
        if req.assumed:
            narrowest = roles.narrowest_roles(set(missing))
            role = narrowest[0] if narrowest else "a role with " + ", ".join(missing)
            return (
                f"grant {role} to {req.principal.member} on {req.resource.label} "
                "(dfinfra leaves the deployers' own rights to you)"
            )
        return "dfinfra apply --all   (the rendered grants provide this; right after an apply, IAM may still propagate)"


def _owners_grant(email: str, member: str, role: str) -> str:
    """The fix for a grant on a runner made elsewhere: its owner's to make, so addressed to them."""
    return (
        f"ask the account's owner to run: gcloud iam service-accounts add-iam-policy-binding {email} "
        f"--member={member} --role={role}"
    )
