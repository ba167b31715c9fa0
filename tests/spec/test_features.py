"""Spec features real setups use: user-managed secret replication, a CMEK key on the repository, and the
deletion policy of release and workflow configs. Each: schema entry, located error, rendered HCL, and an
apply in the offline cloud that honours it."""

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.spec.models import Environment
from dataform_infra.specset import SpecSet
from tests.specs import host, target, write_specs

KEY = "projects/acme-kms-proj/locations/europe-west2/keyRings/dataform/cryptoKeys/repository"


@contextlib.contextmanager
def applied_host(tmp_path: Path, cloud, spec: dict, *, token: bool = True) -> Iterator[tuple[SpecSet, Any, Any]]:
    """`spec` as the host, bootstrapped and applied through the CLI against the offline cloud, with its Git
    token set and one model in its repository; yields the workspace, the runtime APIs (Dataform) and the
    checkout (to run dfinfra in)."""
    from tests.fakegcp.apis import FakeGoogleApis
    from tests.support.dataform_code import workspace_code
    from tests.support.project import Project
    from tests.support.runtime import TOKEN, seed_runtime

    project = Project(tmp_path / "checkout", cloud, specs=write_specs(tmp_path / "specs", {"staging": spec}))
    ws = SpecSet(project.root / "environments")
    apis = FakeGoogleApis(cloud.store, caller=ws.topology.host.deployers[0]).start()
    cloud.env["DFINFRA_GOOGLE_API_EMULATOR"] = apis.address
    try:
        project.run("bootstrap", "staging", "--auto-approve")
        applied = project.run("apply", "staging", "--auto-approve")
        assert "applying once more" not in applied, applied  # a first apply in dependency order, no retry
        if token:
            project.run("secret", "set", "staging", stdin=TOKEN + "\n")
        seed_runtime(cloud.store, ws, workspace_code("marts", "assertions"))
        yield ws, apis, project
    finally:
        apis.stop()


def assert_located(tmp_path: Path, spec: dict, message: str) -> None:
    """`spec` as the host is refused, with `message` among its problems, each located at a line."""
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": spec}))
    assert any(p.line and message in p.describe() for p in info.value.problems), info.value.describe()


def featured() -> dict:
    h = host()
    h["repository"]["git"]["https_token"]["replicas"] = ["europe-west2", "europe-west1"]
    h["repository"]["kms_key_name"] = KEY
    h["releases"][0]["deletion_policy"] = "ABANDON"
    h["workflows"][0]["deletion_policy"] = "PREVENT"
    return h


def test_the_fields_are_in_the_json_schema():
    defs = Environment.model_json_schema(by_alias=True)["$defs"]
    assert defs["HttpsToken"]["properties"]["replicas"]["items"]["type"] == "string"
    assert defs["SshKey"]["properties"]["replicas"]
    assert "cryptoKeyEncrypterDecrypter" in defs["Repository"]["properties"]["kms_key_name"]["description"]
    for config in ("Release", "Workflow"):
        assert "ABANDON" in str(defs[config]["properties"]["deletion_policy"])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("repository", "git", "https_token", "replicas"), ["europe-west2", "europe-west2"], "duplicate replica"),
        (("repository", "git", "https_token", "replicas"), ["EU"], "a region looks like"),
        (("repository", "kms_key_name"), "my-key", "a Cloud KMS key looks like"),
        (("releases", 0, "deletion_policy"), "KEEP", "ABANDON"),
        (("workflows", 0, "deletion_policy"), "FORCE", "ABANDON"),
    ],
)
def test_bad_values_are_located_problems(tmp_path, path, value, message):
    h = host()
    target = h
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    [problem] = info.value.problems
    assert problem.line and message in problem.message, problem.describe()


def test_rendered_hcl(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": featured()}))
    files = render_module(ws.module("staging"))
    assert (
        "  replication {\n"
        "    # User-managed: kept only in these regions (a gcp.resourceLocations org policy refuses `auto`).\n"
        "    user_managed {\n"
        '      replicas {\n        location = "europe-west2"\n      }\n'
        '      replicas {\n        location = "europe-west1"\n      }\n'
        "    }\n  }\n"
    ) in files["secrets.tf"]
    assert f'  kms_key_name    = "{KEY}"\n' in files["dataform.tf"]
    assert '  deletion_policy = "ABANDON"\n' in files["dataform.tf"]
    assert '  deletion_policy = "PREVENT"\n' in files["dataform.tf"]
    # Without the fields: automatic replication, and the provider's own defaults.
    plain = render_module(SpecSet(write_specs(tmp_path / "plain", {"staging": host()})).module("staging"))
    assert "    auto {}\n" in plain["secrets.tf"] and "kms_key_name" not in plain["dataform.tf"]


def test_abandoned_configs_warn_when_the_repository_cannot_be_destroyed_with_them(tmp_path):
    deployment = load_deployment(write_specs(tmp_path, {"staging": featured()}))
    [warning] = [w.describe() for w in deployment.warnings if "ABANDON" in w.describe()]
    assert "releases[0].deletion_policy" in warning and "deletion_policy: FORCE" in warning


def test_cmek_reminds_who_needs_the_key(tmp_path):
    """A key in a project outside the deployment: the grant is the team's, named by validate at its line."""
    report = SpecSet(write_specs(tmp_path, {"staging": featured()})).validate()
    [warning] = [w.describe() for w in report.warnings if "cryptoKeyEncrypterDecrypter" in w.describe()]
    assert "service-111111111111@gcp-sa-dataform.iam.gserviceaccount.com" in warning and KEY in warning
    assert "repository.kms_key_name" in warning


@pytest.mark.terraform
def test_the_offline_cloud_applies_them_and_honours_the_deletion_policies(tmp_path, cloud):
    h = featured()
    h["workflows"][0]["deletion_policy"] = "DELETE"
    ws = SpecSet(write_specs(tmp_path / "environments", {"staging": h}))
    cloud.seed(ws.deployment)
    out = tmp_path / "infra"
    ws.write(out, ["staging"])
    module = out / "staging"
    cloud.init(module)
    cloud.terraform(module, "apply", "-input=false", "-no-color", "-auto-approve")
    [secret] = [body for _, _, body in cloud.store.list("google_secret_manager_secret")]
    assert [r["location"] for r in secret["replication"][0]["user_managed"][0]["replicas"]] == [
        "europe-west2",
        "europe-west1",
    ]
    [repository] = [body for _, _, body in cloud.store.list("google_dataform_repository")]
    assert repository["kms_key_name"] == KEY
    # ABANDON: terraform forgets the release config but Dataform keeps it, so a repository with
    # deletion_policy DELETE cannot go (Google: it has child resources); `validate` warned about this.
    failed = cloud.terraform(module, "destroy", "-input=false", "-no-color", "-auto-approve", check=False)
    assert failed.returncode == 1 and "the repository has child resources" in failed.output
    assert "google_dataform_repository_release_config" not in cloud.terraform(module, "state", "list").stdout
    assert cloud.store.list("google_dataform_repository_release_config")


@pytest.mark.terraform
def test_a_cmek_repository_runs_once_the_agent_may_use_its_key_and_its_key_is_never_changed_in_place(tmp_path, cloud):
    """#23.4: every compilation and run of a CMEK repository uses its key (a chain doctor checks, with the
    grant to make on a key dfinfra does not manage); Google refuses to change the key of a repository that
    exists, so a plan that would update it in place is refused, and the replacement is behind --allow-destroy."""
    import re

    spec = host()
    spec["repository"]["kms_key_name"] = KEY
    with applied_host(tmp_path, cloud, spec) as (ws, apis, project):
        config = f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily"
        state, reasons = apis.run_scheduled(config)
        assert state == "FAILED" and "cloudkms.cryptoKeyVersions.useToDecrypt" in reasons[0], reasons
        check = re.compile(r"^(PASS|FAIL)  run:agent-uses-key:\S+:crypto:key:" + re.escape(KEY) + ":", re.M)
        doctor = project.run("doctor", "staging", expect=1)
        assert [m.group(1) for m in check.finditer(doctor)] == ["FAIL"], doctor
        assert f"fix: gcloud kms keys add-iam-policy-binding {KEY} --member={AGENT}" in doctor
        cloud.store.put(
            "external:iam",
            "agent-uses-key",
            {
                "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
                "member": AGENT,
                "resource": f"//cloudkms.googleapis.com/{KEY}",
            },
        )
        assert apis.run_scheduled(config) == ("SUCCEEDED", [])
        assert [m.group(1) for m in check.finditer(project.run("doctor", "staging", expect=None))] == ["PASS"]

        staging = project.spec("staging")
        staging.write_text(staging.read_text().replace("cryptoKeys/repository", "cryptoKeys/repository-2"))
        refused = project.run("plan", "staging", expect=1)
        address = "google_dataform_repository.analytics"
        assert f"changes kms_key_name of {address}" in refused and f"--replace {address}" in refused, refused
        assert "will be destroyed" not in refused
        project.run("plan", "staging", "--replace", address, expect=2)
        out = project.run("apply", "staging", "--replace", address, "--auto-approve", expect=1)
        assert "--allow-destroy" in out and f"replace {address}" in out, out


@pytest.mark.terraform
@pytest.mark.parametrize(
    ("constraint", "served"),
    [("~> 8.7", "8.7.0"), ("~> 7.45", "7.45.0"), (None, "7.45.0")],
    ids=["8.7", "7.45", "unset"],
)
def test_both_provider_lines_apply_and_run_offline(tmp_path, cloud, constraint, served):
    """#24: the current line (~> 8.7, what `init` writes) and a 7.45-pinned spec both render, apply and run;
    a spec that sets nothing stays on 7.45 (no provider major moves unasked). The offline cloud serves each
    version's own facts."""
    spec = host()
    if constraint:
        spec["provider_version"] = constraint
    with applied_host(tmp_path, cloud, spec) as (ws, apis, project):
        lock = (project.root / "build" / "staging" / ".terraform.lock.hcl").read_text()
        assert re.findall(r'version\s+=\s+"([^"]+)"', lock) == [served, served], lock
        config = f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily"
        assert apis.run_scheduled(config) == ("SUCCEEDED", [])


@pytest.mark.terraform
def test_a_key_in_a_project_of_the_deployment_is_granted_by_the_module_before_the_repository(tmp_path, cloud):
    """#23.4 / #26: google_kms_crypto_key_iam_member, the first type added through the registry. A key in the
    host project (provider 8.x): the host module grants the agent on exactly that key, the repository waits
    for it, runs work with no grant made by hand, and removing the grant fails the runs validate predicts."""
    own_key = "projects/acme-host-proj/locations/europe-west2/keyRings/dataform/cryptoKeys/repository"
    spec = host()
    spec["repository"]["kms_key_name"] = own_key
    spec["provider_version"] = "~> 8.7"
    with applied_host(tmp_path, cloud, spec) as (ws, apis, _project):
        [grant] = [g for g in ws.module("staging").grants if g.rule == "agent-uses-repository-key"]
        assert (grant.resource_type, grant.role, grant.target) == (
            "google_kms_crypto_key_iam_member",
            "roles/cloudkms.cryptoKeyEncrypterDecrypter",
            {"crypto_key_id": own_key},
        )
        assert not [w for w in ws.validate().warnings if "cryptoKeyEncrypterDecrypter" in w.describe()]
        config = f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily"
        assert apis.run_scheduled(config) == ("SUCCEEDED", [])
        [stored] = cloud.store.list("google_kms_crypto_key_iam_member")
        cloud.store.delete("google_kms_crypto_key_iam_member", stored[1])
        state, reasons = apis.run_scheduled(config)
        assert state == "FAILED" and "cloudkms.cryptoKeyVersions.useToDecrypt" in reasons[0]
        assert {r.chain for r in ws.access.requirements if r.resource == grant.resource} == {"agent-uses-key"}
    # On the 7.45 line (no KMS IAM type in its facts) the grant is the team's to make, and validate says so.
    spec["provider_version"] = "~> 7.45"
    ws = SpecSet(write_specs(tmp_path / "pinned", {"staging": spec}))
    assert not [g for g in ws.module("staging").grants if g.rule == "agent-uses-repository-key"]
    assert [w for w in ws.validate().warnings if "cryptoKeyEncrypterDecrypter" in w.describe()]


DEFAULT_KEY = "projects/acme-host-proj/locations/europe-west2/keyRings/dataform/cryptoKeys/default"


def with_default_key(key: str = DEFAULT_KEY) -> dict:
    spec = host()
    spec["provider_version"] = "~> 8.7"
    spec["dataform_default_kms_key_name"] = key
    return spec


def test_dataforms_default_key_is_the_hosts_and_needs_provider_8(tmp_path):
    pinned = with_default_key()
    pinned["provider_version"] = "~> 7.45"
    assert_located(tmp_path / "a", pinned, "dataform_default_kms_key_name: google_dataform_config needs provider 8.x")
    target_spec = target()
    target_spec["dataform_default_kms_key_name"] = DEFAULT_KEY
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path / "b", {"staging": host(), "prod": target_spec}))
    [problem] = info.value.problems
    assert problem.line and "prod.yaml" in problem.describe() and "only a host (staging)" in problem.describe()


def test_the_default_key_is_rendered_granted_once_and_waited_for(tmp_path):
    """#23.4: google_dataform_config carries the key; the agent's grant on it is made once, even when a
    repository also names it as its own, and repositories without a key of their own wait for the config."""
    spec = with_default_key()
    ws = SpecSet(write_specs(tmp_path / "a", {"staging": spec}))
    files = render_module(ws.module("staging"))
    assert (
        'resource "google_dataform_config" "this" {\n  provider = google-beta\n\n  project              = '
        f'"acme-host-proj"\n  region               = "europe-west2"\n  default_kms_key_name = "{DEFAULT_KEY}"\n'
    ) in files["dataform.tf"]
    repository = files["dataform.tf"].split('resource "google_dataform_repository" "analytics"')[1].split("\n}\n")[0]
    assert "google_dataform_config.this," in repository
    # Named, not left implicit: the provider reads the key back and does not compute it (an unnamed default
    # would plan a change Google refuses), and a later change of the default is refused like a changed key.
    assert f'  kms_key_name    = "{DEFAULT_KEY}"\n' in repository
    assert "google_kms_crypto_key_iam_member.dataform_agent_uses_default_key" in repository
    [grant] = [g for g in ws.module("staging").grants if g.resource_type == "google_kms_crypto_key_iam_member"]
    assert (grant.principal.kind, grant.target) == ("service_agent", {"crypto_key_id": DEFAULT_KEY})
    assert ws.validate().violations == [] and ws.coverage().unserved == []
    spec["repository"]["kms_key_name"] = DEFAULT_KEY  # its own key is the same key: still one grant
    own = SpecSet(write_specs(tmp_path / "b", {"staging": spec}))
    assert len([g for g in own.module("staging").grants if g.resource_type == "google_kms_crypto_key_iam_member"]) == 1
    assert (
        "google_dataform_config.this"
        not in render_module(own.module("staging"))["dataform.tf"]
        .split('resource "google_dataform_repository"')[1]
        .split("\n}\n")[0]
    )


def test_a_default_key_outside_the_deployment_is_named_not_granted(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": with_default_key(KEY)}))
    assert not [g for g in ws.module("staging").grants if g.resource_type == "google_kms_crypto_key_iam_member"]
    report = ws.validate()
    assert report.violations == []
    assert any(
        "dataform_default_kms_key_name" in w.describe() and f"default key {KEY}" in w.describe()
        for w in report.warnings
    ), [w.describe() for w in report.warnings]


@pytest.mark.terraform
def test_repositories_made_after_the_default_key_use_it_and_doctor_checks_it(tmp_path, cloud):
    """#23.4 offline: the config is applied before the repository, which Google then creates with the default
    key; runs work through the agent's grant and fail without it, as validate predicts; doctor reads the key."""
    with applied_host(tmp_path, cloud, with_default_key()) as (ws, apis, project):
        assert (
            cloud.store.get("google_dataform_config", "projects/acme-host-proj/locations/europe-west2/config")[
                "default_kms_key_name"
            ]
            == DEFAULT_KEY
        )
        config = f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily"
        assert apis.run_scheduled(config) == ("SUCCEEDED", [])
        doctor = project.run("doctor", "staging", expect=None)
        assert (
            f"PASS  dataform-default-key: new repositories in europe-west2 are encrypted with {DEFAULT_KEY}" in doctor
        )
        [grant] = [g for g in ws.module("staging").grants if g.resource_type == "google_kms_crypto_key_iam_member"]
        predicted = {r.chain for r in ws.access.requirements if r.resource == grant.resource}
        assert predicted == {"agent-uses-key"}
        [stored] = cloud.store.list("google_kms_crypto_key_iam_member")
        cloud.store.delete("google_kms_crypto_key_iam_member", stored[1])
        state, reasons = apis.run_scheduled(config)
        assert state == "FAILED" and "cloudkms.cryptoKeyVersions.useToDecrypt" in reasons[0], reasons
        cloud.store.put(
            "google_dataform_config",
            "projects/acme-host-proj/locations/europe-west2/config",
            {"default_kms_key_name": KEY},
        )
        doctor = project.run("doctor", "staging", expect=1)
        assert f"FAIL  dataform-default-key: Dataform's default key in acme-host-proj (europe-west2) is {KEY}" in doctor


def test_a_runner_reads_another_projects_dataset_by_name(tmp_path):
    h = host()
    h["runners"][0]["bigquery"]["reads"] = ["raw", "acme-crm-prod.crm_exports"]
    ws = SpecSet(write_specs(tmp_path, {"staging": h}))
    [grant] = [g for g in ws.module("staging").grants if g.resource.project == "acme-crm-prod"]
    assert (grant.role, grant.resource.label) == ("roles/bigquery.dataViewer", "dataset acme-crm-prod.crm_exports")
    assert grant.target == {"project": "acme-crm-prod", "dataset_id": "crm_exports"}
    reads = [r for r in ws.access.requirements if r.chain == "runner-reads" and r.resource.project == "acme-crm-prod"]
    assert reads and all(r.resource.id == "crm_exports" for r in reads)
    assert not ws.validate().violations


@pytest.mark.parametrize(
    ("reads", "message"),
    [
        (["Acme.crm"], "a dataset is `dataset_id`, or `project-id.dataset_id`"),
        (["unknown"], "dataset 'unknown' is not declared"),
    ],
)
def test_bad_reads_are_located(tmp_path, reads, message):
    h = host()
    h["runners"][0]["bigquery"]["reads"] = reads
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    [problem] = info.value.problems
    assert problem.path == "runners[0].bigquery.reads[0]" and message in problem.message


def test_a_secret_in_another_project_is_referenced_and_read_never_created(tmp_path):
    h = host()
    h["repository"]["git"]["https_token"]["project"] = "acme-secrets-proj"
    ws = SpecSet(write_specs(tmp_path, {"staging": h}))
    files = render_module(ws.module("staging"))
    assert "secrets.tf" not in files and "google_secret_manager_secret." not in files["dataform.tf"]
    name = "projects/acme-secrets-proj/secrets/git-token"
    assert f'authentication_token_secret_version = "{name}/versions/latest"' in files["dataform.tf"]
    [grant] = [g for g in ws.module("staging").grants if g.rule == "agent-reads-git-secret"]
    assert grant.target == {"secret_id": name} and grant.resource.project == "acme-secrets-proj"
    assert not ws.validate().violations


@pytest.mark.parametrize("conflict", [{"existing": True}, {"replicas": ["europe-west2"]}])
def test_a_secret_managed_elsewhere_takes_no_adoption_or_replication(tmp_path, conflict):
    h = host()
    h["repository"]["git"]["https_token"] |= {"project": "acme-secrets-proj", **conflict}
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    [problem] = info.value.problems
    assert problem.path == "repository.git.https_token" and "is managed there" in problem.message


CONDITION = {
    "title": "until the audit ends",
    "expression": 'request.time < timestamp("2027-01-01T00:00:00Z")',
    "description": "contractors' access expires",
}


def conditional() -> dict:
    h = host()
    h["repository"]["access"] = [{"member": "group:contractors@acme.example", "role": "editor", "condition": CONDITION}]
    return h


def test_a_conditional_repository_role_renders_its_condition_and_warns(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": conditional()}))
    iam = render_module(ws.module("staging"))["iam.tf"]
    assert (
        "  condition {\n"
        '    title       = "until the audit ends"\n'
        '    expression  = "request.time < timestamp(\\"2027-01-01T00:00:00Z\\")"\n'
        '    description = "contractors\' access expires"\n'
        "  }\n"
    ) in iam
    [warning] = [w.describe() for w in ws.deployment.warnings if "condition" in w.describe()]
    assert "repository.access[0].condition" in warning and "'until the audit ends'" in warning
    schema = Environment.model_json_schema(by_alias=True)["$defs"]
    assert schema["IamCondition"]["required"] == ["title", "expression"]


@pytest.mark.parametrize("broken", [{"title": "x"}, {"expression": "true"}, {**CONDITION, "title": ""}])
def test_an_incomplete_condition_is_located(tmp_path, broken):
    h = conditional()
    h["repository"]["access"][0]["condition"] = broken
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    assert all(p.line and p.path.startswith("repository.access[0].condition") for p in info.value.problems)


@pytest.mark.terraform
def test_the_offline_cloud_applies_a_conditional_role(tmp_path, cloud):
    ws = SpecSet(write_specs(tmp_path / "environments", {"staging": conditional()}))
    cloud.seed(ws.deployment)
    ws.write(tmp_path / "infra", ["staging"])
    module = tmp_path / "infra" / "staging"
    cloud.init(module)
    cloud.terraform(module, "apply", "-input=false", "-no-color", "-auto-approve")
    [member] = [b for _, _, b in cloud.store.list("google_dataform_repository_iam_member")]
    assert member["condition"][0]["title"] == "until the audit ends"
    assert cloud.terraform(module, "plan", "-input=false", "-detailed-exitcode").returncode == 0


def test_npmrc_variables_are_referenced_and_read_by_the_agent_only(tmp_path):
    h = host()
    h["repository"]["npmrc"] = {"secret_id": "npmrc-vars", "version": 2}
    ws = SpecSet(write_specs(tmp_path, {"staging": h}))
    dataform = render_module(ws.module("staging"))["dataform.tf"]
    name = "projects/acme-host-proj/secrets/npmrc-vars"
    assert f'npmrc_environment_variables_secret_version = "{name}/versions/2"' in dataform
    [grant] = [g for g in ws.module("staging").grants if g.rule == "agent-reads-npmrc-secret"]
    assert (grant.principal.kind, grant.role, grant.target) == (
        "service_agent",
        "roles/secretmanager.secretAccessor",
        {"secret_id": name},
    )
    # Every compilation needs it, so every run does: the model says so, and validate proves the grant meets it.
    needs = [r for r in ws.access.requirements if r.resource == grant.resource]
    assert needs and set(needs[0].runs) == {run.id for run in ws.access.runs if run.kind != "manual"}
    assert not ws.validate().violations


@pytest.mark.parametrize("bad", [{"secret_id": "npmrc", "version": 0}, {"version": 1}, {"secret_id": "a b"}])
def test_a_bad_npmrc_secret_is_located(tmp_path, bad):
    h = host()
    h["repository"]["npmrc"] = bad
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    assert all(p.line and p.path.startswith("repository.npmrc") for p in info.value.problems)


# --- `${workspaceName}` in the workspace suffix and prefix ----------------------------------------


def per_workspace(opt_in: bool) -> dict:
    """Each workspace writes its own `<schema>_<workspace>` datasets; people run workspaces as the runner."""
    h = host()
    h["repository"]["workspace_compilation"] = {
        "default_database": "acme-host-proj",
        "schema_suffix": "${workspaceName}",
        "table_prefix": "ws_${workspaceName}",
    }
    h["repository"]["runner"] = "host-runner"
    h["repository"]["access"] = [{"member": "group:eng@acme.example", "role": "editor", "run_as": ["host-runner"]}]
    if opt_in:
        reason = "each developer workspace creates its own datasets on its first run"
        h["runners"][0]["bigquery"]["project_wide"] = [{"role": "dataEditor", "reason": reason}]
    return h


def test_workspace_name_is_in_the_schema_and_other_placeholders_are_located(tmp_path):
    defs = Environment.model_json_schema(by_alias=True)["$defs"]
    assert "${workspaceName}" in defs["WorkspaceCompilation"]["properties"]["schema_suffix"]["description"]
    for bad in ("${workspace}", "${workspaceName", "dev-${workspaceName}"):
        h = per_workspace(opt_in=True)
        h["repository"]["workspace_compilation"]["schema_suffix"] = bad
        with pytest.raises(SpecError) as info:
            load_deployment(write_specs(tmp_path / str(len(bad)), {"staging": h}))
        [problem] = info.value.problems
        assert problem.line and "${workspaceName}" in problem.message, problem.describe()


def test_workspace_name_reaches_dataform_literally(tmp_path):
    files = render_module(SpecSet(write_specs(tmp_path, {"staging": per_workspace(opt_in=True)})).module("staging"))
    assert (
        "  workspace_compilation_overrides {\n"
        '    # "$${workspaceName}" is the literal ${workspaceName}: Dataform puts each workspace\'s name there.\n'
        '    default_database = "acme-host-proj"\n'
        '    schema_suffix    = "$${workspaceName}"\n'
        '    table_prefix     = "ws_$${workspaceName}"\n'
        "  }\n"
    ) in files["dataform.tf"]


def test_per_workspace_datasets_need_the_runner_to_create_datasets(tmp_path):
    """Nothing can be declared ahead: validate asks for the one grant that lets each workspace create its own."""
    specs = write_specs(tmp_path / "missing", {"staging": per_workspace(opt_in=False)})
    line = next(
        n for n, text in enumerate((specs / "staging.yaml").read_text().splitlines(), 1) if "schema_suffix" in text
    )
    [finding] = [v for v in SpecSet(specs).validate().violations if v.rule == "run-needs:workspace-creates-datasets"]
    assert finding.source.endswith(f"staging.yaml:{line}: repository.workspace_compilation.schema_suffix"), finding
    assert "lacks bigquery.datasets.create on project acme-host-proj" in finding.message
    assert "workspace run by group:eng@acme.example" in finding.message
    assert "project_wide: [{role: dataEditor" in finding.message
    granted = SpecSet(write_specs(tmp_path / "granted", {"staging": per_workspace(opt_in=True)})).validate()
    assert granted.violations == []


@pytest.mark.terraform
def test_each_workspace_creates_and_writes_its_own_datasets_in_the_offline_cloud(tmp_path, cloud):
    from tests.fakegcp.dataform import RUNTIME_DATASET

    with applied_host(tmp_path, cloud, per_workspace(opt_in=True)) as (ws, apis, _):
        for person_workspace in ("alice", "bob"):
            state, reasons = apis.run_workspace(
                "group:eng@acme.example", ws.topology.repositories[0].api_name, person_workspace
            )
            assert state == "SUCCEEDED", reasons
    created = {key for _, key, _ in cloud.store.list(RUNTIME_DATASET)}
    assert {"projects/acme-host-proj/datasets/marts_alice", "projects/acme-host-proj/datasets/marts_bob"} <= created


# --- a release that leaves its default database and location to workflow_settings.yaml ---------------


def from_settings() -> dict:
    h = host()
    h["releases"][0]["compilation"]["defaults_from"] = "workflow_settings"
    return h


def test_defaults_from_is_in_the_schema_and_a_bad_value_is_located(tmp_path):
    defs = Environment.model_json_schema(by_alias=True)["$defs"]
    assert defs["Compilation"]["properties"]["defaults_from"]["enum"] == ["environment", "workflow_settings"]
    h = from_settings()
    h["releases"][0]["compilation"]["defaults_from"] = "workflow_settings.yaml"
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    [problem] = info.value.problems
    assert problem.line and "releases[0].compilation.defaults_from" in problem.describe(), problem.describe()


def test_a_release_left_to_workflow_settings_sets_no_database_or_location(tmp_path):
    files = render_module(SpecSet(write_specs(tmp_path / "a", {"staging": from_settings()})).module("staging"))
    assert (
        "  code_compilation_config {\n"
        "    # default_database and default_location unset here: the repository's workflow_settings.yaml decides "
        "them.\n"
        '    default_schema   = "marts"\n'
    ) in files["dataform.tf"]
    # An explicit database still wins; the location stays with workflow_settings.yaml, and the comment says
    # only that (it once sat, unchanged, above a database that was set).
    h = from_settings()
    h["releases"][0]["compilation"]["database"] = "acme-host-proj"
    files = render_module(SpecSet(write_specs(tmp_path / "b", {"staging": h})).module("staging"))
    assert (
        "    # default_location unset here: the repository's workflow_settings.yaml decides it.\n"
        '    default_database = "acme-host-proj"\n'
    ) in files["dataform.tf"]
    assert "default_location =" not in files["dataform.tf"]


def test_validate_says_what_it_cannot_check_when_the_database_is_left_open(tmp_path):
    report = SpecSet(write_specs(tmp_path, {"staging": from_settings()})).validate()
    assert report.violations == []
    [note] = [w for w in report.warnings if "workflow_settings.yaml" in w.describe()]
    assert "releases[0].compilation.defaults_from" in note.describe() and "not checked" in note.describe()


@pytest.mark.terraform
def test_the_offline_cloud_compiles_with_workflow_settings_defaults(tmp_path, cloud):
    from tests.fakegcp.dataform import RUNTIME_DATASET

    with applied_host(tmp_path, cloud, from_settings()) as (ws, apis, _):
        [release] = [body for _, _, body in cloud.store.list("google_dataform_repository_release_config")]
        assert release["code_compilation_config"][0]["default_database"] is None
        settings = cloud.store.get("git_code", ws.topology.repositories[0].spec.git.url)
        settings["workflow_settings"].update(defaultProject="acme-host-proj", defaultLocation="EU")
        cloud.store.put("git_code", ws.topology.repositories[0].spec.git.url, settings)
        state, reasons = apis.run_scheduled(f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily")
        assert state == "SUCCEEDED", reasons
    assert not cloud.store.list(RUNTIME_DATASET), "it wrote the declared datasets of workflow_settings' project"


# --- Data Owner on one dataset, by opt-in -------------------------------------------------------------

OWN_REASON = "the code shares marts through authorized views"


def owning() -> dict:
    h = host()
    h["runners"][0]["bigquery"] = {
        "writes": ["assertions"],
        "reads": ["raw"],
        "owns": [{"dataset": "marts", "reason": OWN_REASON}],
    }
    return h


def test_owns_is_in_the_schema():
    defs = Environment.model_json_schema(by_alias=True)["$defs"]
    assert defs["BigQueryAccess"]["properties"]["owns"]["items"]["$ref"].endswith("OwnedDataset")
    assert defs["OwnedDataset"]["properties"]["reason"]["minLength"] == 10


@pytest.mark.parametrize(
    ("owns", "message"),
    [
        ([{"dataset": "sales", "reason": OWN_REASON}], "'sales' is not declared under `datasets:`"),
        ([{"dataset": "assertions", "reason": OWN_REASON}], "also in writes or reads"),
        ([{"dataset": "marts", "reason": "mine"}], "at least 10"),
        ([{"dataset": "marts"}], "reason"),
        ([{"dataset": "marts", "reason": OWN_REASON}, {"dataset": "marts", "reason": OWN_REASON + "!"}], "duplicate"),
    ],
    ids=["undeclared", "also-written", "short-reason", "no-reason", "twice"],
)
def test_bad_owns_are_located(tmp_path, owns, message):
    h = owning()
    h["runners"][0]["bigquery"]["owns"] = owns
    assert_located(tmp_path, h, message)


def test_owning_a_dataset_renders_data_owner_there_with_its_reason_and_lint_warns(tmp_path):
    from dataform_infra import policy

    ws = SpecSet(write_specs(tmp_path / "environments", {"staging": owning()}))
    files = render_module(ws.module("staging"))
    assert (
        'resource "google_bigquery_dataset_iam_member" "host_runner_owns_marts" {\n'
        f"  # Dataset owner opt-in: {OWN_REASON}\n"
        '  project    = "acme-host-proj"\n'
        "  dataset_id = google_bigquery_dataset.marts.dataset_id\n"
        '  role       = "roles/bigquery.dataOwner"\n'
    ) in files["iam.tf"]
    report = ws.validate()
    assert report.violations == []  # the workflow writes marts: Data Owner serves its runs too, nothing idle
    [warning] = [w.describe() for w in report.warnings if "dataOwner" in w.describe()]
    assert "runners[0].bigquery.owns[0].dataset" in warning and OWN_REASON in warning
    ws.write(tmp_path / "out", ["staging"])
    [finding] = [f for f in policy.lint([tmp_path / "out" / "staging"]) if f.rule == "bigquery-data-roles"]
    assert finding.severity == "warning" and OWN_REASON in finding.message


@pytest.mark.terraform
def test_the_offline_cloud_grants_data_owner_and_the_workflow_runs_on_it(tmp_path, cloud):
    with applied_host(tmp_path, cloud, owning()) as (ws, apis, _):
        roles = {
            (body["dataset_id"], body["role"])
            for _, _, body in cloud.store.list("google_bigquery_dataset_iam_member")
            if "host-runner" in body["member"]
        }
        assert ("marts", "roles/bigquery.dataOwner") in roles and ("marts", "roles/bigquery.dataEditor") not in roles
        state, reasons = apis.run_scheduled(f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily")
        assert state == "SUCCEEDED", reasons


# --- a Developer Connect link instead of a Git secret ---------------------------------------------------

LINK = "projects/acme-host-proj/locations/europe-west2/connections/github/gitRepositoryLinks/acme-analytics"
AGENT = "serviceAccount:service-111111111111@gcp-sa-dataform.iam.gserviceaccount.com"


def linked() -> dict:
    h = host()
    h["repository"]["git"] = {"url": "https://github.com/acme/analytics.git", "repository_link": LINK}
    return h


def test_repository_link_is_in_the_schema():
    git = Environment.model_json_schema(by_alias=True)["$defs"]["GitRemote"]["properties"]
    assert "tokenAccessor" in git["repository_link"]["description"]


@pytest.mark.parametrize(
    ("git", "message"),
    [
        ({"repository_link": "acme-analytics"}, "a Developer Connect link looks like"),
        ({"repository_link": LINK, "https_token": {"secret_id": "git-token"}}, "exactly one of"),
        ({"url": "git@github.com:acme/analytics.git", "repository_link": LINK}, "must be an https:// URL"),
    ],
    ids=["not-a-link", "link-and-token", "ssh-url"],
)
def test_bad_links_are_located(tmp_path, git, message):
    h = linked()
    h["repository"]["git"] = {**h["repository"]["git"], **git}
    assert_located(tmp_path, h, message)


def test_a_linked_repository_has_no_secret_and_validate_names_the_grant_to_make(tmp_path):
    ws = SpecSet(write_specs(tmp_path / "environments", {"staging": linked()}))
    files = render_module(ws.module("staging"))
    assert (
        "    # Developer Connect: the link holds the credential; no secret passes through Terraform or dfinfra.\n"
        f'    git_repository_link = "{LINK}"\n'
    ) in files["dataform.tf"]
    assert "secrets.tf" not in files and "git_secret" not in files["outputs.tf"]
    assert "secretmanager.versions.access" not in str(ws.access.requirements)
    from dataform_infra.explain import runs_table

    [row] = [line for line in runs_table(ws.runs(), ws.coverage()).splitlines() if line.startswith("| git-sync")]
    assert "fetchReadToken" in row and "*a Developer Connect grant made outside dfinfra*" in row, row
    report = ws.validate()
    assert report.violations == []
    [warning] = [w.describe() for w in report.warnings if "developerconnect" in w.describe()]
    assert "repository.git.repository_link" in warning and AGENT in warning and LINK in warning


def test_secret_commands_say_there_is_no_secret(tmp_path):
    from dataform_infra.errors import UsageError
    from dataform_infra.gcp.secrets import git_secret

    with pytest.raises(UsageError, match=r"Developer Connect link .* no Git secret"):
        git_secret(load_deployment(write_specs(tmp_path, {"staging": linked()})), "staging")


@pytest.mark.terraform
def test_the_offline_cloud_fetches_through_the_link_once_the_agent_may(tmp_path, cloud):
    from tests.fakegcp.iam import DEVELOPER_CONNECT_GRANT

    with applied_host(tmp_path, cloud, linked(), token=False) as (ws, apis, project):
        assert not cloud.store.list("google_secret_manager_secret")
        config = f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily"
        state, reasons = apis.run_scheduled(config)
        assert state == "FAILED" and "developerconnect.gitRepositoryLinks.fetchReadToken" in str(reasons), reasons
        check = re.compile(
            r"^(PASS|FAIL)  run:git-sync:service-111111111111@gcp-sa-dataform\S+:git:repository:link:.*$", re.M
        )
        before = project.run("doctor", "staging", expect=None)
        [line] = [m.group(0) for m in check.finditer(before)]
        assert line.startswith("FAIL") and "fix: grant roles/developerconnect.readTokenAccessor" in before, before
        # The grant validate asks for, made outside dfinfra as it says:
        grant = {"link": LINK, "member": AGENT, "role": "roles/developerconnect.readTokenAccessor"}
        cloud.store.put(DEVELOPER_CONNECT_GRANT, "agent", grant)
        state, reasons = apis.run_scheduled(config)
        assert state == "SUCCEEDED", reasons
        [line] = [m.group(0) for m in check.finditer(project.run("doctor", "staging", expect=None))]
        assert line.startswith("PASS"), line


def linked_with_people() -> dict:
    h = linked()
    h["repository"]["access"] = [{"member": "user:ann@acme.example", "role": "editor"}]
    return h


def test_a_link_people_commit_through_needs_the_read_write_accessor_and_its_api(tmp_path):
    """#23: Dataform pushes workspace commits through the link with its read-write token
    (`roles/developerconnect.tokenAccessor`), and reaches the link through the Developer Connect API."""
    ws = SpecSet(write_specs(tmp_path / "environments", {"staging": linked_with_people()}))
    wanted = {r.permission for r in ws.access.requirements if r.resource.kind == "git_repository_link"}
    assert "developerconnect.gitRepositoryLinks.fetchReadWriteToken" in wanted
    [warning] = [w.describe() for w in ws.validate().warnings if "developerconnect" in w.describe()]
    assert "roles/developerconnect.tokenAccessor on that link" in warning
    assert "developerconnect.googleapis.com" in {api.service for api in ws.module("staging").apis}
    # A repository nobody works in only fetches: the read accessor, still through the API.
    only_fetches = SpecSet(write_specs(tmp_path / "fetch-only", {"staging": linked()}))
    [warning] = [w.describe() for w in only_fetches.validate().warnings if "developerconnect" in w.describe()]
    assert "roles/developerconnect.readTokenAccessor on that link" in warning
    assert "developerconnect.googleapis.com" in {api.service for api in only_fetches.module("staging").apis}


@pytest.mark.terraform
def test_the_offline_cloud_pushes_through_the_link_only_with_the_read_write_accessor(tmp_path, cloud):
    from tests.fakegcp.iam import DEVELOPER_CONNECT_GRANT

    with applied_host(tmp_path, cloud, linked_with_people(), token=False) as (ws, apis, project):
        repository = ws.topology.repositories[0].api_name
        cloud.store.put(
            DEVELOPER_CONNECT_GRANT,
            "agent",
            {"link": LINK, "member": AGENT, "role": "roles/developerconnect.readTokenAccessor"},
        )
        assert apis.run_scheduled(f"{repository}/workflowConfigs/host-daily")[0] == "SUCCEEDED"  # fetching works
        state, reasons = apis.dataform.push_workspace(repository)
        assert state == "FAILED" and "fetchReadWriteToken" in reasons[0], reasons
        doctor = project.run("doctor", "staging", expect=1)
        assert "fix: grant roles/developerconnect.tokenAccessor to " + AGENT in doctor, doctor
        assert "PASS  apis-enabled" in doctor  # the apply enabled developerconnect.googleapis.com
        cloud.store.put(
            DEVELOPER_CONNECT_GRANT,
            "agent",
            {"link": LINK, "member": AGENT, "role": "roles/developerconnect.tokenAccessor"},
        )
        assert apis.dataform.push_workspace(repository) == ("SUCCEEDED", [])
        assert "fix: grant roles/developerconnect" not in project.run("doctor", "staging", expect=None)


def test_an_empty_workspace_schema_suffix_means_none(tmp_path):
    """#24: `workspace_compilation.schema_suffix: ""` was refused; Google takes it as no suffix."""
    from dataform_infra.render.engine import render_module
    from dataform_infra.render.module import build_module
    from dataform_infra.spec.loader import load_deployment
    from tests.specs import host, write_specs

    spec = host()
    spec["repository"]["workspace_compilation"] = {"default_database": "acme-host-proj", "schema_suffix": ""}
    module = build_module(load_deployment(write_specs(tmp_path, {"staging": spec})), "staging")
    assert "schema_suffix" not in render_module(module)["dataform.tf"]


SECRETS_NUMBER = "987654321098"


def test_a_secret_project_may_be_named_by_its_number(tmp_path):
    """#24: `projects/<number>/secrets/...` is how Google's own outputs and many teams name a secret."""
    h = host()
    h["repository"]["git"]["https_token"]["project"] = int(SECRETS_NUMBER)  # YAML reads it as a number
    ws = SpecSet(write_specs(tmp_path / "a", {"staging": h}))
    files = render_module(ws.module("staging"))
    name = f"projects/{SECRETS_NUMBER}/secrets/git-token"
    assert f'authentication_token_secret_version = "{name}/versions/latest"' in files["dataform.tf"]
    [grant] = [g for g in ws.module("staging").grants if g.rule == "agent-reads-git-secret"]
    assert grant.target == {"secret_id": name}
    assert not ws.validate().violations
    h["repository"]["git"]["https_token"]["project"] = "12345"  # neither an id nor a number
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path / "b", {"staging": h}))
    [problem] = info.value.problems
    assert problem.line and "https_token.project" in problem.describe() and "or its number" in problem.describe()


@pytest.mark.terraform
def test_a_secret_named_by_project_number_is_read_by_the_agent_offline(tmp_path, cloud):
    h = host()
    h["repository"]["git"]["https_token"]["project"] = SECRETS_NUMBER
    with applied_host(tmp_path, cloud, h, token=False) as (ws, apis, project):
        project.run("secret", "set", "staging", stdin="ghp_offline0123456789abcdef\n")
        config = f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily"
        assert apis.run_scheduled(config) == ("SUCCEEDED", [])
        doctor = project.run("doctor", "staging")  # every check passes, the troubleshooter's included
        assert "PASS  agent-reads-git-secret" in doctor and "PASS  run:git-sync:" in doctor


def test_a_release_whose_git_ref_ci_moves_is_never_reset_by_an_apply_render(tmp_path):
    h = host()
    h["releases"][0]["git_ref_owner"] = "ci"
    files = render_module(SpecSet(write_specs(tmp_path, {"staging": h})).module("staging"))
    release = files["dataform.tf"].split('resource "google_dataform_repository_release_config"')[1].split("\n}\n")[0]
    assert release.endswith("  lifecycle {\n    ignore_changes = [git_commitish]\n  }")
    assert (
        "ignore_changes"
        not in render_module(SpecSet(write_specs(tmp_path / "spec", {"staging": host()})).module("staging"))[
            "dataform.tf"
        ]
    )


@pytest.mark.terraform
def test_a_release_whose_git_ref_ci_moves_is_never_reset_by_an_apply(tmp_path, cloud, monkeypatch):
    """#24: CI moves git_commitish to each tag through the Dataform API; the next apply (here with a changed
    cron) keeps it, and `dfinfra release` compiles what CI chose."""
    from google.cloud import dataform_v1

    from dataform_infra.gcp.clients import GoogleApis

    h = host()
    h["releases"][0]["git_ref_owner"] = "ci"
    with applied_host(tmp_path, cloud, h) as (ws, apis, project):
        monkeypatch.setenv("DFINFRA_GOOGLE_API_EMULATOR", apis.address)  # CI's own call, from this process
        cloud.store.put(  # CI's account may update the release (its own Dataform rights, outside dfinfra)
            "external:iam",
            "ci-dataform-editor",
            {
                "role": "roles/dataform.editor",
                "member": apis.caller,
                "resource": "//cloudresourcemanager.googleapis.com/projects/acme-host-proj",
            },
        )
        config = ws.topology.release_config_name("staging", "host-release")
        client = GoogleApis().dataform()
        client.update_release_config(
            release_config=dataform_v1.ReleaseConfig(name=config, git_commitish="refs/tags/v2"),
            update_mask={"paths": ["git_commitish"]},
        )
        plan = project.run("plan", "staging", "--json", expect=0)
        assert not json.loads(plan[plan.index("{") :])["staging"]["has_changes"], plan
        spec = project.spec("staging")
        spec.write_text(spec.read_text().replace("30 6 * * *", "15 6 * * *"))
        project.run("apply", "staging", "--auto-approve")
        stored = cloud.store.get("google_dataform_repository_release_config", config)
        assert (stored["git_commitish"], stored["cron_schedule"]) == ("refs/tags/v2", "15 6 * * *")
        assert client.get_release_config(name=config).git_commitish == "refs/tags/v2"


@pytest.mark.terraform
def test_workspace_runs_by_people_outside_the_spec_run_offline_and_need_the_runners_grant(tmp_path, cloud):
    """#24: `outside_users: true`: a project owner the spec does not name runs a workspace as the repository's
    runner (their own act-as, granted outside dfinfra); the dataset grant the model keeps is what the run uses."""
    h = host()
    h["repository"]["runner"] = "host-runner"
    h["repository"]["outside_users"] = True
    h["repository"]["workspace_compilation"] = {
        "default_database": "acme-host-proj",
        "schema_suffix": "dev",
        "schemas": ["marts", "assertions"],
    }
    h["datasets"] += [{"id": "marts_dev"}, {"id": "assertions_dev"}]
    h["runners"][0]["bigquery"]["writes"] += ["marts_dev", "assertions_dev"]
    owner = "user:owner@acme.example"
    runner = "//iam.googleapis.com/projects/acme-host-proj/serviceAccounts/"
    runner += "host-runner@acme-host-proj.iam.gserviceaccount.com"
    with applied_host(tmp_path, cloud, h) as (ws, apis, _project):
        for key, role, resource in (
            ("owner-edits", "roles/dataform.editor", "//cloudresourcemanager.googleapis.com/projects/acme-host-proj"),
            ("owner-acts-as", "roles/iam.serviceAccountUser", runner),
        ):
            cloud.store.put("external:iam", key, {"role": role, "member": owner, "resource": resource})
        repository = ws.topology.repositories[0].api_name
        outcome = apis.run_workspace(owner, repository)
        assert outcome == ("SUCCEEDED", []), outcome
        [stored] = [
            key
            for _, key, body in cloud.store.list("google_bigquery_dataset_iam_member")
            if body["dataset_id"] == "marts_dev"
        ]
        cloud.store.delete("google_bigquery_dataset_iam_member", stored)
        state, reasons = apis.run_workspace(owner, repository)
        assert state == "FAILED" and "marts_dev" in reasons[0], reasons
        predicted = {run for r in ws.access.requirements if r.resource.id == "marts_dev" for run in r.runs}
        assert predicted == {"workspace:staging/analytics:outside"}
