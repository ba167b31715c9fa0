"""`dfinfra run`: start one invocation of a workflow config, exactly as its schedule would run it.

The smoke test after `apply`, and the button a team presses between crons. The invocation names the
workflow config (`WorkflowInvocation.workflow_config`), so Google runs what the schedule runs: the
release's live compilation with the config's own invocation settings (runner, tags, targets), never
a fresh compile of the branch (`../shared/docs/dataform-operations.md` §a). To run code just merged,
make it live first with `dfinfra release`. Every chain of the access model is exercised for real: the
caller's act-as is checked, the service agent impersonates the runner, the runner creates jobs and
writes its datasets. A failure comes back with Google's own reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dataform_infra.errors import GcpNotFound, RunFailed, UsageError
from dataform_infra.gcp.clients import GoogleApis, call
from dataform_infra.spec.formats import topic_name
from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import Trigger, Workflow
from dataform_infra.topology import Topology

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def _declared_workflow(deployment: Deployment, env: str, name: str) -> Workflow:
    """Workflow `name` of `env`, or the usage error naming the ones there are."""
    workflows = deployment.environments[env].workflows
    found = next((w for w in workflows if w.name == name), None)
    if found is None:
        known = ", ".join(w.name for w in workflows) or "none"
        raise UsageError(f"no workflow {name!r} in environment {env!r} (its workflows: {known})")
    return found


@dataclass
class RunOutcome:
    invocation: str
    state: str
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"invocation": self.invocation, "state": self.state, "failures": self.failures}


class WorkflowRun:
    """One run of one workflow config: `start()`, then `wait()` (or `cancel()`)."""

    def __init__(self, deployment: Deployment, env: str, workflow: str, apis: GoogleApis):
        _declared_workflow(deployment, env, workflow)
        spec = deployment.environments[env]
        self.env = env
        self.workflow = workflow
        topology = Topology(deployment)
        self.release = next(w.release for w in spec.workflows if w.name == workflow)
        self.config_name = topology.workflow_config_name(env, workflow)
        self.repository = self.config_name.split("/workflowConfigs/")[0]
        self.release_config = topology.release_config_name(env, self.release)
        self.apis = apis
        self.client = apis.dataform()
        self.invocation = ""

    def start(self) -> str:
        """Start an invocation of the workflow config: its release's live compilation, its settings."""
        try:
            live = call(
                f"reading release config {self.release_config}",
                self.client.get_release_config,
                name=self.release_config,
            ).release_compilation_result
        except GcpNotFound:
            missing = f"release config {self.release} does not exist in {self.repository}"
            raise RunFailed(f"{missing}: run `dfinfra apply {self.env}` first") from None
        if not live:
            raise RunFailed(
                f"release {self.release} has no live compilation (none since it was created or last applied), so "
                f"Google would fail workflow {self.workflow}'s scheduled run too: run `dfinfra release {self.env} "
                f"{self.release}` first"
            )
        try:
            invocation = call(
                f"starting workflow {self.workflow}",
                self.client.create_workflow_invocation,
                parent=self.repository,
                workflow_invocation={"workflow_config": self.config_name},
            )
        except GcpNotFound:
            missing = f"workflow config {self.workflow} does not exist in {self.repository}"
            raise RunFailed(f"{missing}: run `dfinfra apply {self.env}` first") from None
        self.invocation = invocation.name
        return self.invocation

    def state(self) -> str:
        found = call(f"reading {self.invocation}", self.client.get_workflow_invocation, name=self.invocation)
        return str(found.state.name)

    def wait(
        self,
        on_state: Callable[[str], None],
        timeout: float,
        poll: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunOutcome:
        """Poll until the invocation ends (or `timeout` seconds pass), reporting each new state."""
        deadline = clock() + timeout
        seen = ""
        while True:
            state = self.state()
            if state != seen:
                on_state(state)
                seen = state
            if state in TERMINAL:
                failures = self.failures() if state == "FAILED" else []
                return RunOutcome(self.invocation, state, failures)
            if clock() >= deadline:
                return RunOutcome(self.invocation, state)
            sleep(min(poll, max(0.0, deadline - clock())))

    def failures(self) -> list[str]:
        """Google's reason for each failed action: `schema.table: reason`."""
        actions = call(
            f"reading the actions of {self.invocation}",
            self.client.query_workflow_invocation_actions,
            request={"name": self.invocation},
        )
        out = []
        for action in actions:
            if action.state.name == "FAILED":
                target = action.target
                name = ".".join(p for p in (target.database, target.schema, target.name) if p)
                out.append(f"{name}: {action.failure_reason}")
        return out

    def cancel(self) -> None:
        if self.invocation:
            call(
                f"cancelling {self.invocation}",
                self.client.cancel_workflow_invocation,
                request={"name": self.invocation},
            )


def trigger_event(trigger: Trigger, project: str) -> dict[str, object]:
    """The CloudEvent (as JSON) the trigger would pass its orchestrating workflow: for a bucket, an object just
    under its prefix (`dfinfra-via-trigger`, never written to the bucket)."""
    if trigger.kind == "bucket":
        name = f"{trigger.prefix or ''}dfinfra-via-trigger"
        return {"type": "google.cloud.storage.object.v1.finalized", "data": {"bucket": trigger.bucket, "name": name}}
    if trigger.kind == "topic":
        topic = topic_name(project, trigger.topic or "")
        return {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": topic, "data": {"message": {}}}
    if trigger.audit_log is not None:
        event = trigger.audit_log
        payload = {"serviceName": event.service, "methodName": event.method, "resourceName": event.resource or ""}
        return {"type": "google.cloud.audit.log.v1.written", "data": {"protoPayload": payload}}
    return {"scheduled": True}


class TriggeredRun:
    """`dfinfra run --via-trigger`: execute a trigger's orchestrating Cloud Workflows workflow with the event that
    trigger passes it, and follow the execution. The workflow starts the Dataform run as the orchestrator, with its
    grants (Dataform Editor on the repository, act-as on the runner), waits for the run and fails if the run fails:
    the event path from the workflow on, end to end. Eventarc's own delivery (Cloud Storage's agent publishing, the
    orchestrator receiving events) is what `dfinfra doctor` checks."""

    def __init__(self, deployment: Deployment, env: str, workflow: str, trigger: str | None, apis: GoogleApis):
        spec = deployment.environments[env]
        found = _declared_workflow(deployment, env, workflow)
        names = found.trigger_names()
        if not names:
            raise UsageError(f"workflow {workflow!r} of {env!r} has no `triggers`: run it without --via-trigger")
        if trigger is not None and trigger not in names:
            raise UsageError(f"workflow {workflow!r} has no trigger {trigger!r} (its triggers: {', '.join(names)})")
        self.trigger_name = trigger or names[0]
        self.trigger = found.triggers[names.index(self.trigger_name)]
        self.workflow_name = f"projects/{spec.project.id}/locations/{spec.region}/workflows/{self.trigger_name}"
        self.event = trigger_event(self.trigger, spec.project.id)
        self.client = apis.workflow_executions()
        self.execution = ""

    def start(self) -> str:
        import json

        try:
            execution = call(
                f"executing workflow {self.trigger_name}",
                self.client.create_execution,
                parent=self.workflow_name,
                execution={"argument": json.dumps(self.event)},
            )
        except GcpNotFound:
            raise RunFailed(f"workflow {self.workflow_name} does not exist: apply its environment first") from None
        self.execution = execution.name
        return self.execution

    def wait(
        self,
        timeout: float,
        poll: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunOutcome:
        """Poll the execution until it ends: its result is the Dataform invocation it ran, its error Google's."""
        import json

        deadline = clock() + timeout
        while True:
            found = call(f"reading {self.execution}", self.client.get_execution, name=self.execution)
            state = str(found.state.name)
            if state == "SUCCEEDED":
                return RunOutcome(str(json.loads(found.result or '""')), state)
            if state in ("FAILED", "CANCELLED"):
                return RunOutcome(self.execution, state, [str(json.loads(found.error.payload or '""'))])
            if clock() >= deadline:
                return RunOutcome(self.execution, state)
            sleep(min(poll, max(0.0, deadline - clock())))
