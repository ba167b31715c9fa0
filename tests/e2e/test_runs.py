"""Workflows that actually run: `init` and every spec set, applied through `dfinfra apply --all`, then
every run of the access model executed against the offline cloud's Dataform API, which evaluates the
chains against the IAM terraform wrote (tests/fakegcp/dataform.py, written independently of
`dataform_infra.access`).

Then each rendered grant is removed in turn: exactly the runs the access model says depend on it
(the requirements it alone meets) fail, and every other run still succeeds.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from dataform_infra.errors import DfinfraError
from dataform_infra.scaffold import Answers, scaffold
from dataform_infra.specset import SpecSet
from tests.fakegcp.apis import FakeGoogleApis
from tests.fakegcp.dataform import INVOCATION
from tests.fakegcp.harness import OfflineCloud
from tests.fakegcp.store import Store
from tests.support.dataform_code import CODE
from tests.support.project import Project
from tests.support.runtime import SSH_KEY, TOKEN, seed_runtime
from tests.support.specsets import SPEC_SETS
from tests.support.workers import exclusive, shared_dir

pytestmark = pytest.mark.terraform


@cache
def spec_dir(spec_set: str) -> Path:
    """The shipped spec sets, and what `dfinfra init` writes (generated once per session)."""
    if spec_set != "init":
        return SPEC_SETS[spec_set]
    directory = Path(tempfile.mkdtemp(prefix="dfinfra-init-")) / "environments"
    scaffold(
        directory,
        Answers(
            host_project="acme-dataform-stg",
            host_number="123456789012",
            prod_project="acme-dataform-prd",
            prod_number="210987654321",
            region="europe-west2",
            git_url="https://github.com/acme/dataform.git",
            deployer="user:me@acme.com",
        ),
    )
    return directory


SETS = [*sorted(SPEC_SETS), "init"]


@cache
def workspace(spec_set: str) -> SpecSet:
    return SpecSet(spec_dir(spec_set))


def run_ids(spec_set: str) -> list[str]:
    return [run.id for run in workspace(spec_set).runs()]


@dataclass
class Applied:
    """One spec set applied with dfinfra, its Git token set and its code pushed; `snapshot` is the store."""

    spec_set: str
    snapshot: Path
    caller: str


@pytest.fixture(scope="session")
def applied(tmp_path_factory, terraform_bin, gcs):
    """spec set -> Applied, built on first use: `dfinfra bootstrap/apply --all` and `secret set` through the CLI.

    Built once per test run, not once per worker: the first worker to need a spec set builds it under a lock in
    the directory the workers share, and the others read its snapshot (each test copies the store anyway)."""
    cache_: dict[str, Applied] = {}
    shared = shared_dir(tmp_path_factory)

    def build(spec_set: str) -> Applied:
        if spec_set not in cache_:
            record = shared / f"applied-{spec_set}.json"
            with exclusive(shared / f"applied-{spec_set}.lock"):
                if not record.exists():
                    built = _build(spec_set)
                    record.write_text(json.dumps({"snapshot": str(built.snapshot), "caller": built.caller}))
            known = json.loads(record.read_text())
            cache_[spec_set] = Applied(spec_set, Path(known["snapshot"]), known["caller"])
        return cache_[spec_set]

    def _build(spec_set: str) -> Applied:
        root = tmp_path_factory.mktemp(f"applied-{spec_set}")
        cloud = OfflineCloud(root / "cloud", terraform_bin, gcs)
        project = Project(root / "checkout", cloud, specs=spec_dir(spec_set))
        ws = workspace(spec_set)
        hosts = [ws.topology_of(host) for host in ws.deployment.host_names()]
        caller = hosts[0].host.deployers[0]
        apis = FakeGoogleApis(cloud.store, caller=caller).start()
        cloud.env["DFINFRA_GOOGLE_API_EMULATOR"] = apis.address
        try:
            confirm = [arg for n, e in ws.deployment.environments.items() if e.protected for arg in ("--confirm", n)]
            project.run("bootstrap", "--all", "--auto-approve", *confirm)
            project.run("apply", "--all", "--auto-approve", *confirm)
            for top in hosts:
                apis.caller = top.host.deployers[0]
                for repository in top.repositories:
                    git = repository.spec.git
                    auth = git.secret
                    assert auth is not None
                    # Versions up to the one the repository pins (the SSH example pins version 3).
                    for _ in range(auth.version if isinstance(auth.version, int) else 1):
                        project.run(
                            "secret",
                            "set",
                            top.host_name,
                            "--repository",
                            repository.name,
                            stdin=SSH_KEY if git.ssh else TOKEN + "\n",
                        )
            # Webhook channels' tokens, as a team sets them after the first apply (the next apply sends them).
            for env_name, env in ws.deployment.environments.items():
                for channel in env.alerts.channels if env.alerts else []:
                    if channel.token:
                        apis.caller = env.deployers[0]
                        project.run("secret", "set", env_name, "--channel", channel.name, stdin=TOKEN + "\n")
            seed_runtime(cloud.store, workspace(spec_set), CODE[spec_set], owners=True)
            # The first apply came before the token and the code: its releases could not compile. Now they
            # can; each environment's deployer makes them live.
            for env_name, env in ws.deployment.environments.items():
                apis.caller = env.deployers[0]
                project.run("release", env_name)
            _assert_releases_live(apis, ws)
            apis.caller = caller
            # Every workflow of every environment runs, as `dfinfra run` does it right after apply.
            for env_name, env in ws.deployment.environments.items():
                for workflow in env.workflows:
                    out = project.run("run", env_name, workflow.name, "--wait", "--poll", "0.05", "--timeout", "60")
                    assert f"{workflow.name} succeeded" in out, out
            _change_every_release_and_apply(project, ws, apis, confirm)
            apis.caller = caller
        finally:
            apis.stop()
        snapshot = root / "snapshot.sqlite"
        with sqlite3.connect(cloud.store.path) as source, sqlite3.connect(snapshot) as target:
            source.backup(target)
        return Applied(spec_set, snapshot, caller)

    return build


def _assert_releases_live(apis: FakeGoogleApis, ws: SpecSet) -> dict[str, str]:
    """Release config -> its live compilation; every release config of the deployment has one."""
    from dataform_infra.gcp.releases import config_names

    live = {
        config: apis.dataform.live_compilation(config)
        for env in ws.deployment.environments
        for config in config_names(ws.deployment.part(env), env).values()
    }
    assert {config: name for config, name in live.items() if not name} == {}
    return live


def _change_every_release_and_apply(project: Project, ws: SpecSet, apis: FakeGoogleApis, confirm: list[str]) -> None:
    """#23: a cron, a var and the Git ref of every release changed and applied (the provider's full update
    empties each live compilation): dfinfra makes each live again, and the next tick of every workflow's own
    cron (its release's not having fired since) runs."""
    import yaml

    before = _assert_releases_live(apis, ws)
    for env_name, env in ws.deployment.environments.items():
        if not env.releases:
            continue
        spec = yaml.safe_load(project.spec(env_name).read_text())
        for release in spec["releases"]:
            release["git_ref"] = "refs/tags/v2"
            release.setdefault("compilation", {}).setdefault("vars", {})["dfinfra_change"] = "2"
            if release.get("cron"):
                release["cron"] = "5 4 * * *"
        project.spec(env_name).write_text(yaml.safe_dump(spec, sort_keys=False))
    for env_name in ws.apply_order():
        apis.caller = ws.deployment.environments[env_name].deployers[0]
        out = project.run("apply", env_name, "--auto-approve", *confirm)
        for release in ws.deployment.environments[env_name].releases:
            assert f"{env_name}: release {release.name} now serves" in out, out
    after = _assert_releases_live(apis, ws)
    assert all(after[config] != before[config] for config in after)  # compiled again, not left over
    for env_name, env in ws.deployment.environments.items():
        for workflow in env.workflows:
            repository = ws.topology_of(env_name).workflow_repository(env_name, workflow.release).api_name
            outcome = apis.dataform.run_workflow_cron(f"{repository}/workflowConfigs/{workflow.name}")
            assert outcome == ("SUCCEEDED", []), (workflow.name, outcome)


def _execute(applied: Applied, store: Store, monkeypatch) -> dict[str, tuple[str, list[str]]]:
    """Every run of the model, started the way it starts in Google: (state, reasons) per run id."""
    from dataform_infra.gcp.clients import GoogleApis
    from dataform_infra.gcp.runs import WorkflowRun

    ws = workspace(applied.spec_set)
    apis = FakeGoogleApis(store, caller=applied.caller).start()
    monkeypatch.setenv("DFINFRA_GOOGLE_API_EMULATOR", apis.address)
    outcomes: dict[str, tuple[str, list[str]]] = {}
    try:
        for run in ws.runs():
            if run.kind == "scheduled":
                outcomes[run.id] = apis.run_scheduled(f"{run.repository.api_name}/workflowConfigs/{run.workflow}")
            elif run.kind == "workspace":
                assert run.started_by is not None
                outcomes[run.id] = apis.run_workspace(run.started_by.member, run.repository.api_name)
            elif run.kind == "triggered":
                outcomes[run.id] = fire(apis, ws.deployment.environments[run.env].project.id, run)
            else:
                assert run.started_by is not None and run.workflow is not None
                apis.caller = run.started_by.member
                try:
                    manual = WorkflowRun(ws.deployment.part(run.env), run.env, run.workflow, GoogleApis())
                    manual.start()
                    outcome = manual.wait(lambda _: None, timeout=30, poll=0.01)
                    outcomes[run.id] = (outcome.state, outcome.failures)
                except DfinfraError as error:
                    outcomes[run.id] = ("FAILED", [str(error)])
    finally:
        apis.stop()
    return outcomes


def fire(apis: FakeGoogleApis, project: str, run) -> tuple[str, list[str]]:
    """The event that starts a triggered run, as its source produces it: (state, reasons) at that run's trigger."""
    trigger = run.trigger
    events = apis.events
    if trigger.kind == "bucket":
        deliveries = events.write_object(trigger.bucket, f"{trigger.prefix or ''}batch-0001.csv")
    elif trigger.kind == "topic":
        topic = trigger.topic if "/" in trigger.topic else f"projects/{project}/topics/{trigger.topic}"
        deliveries = events.publish(topic)
    elif trigger.kind == "audit_log":
        event = trigger.audit_log
        deliveries = events.write_audit_log(event.service, event.method, (event.resource or "x").replace("*", "x"))
    else:
        deliveries = [events.tick(run.trigger_name)]
    mine = [d for d in deliveries if d.trigger == run.trigger_name]
    assert len(mine) == 1, (run.id, deliveries)
    return mine[0].state, mine[0].reasons


def _fresh_store(applied: Applied, tmp_path: Path) -> Store:
    path = tmp_path / "cloud.sqlite"
    shutil.copyfile(applied.snapshot, path)
    return Store(path)


@pytest.mark.parametrize("spec_set", SETS)
def test_every_run_of_every_spec_set_succeeds(spec_set, applied, tmp_path, monkeypatch):
    """Scheduled runs, runs a deployer or a person starts, and workspace runs: all succeed."""
    done = applied(spec_set)
    outcomes = _execute(done, _fresh_store(done, tmp_path), monkeypatch)
    assert set(outcomes) == set(run_ids(spec_set))
    assert {run: outcome for run, outcome in outcomes.items() if outcome[0] != "SUCCEEDED"} == {}


def _grants() -> list[tuple[str, str]]:
    out = []
    for spec_set in SETS:
        ws = workspace(spec_set)
        for env in ws.deployment.environments:
            out += [(spec_set, grant.address + "@" + env) for grant in ws.module(env).grants]
    return out


def _store_object(store: Store, grant) -> str:
    """The id of the IAM member the offline provider stored for `grant`."""
    resource = grant.resource
    if grant.acl or grant.authorized:  # an entry of the dataset's access list
        for _, id_, body in store.list(str(grant.resource_type)):
            if (body["project"], body["dataset_id"]) != (resource.project, resource.id):
                continue
            if grant.authorized:
                entry = (body.get("dataset") or [{}])[0]
                if (entry.get("dataset") or [{}])[0].get("dataset_id") == grant.principal.email.split(".", 1)[1]:
                    return id_
            elif body.get("role") == grant.role_value and (
                body.get(str(grant.member_attribute)) == grant.principal.member.split(":", 1)[1]
            ):
                return id_
        raise AssertionError(f"{grant.address} is not in the offline cloud")
    for _, id_, body in store.list(str(grant.resource_type)):
        if body["role"] != grant.role or body["member"] != grant.principal.member:
            continue
        parent = {
            "project": lambda b: b.get("project", "").removeprefix("projects/") == resource.project,
            "service_account": lambda b: b["service_account_id"].endswith(f"/serviceAccounts/{resource.id}"),
            "dataset": lambda b: (b["project"], b["dataset_id"]) == (resource.project, resource.id),
            "secret": lambda b: b["secret_id"] == f"projects/{resource.project}/secrets/{resource.id}",
            "repository": lambda b: b["repository"].endswith(f"/repositories/{resource.id}"),
            "crypto_key": lambda b: b["crypto_key_id"] == resource.id,
            "bucket": lambda b: b["bucket"].removeprefix("b/") == resource.id,
            "connection": lambda b: (
                (b["project"], b["location"], b["connection_id"]) == (resource.project, resource.region, resource.id)
            ),
        }[resource.kind]
        if parent(body):
            return id_
    raise AssertionError(f"{grant.address} is not in the offline cloud")


@pytest.mark.parametrize(("spec_set", "grant_id"), _grants())
def test_removing_a_grant_fails_exactly_the_runs_validate_predicts(spec_set, grant_id, applied, tmp_path, monkeypatch):
    done = applied(spec_set)
    ws = workspace(spec_set)
    address, env = grant_id.rsplit("@", 1)
    grant = next(g for g in ws.module(env).grants if g.address == address)
    coverage = ws.coverage()
    predicted = {
        run
        for req in coverage.requirements_served_by(grant)
        if not req.assumed and coverage.grants_for(req) == [grant]
        for run in req.runs
    }

    store = _fresh_store(done, tmp_path)
    store.delete(str(grant.resource_type), _store_object(store, grant))
    outcomes = _execute(done, store, monkeypatch)

    failed = {run for run, (state, _) in outcomes.items() if state != "SUCCEEDED"}
    assert failed == predicted, {run: outcomes[run] for run in failed ^ predicted}


# --- `dfinfra run` and `dfinfra doctor` on an applied copy of the shipped environments ------------


@contextlib.contextmanager
def _checkout(applied, tmp_path: Path, spec_set: str) -> Iterator[tuple[Project, FakeGoogleApis, Store]]:
    """A user's checkout of `spec_set` over a fresh copy of its applied offline cloud."""
    done = applied(spec_set)
    store = _fresh_store(done, tmp_path)
    cloud = OfflineCloud(tmp_path / "cloud-root", "terraform")
    cloud.env["FAKEGCP_STORE"] = str(store.path)
    root = tmp_path / "checkout"
    (root / "environments").mkdir(parents=True)
    for spec in SPEC_SETS[spec_set].glob("*.yaml"):
        shutil.copy(spec, root / "environments" / spec.name)
    apis = FakeGoogleApis(store, caller=done.caller).start()
    cloud.env.update(apis.env)  # Google's gRPC APIs and BigQuery's REST one
    project = Project.__new__(Project)
    project.root, project.cloud = root, cloud
    try:
        yield project, apis, store
    finally:
        apis.stop()


@pytest.fixture()
def shipped(applied, tmp_path):
    with _checkout(applied, tmp_path, "shipped") as checkout:
        yield checkout


PROD_WRITES_MARTS = "google_bigquery_dataset_iam_member.dataform_prod_runner_writes_marts"


def test_run_reports_googles_reason_when_the_run_fails(shipped):
    project, apis, store = shipped
    apis.run_seconds = 0.3  # long enough to be seen running
    grant = next(g for g in workspace("shipped").module("prod").grants if g.address == PROD_WRITES_MARTS)
    store.delete(str(grant.resource_type), _store_object(store, grant))
    out = project.run("run", "prod", "prod-daily", "--wait", "--poll", "0.05", expect=1)
    assert "prod-daily: RUNNING" in out and "prod-daily: FAILED" in out
    assert (
        "error: prod-daily failed: projects/acme-analytics-staging/locations/europe-west2/repositories/analytics/"
        in out
    )
    assert "Permission bigquery.tables.create denied on dataset acme-analytics-prod:marts" in out


def test_run_without_wait_prints_the_invocation(shipped):
    project, _, _ = shipped
    out = project.run("-q", "run", "staging", "staging-daily")
    assert out.startswith(
        "projects/acme-analytics-staging/locations/europe-west2/repositories/analytics/workflowInvocations/"
    )


def test_run_gives_up_at_the_timeout_and_says_it_is_still_running(shipped):
    project, apis, _ = shipped
    apis.run_seconds = 30
    out = project.run("run", "prod", "prod-daily", "--wait", "--timeout", "0.3", "--poll", "0.05", expect=1)
    assert "error: prod-daily is still RUNNING after 0.3s: projects/" in out


def test_ctrl_c_while_waiting_cancels_the_invocation(shipped, monkeypatch):
    import signal
    import time

    project, apis, _ = shipped
    apis.run_seconds = 60
    process = project.popen("run", "prod", "prod-daily", "--wait", "--poll", "0.05")
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "prod-daily: RUNNING" not in seen and time.monotonic() < deadline:
        seen += process.stdout.readline()
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[0]
    assert process.returncode == 130, seen + rest
    invocation = next(line.split()[-1] for line in seen.splitlines() if line.startswith("started "))
    assert f"interrupted: cancelled {invocation}" in rest
    from dataform_infra.gcp.clients import GoogleApis

    monkeypatch.setenv("DFINFRA_GOOGLE_API_EMULATOR", apis.address)
    assert GoogleApis().dataform().get_workflow_invocation(name=invocation).state.name == "CANCELLED"


def test_run_of_an_unknown_workflow_is_bad_input(shipped):
    project, _, _ = shipped
    out = project.run("run", "prod", "no-such-workflow", expect=2)
    assert "no workflow 'no-such-workflow' in environment 'prod' (its workflows: prod-daily)" in out


def _doctor(project, env: str) -> dict[str, str]:
    import re

    out = project.run("doctor", env, expect=None)
    return {name: status for status, name in re.findall(r"^(PASS|FAIL|SKIP|INFO)  (\S+):", out, re.M)}


def test_doctor_checks_every_requirement_of_every_run_live(shipped):
    project, _, _ = shipped
    staging = _doctor(project, "staging")
    runs = {name: status for name, status in staging.items() if name.startswith("run:")}
    assert runs and set(runs.values()) == {"PASS", "SKIP"}
    # Groups cannot be troubleshot; everything else is checked permission by permission.
    groups = {"analytics-engineers@acme.example", "data-analysts@acme.example", "data-platform-admins@acme.example"}
    assert {n for n, s in runs.items() if s == "SKIP"} == {n for n in runs if n.split(":")[2] in groups}
    assert (
        "run:manage-configs:terraform-deployer@acme-ci-automation.iam.gserviceaccount.com:repository:analytics" in runs
    )
    assert staging["project-number:acme-analytics-staging"] == "PASS"
    assert staging["org-policy:dataform.restrictGitRemotes"] == "PASS"
    assert staging["repository-token-status"] == "PASS"  # Dataform's own ComputeRepositoryAccessTokenStatus
    assert (
        staging[
            "run:agent-schedules:service-481516234200@gcp-sa-dataform.iam.gserviceaccount.com:project:acme-analytics-staging"
        ]
        == "PASS"
    )
    prod = _doctor(project, "prod")
    assert prod["org-policy:iam.disableCrossProjectServiceAccountUsage:acme-analytics-prod"] == "PASS"
    assert "FAIL" not in prod.values()


def test_doctor_reports_a_token_dataform_cannot_use(shipped):
    project, apis, _ = shipped
    apis.set_org_policy("acme-analytics-staging", "dataform.restrictGitRemotes", allowed_values=["https://gitlab.com/"])
    out = project.run("doctor", "staging", expect=1)
    assert "FAIL  org-policy:dataform.restrictGitRemotes: dataform.restrictGitRemotes on acme-analytics-staging" in out
    assert "FAIL  repository-token-status: Dataform reports the token of " in out and " as INVALID" in out


def test_doctor_finds_what_breaks_runs(shipped):
    project, apis, store = shipped
    store.add_project("acme-analytics-staging", "481516234299")  # the spec's number is a typo of this
    apis.set_org_policy("acme-analytics-prod", "iam.disableCrossProjectServiceAccountUsage", enforce=True)
    grant = next(g for g in workspace("shipped").module("staging").grants if g.rule == "agent-has-its-role")
    store.delete(str(grant.resource_type), _store_object(store, grant))
    out = project.run("doctor", "staging", expect=1)
    assert (
        "FAIL  project-number:acme-analytics-staging: environments/staging.yaml says project.number 481516234200, "
        in out
    )
    assert "fix: set project.number: 481516234299 in environments/staging.yaml" in out
    assert "lacks dataform.compilationResults.create, dataform.workflowInvocations.create on project " in out
    assert "failing runs: staging-daily (scheduled)" in out  # doctor prod reports prod-daily's
    # prod's module owns prod's runner, so `doctor prod` checks whether its project lets the runner serve staging.
    prod = project.run("doctor", "prod", expect=1)
    assert "FAIL  org-policy:iam.disableCrossProjectServiceAccountUsage:acme-analytics-prod" in prod


def test_doctor_checks_each_repository_of_a_multi_repository_host(applied, tmp_path):
    """Per repository: its Git secret (one made by dfinfra, one another team keeps in its own project), the
    agent's access to it, Dataform's own token check, the remote allowed by org policy. A broken one is
    named, with the command that fixes it for that repository."""
    with _checkout(applied, tmp_path, "multi-repository") as (project, _, store):
        staging = _doctor(project, "staging")
        for repository in ("analytics", "marketing"):
            for check in ("git-secret-version", "agent-reads-git-secret", "repository-token-status"):
                assert staging[f"{check}:{repository}"] == "PASS", staging
            assert staging[f"org-policy:dataform.restrictGitRemotes:{repository}"] == "PASS"
        assert "FAIL" not in staging.values()
        grant = next(
            g
            for g in workspace("multi-repository").module("staging").grants
            if g.rule == "agent-reads-git-secret" and g.resource.id == "marketing-github-token"
        )
        store.delete(str(grant.resource_type), _store_object(store, grant))
        out = project.run("doctor", "staging", expect=1)
        assert "FAIL  agent-reads-git-secret:marketing: " in out
        assert "projects/acme-platform-secrets/secrets/marketing-github-token" in out
        assert "PASS  agent-reads-git-secret:analytics" in out
        assert "repository marketing" in out  # the run requirement names what fails: its Git sync
        for kind, id_, _ in store.list("secret_version"):
            if "/secrets/marketing-github-token/" in id_:
                store.delete(kind, id_)
        status = project.run("secret", "status", "staging", "--repository", "marketing")
        assert "  no versions yet: dfinfra secret set staging --repository marketing\n" in status


def test_doctor_checks_each_setup_of_a_platform_team_and_the_authorized_dataset(applied, tmp_path):
    """#24: every self-hosting environment of examples/platform-team passes doctor in its own setup; prod's
    authorized dataset is read from the warehouse's access list, and a missing authorization is named with
    the views' readers it fails."""
    with _checkout(applied, tmp_path, "platform-team") as (project, apis, store):
        for env in ("dev", "test", "prod"):
            apis.caller = workspace("platform-team").deployment.environments[env].deployers[0]
            checks = _doctor(project, env)
            assert {name: s for name, s in checks.items() if s == "FAIL"} == {}, env
        check = "run:authorized-views:acme-plat-prod.reporting:dataset:acme-plat-prod.warehouse"
        assert checks[check] == "PASS", checks
        # #25: the channels and the policy are live, and every link of the landing triggers is checked.
        alerting = (
            "alert-channel:data-platform-oncall",
            "alert-channel:incident-bus",
            "alert-policy:prod",
        )
        assert {name: checks.get(name) for name in alerting} == dict.fromkeys(alerting, "PASS"), checks
        orchestrator = "dataform-orchestrator@acme-plat-prod.iam.gserviceaccount.com"
        linked = {
            n for n in checks if n.startswith(("run:trigger-invokes:", "run:event-delivery:")) or orchestrator in n
        }
        assert len(linked) >= 4 and all(checks[n] == "PASS" for n in linked), linked
        grant = next(g for g in workspace("platform-team").module("prod").grants if g.authorized)
        store.delete(str(grant.resource_type), _store_object(store, grant))
        out = project.run("doctor", "prod", expect=1)
        assert f"FAIL  {check}: dataset acme-plat-prod.warehouse does not authorize the views in " in out, out
        assert "dfinfra apply prod" in out
        ((_, policy, _),) = store.list("google_monitoring_alert_policy")
        store.delete("google_monitoring_alert_policy", policy)
        out = project.run("doctor", "prod", expect=1)
        assert "FAIL  alert-policy:prod: alert policy 'Dataform prod: a run failed' does not exist" in out, out


def test_adopt_finds_each_repository_and_its_configs_where_they_live(applied, tmp_path):
    """`adopt` asks Google for each repository by its name and each config in its release's repository; a
    secret another project keeps is never adopted."""
    with _checkout(applied, tmp_path, "multi-repository") as (project, _, _):
        out = project.run("adopt", "staging", "--dry-run", "--json")
        found = {f["object"]: (f["spec_path"], f["name"], f["exists"]) for f in json.loads(out[out.index("[") :])}
    prefix = "projects/acme-data-staging/locations/europe-west1/repositories"
    assert found["repository analytics"] == ("repositories[0]", f"{prefix}/analytics", True)
    assert found["repository marketing"] == ("repositories[1]", f"{prefix}/marketing", True)
    assert found["secret analytics-github-token"][2] is True
    assert not [what for what in found if "marketing-github-token" in what]  # the platform team's: not ours
    assert found["release config marketing-staging"][1] == f"{prefix}/marketing/releaseConfigs/marketing-staging"
    assert found["workflow config marketing-staging-daily"][1] == (
        f"{prefix}/marketing/workflowConfigs/marketing-staging-daily"
    )
    assert all(exists for _, _, exists in found.values())


# --- runs started by events, and the alerts a failed run opens (platform-team's prod) -----------------

LANDING = "acme-plat-prod-landing"
PROD_RUNNER = "dataform-prod@acme-plat-prod.iam.gserviceaccount.com"
PROD_PROJECT = "//cloudresourcemanager.googleapis.com/projects/acme-plat-prod"


@pytest.fixture()
def platform(applied, tmp_path):
    with _checkout(applied, tmp_path, "platform-team") as checkout:
        yield checkout


def _invocations(store: Store) -> dict[str, dict]:
    return {id_: body for _, id_, body in store.list(INVOCATION)}


def test_an_object_under_the_prefix_starts_exactly_that_workflow_as_its_runner(platform):
    _, apis, store = platform
    before = _invocations(store)
    (delivery,) = apis.events.write_object(LANDING, "exports/daily/2026-12-04.csv")
    assert (delivery.trigger, delivery.state) == ("dataform-prod-landing-gcs", "SUCCEEDED"), delivery
    started = {k: v for k, v in _invocations(store).items() if k not in before}
    assert list(started) == [delivery.result]  # exactly one run: the one the orchestration reports
    (run,) = started.values()
    assert run["workflow_config"].endswith("/repositories/warehouse/workflowConfigs/prod-landing")
    assert run["runner"] == PROD_RUNNER
    assert {a["target"]["name"] for a in run["actions"]} == {"landed_batches", "landed_batches_complete"}

    # Another prefix reaches the trigger (Eventarc filters on the bucket only) but starts nothing.
    (ignored,) = apis.events.write_object(LANDING, "exports/weekly/2026-12-04.csv")
    assert (ignored.state, ignored.result) == ("SUCCEEDED", "ignored exports/weekly/2026-12-04.csv")
    # Another bucket has no trigger.
    assert apis.events.write_object("acme-plat-landing", "exports/daily/x.csv") == []
    assert len(_invocations(store)) == len(before) + 1


def test_a_failed_runs_completion_entry_matches_its_alert_policy_and_a_succeeded_one_does_not(platform):
    _, apis, store = platform
    (succeeded,) = apis.events.write_object(LANDING, "exports/daily/ok.csv")
    grant = next(g for g in workspace("platform-team").module("prod").grants if g.rule == "runner-runs-jobs")
    assert grant.principal.email == PROD_RUNNER
    store.delete(str(grant.resource_type), _store_object(store, grant))
    (failed,) = apis.events.write_object(LANDING, "exports/daily/late.csv")
    assert failed.state == "FAILED" and "ended FAILED" in failed.reasons[0], failed

    entries = {e["jsonPayload"]["workflowInvocationId"]: e for e in apis.events.completion_entries()}
    ok = entries[succeeded.result.rsplit("/", 1)[-1]]
    failed_run = next(k for k, v in _invocations(store).items() if v["final_state"] == "FAILED")
    bad = entries[failed_run.rsplit("/", 1)[-1]]
    assert (ok["jsonPayload"]["terminalState"], bad["jsonPayload"]["terminalState"]) == ("SUCCEEDED", "FAILED")
    assert apis.events.alerts_matching(bad) == ["Dataform prod: a run failed"]
    assert apis.events.alerts_matching(ok) == []
    # Another environment's failed run (test has no alerts) and a run by hand without a config match nothing.
    assert apis.events.alerts_matching({**bad, "jsonPayload": {**bad["jsonPayload"], "workflowConfigId": "x"}}) == []
    unnamed = {k: v for k, v in bad["jsonPayload"].items() if k != "workflowConfigId"}
    assert apis.events.alerts_matching({**bad, "jsonPayload": unnamed}) == []


def test_removing_an_orchestrator_grant_fails_the_trigger_at_the_link_validate_names(platform):
    """Each orchestrator grant, removed: the delivery fails with Google's message naming that grant's permission."""
    _, apis, store = platform
    coverage = workspace("platform-team").coverage()
    for grant in workspace("platform-team").module("prod").grants:
        if grant.rule not in (
            "orchestrator-invokes-workflows",
            "orchestrator-receives-events",
            "storage-agent-publishes-events",
            "orchestrator-starts-runs",
            "orchestrator-acts-as-runner",
        ):
            continue
        kind, id_ = str(grant.resource_type), _store_object(store, grant)
        body = store.get(kind, id_)
        assert body is not None
        store.delete(kind, id_)
        (delivery,) = apis.events.write_object(LANDING, "exports/daily/again.csv")
        needed = {r.permission for r in coverage.requirements_served_by(grant) if any("-gcs" in run for run in r.runs)}
        assert delivery.state != "SUCCEEDED", grant.address
        assert any(p in delivery.reasons[0] for p in needed), (grant.address, needed, delivery.reasons)
        store.put(kind, id_, body)


def test_run_via_trigger_executes_the_orchestration_and_reports_the_run(platform):
    project, apis, store = platform
    out = project.run("run", "prod", "prod-landing", "--via-trigger", "--poll", "0.05", expect=1)
    assert "'workflows.executions.create' denied on resource 'projects/acme-plat-prod'" in out, out
    # Whoever smoke-tests the event path starts executions, as the trigger does: Workflows Invoker (their own).
    invoker = {"role": "roles/workflows.invoker", "member": apis.caller, "resource": PROD_PROJECT}
    store.put("external:iam", "smoke-tester", invoker)
    out = project.run("run", "prod", "prod-landing", "--via-trigger", "--poll", "0.05")
    assert "prod-landing succeeded via dataform-prod-landing-gcs: projects/acme-plat-prod/locations/" in out, out
    out = project.run(
        "run",
        "prod",
        "prod-landing",
        "--via-trigger",
        "--trigger",
        "dataform-prod-landing-cron",
        "--json",
        "--poll",
        "0.05",
    )
    outcome = json.loads(out[out.index("{") :])  # after the `started` line on stderr
    assert (outcome["state"], outcome["trigger"]) == ("SUCCEEDED", "dataform-prod-landing-cron"), outcome
    assert outcome["invocation"].startswith("projects/acme-plat-prod/locations/europe-west2/repositories/warehouse/")
    grant = next(g for g in workspace("platform-team").module("prod").grants if g.rule == "orchestrator-acts-as-runner")
    store.delete(str(grant.resource_type), _store_object(store, grant))
    out = project.run("run", "prod", "prod-landing", "--via-trigger", "--poll", "0.05", expect=1)
    assert "iam.serviceAccounts.actAs" in out and PROD_RUNNER in out, out
    out = project.run("run", "prod", "prod-daily", "--via-trigger", expect=2)
    assert "has no `triggers`" in out
