"""The runtime fakes (IAM evaluator, Dataform v1, Resource Manager, Policy Troubleshooter, Org Policy)
driven through Google's real client libraries against a store populated the way the fake provider
would have written it. One test applies real Terraform to check the IAM members' creation times."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import (
    dataform_v1,
    orgpolicy_v2,
    policytroubleshooter_iam_v3,
    policytroubleshooter_v1,
    resourcemanager_v3,
)
from google.cloud.dataform_v1.services.dataform.transports import DataformGrpcTransport
from google.cloud.orgpolicy_v2.services.org_policy.transports import OrgPolicyGrpcTransport
from google.cloud.policytroubleshooter_iam_v3.services.policy_troubleshooter.transports import (
    PolicyTroubleshooterGrpcTransport,
)
from google.cloud.policytroubleshooter_v1.services.iam_checker.transports import IamCheckerGrpcTransport
from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

from tests.fakegcp.apis import FakeGoogleApis
from tests.fakegcp.iam import CREATED_KEY, Resource, effective_permissions
from tests.fakegcp.store import Store

HOST, HOST_NUMBER = "acme-host", "111111111111"
OTHER, OTHER_NUMBER = "acme-other", "222222222222"
CI = "acme-ci-automation"
DEPLOYER = f"serviceAccount:terraform-deployer@{CI}.iam.gserviceaccount.com"
RUNNER = f"dataform-runner@{HOST}.iam.gserviceaccount.com"
AGENT = f"service-{HOST_NUMBER}@gcp-sa-dataform.iam.gserviceaccount.com"
URL = "https://github.com/acme/analytics.git"
REPO = f"projects/{HOST}/locations/europe-west2/repositories/analytics"
RELEASE = f"{REPO}/releaseConfigs/nightly"
WORKFLOW = f"{REPO}/workflowConfigs/nightly"
SECRET = f"projects/{HOST}/secrets/git-token"

CODE = {
    "workflow_settings": {"defaultProject": HOST, "defaultDataset": "marts", "defaultLocation": "EU"},
    "actions": [
        {"name": "stg_orders", "type": "view", "tags": ["daily"], "reads": ["raw"]},
        {"name": "orders", "type": "table", "tags": ["daily"], "dependencies": ["stg_orders"]},
        {"name": "orders_unique", "type": "assertion", "tags": ["daily"], "dependencies": ["orders"]},
        {"name": "weekly", "type": "incremental", "tags": ["weekly"], "dependencies": ["orders"]},
    ],
}


# --- the store as the fake provider leaves it -------------------------------------------------------


def _iam(store: Store, kind: str, key: str, body: dict) -> str:
    store.put(kind, key, {"condition": [], "etag": "BwYfake", "id": key, **body})
    return key


def project_member(store: Store, project: str, role: str, member: str) -> tuple[str, str]:
    key = f"{project}/{role}/{member.lower()}"
    return "google_project_iam_member", _iam(
        store, "google_project_iam_member", key, {"project": project, "role": role, "member": member}
    )


def dataset_member(store: Store, project: str, dataset: str, role: str, member: str) -> tuple[str, str]:
    key = f"projects/{project}/datasets/{dataset}/{role}/{member.lower()}"
    body = {"project": project, "dataset_id": dataset, "role": role, "member": member}
    return "google_bigquery_dataset_iam_member", _iam(store, "google_bigquery_dataset_iam_member", key, body)


def account_member(store: Store, email: str, role: str, member: str) -> tuple[str, str]:
    account = f"projects/{email.split('@')[1].split('.')[0]}/serviceAccounts/{email}"
    key = f"{account}/{role}/{member.lower()}"
    body = {"service_account_id": account, "role": role, "member": member}
    return "google_service_account_iam_member", _iam(store, "google_service_account_iam_member", key, body)


def dataset(store: Store, project: str, name: str) -> None:
    key = f"projects/{project}/datasets/{name}"
    store.put("google_bigquery_dataset", key, {"id": key, "project": project, "dataset_id": name, "location": "EU"})


def account(store: Store, email: str) -> None:
    project = email.split("@")[1].split(".")[0]
    key = f"projects/{project}/serviceAccounts/{email}"
    store.put("google_service_account", key, {"id": key, "name": key, "email": email, "project": project})


@pytest.fixture()
def world(tmp_path: Path) -> dict:
    """A host project with a working Dataform setup: every chain of the runtime-access doc in place."""
    store = Store(tmp_path / "cloud.sqlite")
    for project, number in ((HOST, HOST_NUMBER), (OTHER, OTHER_NUMBER), (CI, "999999999999")):
        store.add_project(project, number)
    deployer = f"projects/{CI}/serviceAccounts/{DEPLOYER.removeprefix('serviceAccount:')}"
    store.put("external:google_service_account", deployer, {"seeded": True})
    store.put(
        "external:iam",
        "deployer-dataform-admin",
        {
            "role": "roles/dataform.admin",
            "member": DEPLOYER,
            "resource": f"//cloudresourcemanager.googleapis.com/projects/{HOST}",
        },
    )
    store.put("service_agent", AGENT, {"project": HOST, "service": "dataform.googleapis.com"})
    account(store, RUNNER)
    store.put(
        "google_secret_manager_secret",
        SECRET,
        {"id": SECRET, "name": f"projects/{HOST_NUMBER}/secrets/git-token", "project": HOST, "secret_id": "git-token"},
    )
    store.put(
        "secret_version",
        f"{SECRET}/versions/1",
        {"name": f"projects/{HOST_NUMBER}/secrets/git-token/versions/1", "state": "ENABLED", "created": 1},
    )
    for name in ("marts_prod", "assertions_prod"):
        dataset(store, HOST, name)
    store.put("external:google_bigquery_dataset", f"projects/{HOST}/datasets/raw", {"seeded": True})
    store.put("git_code", URL, CODE)
    store.put(
        "google_dataform_repository",
        REPO,
        {
            "id": REPO,
            "name": "analytics",
            "project": HOST,
            "region": "europe-west2",
            "display_name": None,
            "effective_labels": {"goog-terraform-provisioned": "true"},
            "service_account": RUNNER,
            "git_remote_settings": [
                {
                    "url": URL,
                    "default_branch": "main",
                    "authentication_token_secret_version": f"{SECRET}/versions/latest",
                    "ssh_authentication_config": [],
                    "token_status": "VALID",
                    "git_repository_link": None,
                }
            ],
            "workspace_compilation_overrides": [
                {"default_database": None, "schema_suffix": "dev", "table_prefix": "${workspaceName}"}
            ],
        },
    )
    store.put(
        "google_dataform_repository_release_config",
        RELEASE,
        {
            "id": RELEASE,
            "name": "nightly",
            "project": HOST,
            "region": "europe-west2",
            "repository": "analytics",
            "git_commitish": "main",
            "cron_schedule": "30 6 * * *",
            "time_zone": "Europe/London",
            "code_compilation_config": [
                {
                    "assertion_schema": "assertions",
                    "database_suffix": None,
                    "default_database": HOST,
                    "default_location": None,
                    "default_schema": "marts",
                    "schema_suffix": "prod",
                    "table_prefix": None,
                    "vars": None,
                }
            ],
        },
    )
    store.put(
        "google_dataform_repository_workflow_config",
        WORKFLOW,
        {
            "id": WORKFLOW,
            "name": "nightly",
            "project": HOST,
            "region": "europe-west2",
            "repository": "analytics",
            "release_config": RELEASE,
            "cron_schedule": "0 7 * * *",
            "invocation_config": [
                {
                    "fully_refresh_incremental_tables_enabled": None,
                    "included_tags": ["daily"],
                    "included_targets": [],
                    "service_account": RUNNER,
                    "transitive_dependencies_included": True,
                    "transitive_dependents_included": None,
                }
            ],
        },
    )
    agent, runner = f"serviceAccount:{AGENT}", f"serviceAccount:{RUNNER}"
    secret_accessor = _iam(
        store,
        "google_secret_manager_secret_iam_member",
        f"{SECRET}/roles/secretmanager.secretAccessor/{agent.lower()}",
        {"secret_id": SECRET, "project": HOST, "role": "roles/secretmanager.secretAccessor", "member": agent},
    )
    grants = {
        "git-secret": ("google_secret_manager_secret_iam_member", secret_accessor),
        "service-agent": project_member(store, HOST, "roles/dataform.serviceAgent", agent),
        "token-creator": account_member(store, RUNNER, "roles/iam.serviceAccountTokenCreator", agent),
        "job-user": project_member(store, HOST, "roles/bigquery.jobUser", runner),
        "marts-editor": dataset_member(store, HOST, "marts_prod", "roles/bigquery.dataEditor", runner),
        "assertions-editor": dataset_member(store, HOST, "assertions_prod", "roles/bigquery.dataEditor", runner),
        "raw-viewer": dataset_member(store, HOST, "raw", "roles/bigquery.dataViewer", runner),
        "act-as": account_member(store, RUNNER, "roles/iam.serviceAccountUser", DEPLOYER),
    }
    apis = FakeGoogleApis(store).start()
    yield {"store": store, "apis": apis, "grants": grants}
    apis.stop()


def client(apis: FakeGoogleApis, client_class, transport_class):
    """As dataform_infra.gcp.clients does with DFINFRA_GOOGLE_API_EMULATOR: plaintext, no credentials."""
    return client_class(transport=transport_class(channel=grpc.insecure_channel(apis.address)))


def dataform(apis: FakeGoogleApis) -> dataform_v1.DataformClient:
    return client(apis, dataform_v1.DataformClient, DataformGrpcTransport)


def revoke(world: dict, grant: str) -> None:
    world["store"].delete(*world["grants"][grant])


def compile_and_run(apis: FakeGoogleApis, **invocation: object) -> tuple[dataform_v1.WorkflowInvocation, list]:
    api = dataform(apis)
    result = api.create_compilation_result(
        parent=REPO, compilation_result=dataform_v1.CompilationResult(release_config=RELEASE)
    )
    config = dataform_v1.InvocationConfig(service_account=RUNNER, **invocation)
    created = api.create_workflow_invocation(
        parent=REPO,
        workflow_invocation=dataform_v1.WorkflowInvocation(compilation_result=result.name, invocation_config=config),
    )
    final = api.get_workflow_invocation(name=created.name)
    actions = list(api.query_workflow_invocation_actions(request={"name": created.name}))
    return final, actions


# --- Dataform ----------------------------------------------------------------------------------------


def test_compile_and_invoke_succeeds(world):
    api = dataform(world["apis"])
    repository = api.get_repository(name=REPO)
    assert repository.service_account == RUNNER
    assert repository.git_remote_settings.authentication_token_secret_version == f"{SECRET}/versions/latest"
    assert api.get_release_config(name=RELEASE).code_compilation_config.schema_suffix == "prod"
    assert api.get_workflow_config(name=WORKFLOW).invocation_config.included_tags == ["daily"]

    result = api.create_compilation_result(
        parent=REPO, compilation_result=dataform_v1.CompilationResult(release_config=RELEASE)
    )
    assert result.name.startswith(f"{REPO}/compilationResults/") and not result.compilation_errors
    assert api.get_compilation_result(name=result.name).release_config == RELEASE
    targets = {
        a.target.name: (a.target.database, a.target.schema)
        for a in api.query_compilation_result_actions(request={"name": result.name})
    }
    assert targets == {
        "stg_orders": (HOST, "marts_prod"),
        "orders": (HOST, "marts_prod"),
        "orders_unique": (HOST, "assertions_prod"),
        "weekly": (HOST, "marts_prod"),
    }

    final, actions = compile_and_run(world["apis"], included_tags=["daily"])
    assert final.state == dataform_v1.WorkflowInvocation.State.SUCCEEDED
    assert [(a.target.name, a.state.name) for a in actions] == [
        ("stg_orders", "SUCCEEDED"),
        ("orders", "SUCCEEDED"),
        ("orders_unique", "SUCCEEDED"),
    ]


@pytest.mark.parametrize(
    ("grant", "error", "message"),
    [
        (
            "git-secret",
            exceptions.FailedPrecondition,
            f"Failed to fetch git remote '{URL}': Permission 'secretmanager.versions.access' denied on resource "
            f"'{SECRET}/versions/latest' (or it may not exist).",
        ),
        (
            "act-as",
            exceptions.PermissionDenied,
            "Permission 'iam.serviceAccounts.actAs' denied on resource (or it may not exist): "
            f"projects/-/serviceAccounts/{RUNNER}",
        ),
    ],
    ids=["chain1-git-secret", "chain8-strict-act-as"],
)
def test_api_call_refused_when_chain_broken(world, grant, error, message):
    revoke(world, grant)
    with pytest.raises(error) as caught:
        compile_and_run(world["apis"], included_tags=["daily"])
    assert caught.value.message == message


def test_caller_needs_dataform_permissions(world):
    world["apis"].caller = "user:intruder@acme.com"
    with pytest.raises(exceptions.PermissionDenied) as caught:
        compile_and_run(world["apis"])
    assert caught.value.message == (
        f"Permission 'dataform.compilationResults.create' denied on resource '{REPO}' (or it may not exist)."
    )
    with pytest.raises(exceptions.PermissionDenied, match=r"dataform\.repositories\.get"):
        dataform(world["apis"]).get_repository(name=REPO)


def test_git_secret_needs_an_enabled_version(world):
    world["store"].put(
        "secret_version",
        f"{SECRET}/versions/1",
        {"name": f"projects/{HOST_NUMBER}/secrets/git-token/versions/1", "state": "DISABLED", "created": 1},
    )
    with pytest.raises(exceptions.FailedPrecondition, match=r"Secret Version \[.*/versions/latest\] not found"):
        compile_and_run(world["apis"])


def test_no_runner_is_refused_in_strict_act_as_mode(world):
    store = world["store"]
    repo = store.get("google_dataform_repository", REPO)
    store.put("google_dataform_repository", REPO, {**repo, "service_account": None})
    api = dataform(world["apis"])
    result = api.create_compilation_result(parent=REPO, compilation_result={"git_commitish": "main"})
    with pytest.raises(exceptions.PermissionDenied, match=f"iam.serviceAccounts.actAs.*{AGENT}"):
        api.create_workflow_invocation(parent=REPO, workflow_invocation={"compilation_result": result.name})


@pytest.mark.parametrize(
    ("grant", "states", "reason"),
    [
        (
            "token-creator",
            ["FAILED", "FAILED", "FAILED"],
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist): "
            f"projects/-/serviceAccounts/{RUNNER}",
        ),
        (
            "job-user",
            ["FAILED", "FAILED", "FAILED"],
            f"Access Denied: Project {HOST}: User does not have bigquery.jobs.create permission in project {HOST}.",
        ),
        (
            "raw-viewer",
            ["FAILED", "SKIPPED", "SKIPPED"],
            f"Access Denied: Dataset {HOST}:raw: Permission bigquery.tables.getData denied on dataset {HOST}:raw "
            "(or it may not exist).",
        ),
        (
            "assertions-editor",
            ["SUCCEEDED", "SUCCEEDED", "FAILED"],
            f"Access Denied: Dataset {HOST}:assertions_prod: Permission bigquery.tables.create denied on dataset "
            f"{HOST}:assertions_prod (or it may not exist).",
        ),
    ],
    ids=["chain3-token-creator", "chain4-job-user", "chain6-reader", "chain5-writer"],
)
def test_run_fails_when_chain_broken(world, grant, states, reason):
    revoke(world, grant)
    final, actions = compile_and_run(world["apis"], included_tags=["daily"])
    assert final.state == dataform_v1.WorkflowInvocation.State.FAILED
    assert [a.state.name for a in actions] == states
    assert {a.failure_reason for a in actions if a.state.name == "FAILED"} == {reason}


def test_missing_dataset_needs_datasets_create(world):
    store = world["store"]
    store.delete("google_bigquery_dataset", f"projects/{HOST}/datasets/assertions_prod")
    final, actions = compile_and_run(world["apis"], included_targets=[{"name": "orders_unique"}])
    assert final.state.name == "FAILED"
    assert actions[0].failure_reason == (
        f"Access Denied: Project {HOST}: User does not have bigquery.datasets.create permission in project {HOST}."
    )
    # With dataEditor on the project the runner creates the dataset and owns it: the next run succeeds.
    project_member(store, HOST, "roles/bigquery.dataEditor", f"serviceAccount:{RUNNER}")
    store.delete(*world["grants"]["assertions-editor"])
    final, _ = compile_and_run(world["apis"], included_targets=[{"name": "orders_unique"}])
    assert final.state.name == "SUCCEEDED"
    assert store.get("runtime:google_bigquery_dataset", f"projects/{HOST}/datasets/assertions_prod")


def test_selection_full_refresh_and_dependents(world):
    store = world["store"]
    store.delete(*world["grants"]["marts-editor"])
    dataset_member(store, HOST, "marts_prod", "roles/bigquery.dataViewer", f"serviceAccount:{RUNNER}")
    _, actions = compile_and_run(
        world["apis"], included_targets=[{"name": "stg_orders"}], transitive_dependents_included=True
    )
    assert [(a.target.name, a.state.name) for a in actions] == [
        ("stg_orders", "FAILED"),
        ("orders", "SKIPPED"),
        ("orders_unique", "SKIPPED"),
        ("weekly", "SKIPPED"),
    ]
    # dataEditor carries bigquery.tables.delete: an incremental full refresh works with it.
    dataset_member(store, HOST, "marts_prod", "roles/bigquery.dataEditor", f"serviceAccount:{RUNNER}")
    _, actions = compile_and_run(
        world["apis"], included_targets=[{"name": "weekly"}], fully_refresh_incremental_tables_enabled=True
    )
    assert [(a.target.name, a.state.name) for a in actions] == [("weekly", "SUCCEEDED")]


def test_workspace_compilation_uses_the_overrides(world):
    api = dataform(world["apis"])
    result = api.create_compilation_result(parent=REPO, compilation_result={"workspace": f"{REPO}/workspaces/ann"})
    targets = {
        (a.target.schema, a.target.name) for a in api.query_compilation_result_actions(request={"name": result.name})
    }
    assert ("marts_dev", "ann_orders") in targets and ("dataform_assertions_dev", "ann_orders_unique") in targets


def test_workspace_run_as_a_person(world):
    store, apis = world["store"], world["apis"]
    ann = "user:ann@acme.com"
    state, reasons = apis.run_workspace(ann, REPO, "ann")
    assert state == "FAILED" and "dataform.compilationResults.create" in reasons[0]
    _iam(
        store,
        "google_dataform_repository_iam_member",
        f"{REPO}/roles/dataform.editor/{ann}",
        {"repository": REPO, "project": HOST, "region": "europe-west2", "role": "roles/dataform.editor", "member": ann},
    )
    state, reasons = apis.run_workspace(ann, REPO, "ann")
    assert reasons == [
        f"Permission 'iam.serviceAccounts.actAs' denied on resource (or it may not exist): "
        f"projects/-/serviceAccounts/{RUNNER}"
    ]
    account_member(store, RUNNER, "roles/iam.serviceAccountUser", ann)
    state, reasons = apis.run_workspace(ann, REPO, "ann")
    assert state == "FAILED"
    assert reasons == [
        f"Access Denied: Project {HOST}: User does not have bigquery.datasets.create permission in project {HOST}."
    ]
    project_member(store, HOST, "roles/bigquery.dataEditor", f"serviceAccount:{RUNNER}")
    assert apis.run_workspace(ann, REPO, "ann") == ("SUCCEEDED", [])


def test_scheduled_run_and_its_records(world):
    apis = world["apis"]
    assert apis.run_scheduled(WORKFLOW) == ("SUCCEEDED", [])
    api = dataform(apis)
    record = api.get_workflow_config(name=WORKFLOW).recent_scheduled_execution_records[0]
    assert record.workflow_invocation.startswith(f"{REPO}/workflowInvocations/")
    assert api.get_workflow_invocation(name=record.workflow_invocation).state.name == "SUCCEEDED"
    release = api.get_release_config(name=RELEASE)
    assert release.release_compilation_result == release.recent_scheduled_release_records[0].compilation_result
    # A person can now start the workflow config (its release has a compilation result).
    created = api.create_workflow_invocation(parent=REPO, workflow_invocation={"workflow_config": WORKFLOW})
    assert created.workflow_config == WORKFLOW and created.state.name == "SUCCEEDED"


def test_scheduled_run_needs_the_service_agent_role(world):
    revoke(world, "service-agent")
    # Strict act-as does not apply to the scheduler, and the deployer's roles do not help the agent.
    state, reasons = world["apis"].run_scheduled(WORKFLOW)
    assert state == "FAILED"
    assert reasons == [
        f"Permission 'dataform.compilationResults.create' denied on resource '{REPO}' (or it may not exist)."
    ]
    record = dataform(world["apis"]).get_release_config(name=RELEASE).recent_scheduled_release_records[0]
    assert record.error_status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert "dataform.compilationResults.create" in record.error_status.message
    # Only workflowInvocations.create missing: the release compiles, the execution record holds the error.
    world["store"].put(
        "external:iam",
        "agent-compiles",
        {
            "role": "roles/dataform.codeEditor",
            "member": f"serviceAccount:{AGENT}",
            "resource": f"//dataform.googleapis.com/{REPO}",
        },
    )
    state, reasons = world["apis"].run_scheduled(WORKFLOW)
    assert reasons == [
        f"Permission 'dataform.workflowInvocations.create' denied on resource '{REPO}' (or it may not exist)."
    ]
    record = dataform(world["apis"]).get_workflow_config(name=WORKFLOW).recent_scheduled_execution_records[0]
    assert "dataform.workflowInvocations.create" in record.error_status.message


def test_scheduled_run_needs_no_caller_act_as(world):
    revoke(world, "act-as")
    world["apis"].caller = "user:nobody@acme.com"
    assert world["apis"].run_scheduled(WORKFLOW) == ("SUCCEEDED", [])


def test_invocation_runs_for_a_while_and_can_be_cancelled(world):
    apis = world["apis"]
    apis.run_seconds = 0.5
    api = dataform(apis)
    result = api.create_compilation_result(parent=REPO, compilation_result={"release_config": RELEASE})
    request = {"compilation_result": result.name, "invocation_config": {"service_account": RUNNER}}
    first = api.create_workflow_invocation(parent=REPO, workflow_invocation=request)
    assert first.state.name == "RUNNING"
    assert {a.state.name for a in api.query_workflow_invocation_actions(request={"name": first.name})} == {"PENDING"}
    second = api.create_workflow_invocation(parent=REPO, workflow_invocation=request)
    api.cancel_workflow_invocation(request={"name": second.name})
    deadline = time.monotonic() + 5
    while api.get_workflow_invocation(name=first.name).state.name == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.get_workflow_invocation(name=first.name).state.name == "SUCCEEDED"
    assert api.get_workflow_invocation(name=second.name).state.name == "CANCELLED"
    assert {a.state.name for a in api.query_workflow_invocation_actions(request={"name": second.name})} == {"CANCELLED"}


# --- propagation ---------------------------------------------------------------------------------------


def test_new_grants_take_time_to_propagate(world):
    store, apis = world["store"], world["apis"]
    apis.propagation_seconds = 60
    kind, key = world["grants"]["job-user"]
    body = store.get(kind, key)
    store.put(kind, key, {**body, CREATED_KEY: time.time()})
    final, actions = compile_and_run(apis, included_tags=["daily"])
    assert final.state.name == "FAILED" and "bigquery.jobs.create" in actions[0].failure_reason
    # The troubleshooter reads the current policy: already granted there.
    troubleshooter = client(
        apis, policytroubleshooter_iam_v3.PolicyTroubleshooterClient, PolicyTroubleshooterGrpcTransport
    )
    answer = troubleshooter.troubleshoot_iam_policy(
        request={
            "access_tuple": {
                "principal": RUNNER,
                "full_resource_name": f"//cloudresourcemanager.googleapis.com/projects/{HOST}",
                "permission": "bigquery.jobs.create",
            }
        }
    )
    assert answer.overall_access_state.name == "CAN_ACCESS"
    store.put(kind, key, {**body, CREATED_KEY: time.time() - 61})
    final, _ = compile_and_run(apis, included_tags=["daily"])
    assert final.state.name == "SUCCEEDED"


# --- org policies --------------------------------------------------------------------------------------


def test_cross_project_service_account_usage(world):
    store, apis = world["store"], world["apis"]
    runner = f"etl@{OTHER}.iam.gserviceaccount.com"
    member = f"serviceAccount:{runner}"
    account(store, runner)
    account_member(store, runner, "roles/iam.serviceAccountTokenCreator", f"serviceAccount:{AGENT}")
    account_member(store, runner, "roles/iam.serviceAccountUser", DEPLOYER)
    project_member(store, HOST, "roles/bigquery.jobUser", member)
    project_member(store, HOST, "roles/bigquery.dataEditor", member)
    api = dataform(apis)
    result = api.create_compilation_result(parent=REPO, compilation_result={"release_config": RELEASE})
    request = {"compilation_result": result.name, "invocation_config": {"service_account": runner}}
    assert api.create_workflow_invocation(parent=REPO, workflow_invocation=request).state.name == "SUCCEEDED"

    apis.set_org_policy(OTHER, "iam.disableCrossProjectServiceAccountUsage", enforce=True)
    policies = client(apis, orgpolicy_v2.OrgPolicyClient, OrgPolicyGrpcTransport)
    effective = policies.get_effective_policy(
        name=f"projects/{OTHER}/policies/iam.disableCrossProjectServiceAccountUsage"
    )
    assert [r.enforce for r in effective.spec.rules] == [True]
    invocation = api.create_workflow_invocation(parent=REPO, workflow_invocation=request)
    assert invocation.state.name == "FAILED"
    reasons = {a.failure_reason for a in api.query_workflow_invocation_actions(request={"name": invocation.name})}
    assert len(reasons) == 1 and "constraints/iam.disableCrossProjectServiceAccountUsage" in reasons.pop()


def test_restrict_git_remotes(world):
    apis = world["apis"]
    policies = client(apis, orgpolicy_v2.OrgPolicyClient, OrgPolicyGrpcTransport)
    name = f"projects/{HOST}/policies/dataform.restrictGitRemotes"
    assert [r.allow_all for r in policies.get_effective_policy(name=name).spec.rules] == [True]
    apis.set_org_policy(HOST, "dataform.restrictGitRemotes", allowed_values=["https://gitlab.acme.com/"])
    assert list(policies.get_effective_policy(name=name).spec.rules[0].values.allowed_values) == [
        "https://gitlab.acme.com/"
    ]
    with pytest.raises(exceptions.FailedPrecondition, match=r"constraints/dataform\.restrictGitRemotes"):
        compile_and_run(apis)
    # Full remote URLs, matched whole: a prefix of the URL does not allow it, a denied URL refuses it.
    apis.set_org_policy(HOST, "dataform.restrictGitRemotes", allowed_values=[URL.rsplit("/", 1)[0] + "/"])
    with pytest.raises(exceptions.FailedPrecondition, match=r"constraints/dataform\.restrictGitRemotes"):
        compile_and_run(apis)
    apis.set_org_policy(HOST, "dataform.restrictGitRemotes", denied_values=[URL])
    with pytest.raises(exceptions.FailedPrecondition, match=r"constraints/dataform\.restrictGitRemotes"):
        compile_and_run(apis)
    apis.set_org_policy(HOST, "dataform.restrictGitRemotes", allowed_values=[URL])
    assert compile_and_run(apis, included_tags=["daily"])[0].state.name == "SUCCEEDED"


# --- troubleshooter, resource manager, evaluator --------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "resource", "permission", "granted"),
    [
        (RUNNER, f"//cloudresourcemanager.googleapis.com/projects/{HOST}", "bigquery.jobs.create", True),
        (RUNNER, f"//bigquery.googleapis.com/projects/{HOST}/datasets/marts_prod", "bigquery.tables.create", True),
        (RUNNER, f"//bigquery.googleapis.com/projects/{HOST}/datasets/raw", "bigquery.tables.create", False),
        (
            AGENT,
            f"//secretmanager.googleapis.com/projects/{HOST_NUMBER}/secrets/git-token",
            "secretmanager.versions.access",
            True,
        ),
        (
            AGENT,
            f"//iam.googleapis.com/projects/{HOST}/serviceAccounts/{RUNNER}",
            "iam.serviceAccounts.getAccessToken",
            True,
        ),
        (AGENT, f"//iam.googleapis.com/projects/{HOST}/serviceAccounts/{RUNNER}", "iam.serviceAccounts.actAs", False),
        (
            DEPLOYER.removeprefix("serviceAccount:"),
            f"//dataform.googleapis.com/{REPO}",
            "dataform.workflowInvocations.create",
            True,
        ),
        ("ann@acme.com", f"//dataform.googleapis.com/{REPO}", "dataform.repositories.get", False),
    ],
)
def test_troubleshooter(world, principal, resource, permission, granted):
    apis = world["apis"]
    v3 = client(apis, policytroubleshooter_iam_v3.PolicyTroubleshooterClient, PolicyTroubleshooterGrpcTransport)
    v1 = client(apis, policytroubleshooter_v1.IamCheckerClient, IamCheckerGrpcTransport)
    tuple_ = {"principal": principal, "full_resource_name": resource, "permission": permission}
    answer = v3.troubleshoot_iam_policy(request={"access_tuple": tuple_})
    assert answer.overall_access_state.name == ("CAN_ACCESS" if granted else "CANNOT_ACCESS")
    assert answer.access_tuple.permission == permission
    assert v1.troubleshoot_iam_policy(request={"access_tuple": tuple_}).access.name == (
        "GRANTED" if granted else "NOT_GRANTED"
    )


def test_troubleshooter_matches_groups_literally(world):
    world["store"].put(
        "external:iam",
        "analysts",
        {
            "role": "roles/dataform.viewer",
            "member": "group:analysts@acme.com",
            "resource": f"//dataform.googleapis.com/{REPO}",
        },
    )
    v3 = client(
        world["apis"], policytroubleshooter_iam_v3.PolicyTroubleshooterClient, PolicyTroubleshooterGrpcTransport
    )
    tuple_ = {"full_resource_name": f"//dataform.googleapis.com/{REPO}", "permission": "dataform.repositories.get"}
    for principal, state in (("analysts@acme.com", "CAN_ACCESS"), ("ann@acme.com", "CANNOT_ACCESS")):
        answer = v3.troubleshoot_iam_policy(request={"access_tuple": {**tuple_, "principal": principal}})
        assert answer.overall_access_state.name == state


def test_resource_manager_project_number(world):
    projects = client(world["apis"], resourcemanager_v3.ProjectsClient, ProjectsGrpcTransport)
    project = projects.get_project(name=f"projects/{HOST}")
    assert (project.name, project.project_id, project.state.name) == (f"projects/{HOST_NUMBER}", HOST, "ACTIVE")
    with pytest.raises(exceptions.PermissionDenied, match=r"resourcemanager\.projects\.get"):
        projects.get_project(name="projects/acme-nowhere")


def test_effective_permissions_inherit_from_the_project(world):
    store = world["store"]
    runner = f"serviceAccount:{RUNNER}"
    on_dataset = effective_permissions(store, runner, Resource.dataset(HOST, "marts_prod"))
    assert {"bigquery.tables.create", "bigquery.jobs.create"} <= on_dataset  # dataEditor here, jobUser on project
    assert "bigquery.tables.create" not in effective_permissions(store, runner, Resource.project_(HOST))
    assert effective_permissions(store, "user:nobody@acme.com", Resource.project_(HOST)) == set()
    # Members match ignoring case, as IAM does for emails.
    assert "dataform.repositories.get" in effective_permissions(
        store, DEPLOYER.upper(), Resource.repository(HOST, "europe-west2", "analytics")
    )


# --- the provider records creation times (real terraform) ---------------------------------------------


MODULE = """terraform {
  required_providers {
    google = { source = "hashicorp/google", version = "~> 7.45" }
  }
}
provider "google" {
  project = "acme-host"
  region  = "europe-west2"
}
resource "google_project_service" "iam" {
  service            = "iam.googleapis.com"
  disable_on_destroy = false
}
resource "google_service_account" "runner" {
  account_id = "dataform-runner"
  depends_on = [google_project_service.iam]
}
resource "google_project_iam_member" "job_user" {
  project = "acme-host"
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.runner.member
}
"""


@pytest.mark.terraform
def test_provider_records_iam_creation_time_outside_state(tmp_path, terraform_bin):
    from tests.fakegcp.harness import OfflineCloud

    cloud = OfflineCloud(tmp_path / "cloud", terraform_bin)
    cloud.store.add_project(HOST, HOST_NUMBER)
    directory = tmp_path / "module"
    directory.mkdir()
    (directory / "main.tf").write_text(MODULE)
    cloud.init(directory)
    before = time.time()
    cloud.terraform(directory, "apply", "-input=false", "-no-color", "-auto-approve")
    [(_, _, body)] = cloud.store.list("google_project_iam_member")
    assert before <= body[CREATED_KEY] <= time.time()
    assert CREATED_KEY not in cloud.terraform(directory, "show", "-json").stdout
    plan = cloud.terraform(directory, "plan", "-input=false", "-no-color", "-detailed-exitcode")
    assert plan.returncode == 0, plan.output
    state = json.loads(cloud.terraform(directory, "show", "-json").stdout)
    member = next(r for r in state["values"]["root_module"]["resources"] if r["type"] == "google_project_iam_member")
    assert member["values"]["role"] == "roles/bigquery.jobUser"
    # Young grants are not effective while the delay lasts.
    resource = Resource.project_(HOST)
    runner = f"serviceAccount:dataform-runner@{HOST}.iam.gserviceaccount.com"
    assert "bigquery.jobs.create" in effective_permissions(cloud.store, runner, resource)
    assert "bigquery.jobs.create" not in effective_permissions(cloud.store, runner, resource, propagation_seconds=600)


def test_a_release_serves_only_what_was_made_live_and_the_providers_update_empties_it(world, monkeypatch):
    """#23, as Google behaves: a release config's own cron or an update under a mask sets its live
    compilation; the provider's whole-body update (no mask) empties it; a workflow config's cron with
    nothing live fails; making one live needs act-as on every workflow config's account (strict act-as)."""
    from dataform_infra.errors import ReleaseFailed
    from dataform_infra.gcp.clients import GoogleApis
    from dataform_infra.gcp.releases import config_names, release
    from tests.fakegcp.cloud import Cloud
    from tests.fakegcp.types import resource_type

    apis, store = world["apis"], world["store"]
    apis.caller = DEPLOYER
    state, reasons = apis.dataform.run_workflow_cron(WORKFLOW)
    assert state == "FAILED" and reasons == [f"Release config {RELEASE} has no release compilation result yet."]

    monkeypatch.setenv("DFINFRA_GOOGLE_API_EMULATOR", apis.address)
    deployment = _one_release_deployment()
    assert config_names(deployment, "host") == {"nightly": RELEASE}
    revoke(world, "act-as")
    with pytest.raises(ReleaseFailed, match=f"nightly: .*permission denied.*iam.serviceAccounts.actAs.*{RUNNER}"):
        release(deployment, "host", GoogleApis())
    assert apis.dataform.live_compilation(RELEASE) == ""
    account_member(store, RUNNER, "roles/iam.serviceAccountUser", DEPLOYER)
    (done,) = release(deployment, "host", GoogleApis())
    assert apis.dataform.live_compilation(RELEASE) == done.compilation
    assert dataform(apis).get_release_config(name=RELEASE).release_compilation_result == done.compilation
    assert apis.dataform.run_workflow_cron(WORKFLOW) == ("SUCCEEDED", [])

    kind = resource_type(
        "registry.terraform.io/hashicorp/google-beta", "resource", "google_dataform_repository_release_config"
    )
    body = store.get("google_dataform_repository_release_config", RELEASE)
    kind.update(body, {**body, "cron_schedule": "0 5 * * *"}, Cloud(store))
    assert apis.dataform.live_compilation(RELEASE) == ""
    state, reasons = apis.dataform.run_workflow_cron(WORKFLOW)
    assert state == "FAILED" and "no release compilation result" in reasons[0]


def _one_release_deployment():
    """The world's setup as a dfinfra spec (what `config_names` resolves against)."""
    import tempfile

    from dataform_infra.spec.loader import load_deployment

    directory = Path(tempfile.mkdtemp(prefix="dfinfra-release-")) / "environments"
    directory.mkdir()
    (directory / "host.yaml").write_text(
        f"""project: {{id: {HOST}, number: {HOST_NUMBER}}}
region: europe-west2
bigquery_location: EU
state: {{bucket: acme-tfstate, prefix: dataform/host}}
deployers: ["{DEPLOYER}"]
repository:
  name: analytics
  runner: dataform-runner
  git: {{url: "{URL}", https_token: {{secret_id: git-token}}}}
datasets: [{{id: marts_prod}}, {{id: assertions_prod}}, {{id: raw, create: false}}]
runners:
  - name: dataform-runner
    bigquery: {{writes: [marts_prod, assertions_prod], reads: [raw]}}
releases:
  - name: nightly
    git_ref: main
    cron: "30 6 * * *"
    compilation: {{schema: marts_prod, assertion_schema: assertions_prod}}
workflows:
  - {{name: nightly, release: nightly, runner: dataform-runner, cron: "0 7 * * *", tags: [daily]}}
"""
    )
    return load_deployment(directory)


def test_release_after_a_pushed_commit_makes_the_next_scheduled_run_run_that_commit(world, monkeypatch):
    """#23: workflows run the release's live compilation, so a commit pushed to the release's branch waits for
    the release's cron; `dfinfra release` makes it live at once and the next workflow cron tick runs it."""
    from dataform_infra.gcp.clients import GoogleApis
    from dataform_infra.gcp.releases import release
    from tests.fakegcp.dataform import INVOCATION, SCHEDULE_RECORDS

    apis, store = world["apis"], world["store"]
    apis.caller = DEPLOYER
    monkeypatch.setenv("DFINFRA_GOOGLE_API_EMULATOR", apis.address)
    deployment = _one_release_deployment()

    def ran() -> set[str]:
        """The actions the workflow config's newest scheduled run executed."""
        assert apis.dataform.run_workflow_cron(WORKFLOW) == ("SUCCEEDED", [])
        newest = store.get(SCHEDULE_RECORDS, WORKFLOW)["records"][0]["workflow_invocation"]
        return {a["target"]["name"] for a in store.get(INVOCATION, newest)["actions"]}

    release(deployment, "host", GoogleApis())
    assert "orders_daily_summary" not in ran()
    pushed = {
        **CODE,
        "actions": [
            *CODE["actions"],
            {"name": "orders_daily_summary", "type": "table", "tags": ["daily"], "dependencies": ["orders"]},
        ],
    }
    store.put("git_code", URL, pushed)  # a commit merged to the release's branch
    assert "orders_daily_summary" not in ran()  # still the compilation made live before the push
    release(deployment, "host", GoogleApis())
    assert "orders_daily_summary" in ran()
