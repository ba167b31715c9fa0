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
from dataform_infra.spec.loader import Deployment
from dataform_infra.topology import Topology

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


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
        spec = deployment.environments[env]
        names = [w.name for w in spec.workflows]
        if workflow not in names:
            known = ", ".join(names) or "none"
            raise UsageError(f"no workflow {workflow!r} in environment {env!r} (its workflows: {known})")
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
