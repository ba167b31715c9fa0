"""Runs started by events in the offline cloud: Eventarc, Cloud Scheduler and Cloud Workflows, and what
Dataform logs when a run ends.

Written from Google's pages (shared/docs/dataform-operations.md §d and §e), independently of
dfinfra's access model, so the end-to-end tests can hold one against the other:

- an object written to a bucket, a message published to a topic, an audit-log entry or a scheduler
  tick finds the triggers (or jobs) the offline provider stored, and each delivers only if IAM allows
  every link: Cloud Storage's service agent publishes the bucket's events (`pubsub.topics.publish`),
  the trigger's account receives Cloud Storage and audit-log events (`eventarc.events.receiveEvent`)
  and starts an execution of its destination workflow (`workflows.executions.create`);
- an execution interprets the deployed workflow's source (the subset of the Workflows language a
  workflow that starts Dataform runs needs: assign, call with http.get/http.post/sys.sleep/sys.log,
  switch with next/return/raise, return, raise, expressions with `${...}`), and its calls to
  `dataform.googleapis.com` reach the fake Dataform as the workflow's service account, where the
  fake IAM decides each one;
- a workflow invocation that ended writes Dataform's completion entry, which `alerts_matching`
  evaluates against every alert policy's log filter (`logfilter.py`).
"""

from __future__ import annotations

import ast
import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import yaml

from tests.fakegcp.dataform import INVOCATION, ApiError
from tests.fakegcp.iam import Resource
from tests.fakegcp.logfilter import matches

if TYPE_CHECKING:
    from tests.fakegcp.apis import FakeGoogleApis

EXECUTION = "workflows_execution"
STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
AUDIT_LOG_WRITTEN = "google.cloud.audit.log.v1.written"
COMPLETION_LOG = "dataform.googleapis.com%2Fworkflow_invocation_completion"
DATAFORM_URL = "https://dataform.googleapis.com/v1/"
MAX_STEPS = 1000
STEP_KEYS = {"assign", "call", "args", "result", "switch", "return", "raise", "next", "try", "retry", "except"}


class WorkflowError(Exception):
    """An error raised inside an execution (uncaught, it fails the execution)."""

    def __init__(self, value: Any):
        super().__init__(str(value))
        self.value = value


@dataclass
class Delivery:
    """What one event did at one trigger: the execution's state, and why it failed."""

    trigger: str
    state: str
    reasons: list[str] = field(default_factory=list)
    execution: str = ""
    result: Any = None


def _denied(permission: str, resource: str) -> str:
    return f"Permission '{permission}' denied on resource '{resource}' (or it may not exist)."


class _Expressions:
    """`${...}` expressions: Python-like syntax, read with Python's parser and evaluated on a whitelist."""

    def __init__(self, variables: dict[str, Any], env: dict[str, str]):
        self.variables = variables
        self.env = env

    def value(self, raw: Any) -> Any:
        if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}"):
            return self.evaluate(ast.parse(raw[2:-1], mode="eval").body)
        if isinstance(raw, dict):
            return {k: self.value(v) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        return raw

    def _function(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return f"{self._function(node.value)}.{node.attr}"
        raise WorkflowError({"message": "not a function"})

    def evaluate(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in ("true", "false", "null"):  # the language's literals
                return {"true": True, "false": False, "null": None}[node.id]
            if node.id not in self.variables:
                raise WorkflowError({"message": f"KeyError: variable {node.id} not found", "tags": ["KeyError"]})
            return self.variables[node.id]
        if isinstance(node, ast.Attribute):
            base = self.evaluate(node.value)
            if not isinstance(base, dict) or node.attr not in base:
                raise WorkflowError({"message": f"KeyError: key not found: {node.attr}", "tags": ["KeyError"]})
            return base[node.attr]
        if isinstance(node, ast.Subscript):
            return self.evaluate(node.value)[self.evaluate(node.slice)]
        if isinstance(node, ast.BoolOp):
            values = [self.evaluate(v) for v in node.values]  # Workflows evaluates both sides
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not self.evaluate(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if type(left) is not type(right):
                raise WorkflowError({"message": "TypeError: + needs two strings or two numbers", "tags": ["TypeError"]})
            return left + right
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = self.evaluate(node.left), self.evaluate(node.comparators[0])
            op = type(node.ops[0])
            compare = {ast.Eq: left == right, ast.NotEq: left != right}
            if op in compare:
                return compare[op]
            ordered = {ast.Lt: lambda: left < right, ast.LtE: lambda: left <= right, ast.Gt: lambda: left > right}
            if op in ordered:
                return ordered[op]()
        if isinstance(node, ast.Call):
            name = self._function(node.func)
            args = [self.evaluate(a) for a in node.args]
            functions = {
                "sys.get_env": lambda key: self.env.get(key),
                "len": len,
                "text.substring": lambda s, start, end: s[start:end],
                "json.encode_to_string": json.dumps,
                "default": lambda value, fallback: fallback if value is None else value,
            }
            if name in functions:
                return functions[name](*args)
            raise WorkflowError({"message": f"unknown function {name}"})
        raise WorkflowError({"message": f"unsupported expression {ast.dump(node)[:80]}"})


class Events:
    """Event delivery and workflow executions over the offline cloud's store."""

    def __init__(self, apis: FakeGoogleApis):
        self.apis = apis
        self.store = apis.store

    @property
    def iam(self):
        return self.apis.dataform.iam

    # --- events -----------------------------------------------------------------------------------

    def _triggers(self, event_type: str) -> list[dict[str, Any]]:
        found = []
        for _, _, body in self.store.list("google_eventarc_trigger"):
            criteria = {c["attribute"]: c for c in body.get("matching_criteria") or []}
            if criteria.get("type", {}).get("value") == event_type:
                found.append(body)
        return found

    @staticmethod
    def _criteria(trigger: dict[str, Any]) -> dict[str, tuple[str, str]]:
        return {c["attribute"]: (c["value"], c.get("operator") or "") for c in trigger.get("matching_criteria") or []}

    def write_object(self, bucket: str, name: str) -> list[Delivery]:
        """An object finalized in `bucket`: each trigger on the bucket delivers it (Cloud Storage's agent
        publishes it, the trigger's account receives it), starting its workflow with the CloudEvent."""
        deliveries = []
        for trigger in self._triggers(STORAGE_FINALIZED):
            if self._criteria(trigger).get("bucket", ("",))[0] != bucket:
                continue
            project = trigger["project"]
            number = self.store.project_number(project)
            agent = f"serviceAccount:service-{number}@gs-project-accounts.iam.gserviceaccount.com"
            if not self.iam.allows(agent, "pubsub.topics.publish", Resource.project_(project)):
                failure = _denied("pubsub.topics.publish", f"projects/{project}")
                deliveries.append(Delivery(trigger["name"], "NOT_DELIVERED", [f"{agent}: {failure}"]))
                continue
            event = {"type": STORAGE_FINALIZED, "data": {"bucket": bucket, "name": name}}
            deliveries.append(self._deliver(trigger, event, receives=True))
        return deliveries

    def publish(self, topic: str, data: bytes = b"{}") -> list[Delivery]:
        """A message on `topic` (`projects/<p>/topics/<t>`): each trigger whose transport is that topic."""
        deliveries = []
        for trigger in self._triggers(PUBSUB_PUBLISHED):
            transport = ((trigger.get("transport") or [{}])[0].get("pubsub") or [{}])[0]
            if transport.get("topic") != topic:
                continue
            message = {"data": base64.b64encode(data).decode(), "messageId": str(uuid.uuid4())}
            event = {"type": PUBSUB_PUBLISHED, "data": {"message": message}}
            deliveries.append(self._deliver(trigger, event, receives=False))
        return deliveries

    def write_audit_log(self, service: str, method: str, resource: str) -> list[Delivery]:
        deliveries = []
        for trigger in self._triggers(AUDIT_LOG_WRITTEN):
            criteria = self._criteria(trigger)
            if criteria.get("serviceName", ("",))[0] != service or criteria.get("methodName", ("",))[0] != method:
                continue
            wanted, operator = criteria.get("resourceName", ("", ""))
            if wanted and not _resource_matches(wanted, operator, resource):
                continue
            event = {
                "type": AUDIT_LOG_WRITTEN,
                "data": {"protoPayload": {"serviceName": service, "methodName": method, "resourceName": resource}},
            }
            deliveries.append(self._deliver(trigger, event, receives=True))
        return deliveries

    def tick(self, job_name: str) -> Delivery:
        """One firing of Cloud Scheduler job `job_name` (its short name): it calls the executions endpoint its
        uri names with an OAuth token for its account."""
        for _, _, job in self.store.list("google_cloud_scheduler_job"):
            if job["name"] != job_name:
                continue
            target = (job.get("http_target") or [{}])[0]
            account = ((target.get("oauth_token") or [{}])[0]).get("service_account_email", "")
            uri = target.get("uri", "")
            workflow = uri.removeprefix("https://workflowexecutions.googleapis.com/v1/").removesuffix("/executions")
            body = json.loads(base64.b64decode(target.get("body") or "e30=") or b"{}")
            argument = json.loads(body.get("argument") or "{}")
            return self._start(job_name, workflow, f"serviceAccount:{account}", argument)
        return Delivery(job_name, "NOT_FOUND", [f"Cloud Scheduler job {job_name} does not exist"])

    def _deliver(self, trigger: dict[str, Any], event: dict[str, Any], receives: bool) -> Delivery:
        account = f"serviceAccount:{trigger.get('service_account') or ''}"
        project = trigger["project"]
        if receives and not self.iam.allows(account, "eventarc.events.receiveEvent", Resource.project_(project)):
            failure = _denied("eventarc.events.receiveEvent", f"projects/{project}")
            return Delivery(trigger["name"], "NOT_DELIVERED", [f"{account}: {failure}"])
        workflow = (trigger.get("destination") or [{}])[0].get("workflow", "")
        return self._start(trigger["name"], workflow, account, event)

    # --- Cloud Workflows --------------------------------------------------------------------------

    def _start(self, source: str, workflow_name: str, caller: str, argument: Any) -> Delivery:
        project = workflow_name.split("/")[1] if workflow_name.startswith("projects/") else ""
        if not self.apis.cloud.service_enabled(project, "workflowexecutions.googleapis.com"):
            return Delivery(source, "NOT_DELIVERED", [f"workflowexecutions.googleapis.com is disabled in {project}"])
        if not self.iam.allows(caller, "workflows.executions.create", Resource.project_(project)):
            failure = _denied("workflows.executions.create", workflow_name)
            return Delivery(source, "NOT_DELIVERED", [f"{caller}: {failure}"])
        execution = self.execute(workflow_name, argument)
        return Delivery(source, execution["state"], execution["reasons"], execution["name"], execution.get("result"))

    def execute(self, workflow_name: str, argument: Any) -> dict[str, Any]:
        """Run the deployed workflow as its service account; the execution is stored under its name."""
        name = f"{workflow_name}/executions/{uuid.uuid4()}"
        workflow = self.store.get("google_workflows_workflow", workflow_name)
        record: dict[str, Any] = {"name": name, "workflow": workflow_name, "argument": argument, "started": time.time()}
        if workflow is None:
            record.update(state="FAILED", reasons=[f"workflow {workflow_name} not found"])
        else:
            try:
                result = self._run(workflow, argument)
                record.update(state="SUCCEEDED", reasons=[], result=result)
            except WorkflowError as error:
                message = error.value.get("message") if isinstance(error.value, dict) else error.value
                record.update(state="FAILED", reasons=[str(message)])
        self.store.put(EXECUTION, name, record)
        return record

    def _run(self, workflow: dict[str, Any], argument: Any) -> Any:
        program = yaml.safe_load(workflow["source_contents"])
        main = program["main"]
        params = main.get("params") or []
        variables: dict[str, Any] = {params[0]: argument} if params else {}
        env = dict(workflow.get("user_env_vars") or {})
        account = f"serviceAccount:{workflow.get('service_account') or ''}"
        steps = [(next(iter(s)), next(iter(s.values()))) for s in main["steps"]]
        index = {name: i for i, (name, _) in enumerate(steps)}
        expressions = _Expressions(variables, env)
        position, taken = 0, 0
        while position < len(steps):
            taken += 1
            if taken > MAX_STEPS:
                raise WorkflowError({"message": "too many steps"})
            _, step = steps[position]
            unknown = set(step) - STEP_KEYS
            if unknown:
                raise WorkflowError({"message": f"unknown step fields {sorted(unknown)}"})
            if "try" in step:  # a retry policy retries only what Google retries: none of the fake's refusals
                if set(step) - {"try", "retry", "except"} or "call" not in step["try"]:
                    raise WorkflowError({"message": "try holds one call step"})
                step = step["try"]
            jump: str | None = None
            if "assign" in step:
                for assignment in step["assign"]:
                    ((variable, value),) = assignment.items()
                    variables[variable] = expressions.value(value)
            if "call" in step:
                result = self._call(step["call"], expressions.value(step.get("args") or {}), account)
                if "result" in step:
                    variables[step["result"]] = result
            if "switch" in step:
                for case in step["switch"]:
                    if expressions.value(case["condition"]):
                        if "return" in case:
                            return expressions.value(case["return"])
                        if "raise" in case:
                            raise WorkflowError(expressions.value(case["raise"]))
                        jump = case.get("next")
                        break
            if "return" in step:
                return expressions.value(step["return"])
            if "raise" in step:
                raise WorkflowError(expressions.value(step["raise"]))
            jump = step.get("next", jump)
            if jump == "end":
                return None
            position = index[jump] if jump else position + 1
        return None

    def _call(self, function: str, args: dict[str, Any], account: str) -> Any:
        if function in ("sys.sleep", "sys.log"):
            return None
        if function not in ("http.get", "http.post"):
            raise WorkflowError({"message": f"unknown call {function}"})
        url = args["url"]
        if not url.startswith(DATAFORM_URL) or (args.get("auth") or {}).get("type") != "OAuth2":
            raise WorkflowError({"message": f"the offline cloud answers only OAuth2 calls to Dataform, not {url}"})
        path = url.removeprefix(DATAFORM_URL)
        dataform = self.apis.dataform
        try:
            if function == "http.post" and path.endswith("/workflowInvocations"):
                body = args.get("body") or {}
                parent = path.removesuffix("/workflowInvocations")
                invocation = dataform.invoke(account, parent, workflow_config=body.get("workflowConfig", ""))
                return {"code": 200, "body": {"name": invocation["name"], "state": "RUNNING"}}
            if function == "http.get" and "/workflowInvocations/" in path:
                invocation = self._invocation(account, path)
                return {"code": 200, "body": {"name": invocation["name"], "state": dataform.state_of(invocation)}}
        except ApiError as error:
            code = {"PERMISSION_DENIED": 403, "NOT_FOUND": 404, "FAILED_PRECONDITION": 400}.get(error.code.name, 500)
            failure = {"message": f"HTTP {code}: {error.message}", "code": code, "tags": ["HttpError"]}
            raise WorkflowError(failure) from None
        raise WorkflowError({"message": f"the offline Dataform has no {function} {path}"})

    def _invocation(self, account: str, name: str) -> dict[str, Any]:
        dataform = self.apis.dataform
        _, _, resource = dataform._repository(name)
        dataform._require(account, "dataform.workflowInvocations.get", resource)
        body = self.store.get(INVOCATION, name)
        if body is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {name}")
        return body

    # --- what Dataform logs when a run ends, and the alerts it opens -----------------------------

    def completion_entries(self) -> list[dict[str, Any]]:
        """Dataform's completion entry of every invocation that has ended, shaped as the Logging API returns it."""
        entries = []
        for _, name, body in self.store.list(INVOCATION):
            state = self.apis.dataform.state_of(body)
            if state in ("RUNNING", "CANCELING"):
                continue
            _, project, _, location, _, repository, *_ = name.split("/")
            payload = {
                "@type": "type.googleapis.com/google.cloud.dataform.logging.v1.WorkflowInvocationCompletionLogEntry",
                "workflowInvocationId": name.rsplit("/", 1)[-1],
                "terminalState": state,
            }
            if body.get("workflow_config"):
                payload["workflowConfigId"] = body["workflow_config"].rsplit("/", 1)[-1]
            entries.append(
                {
                    "logName": f"projects/{project}/logs/{COMPLETION_LOG}",
                    "resource": {
                        "type": "dataform.googleapis.com/Repository",
                        "labels": {"repository_id": repository, "location": location, "resource_container": project},
                    },
                    "severity": "INFO",
                    "jsonPayload": payload,
                    "name": name,
                }
            )
        return entries

    def alerts_matching(self, entry: dict[str, Any]) -> list[str]:
        """The display names of the enabled alert policies whose log-match condition matches `entry`."""
        fired = []
        for _, _, policy in self.store.list("google_monitoring_alert_policy"):
            if policy.get("enabled") is False:
                continue
            for condition in policy.get("conditions") or []:
                for matched in condition.get("condition_matched_log") or []:
                    if matches(matched["filter"], entry):
                        fired.append(policy["display_name"])
        return fired


def _resource_matches(wanted: str, operator: str, resource: str) -> bool:
    if operator != "match-path-pattern":
        return wanted == resource
    want, have = wanted.split("/"), resource.split("/")
    return len(want) == len(have) and all(w == "*" or w == h for w, h in zip(want, have, strict=True))


class EventApis:
    """Workflow Executions (CreateExecution, GetExecution) and Monitoring's reads (ListAlertPolicies,
    ListNotificationChannels) over gRPC, as `dfinfra run --via-trigger` and `doctor` call them through Google's
    clients. The caller is the fake's `caller`; an execution runs as the workflow's own account."""

    def __init__(self, events: Events):
        self.events = events
        self.apis = events.apis

    def handlers(self) -> list[Any]:
        import grpc
        from google.cloud import monitoring_v3 as m
        from google.cloud.workflows import executions_v1 as x

        def rpc(request_type, response_type, function):
            def handle(request, context):
                denied = function(request)
                if isinstance(denied, tuple):
                    context.abort(*denied)
                return denied

            return grpc.unary_unary_rpc_method_handler(
                handle, request_deserializer=request_type.deserialize, response_serializer=response_type.serialize
            )

        return [
            grpc.method_handlers_generic_handler(
                "google.cloud.workflows.executions.v1.Executions",
                {
                    "CreateExecution": rpc(x.CreateExecutionRequest, x.Execution, self.create_execution),
                    "GetExecution": rpc(x.GetExecutionRequest, x.Execution, self.get_execution),
                },
            ),
            grpc.method_handlers_generic_handler(
                "google.monitoring.v3.AlertPolicyService",
                {"ListAlertPolicies": rpc(m.ListAlertPoliciesRequest, m.ListAlertPoliciesResponse, self.policies)},
            ),
            grpc.method_handlers_generic_handler(
                "google.monitoring.v3.NotificationChannelService",
                {
                    "ListNotificationChannels": rpc(
                        m.ListNotificationChannelsRequest, m.ListNotificationChannelsResponse, self.channels
                    )
                },
            ),
        ]

    def _allowed(self, permission: str, project: str) -> tuple[Any, str] | None:
        import grpc

        if self.events.iam.allows(self.apis.caller, permission, Resource.project_(project)):
            return None
        return grpc.StatusCode.PERMISSION_DENIED, _denied(permission, f"projects/{project}")

    def create_execution(self, request):
        from google.cloud.workflows import executions_v1 as x

        project = request.parent.split("/")[1]
        denied = self._allowed("workflows.executions.create", project)
        if denied:
            return denied
        argument = json.loads(request.execution.argument or "null")
        record = self.events.execute(request.parent, argument)
        return self._message(x, record)

    def get_execution(self, request):
        import grpc
        from google.cloud.workflows import executions_v1 as x

        denied = self._allowed("workflows.executions.get", request.name.split("/")[1])
        if denied:
            return denied
        record = self.events.store.get(EXECUTION, request.name)
        if record is None:
            return grpc.StatusCode.NOT_FOUND, f"Execution {request.name} not found"
        return self._message(x, record)

    @staticmethod
    def _message(x: Any, record: dict[str, Any]) -> Any:
        state = {"SUCCEEDED": x.Execution.State.SUCCEEDED}.get(record["state"], x.Execution.State.FAILED)
        message = x.Execution(name=record["name"], state=state, argument=json.dumps(record["argument"]))
        if record["state"] == "SUCCEEDED":
            message.result = json.dumps(record.get("result"))
        else:
            message.error = x.Execution.Error(payload=json.dumps("; ".join(record["reasons"])))
        return message

    def policies(self, request):
        from google.cloud import monitoring_v3 as m

        project = request.name.split("/")[1]
        denied = self._allowed("monitoring.alertPolicies.list", project)
        if denied:
            return denied
        found = [
            m.AlertPolicy(
                name=body["name"], display_name=body["display_name"], enabled=body.get("enabled") is not False
            )
            for _, _, body in self.events.store.list("google_monitoring_alert_policy")
            if body["project"] == project
        ]
        return m.ListAlertPoliciesResponse(alert_policies=found)

    def channels(self, request):
        from google.cloud import monitoring_v3 as m

        project = request.name.split("/")[1]
        denied = self._allowed("monitoring.notificationChannels.list", project)
        if denied:
            return denied
        statuses = m.NotificationChannel.VerificationStatus
        found = [
            m.NotificationChannel(
                name=body["name"],
                display_name=body.get("display_name") or "",
                type_=body["type"],
                enabled=body.get("enabled") is not False,
                verification_status=statuses[body.get("verification_status") or "VERIFICATION_STATUS_UNSPECIFIED"],
            )
            for _, _, body in self.events.store.list("google_monitoring_notification_channel")
            if body["project"] == project
        ]
        return m.ListNotificationChannelsResponse(notification_channels=found)
