"""#25: runs started by events (a bucket, a topic, an audit-log entry, Cloud Scheduler) and failed-run alerts.

What the spec refuses (with its line), what a target environment's module renders (the orchestrator's grants,
one orchestration per trigger, channels and a policy in the host project), the access model's triggered runs, and
the rendered failed-run filter evaluated by the offline cloud's Cloud Logging evaluator (not string-compared)."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dataform_infra.access import cover
from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.render.hcl import layout, quote
from dataform_infra.render.module import build_module, failed_run_filter
from dataform_infra.spec.loader import load_deployment
from dataform_infra.specset import SpecSet
from tests.fakegcp.logfilter import matches
from tests.hcl_schema import check_module
from tests.spec.test_properties import _LITERAL, SETTINGS, _code, _decode, hostile_text, yaml_scalars
from tests.specs import host, target, write_specs


def with_operations(triggers: list[dict] | None = None, alerts: dict | None = None, provider: str = "~> 8.7") -> dict:
    """The target environment, its workflow started by `triggers`, alerting with `alerts`."""
    spec = target()
    spec["provider_version"] = provider
    spec["workflows"][0]["triggers"] = triggers if triggers is not None else [{"bucket": "acme-drop", "prefix": "in/"}]
    if alerts is not None:
        spec["alerts"] = alerts
    return spec


def setup(tmp_path, **changes) -> SpecSet:
    return SpecSet(write_specs(tmp_path, {"staging": host(), "prod": with_operations(**changes)}))


def problems(tmp_path, spec: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": host(), "prod": spec}))
    return [p.describe() for p in info.value.problems]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({}, "set exactly one of bucket, topic, audit_log or schedule"),
        ({"bucket": "acme-drop", "topic": "t-1"}, "set exactly one of bucket, topic, audit_log or schedule"),
        ({"topic": "landing", "prefix": "in/"}, "prefix filters a bucket's objects"),
        ({"topic": "landing", "location": "eu"}, "location is a bucket's or an audit-log trigger's"),
        ({"topic": "landing", "time_zone": "Europe/London"}, "time_zone is the schedule's"),
        ({"bucket": "Bad_Bucket!"}, "a bucket name is 3-63 lowercase"),
        ({"topic": "googtopic"}, "not with 'goog'"),
        ({"topic": "projects/acme-other-proj/topics/t-1"}, "is in another project"),
        ({"schedule": "61 * * * *"}, "is not a unix-cron schedule"),
        ({"audit_log": {"service": "bigquery", "method": "x.Y"}}, "a service is e.g. 'bigquery.googleapis.com'"),
        ({"audit_log": {"service": "bigquery.googleapis.com", "method": "Insert Job"}}, "a method is its audit-log"),
        ({"bucket": "acme-drop", "prefix": "in/\nx"}, "without control characters"),
    ],
)
def test_a_trigger_that_cannot_work_is_refused_at_its_line(tmp_path, trigger, message):
    [problem] = problems(tmp_path, with_operations([trigger]))
    assert message in problem and "prod.yaml:" in problem and "workflows[0].triggers" in problem, problem


def test_triggers_and_alerts_need_provider_8_and_name_what_exists(tmp_path):
    old = problems(
        tmp_path / "old", with_operations(alerts={"channels": [{"name": "c", "email": "a@b.co"}]}, provider="~> 7.45")
    )
    assert any("workflows[0].triggers" in p and "needs provider 8.x" in p for p in old), old
    assert any("alerts" in p and "google_monitoring_alert_policy) needs provider 8.x" in p for p in old), old
    unknown = {
        "channels": [{"name": "c", "email": "a@b.co"}, {"name": "c", "webhook": "https://h.example/x"}],
        "workflows": ["nope"],
    }
    found = problems(tmp_path / "names", with_operations(alerts=unknown))
    assert any("alerts.channels[1]" in p and "duplicate channel (by its Terraform name) 'c'" in p for p in found), found
    assert any("alerts.workflows[0]" in p and "workflow 'nope' is not declared" in p for p in found), found
    twice = problems(tmp_path / "twice", with_operations([{"topic": "t-1"}, {"topic": "t-1"}]))
    assert any("duplicate trigger" in p for p in twice), twice
    bad_channel = problems(tmp_path / "channel", with_operations(alerts={"channels": [{"name": "c"}]}))
    assert any("set exactly one of email, pubsub_topic or webhook" in p for p in bad_channel), bad_channel
    query = problems(
        tmp_path / "query", with_operations(alerts={"channels": [{"name": "c", "webhook": "https://h/x?token=1"}]})
    )
    assert any("without a query string" in p for p in query), query


def test_alert_timings_below_monitorings_minimums_are_refused(tmp_path):
    fast = {"channels": [{"name": "c", "email": "a@b.co"}], "notify_at_most_every": "1s"}
    assert any("at least 300s" in p for p in problems(tmp_path / "rate", with_operations(alerts=fast)))
    short = {"channels": [{"name": "c", "email": "a@b.co"}], "auto_close_after": "5s"}
    assert any("at least 1800s" in p for p in problems(tmp_path / "close", with_operations(alerts=short)))


def test_the_orchestrator_is_never_a_runner_and_long_names_stay_apart(tmp_path):
    spec = with_operations()
    spec["orchestrator"] = "target-runner"
    [problem] = problems(tmp_path / "runner", spec)
    assert "orchestrator" in problem and "also a runner" in problem
    long = with_operations([{"topic": "t-1"}])
    stem = "prod-landing-" + "a" * 40
    long["workflows"].append({**copy.deepcopy(long["workflows"][0]), "name": stem + "-eu"})
    long["workflows"].append({**copy.deepcopy(long["workflows"][0]), "name": stem + "-us"})
    ws = SpecSet(write_specs(tmp_path / "long", {"staging": host(), "prod": long}))
    names = [n for w in ws.deployment.environments["prod"].workflows for n in w.trigger_names()]
    assert len(set(names)) == 3 and all(len(n) <= 63 for n in names), names
    # Two environments in one project whose workflows share a name would share their triggers' names.
    staging = host()
    staging["provider_version"] = "~> 8.7"
    staging["workflows"][0]["triggers"] = [{"topic": "t-1"}]
    staging["orchestrator"] = "staging-orchestrator"
    prod = with_operations([{"topic": "t-1"}])
    prod["project"] = staging["project"]
    prod["state"]["bucket"] = "acme-other-tfstate"
    prod["workflows"][0]["name"] = "host-daily"
    prod["workflows"][0]["runner"] = "target-runner"
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path / "shared", {"staging": staging, "prod": prod}))
    assert any("would be named 'dataform-host-daily-pubsub'" in p.describe() for p in info.value.problems)


def test_two_environments_in_one_project_need_two_orchestrators(tmp_path):
    staging = host()
    staging["workflows"][0]["triggers"] = [{"topic": "t-1"}]
    staging["provider_version"] = "~> 8.7"
    prod = with_operations()
    prod["project"] = staging["project"]
    prod["state"]["bucket"] = "acme-other-tfstate"
    prod["runners"][0]["name"] = "prod-runner"
    prod["workflows"][0]["runner"] = "prod-runner"
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": staging, "prod": prod}))
    assert any("orchestrator" in p.describe() and "same project" in p.describe() for p in info.value.problems)


def test_a_bucket_trigger_renders_its_orchestration_and_exactly_the_chains_grants(tmp_path):
    ws = setup(tmp_path)
    module = ws.module("prod")
    grants = {
        (g.rule, g.role, g.principal.kind, g.resource.kind)
        for g in module.grants
        if g.principal.kind in ("orchestrator", "storage_agent") or g.rule == "deployer-acts-as-orchestrator"
    }
    assert grants == {
        ("orchestrator-invokes-workflows", "roles/workflows.invoker", "orchestrator", "project"),
        ("orchestrator-receives-events", "roles/eventarc.eventReceiver", "orchestrator", "project"),
        ("storage-agent-publishes-events", "roles/pubsub.publisher", "storage_agent", "project"),
        ("orchestrator-starts-runs", "roles/dataform.editor", "orchestrator", "repository"),
        ("orchestrator-acts-as-runner", "roles/iam.serviceAccountUser", "orchestrator", "service_account"),
        ("deployer-acts-as-orchestrator", "roles/iam.serviceAccountUser", "deployer", "service_account"),
    }
    starts = next(g for g in module.grants if g.rule == "orchestrator-starts-runs")
    assert starts.resource.project == "acme-host-proj" and starts.resource.id == "analytics"  # the repository only
    agent = next(g for g in module.grants if g.rule == "storage-agent-publishes-events")
    assert agent.principal.email == "service-222222222222@gs-project-accounts.iam.gserviceaccount.com"
    [orchestration] = module.orchestrations
    assert (orchestration.workflow_name, orchestration.project) == ("dataform-target-daily-gcs", "acme-target-proj")
    assert orchestration.env_vars["OBJECT_PREFIX"] == "in/"
    [trigger] = module.event_triggers
    assert trigger.criteria == (("bucket", "acme-drop", ""), ("type", "google.cloud.storage.object.v1.finalized", ""))
    assert trigger.location == "europe-west2"
    # What attaches the orchestrator waits for the deployers' act-as on it (strict act-as on a first apply).
    acting = next(g for g in module.grants if g.rule == "deployer-acts-as-orchestrator")
    assert f"{acting.resource_type}.{acting.name}" in {str(d) for d in (*trigger.depends_on, *orchestration.depends_on)}
    assert ws.validate().violations == [] and ws.coverage().unserved == []
    files = render_module(module)
    assert check_module(files, "8.7.0") == []
    # No spec value reaches the code the workflow runs: the bucket trigger's source is the template's alone.
    source = files["events.tf"].split("source_contents = <<-EOT", 1)[1].split("EOT", 1)[0]
    assert "in/" not in source and "acme" not in source and "target-daily" not in source


def test_each_kind_of_trigger_is_a_run_with_the_links_it_needs(tmp_path):
    triggers = [
        {"bucket": "acme-drop"},
        {"topic": "landing"},
        {
            "audit_log": {
                "service": "bigquery.googleapis.com",
                "method": "google.cloud.bigquery.v2.JobService.InsertJob",
                "resource": "projects/acme-target-proj/datasets/raw/tables/*",
            }
        },
        {"schedule": "0 7 * * 1-5", "time_zone": "Europe/London"},
        {"topic": "late-batches"},
    ]
    ws = setup(tmp_path, triggers=triggers)
    runs = {r.trigger_name: r for r in ws.runs() if r.kind == "triggered"}
    assert list(runs) == [
        "dataform-target-daily-gcs",
        "dataform-target-daily-pubsub",
        "dataform-target-daily-audit",
        "dataform-target-daily-cron",
        "dataform-target-daily-pubsub-2",
    ]
    needs = {}
    for req in ws.access.requirements:
        for run in req.runs:
            if run.startswith("triggered:"):
                needs.setdefault(run.rsplit(":", 1)[1], set()).add((req.chain, req.principal.kind, req.permission))
    common = {
        ("trigger-invokes", "orchestrator", "workflows.executions.create"),
        ("start-runs", "orchestrator", "dataform.workflowInvocations.create"),
        ("start-runs", "orchestrator", "dataform.workflowInvocations.get"),
        ("act-as", "orchestrator", "iam.serviceAccounts.actAs"),
    }
    receive = ("event-delivery", "orchestrator", "eventarc.events.receiveEvent")
    publish = ("event-delivery", "storage_agent", "pubsub.topics.publish")
    assert common <= needs["dataform-target-daily-cron"] and receive not in needs["dataform-target-daily-cron"]
    assert receive not in needs["dataform-target-daily-pubsub"] and publish not in needs["dataform-target-daily-pubsub"]
    assert {receive} <= needs["dataform-target-daily-audit"] and publish not in needs["dataform-target-daily-audit"]
    assert {receive, publish} <= needs["dataform-target-daily-gcs"]
    # A triggered run executes the live compilation: it never compiles, so Git is not on its path.
    assert not any(c == "git-sync" for c, _, _ in needs["dataform-target-daily-pubsub"])
    module = ws.module("prod")
    [audit] = [t for t in module.event_triggers if t.trigger_name.endswith("-audit")]
    assert ("resourceName", "projects/acme-target-proj/datasets/raw/tables/*", "match-path-pattern") in audit.criteria
    assert audit.location == "global"  # every region's entries: multi-region datasets included
    [job] = module.scheduler_jobs
    assert (job.schedule, job.time_zone) == ("0 7 * * 1-5", "Europe/London")
    assert ws.validate().violations == [] and ws.coverage().unserved == []
    assert check_module(render_module(module), "8.7.0") == []
    # Without the orchestrator's invoker grant, every triggered run's trigger-invokes requirement is unmet.
    grants = [
        g
        for env in ws.deployment.environments
        for g in ws.module(env).grants
        if g.rule != "orchestrator-invokes-workflows"
    ]
    unmet = {r.chain for r in cover(ws.access.requirements, grants).unmet}
    assert unmet == {"trigger-invokes"}


ALERTS = {
    "channels": [{"name": "oncall", "email": "oncall@acme.example"}, {"name": "bus", "pubsub_topic": "incidents"}]
}


def _entry(project: str, repository: str, workflow: str | None, state: str) -> dict:
    payload = {"workflowInvocationId": "1234", "terminalState": state}
    if workflow:
        payload["workflowConfigId"] = workflow
    return {
        "logName": f"projects/{project}/logs/dataform.googleapis.com%2Fworkflow_invocation_completion",
        "resource": {"type": "dataform.googleapis.com/Repository", "labels": {"repository_id": repository}},
        "jsonPayload": payload,
    }


def test_a_protected_environment_alerts_on_every_workflow_in_the_host_project(tmp_path):
    spec = with_operations(alerts=ALERTS)
    spec["protected"] = True
    spec["workflows"].append({**spec["workflows"][0], "name": "target-hourly", "triggers": []})
    ws = SpecSet(write_specs(tmp_path, {"staging": host(), "prod": spec}))
    module = ws.module("prod")
    [policy] = module.alert_policies
    assert (policy.project, policy.workflows) == ("acme-host-proj", ("target-daily", "target-hourly"))
    assert [c.project for c in module.channels] == ["acme-host-proj", "acme-host-proj"]
    assert [(c.channel_type, c.labels) for c in module.channels] == [
        ("email", {"email_address": "oncall@acme.example"}),
        ("pubsub", {"topic": "projects/acme-host-proj/topics/incidents"}),
    ]
    # The filter, evaluated as Cloud Logging would: a failed run of either workflow, and nothing else.
    assert matches(policy.filter, _entry("acme-host-proj", "analytics", "target-hourly", "FAILED"))
    assert matches(policy.filter, _entry("acme-host-proj", "analytics", "target-daily", "FAILED"))
    assert not matches(policy.filter, _entry("acme-host-proj", "analytics", "target-daily", "SUCCEEDED"))
    assert not matches(policy.filter, _entry("acme-host-proj", "analytics", "host-daily", "FAILED"))
    assert not matches(policy.filter, _entry("acme-host-proj", "analytics", None, "FAILED"))
    assert not matches(policy.filter, _entry("acme-host-proj", "other", "target-daily", "FAILED"))
    assert not matches(policy.filter, _entry("acme-target-proj", "analytics", "target-daily", "FAILED"))
    files = render_module(module)
    assert check_module(files, "8.7.0") == []
    assert 'notification_rate_limit {\n      period = "300s"' in files["alerts.tf"]
    # Monitoring and Logging are enabled by the host, in its project, and never disabled.
    host_apis = {a.service for a in ws.module("staging").apis}
    assert {"monitoring.googleapis.com", "logging.googleapis.com"} <= host_apis
    # The topic's publisher grant is its owner's: validate says so at the channel's line.
    notes = [w.describe() for w in ws.validate().warnings]
    assert any("alerts.channels[1].pubsub_topic" in n and "gcp-sa-monitoring-notification" in n for n in notes), notes


def test_elsewhere_only_the_named_workflows_alert_and_per_workflow_makes_one_policy_each(tmp_path):
    ws = setup(tmp_path / "unnamed", alerts=ALERTS)
    assert ws.module("prod").alert_policies == []
    assert any("no workflow of 'prod' alerts" in w.describe() for w in ws.validate().warnings)
    named = {**ALERTS, "workflows": ["target-daily"], "per_workflow": True, "notify_at_most_every": "3600s"}
    [policy] = setup(tmp_path / "named", alerts=named).module("prod").alert_policies
    assert (policy.display_name, policy.rate_limit) == ("Dataform prod: target-daily failed", "3600s")


# --- hostile values: no filter, HCL or Workflows injection -------------------------------------------------

HOSTILE_FIELDS = [
    ("workflows", 0, "triggers", 0, "bucket"),
    ("workflows", 0, "triggers", 0, "prefix"),
    ("workflows", 0, "triggers", 0, "location"),
    ("workflows", 0, "triggers", 1, "topic"),
    ("workflows", 0, "triggers", 2, "audit_log", "service"),
    ("workflows", 0, "triggers", 2, "audit_log", "method"),
    ("workflows", 0, "triggers", 2, "audit_log", "resource"),
    ("workflows", 0, "triggers", 3, "schedule"),
    ("workflows", 0, "triggers", 3, "time_zone"),
    ("workflows", 0, "name"),
    ("orchestrator",),
    ("alerts", "channels", 0, "name"),
    ("alerts", "channels", 0, "email"),
    ("alerts", "channels", 1, "pubsub_topic"),
    ("alerts", "channels", 2, "webhook"),
    ("alerts", "workflows", 0),
    ("alerts", "notify_at_most_every"),
    ("alerts", "auto_close_after"),
]
EVERY_TRIGGER = [
    {"bucket": "acme-drop", "prefix": "in/", "location": "eu"},
    {"topic": "landing"},
    {"audit_log": {"service": "bigquery.googleapis.com", "method": "google.cloud.bigquery.v2.JobService.InsertJob"}},
    {"schedule": "0 7 * * 1-5", "time_zone": "Europe/London"},
]
EVERY_CHANNEL = {
    "channels": [
        {"name": "oncall", "email": "oncall@acme.example"},
        {"name": "bus", "pubsub_topic": "incidents"},
        {"name": "hook", "webhook": "https://hooks.acme.example/dataform"},
    ],
    "workflows": ["target-daily"],
}


def _source(files: dict[str, str]) -> set[str]:
    """Every Workflows source the module deploys."""
    parts = files.get("events.tf", "").split("source_contents = <<-EOT")[1:]
    return {part.split("\n  EOT", 1)[0] for part in parts}


@SETTINGS
@given(field=st.sampled_from(HOSTILE_FIELDS), value=st.one_of(hostile_text, yaml_scalars))
def test_trigger_and_alert_fields_refuse_or_render_hostile_values_intact(tmp_path_factory, field, value):
    spec = with_operations(copy.deepcopy(EVERY_TRIGGER), copy.deepcopy(EVERY_CHANNEL))
    holder = spec
    for step in field[:-1]:
        holder = holder[step]
    holder[field[-1]] = value
    if field == ("workflows", 0, "name"):  # the alert names the workflow by whatever name it has
        spec["alerts"]["workflows"] = [value]
    directory = tmp_path_factory.mktemp("spec")
    write_specs(directory, {"staging": host(), "prod": yaml.safe_dump(spec, allow_unicode=True)})
    try:
        deployment = load_deployment(directory)
    except SpecError as error:
        assert error.problems and all(p.line for p in error.problems)
        return
    files = render_module(build_module(deployment, "prod"))
    for text in files.values():
        assert layout(text) == text
        code = _code(text)
        if isinstance(value, str) and value and quote(value) in code:
            assert value in {_decode(m) for m in _LITERAL.findall(code)}
    assert _source(files) == BASELINE_SOURCES  # the code the workflows run never carries a spec value
    [policy] = build_module(deployment, "prod").alert_policies
    (workflow,) = policy.workflows
    assert matches(policy.filter, _entry("acme-host-proj", "analytics", workflow, "FAILED"))
    assert not matches(policy.filter, _entry("acme-host-proj", "analytics", workflow, "SUCCEEDED"))


@SETTINGS
@given(
    values=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=3),
    other=st.text(min_size=1, max_size=30),
    state=st.sampled_from(["SUCCEEDED", "CANCELLED", "FAILED"]),
)
def test_the_failed_run_filter_matches_exactly_its_workflows_whatever_their_names(values, other, state):
    """The filter builder's quoting against Cloud Logging's own reading: a name cannot add a term or end one."""
    terms = failed_run_filter("acme-host-proj", ["analytics"], tuple(values))
    text = " AND ".join(terms)
    for value in values:
        assert matches(text, _entry("acme-host-proj", "analytics", value, "FAILED"))
        assert not matches(text, _entry("acme-host-proj", "analytics", value, "SUCCEEDED"))
    found = matches(text, _entry("acme-host-proj", "analytics", other, state))
    assert found == (other in values and state == "FAILED")


def _baseline_sources() -> set[str]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        spec = with_operations(copy.deepcopy(EVERY_TRIGGER), copy.deepcopy(EVERY_CHANNEL))
        written = write_specs(Path(directory), {"staging": host(), "prod": spec})
        return _source(render_module(build_module(load_deployment(written), "prod")))


BASELINE_SOURCES = _baseline_sources()


# --- a webhook channel's token: like the Git token, never in the spec, state, plan or logs ---------------------

HOOK_TOKEN = "hook-T0KEN-5ecret-value"


@pytest.mark.terraform
def test_a_channel_token_reaches_monitoring_write_only_and_nowhere_else(tmp_path, cloud):
    from tests.fakegcp.apis import FakeGoogleApis
    from tests.fakegcp.types import CHANNEL_SECRETS
    from tests.support.project import Project

    staging = host()
    staging["provider_version"] = "~> 8.7"
    staging["alerts"] = {
        "channels": [{"name": "hook", "webhook": "https://hooks.acme.example/dataform", "token": True}],
        "workflows": ["host-daily"],
    }
    project = Project(tmp_path / "checkout", cloud, specs=write_specs(tmp_path / "specs", {"staging": staging}))
    deployer = staging["deployers"][0]
    apis = FakeGoogleApis(cloud.store, caller=deployer).start()
    cloud.env["DFINFRA_GOOGLE_API_EMULATOR"] = apis.address
    try:
        project.run("bootstrap", "staging", "--auto-approve")
        out = project.run("apply", "staging", "--auto-approve")
        assert "channel hook of staging has no token yet" in out and "--channel hook" in out
        ((_, channel, _),) = cloud.store.list("google_monitoring_notification_channel")
        assert cloud.store.get(CHANNEL_SECRETS, channel) is None  # made without one
        project_name = "//cloudresourcemanager.googleapis.com/projects/acme-host-proj"
        for role in (
            "roles/monitoring.notificationChannelEditor",
            "roles/monitoring.alertPolicyEditor",
            "roles/dataform.admin",
        ):
            cloud.store.put("external:iam", role, {"role": role, "member": deployer, "resource": project_name})
        doctor = project.run("doctor", "staging", expect=None)
        assert "FAIL  alert-channel:hook: notification channel 'hook (Dataform staging)' has no token set" in doctor

        out = project.run("secret", "set", "staging", "--channel", "hook", stdin=HOOK_TOKEN + "\n")
        assert out.startswith("projects/111111111111/secrets/dataform-alerts-staging-hook/versions/1"), out
        plan = project.run("plan", "staging", expect=2)
        assert "google_monitoring_notification_channel.hook" in plan
        project.run("apply", "staging", "--auto-approve")
        assert cloud.store.get(CHANNEL_SECRETS, channel) == {"auth_token": HOOK_TOKEN}
        assert project.run("plan", "staging", expect=0)  # applied: nothing left to change
        assert "PASS  alert-channel:hook" in project.run("doctor", "staging", expect=None)

        # A new token is a new version: the next apply sends it (a saved plan made before it is stale).
        project.run("plan", "staging", expect=0)
        project.run("secret", "set", "staging", "--channel", "hook", stdin=HOOK_TOKEN + "-2\n")
        refused = project.run("apply", "staging", "--auto-approve", "--require-saved-plan", expect=1)
        assert "a notification channel's token was set since" in refused
        project.run("apply", "staging", "--auto-approve")
        assert cloud.store.get(CHANNEL_SECRETS, channel) == {"auth_token": HOOK_TOKEN + "-2"}
        # A version added outside dfinfra (gcloud's --data-file keeps the newline) is checked as `secret set` checks.
        secret = "projects/acme-host-proj/secrets/dataform-alerts-staging-hook"
        from google.cloud import secretmanager_v1

        client = secretmanager_v1.SecretManagerServiceClient(
            transport=secretmanager_v1.services.secret_manager_service.transports.SecretManagerServiceGrpcTransport(
                channel=__import__("grpc").insecure_channel(apis.address)
            )
        )
        client.add_secret_version(parent=secret, payload={"data": (HOOK_TOKEN + "-3\n").encode()})
        project.run("apply", "staging", "--auto-approve")
        assert cloud.store.get(CHANNEL_SECRETS, channel) == {"auth_token": HOOK_TOKEN + "-3"}
        client.add_secret_version(parent=secret, payload={"data": b"\xff\xfe"})
        out = project.run("plan", "staging", expect=1)
        assert "versions/4 is not UTF-8 text" in out and "dfinfra secret set" in out

        state = project.run("terraform", "staging", "--", "state", "pull")
        assert '"auth_token_wo_version": "3"' in state and HOOK_TOKEN not in state
        for path in project.root.rglob("*"):  # modules, saved plans, logs, journals: no token anywhere
            if path.is_file():
                assert b"hook-T0KEN" not in path.read_bytes(), path
    finally:
        apis.stop()


def test_a_token_channel_needs_terraform_1_11_and_nothing_else_does(tmp_path):
    hook = {
        "channels": [{"name": "hook", "webhook": "https://h.example/x", "token": True}],
        "workflows": ["target-daily"],
    }
    files = render_module(setup(tmp_path / "token", alerts=hook).module("prod"))
    assert 'required_version = ">= 1.11.0"' in files["versions.tf"]  # ephemeral variables, write-only attributes
    assert "ephemeral = true" in files["alerts.tf"] and "auth_token_wo " in files["alerts.tf"]
    assert check_module(files, "8.7.0") == []
    plain = render_module(setup(tmp_path / "plain", alerts=ALERTS).module("prod"))
    assert 'required_version = ">= 1.5.0"' in plain["versions.tf"]
