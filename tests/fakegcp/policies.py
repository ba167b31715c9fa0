"""Resource Manager, Policy Troubleshooter and Org Policy over gRPC, answered from the store.

- Resource Manager v3 `Projects.GetProject`: a project's number (PERMISSION_DENIED for a project that
  does not exist, as Google answers).
- Policy Troubleshooter, IAM v3 (`google-cloud-policytroubleshooter-iam`) and v1 (`IamChecker`,
  `google-cloud-policy-troubleshooter`): may this principal use this permission on this resource,
  from the IAM evaluator (tests/fakegcp/iam.py). It reads the current allow policies, so it ignores
  the propagation delay: a grant made a second ago is already GRANTED here (as the real
  troubleshooter would say), while the runtime fakes may not honour it yet.
- Org Policy v2 `GetEffectivePolicy`: from store kind `org_policy`, id `projects/<id>/policies/<constraint>`,
  body `{"enforce": bool}` (boolean constraints) or `{"allowed_values": [...]}` (list constraints).
"""

from __future__ import annotations

from typing import Any

import grpc
from google.cloud import orgpolicy_v2, policytroubleshooter_iam_v3, policytroubleshooter_v1, resourcemanager_v3

from tests.fakegcp.iam import Iam, link_permissions, parse_resource, principal_members
from tests.fakegcp.store import Store

ORG_POLICY_KIND = "org_policy"
BOOLEAN_CONSTRAINTS = frozenset({"iam.disableCrossProjectServiceAccountUsage"})
LIST_CONSTRAINTS = frozenset({"dataform.restrictGitRemotes", "gcp.resourceLocations"})


# --- org policy facts (used by the Dataform fake too) -------------------------------------


def _policy_id(store: Store, project: str, constraint: str) -> str:
    return f"projects/{store.project_id(project) or project}/policies/{constraint.removeprefix('constraints/')}"


def set_org_policy(store: Store, project: str, constraint: str, **body: Any) -> None:
    """Set a project's policy: `enforce=True`, or `allowed_values=[...]` and/or `denied_values=[...]`; no
    arguments removes it."""
    key = _policy_id(store, project, constraint)
    if body:
        store.put(ORG_POLICY_KIND, key, body)
    else:
        store.delete(ORG_POLICY_KIND, key)


def org_policy(store: Store, project: str, constraint: str) -> dict[str, Any] | None:
    return store.get(ORG_POLICY_KIND, _policy_id(store, project, constraint))


def enforced(store: Store, project: str, constraint: str) -> bool:
    return bool((org_policy(store, project, constraint) or {}).get("enforce"))


def allowed(store: Store, project: str, constraint: str, value: str) -> bool:
    """List constraints: absent = allow all; a denied value refuses, and allowed values, when listed, must
    contain the value whole (restrictGitRemotes lists full remote URLs)."""
    policy = org_policy(store, project, constraint)
    if policy is None:
        return True
    if value in policy.get("denied_values", ()):
        return False
    return "allowed_values" not in policy or value in policy["allowed_values"]


# --- gRPC ------------------------------------------------------------------------------------


def _handler(request_type: Any, response_type: Any, function) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        function, request_deserializer=request_type.deserialize, response_serializer=response_type.serialize
    )


class Policies:
    def __init__(self, store: Store):
        self.store = store

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [
            grpc.method_handlers_generic_handler(
                "google.cloud.resourcemanager.v3.Projects",
                {
                    "GetProject": _handler(
                        resourcemanager_v3.GetProjectRequest, resourcemanager_v3.Project, self.get_project
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "google.cloud.policytroubleshooter.iam.v3.PolicyTroubleshooter",
                {
                    "TroubleshootIamPolicy": _handler(
                        policytroubleshooter_iam_v3.TroubleshootIamPolicyRequest,
                        policytroubleshooter_iam_v3.TroubleshootIamPolicyResponse,
                        self.troubleshoot_v3,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "google.cloud.policytroubleshooter.v1.IamChecker",
                {
                    "TroubleshootIamPolicy": _handler(
                        policytroubleshooter_v1.TroubleshootIamPolicyRequest,
                        policytroubleshooter_v1.TroubleshootIamPolicyResponse,
                        self.troubleshoot_v1,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "google.cloud.orgpolicy.v2.OrgPolicy",
                {
                    "GetEffectivePolicy": _handler(
                        orgpolicy_v2.GetEffectivePolicyRequest, orgpolicy_v2.Policy, self.get_effective_policy
                    )
                },
            ),
        ]

    # --- Resource Manager ---------------------------------------------------------------------

    def get_project(self, request, context):
        requested = request.name.removeprefix("projects/")
        project = self.store.project_id(requested)
        if project is None:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission 'resourcemanager.projects.get' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{requested}' (or it may not exist).",
            )
        number = self.store.project_number(project)
        return resourcemanager_v3.Project(
            name=f"projects/{number}",
            project_id=project,
            display_name=project,
            state=resourcemanager_v3.Project.State.ACTIVE,
        )

    # --- Policy Troubleshooter ----------------------------------------------------------------

    def _granted(self, tuple_, context) -> bool:
        link = tuple_.full_resource_name.removeprefix("//developerconnect.googleapis.com/")
        if link != tuple_.full_resource_name:  # a Git repository link: roles outside the role table
            members = principal_members(tuple_.principal)
            return any(tuple_.permission in link_permissions(self.store, m, link) for m in members)
        resource = parse_resource(tuple_.full_resource_name, self.store)
        if resource is None or not tuple_.full_resource_name.startswith("//"):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"Invalid full resource name: {tuple_.full_resource_name!r}"
            )
        if not tuple_.principal or not tuple_.permission:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "principal and permission are required")
        iam = Iam(self.store)  # current policies: no propagation delay
        return any(iam.allows(m, tuple_.permission, resource) for m in principal_members(tuple_.principal))

    def troubleshoot_v3(self, request, context):
        v3 = policytroubleshooter_iam_v3
        granted = self._granted(request.access_tuple, context)
        overall = v3.TroubleshootIamPolicyResponse.OverallAccessState
        allow = (
            v3.AllowAccessState.ALLOW_ACCESS_STATE_GRANTED
            if granted
            else v3.AllowAccessState.ALLOW_ACCESS_STATE_NOT_GRANTED
        )
        return v3.TroubleshootIamPolicyResponse(
            overall_access_state=overall.CAN_ACCESS if granted else overall.CANNOT_ACCESS,
            access_tuple=request.access_tuple,
            allow_policy_explanation=v3.AllowPolicyExplanation(allow_access_state=allow),
        )

    def troubleshoot_v1(self, request, context):
        granted = self._granted(request.access_tuple, context)
        state = policytroubleshooter_v1.AccessState
        return policytroubleshooter_v1.TroubleshootIamPolicyResponse(
            access=state.GRANTED if granted else state.NOT_GRANTED
        )

    # --- Org Policy ---------------------------------------------------------------------------

    def get_effective_policy(self, request, context):
        parts = request.name.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "policies":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid policy name: {request.name!r}")
        project, constraint = parts[1], parts[3]
        if self.store.project_id(project) is None:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission 'orgpolicy.policy.get' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist).",
            )
        body = org_policy(self.store, project, constraint)
        rule = orgpolicy_v2.PolicySpec.PolicyRule
        if body is None:
            rules = (
                [rule(enforce=False)]
                if constraint in BOOLEAN_CONSTRAINTS
                else [rule(allow_all=True)]
                if constraint in LIST_CONSTRAINTS
                else []
            )
        elif "allowed_values" in body or "denied_values" in body:
            values = rule.StringValues(
                allowed_values=list(body.get("allowed_values", ())), denied_values=list(body.get("denied_values", ()))
            )
            rules = [rule(values=values)]
        else:
            rules = [rule(enforce=bool(body.get("enforce")))]
        return orgpolicy_v2.Policy(name=request.name, spec=orgpolicy_v2.PolicySpec(rules=rules))
