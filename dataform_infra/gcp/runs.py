"""`dfinfra run`: compile a workflow's release now and start one invocation, as Google would run it.

The smoke test after `apply`: the same API calls the console's "Start execution" makes, through
Google's Dataform client. The invocation runs with the workflow config's own invocation settings
(runner, tags, targets), so every chain of the access model is exercised for real: the service
agent reads the Git secret and impersonates the runner, the caller's act-as is checked, the runner
creates jobs and writes its datasets. A failure comes back with Google's own reason.
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
        self.topology = Topology(deployment)
        release = next(w.release for w in spec.workflows if w.name == workflow)
        self.repository = self.topology.workflow_repository(env, release).api_name
        self.config_name = f"{self.repository}/workflowConfigs/{workflow}"
        self.apis = apis
        self.client = apis.dataform()
        self.invocation = ""

    def start(self) -> str:
        """Compile the workflow's release from Git now and start an invocation of that compilation."""
        try:
            config = call(
                f"reading workflow config {self.config_name}", self.client.get_workflow_config, name=self.config_name
            )
        except GcpNotFound:
            missing = f"workflow config {self.workflow} does not exist in {self.repository}"
            raise RunFailed(f"{missing}: run `dfinfra apply {self.env}` first") from None
        compilation = call(
            f"compiling release {config.release_config.rsplit('/', 1)[-1]}",
            self.client.create_compilation_result,
            parent=self.repository,
            compilation_result={"release_config": config.release_config},
        )
        if compilation.compilation_errors:
            errors = "; ".join(
                f"{e.path or e.action_target.name or 'project'}: {e.message}" for e in compilation.compilation_errors
            )
            raise RunFailed(f"compilation {compilation.name} failed: {errors}")
        invocation = call(
            f"starting workflow {self.workflow}",
            self.client.create_workflow_invocation,
            parent=self.repository,
            workflow_invocation={"compilation_result": compilation.name, "invocation_config": config.invocation_config},
        )
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
