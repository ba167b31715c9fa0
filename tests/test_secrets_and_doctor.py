"""`dfinfra secret` and `dfinfra doctor` against local Secret Manager / IAM / Service Usage APIs that
read the same store the offline provider wrote: every doctor check passes, then fails with its fix."""

import os
import re
import threading
import time
from pathlib import Path

import pytest

from dataform_infra.specset import SpecSet
from tests.fakegcp.store import RELEASE_STATE
from tests.support.dataform_code import CODE
from tests.support.project import Project
from tests.support.snapshot import Snapshot, shipped
from tests.support.specsets import SPEC_SETS

pytestmark = pytest.mark.terraform

CANARY = "ghp_CANARYd0notLEAKx7Qz9Wv3Rt5Yu1Io8Pa2Sd4Fg"
AGENT = "serviceAccount:service-481516234200@gcp-sa-dataform.iam.gserviceaccount.com"
PROD_RUNNER = (
    "projects/acme-analytics-prod/serviceAccounts/dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com"
)
SECRET = "projects/acme-analytics-staging/secrets/dataform-github-token"


@pytest.fixture(scope="session")
def applied(tmp_path_factory, terraform_bin, gcs) -> Snapshot:
    """The shipped environments bootstrapped and applied once per test run, through the CLI, for every test here."""
    return shipped(
        tmp_path_factory, terraform_bin, gcs, "applied", ("apply", "--all", "--auto-approve", "--confirm", "prod")
    )


@pytest.fixture()
def live(applied, tmp_path, cloud, google_apis) -> Project:
    """That deployment in this test's own offline cloud (a copy: breaking it breaks nothing else)."""
    project = applied.restore(cloud, tmp_path / "checkout")
    # The deployer's own Dataform rights (dfinfra does not grant them; doctor checks them).
    cloud.store.put(
        "external:iam",
        "deployer-dataform-admin",
        {
            "role": "roles/dataform.admin",
            "member": google_apis.caller,
            "resource": "//cloudresourcemanager.googleapis.com/projects/acme-analytics-staging",
        },
    )
    cloud.store.put("git_code", "https://github.com/acme/analytics-dataform.git", CODE["shipped"])
    return project


def ready(live: Project) -> None:
    """What a team does after its first apply: set the Git token, then make the releases live (the apply
    could not compile them without it)."""
    live.run("secret", "set", "staging", stdin=CANARY)
    for env in ("staging", "prod"):
        live.run("release", env)


def checks(output: str) -> dict[str, str]:
    """check name -> PASS / FAIL / SKIP, from doctor's text output."""
    return {name: status for status, name in re.findall(r"^(PASS|FAIL|SKIP|INFO)  (\S+):", output, re.M)}


def test_secret_set_status_and_a_clean_doctor(live, google_apis):
    assert "  no versions yet: dfinfra secret set staging\n" in live.run("secret", "status", "staging")
    name = live.run("secret", "set", "staging", stdin=CANARY + "\n").strip().splitlines()[-1]
    assert name == "projects/481516234200/secrets/dataform-github-token/versions/1"
    assert google_apis.payloads[name] == CANARY.encode()  # delivered intact, CRC32C verified by the API
    status = live.run("secret", "status", "staging")
    assert re.search(r"^\s+1\s+ENABLED\s+\d{4}-", status, re.M) and CANARY not in status

    second = live.run("secret", "set", "staging", "--disable-previous", stdin=CANARY + "2")
    assert (
        "versions/2" in second and "disabled projects/481516234200/secrets/dataform-github-token/versions/1" in second
    )
    assert re.search(r"^\s+1\s+DISABLED", live.run("secret", "status", "staging"), re.M)

    # Nothing could compile before the token was set: doctor says so, with the fix.
    output = live.run("doctor", "staging", expect=1)
    assert checks(output)["release-live:staging-nightly"] == "FAIL"
    assert "fix: dfinfra release staging staging-nightly" in output
    for env in ("staging", "prod"):
        assert f"release {env}-nightly now serves " in live.run("release", env)

    staging = live.run("doctor", "staging")
    found = checks(staging)
    # Everything passes; only the groups' requirements are skipped (the troubleshooter takes no groups).
    groups = ("analytics-engineers@", "data-analysts@", "data-platform-admins@")
    assert {n for n, s in found.items() if s != "PASS"} == {n for n in found if any(g in n for g in groups)}, staging
    assert {
        "apis-enabled",
        "git-secret-version",
        "agent-reads-git-secret",
        "caller-act-as:dataform-staging-runner@acme-analytics-staging.iam.gserviceaccount.com",
    } <= set(found)
    # Each environment's doctor checks the runners its module owns: prod's are prod's.
    assert not [name for name in found if "dataform-prod-runner" in name and not name.startswith("run:")]
    prod = checks(live.run("doctor", "prod"))
    assert set(prod.values()) == {"PASS"}
    assert {
        "project-number:acme-analytics-prod",
        "runner-exists:dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com",
        "agent-token-creator:dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com",
        "caller-act-as:dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com",
        "run:runner-runs-jobs:dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com:project:acme-analytics-staging",
        "release-live:prod-nightly",
    } <= set(prod)


def _drop_member(store, kind, role, member=None, resource_attr=None, resource=None):
    for _, id_, body in store.list(kind):
        if (
            body["role"] == role
            and (member is None or body["member"] == member)
            and (resource_attr is None or body[resource_attr] == resource)
        ):
            store.delete(kind, id_)
            return
    raise AssertionError("nothing to drop")


STAGING_RELEASE = (
    "projects/acme-analytics-staging/locations/europe-west2/repositories/analytics/releaseConfigs/staging-nightly"
)

BREAKAGES = {
    "release-live:staging-nightly": (
        lambda s: s.delete(RELEASE_STATE, STAGING_RELEASE),  # as the provider's update leaves it
        "staging",
        "dfinfra release staging staging-nightly",
    ),
    "apis-enabled": (
        lambda s: s.delete("service_enabled", "acme-analytics-staging/dataform.googleapis.com"),
        "staging",
        "gcloud services enable dataform.googleapis.com --project acme-analytics-staging",
    ),
    "runner-exists:dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com": (
        lambda s: s.delete("google_service_account", PROD_RUNNER),
        "prod",
        "dfinfra apply prod",
    ),
    "agent-token-creator:dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com": (
        lambda s: _drop_member(
            s,
            "google_service_account_iam_member",
            "roles/iam.serviceAccountTokenCreator",
            AGENT,
            "service_account_id",
            PROD_RUNNER,
        ),
        "prod",
        "--role=roles/iam.serviceAccountTokenCreator",
    ),
    "caller-act-as:dataform-prod-runner@acme-analytics-prod.iam.gserviceaccount.com": (
        lambda s: _drop_member(
            s,
            "google_service_account_iam_member",
            "roles/iam.serviceAccountUser",
            None,
            "service_account_id",
            PROD_RUNNER,
        ),
        "prod",
        "grant roles/iam.serviceAccountUser",
    ),
    "git-secret-version": (
        lambda s: s.put(
            "secret_version",
            f"{SECRET}/versions/1",
            {**s.get("secret_version", f"{SECRET}/versions/1"), "state": "DISABLED"},
        ),
        "staging",
        "dfinfra secret set staging",
    ),
    "agent-reads-git-secret": (
        lambda s: _drop_member(
            s, "google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor", AGENT
        ),
        "staging",
        "--role=roles/secretmanager.secretAccessor",
    ),
}


@pytest.mark.parametrize("check", sorted(BREAKAGES))
def test_each_doctor_check_fails_with_its_fix(live, check):
    ready(live)
    breakage, env, fix = BREAKAGES[check]
    assert checks(live.run("doctor", env)).get(check) == "PASS"
    breakage(live.cloud.store)
    output = live.run("doctor", env, expect=1)
    assert checks(output)[check] == "FAIL", output
    block = output[output.index(f"FAIL  {check}:") :]
    assert fix in block.split("\n      fix: ", 1)[1].splitlines()[0], block
    # One break, one failure among the resource checks (dependent checks are skipped, not failed); the
    # run requirements the break takes away fail too, and name the runs.
    failed = [name for name, status in checks(output).items() if status == "FAIL"]
    assert [name for name in failed if not name.startswith("run:")] == [check], output


def test_a_missing_runner_skips_its_grant_checks(live):
    ready(live)
    live.cloud.store.delete("google_service_account", PROD_RUNNER)
    found = checks(live.run("doctor", "prod", expect=1))
    email = PROD_RUNNER.rsplit("/", 1)[-1]
    assert found[f"agent-token-creator:{email}"] == found[f"caller-act-as:{email}"] == "SKIP"


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "is empty"), ("line1\nline2\n", "spans several lines"), (" padded", "starts or ends with spaces")],
)
def test_bad_tokens_are_refused(live, value, message):
    output = live.run("secret", "set", "staging", stdin=value, expect=2)
    assert message in output
    assert live.cloud.store.list("secret_version") == []


def test_secret_set_wants_the_host_and_reads_env_vars(live):
    assert "lives in the host environment 'staging'" in live.run("secret", "set", "prod", stdin=CANARY, expect=2)
    output = live.run("secret", "set", "staging", "--from-env", "GIT_TOKEN", env={"GIT_TOKEN": CANARY})
    assert output.strip().endswith("/versions/1")
    assert "GIT_TOKEN2 is not set" in live.run("secret", "set", "staging", "--from-env", "GIT_TOKEN2", expect=2)


def test_missing_credentials_are_one_sentence(live, tmp_path):
    env = {
        "DFINFRA_GOOGLE_API_EMULATOR": "",
        "HOME": str(tmp_path),
        "GOOGLE_APPLICATION_CREDENTIALS": "",
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "NO_GCE_CHECK": "True",
        "GCE_METADATA_HOST": "127.0.0.1:9",
    }
    output = live.run("doctor", "staging", env=env, expect=1)
    assert output.strip() == (
        "error: no Google credentials found: run `gcloud auth application-default login`, "
        "or set GOOGLE_APPLICATION_CREDENTIALS to a credentials file"
    )


def test_ssh_keys_work_the_same_and_a_pinned_version_says_what_to_change(tmp_path, cloud, google_apis):
    project = Project(tmp_path / "ssh", cloud, SPEC_SETS["ssh-repository"])
    project.run("bootstrap", "analytics", "--auto-approve")
    project.run("apply", "analytics", "--auto-approve")
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    output = project.run("secret", "set", "analytics", stdin=key)
    assert "versions/1" in output
    assert "pins version 3" in output and "version: 1" in output
    assert "not a private key" in project.run("secret", "set", "analytics", stdin="hunter2", expect=2)


def test_the_canary_token_appears_nowhere(live, tmp_path, google_apis):
    seen_in_argv: list[str] = []
    stop = threading.Event()

    def watch_argv() -> None:
        needle = CANARY.encode()
        while not stop.is_set():
            for proc in Path("/proc").iterdir():
                try:
                    if proc.name.isdigit() and needle in (proc / "cmdline").read_bytes():
                        seen_in_argv.append(proc.name)
                except OSError:
                    continue
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_argv, daemon=True)
    watcher.start()
    try:
        live.run("secret", "set", "staging", stdin=CANARY)
        live.run("secret", "set", "staging", "--from-env", "TOKEN", env={"TOKEN": CANARY})
        for env in ("staging", "prod"):
            live.run("release", env)  # Dataform fetches with the token: nothing of it comes back
        live.run("doctor", "staging")
        live.run("plan", "--all", expect=0)
        live.run("apply", "--all", "--auto-approve", "--confirm", "prod")
    finally:
        stop.set()
        watcher.join()
    assert seen_in_argv == []
    assert google_apis.payloads  # the token did reach Secret Manager...
    leaks = []
    for path in tmp_path.rglob("*"):  # ...and nothing else: HCL, plans, logs, caches, the cloud's store
        if path.is_file() and not path.is_symlink() and CANARY.encode() in path.read_bytes():
            leaks.append(str(path))
    spec = live.root / "environments"
    for env in ("staging", "prod"):
        state = live.state(env)
        assert CANARY not in str(state)
    assert leaks == [], leaks
    assert CANARY not in "".join(p.read_text() for p in spec.glob("*.yaml"))
    assert os.environ.get("TOKEN") is None


def test_the_token_reaches_no_log_whatever_googles_logging_variables_say(live):
    import base64

    loud = {"GOOGLE_SDK_PYTHON_LOGGING_SCOPE": "google", "GRPC_VERBOSITY": "debug", "GRPC_TRACE": "all"}
    output = live.run("secret", "set", "staging", stdin=CANARY, env=loud)
    assert "projects/481516234200/secrets/dataform-github-token/versions/1" in output
    for encoded in (
        CANARY,
        base64.b64encode(CANARY.encode()).decode(),
        base64.urlsafe_b64encode(CANARY.encode()).decode(),
        CANARY.encode().hex(),
    ):
        assert encoded.rstrip("=")[:24] not in output


def test_a_token_that_is_not_utf8_is_refused_without_echoing_it(live):
    import subprocess
    import sys

    process = subprocess.run(
        [sys.executable, "-m", "dataform_infra", "secret", "set", "staging"],
        cwd=live.root,
        env=live.cloud.env,
        input=b"ghp_\xff\xfe" + CANARY.encode(),
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 2
    assert b"error: the Git token is not UTF-8 text" in process.stderr
    assert b"Traceback" not in process.stderr and b"\\xff" not in process.stderr


def test_token_creator_granted_on_the_runners_project_serves_as_well(live):
    """Google grants Token Creator by inheritance too: doctor asks the troubleshooter, not the account's policy."""
    ready(live)
    email = PROD_RUNNER.rsplit("/", 1)[-1]
    _drop_member(
        live.cloud.store,
        "google_service_account_iam_member",
        "roles/iam.serviceAccountTokenCreator",
        AGENT,
        "service_account_id",
        PROD_RUNNER,
    )
    assert checks(live.run("doctor", "prod", expect=1))[f"agent-token-creator:{email}"] == "FAIL"
    live.cloud.store.put(
        "external:iam",
        "project-token-creator",
        {
            "role": "roles/iam.serviceAccountTokenCreator",
            "member": AGENT,
            "resource": "//cloudresourcemanager.googleapis.com/projects/acme-analytics-prod",
        },
    )
    assert checks(live.run("doctor", "prod"))[f"agent-token-creator:{email}"] == "PASS"


def test_git_remotes_are_allowed_by_their_full_url_and_refused_when_denied(live):
    from tests.fakegcp.policies import set_org_policy

    ready(live)
    url = "https://github.com/acme/analytics-dataform.git"
    check = "org-policy:dataform.restrictGitRemotes"
    for body, expected in (
        ({"allowed_values": ["https://github.com/acme/"]}, "FAIL"),  # a prefix is not the remote's URL
        ({"allowed_values": [url]}, "PASS"),
        ({"denied_values": [url]}, "FAIL"),
        ({"denied_values": ["https://github.com/acme/other.git"]}, "PASS"),
    ):
        set_org_policy(live.cloud.store, "acme-analytics-staging", "dataform.restrictGitRemotes", **body)
        output = live.run("doctor", "staging", expect=None)
        assert checks(output)[check] == expected, (body, output)


def test_a_denied_global_location_refuses_the_automatically_replicated_git_secret(live):
    from tests.fakegcp.policies import set_org_policy

    ready(live)
    check = "org-policy:gcp.resourceLocations"
    assert checks(live.run("doctor", "staging", expect=None))[check] == "PASS"
    set_org_policy(live.cloud.store, "acme-analytics-staging", "gcp.resourceLocations", denied_values=["global"])
    output = live.run("doctor", "staging", expect=1)
    assert checks(output)[check] == "FAIL"
    assert "automatic replication of the Git secret dataform-github-token is refused" in output


def test_a_failed_apply_still_makes_the_releases_it_changed_live(live, google_apis):
    """#23: the release config's update completes (emptying its live compilation), another change of the same
    apply fails: the release is compiled and made live before the failure is reported, so the next scheduled
    run still has something to run."""
    import yaml

    ready(live)
    project, apis = live, google_apis
    config = SpecSet(live.root / "environments").topology.release_config_name("prod", "prod-nightly")
    before = apis.dataform.live_compilation(config)
    assert before
    spec = yaml.safe_load(project.spec("prod").read_text())
    spec["releases"][0]["cron"] = "5 4 * * *"
    # A grant on a dataset that does not exist: Google refuses it with a 404, in the same first wave of changes.
    spec["runners"][0]["bigquery"].setdefault("reads", []).append("acme-nowhere.missing")
    project.spec("prod").write_text(yaml.safe_dump(spec, sort_keys=False))
    # Google's 403 on the unknown project reads like IAM propagation: dfinfra waits (0 s here) and applies what
    # is left once more; the release changed by the first attempt must still be made live.
    out = project.run(
        "apply", "prod", "--auto-approve", "--confirm", "prod", env={"DFINFRA_IAM_PROPAGATION_WAIT": "0"}, expect=1
    )
    assert "applying once more" in out
    assert "acme-nowhere" in out
    assert "prod: release prod-nightly now serves" in out, out
    after = apis.dataform.live_compilation(config)
    assert after and after != before
    assert apis.dataform.run_workflow_cron(f"{config.split('/releaseConfigs/')[0]}/workflowConfigs/prod-daily") == (
        "SUCCEEDED",
        [],
    )
