"""`dfinfra bootstrap/plan/apply/destroy` end to end, as a user runs them, against the offline cloud."""

import json
import signal

import pytest

from tests.fakegcp.harness import resource_blocks
from tests.support.project import Project
from tests.support.snapshot import Snapshot, shipped
from tests.support.specsets import rendered

pytestmark = pytest.mark.terraform


@pytest.fixture()
def project(tmp_path, cloud) -> Project:
    return Project(tmp_path / "checkout", cloud)


# Every resource block the shipped prod module declares (state holds one entry each).
PROD_RESOURCES = resource_blocks(rendered("shipped")["prod"].values())


@pytest.fixture(scope="session")
def applied_snapshot(tmp_path_factory, terraform_bin, gcs) -> Snapshot:
    """The shipped environments bootstrapped and applied once, through the CLI, for the tests here."""
    return shipped(
        tmp_path_factory, terraform_bin, gcs, "applied", ("apply", "--all", "--auto-approve", "--confirm", "prod")
    )


@pytest.fixture(scope="session")
def host_applied_snapshot(tmp_path_factory, terraform_bin, gcs) -> Snapshot:
    """Buckets for both, and staging (the host) applied: prod's configs need its repository."""
    return shipped(tmp_path_factory, terraform_bin, gcs, "host-applied", ("apply", "staging", "--auto-approve"))


@pytest.fixture()
def applied(applied_snapshot, tmp_path, cloud) -> Project:
    """That deployment, restored into this test's own offline cloud (state buckets put back as they were)."""
    return applied_snapshot.restore(cloud, tmp_path / "checkout")


@pytest.fixture()
def host_applied(host_applied_snapshot, tmp_path, cloud) -> Project:
    return host_applied_snapshot.restore(cloud, tmp_path / "checkout")


def test_from_nothing_to_applied_then_one_more_workflow(project):
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    again = project.run("bootstrap", "prod", "--auto-approve", "--confirm", "prod")
    assert "No changes" in again  # idempotent

    first = project.run("plan", "--all", expect=2)
    # prod: 3 APIs, runner, 2 datasets, 3 dataset grants, Token Creator, Job User, act-as, release, workflow
    assert "Plan: 14 to create" in first
    # Every principal is known from the spec: IAM lines name it the way `explain` does.
    assert not [line for line in first.splitlines() if " -> roles/" in line and "known after apply" in line]
    # Every create is listed, named as `explain` names it.
    assert "+ create google_bigquery_dataset.marts (dataset acme-analytics-prod.marts)" in first
    assert "+ runner dataform-prod-runner -> roles/bigquery.jobUser -> project acme-analytics-staging" in first
    assert "+ Dataform service agent -> roles/dataform.serviceAgent -> project acme-analytics-staging" in first
    project.run("apply", "--all", "--auto-approve", "--confirm", "prod")
    assert "No changes" in project.run("plan", "--all", expect=0)

    spec = project.spec("prod")
    spec.write_text(
        spec.read_text()
        + (
            "  - name: prod-weekly-refresh\n    release: prod-nightly\n    runner: dataform-prod-runner\n"
            '    cron: "0 8 * * SUN"\n    time_zone: Europe/London\n    full_refresh: true\n'
        )
    )
    plan = _json_tail(project.run("plan", "--all", "--json", expect=2))
    assert plan["staging"]["has_changes"] is False  # prod.yaml changed: only prod's module changes
    assert plan["prod"]["changes"] == [
        {
            "address": "google_dataform_repository_workflow_config.prod_weekly_refresh",
            "type": "google_dataform_repository_workflow_config",
            "action": "create",
            "attributes": [],
            "label": "workflow config prod-weekly-refresh in repository analytics",
            "destructive": False,
        }
    ]
    project.run("apply", "prod", "--auto-approve", "--confirm", "prod")  # `apply prod` applies prod.yaml fully
    assert "No changes" in project.run("plan", "--all", expect=0)

    # A cron edit shows what changes, old -> new; the Markdown comment puts it under its environment.
    spec.write_text(spec.read_text().replace('cron: "45 6 * * *"', 'cron: "0 7 * * *"'))
    diff = project.run("plan", "prod", expect=2)
    assert "~ update google_dataform_repository_workflow_config.prod_daily (workflow config prod-daily in" in diff
    assert 'cron_schedule: "45 6 * * *" -> "0 7 * * *"' in diff
    comment = project.run("plan", "--all", "--format", "markdown", expect=2)
    assert comment.startswith("### dfinfra plan")
    assert "<details><summary><b>prod</b>: 0 to create, 1 to update, 0 to replace, 0 to delete</summary>" in comment
    assert "<b>staging</b>: no changes" in comment


def _json_tail(output: str) -> dict:
    return json.loads(output[output.index("{\n") :])


def test_second_plan_skips_init(project):
    project.run("bootstrap", "prod", "--auto-approve", "--confirm", "prod")
    assert "terraform init" in project.run("plan", "prod", expect=2)
    assert "terraform init" not in project.run("plan", "prod", expect=2)


def test_protected_environment_needs_its_name(host_applied):
    project = host_applied
    no_tty = project.run("apply", "prod", expect=1)
    assert "without confirmation: no terminal" in no_tty
    assert "--auto-approve --confirm prod" in no_tty
    assert "is protected: with --auto-approve also pass --confirm prod" in project.run(
        "apply", "prod", "--auto-approve", expect=1
    )
    wrong = project.run("apply", "prod", "--auto-approve", "--confirm", "staging", expect=1)
    assert "prod is protected: with --auto-approve also pass --confirm prod" in wrong
    prod = [id_ for kind, id_ in project.cloud.resources() if kind != "google_storage_bucket" and "-prod" in id_]
    assert prod == []


def test_destructive_plans_are_refused_without_allow_destroy(applied):
    project = applied
    spec = project.spec("prod")
    spec.write_text(spec.read_text().replace("dataform-prod-runner", "dataform-prod-runner2"))
    refused = project.run("apply", "prod", "--auto-approve", "--confirm", "prod", expect=1)
    assert "refusing to apply prod" in refused and "delete google_service_account.dataform_prod_runner" in refused
    assert "--allow-destroy" in refused
    destroy = project.run("destroy", "prod", "--auto-approve", "--confirm", "prod", expect=1)
    assert "refusing to destroy prod" in destroy and "google_bigquery_dataset.marts" in destroy
    assert project.cloud.resources()  # nothing was touched


def test_stale_saved_plan_is_planned_again(applied):
    project = applied
    project.run("plan", "staging", expect=0)
    spec = project.spec("staging")
    spec.write_text(spec.read_text().replace("display_name: Acme analytics (Dataform)", "display_name: Acme analytics"))
    project.run("plan", "staging", expect=2)  # saved plan: display name change
    spec.write_text(spec.read_text().replace("deletion_policy: DELETE", "deletion_policy: FORCE"))
    output = project.run("apply", "staging", "--auto-approve")
    assert "the saved plan was made from another render or mode; planning again" in output
    assert "No changes" in project.run("plan", "staging", expect=0)  # both edits were applied


def test_saved_plan_is_reused_when_nothing_changed(host_applied):
    project = host_applied
    project.run("plan", "prod", expect=2)
    assert "applying the saved plan" in project.run("apply", "prod", "--auto-approve", "--confirm", "prod")


def test_concurrent_applies_one_waits_for_or_fails_on_the_lock(host_applied):
    project = host_applied
    slow = {"FAKEGCP_APPLY_DELAY": "2"}
    first = project.popen("apply", "prod", "--auto-approve", "--confirm", "prod", "--out", "build-a", env=slow)
    for line in first.stdout:  # the first apply holds the lock once it is creating resources
        if "Creating..." in line:
            break
    second = project.run(
        "apply", "prod", "--auto-approve", "--confirm", "prod", "--lock-timeout", "1s", "--out", "build-b", expect=1
    )
    first_output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, first_output
    assert "is locked by" in second and "force-unlock" in second, second
    state = project.state("prod")
    assert len(state["resources"]) == PROD_RESOURCES
    assert state["serial"] >= 1
    assert "No changes" in project.run("plan", "prod", "--out", "build-b", expect=0)


def test_two_runs_in_one_out_take_turns_or_say_who_holds_the_module(host_applied):
    """Two dfinfra runs in the same --out share `.terraform/` and the saved plan: the second waits for
    the module (then finds nothing to do), or names the run holding it; never terraform's raw errors."""
    project = host_applied
    slow = {"FAKEGCP_APPLY_DELAY": "2"}
    first = project.popen("apply", "prod", "--auto-approve", "--confirm", "prod", env=slow)
    waiting = None
    try:
        for line in first.stdout:  # past its plan: the first run is creating resources
            if "Creating..." in line:
                break
        waiting = project.popen("apply", "prod", "--auto-approve", "--confirm", "prod")
        impatient = project.run(
            "apply", "prod", "--auto-approve", "--confirm", "prod", "--lock-timeout", "0s", expect=1
        )
        assert f"build/prod is in use by another dfinfra (pid {first.pid}, apply, since " in impatient, impatient
        assert "412" not in impatient and "nothing was done here" in impatient
        first_output = first.communicate(timeout=600)[0]
        waited = waiting.communicate(timeout=600)[0]
        assert first.returncode == 0 and f"prod: applied ({PROD_RESOURCES}/{PROD_RESOURCES})" in first_output, (
            first_output
        )
        assert waiting.returncode == 0, waited
        assert f"prod: waiting for another dfinfra (pid {first.pid}, apply" in waited
        assert "No changes" in waited
    finally:  # a failed assertion must not leave applies running against the shared emulator
        for process in (first, waiting):
            if process is not None and process.poll() is None:
                process.terminate()  # dfinfra stops its terraform, which releases the lock
                process.wait(timeout=120)
    assert project.run("apply", "prod", "--lock-timeout", "soon", expect=2).count("is not a duration") == 1


def test_interrupt_during_apply_leaves_a_usable_state(host_applied):
    project = host_applied
    process = project.popen("apply", "prod", "--auto-approve", "--confirm", "prod", env={"FAKEGCP_APPLY_DELAY": "1"})
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Creating..." in line:
            process.send_signal(signal.SIGINT)
            break
    lines += process.communicate(timeout=300)[0].splitlines(keepends=True)
    output = "".join(lines)
    assert process.returncode == 1, output
    assert "apply interrupted after" in output and "Traceback" not in output
    state = project.state("prod")  # valid JSON, lock released
    assert len(state["resources"]) < PROD_RESOURCES
    rest = project.run("plan", "prod", "--lock-timeout", "5s", expect=2)
    assert "to create" in rest
    project.run("apply", "prod", "--auto-approve", "--confirm", "prod")
    assert len(project.state("prod")["resources"]) == PROD_RESOURCES


def test_terraform_failure_is_reported_not_a_traceback(project):
    output = project.run("plan", "prod", expect=1)  # no bootstrap: the state bucket is missing
    assert "error: terraform init failed" in output
    assert "run `dfinfra bootstrap prod` first" in output


def test_binary_selection_and_minimum_version(project, tmp_path, terraform_bin):
    old = tmp_path / "terraform-old"
    old.write_text('#!/bin/sh\necho \'{"terraform_version": "1.4.7"}\'\n')
    old.chmod(0o755)
    refused = project.run("plan", "prod", "--terraform-bin", str(old), expect=1)
    assert "needs 1.5.0 or newer" in refused
    chosen = project.run("plan", "prod", "-v", expect=None, env={"DFINFRA_TERRAFORM_BIN": terraform_bin})
    assert f"at {terraform_bin}" in chosen


def test_a_target_before_its_host_stops_before_terraform_with_the_order(project):
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    output = project.run("apply", "prod", "--auto-approve", "--confirm", "prod", expect=1)
    said = " ".join(output.split())
    assert "live in repository analytics, which staging creates" in said
    assert "staging's state holds no such repository yet: apply staging first" in said
    assert "404" not in output
    assert [id_ for kind, id_ in project.cloud.resources() if kind != "google_storage_bucket"] == []  # nothing applied
    project.run("apply", "staging", "--auto-approve")
    project.run("apply", "prod", "--auto-approve", "--confirm", "prod")  # the right order then completes it
    assert "No changes" in project.run("plan", "--all", expect=0)

    # Destroying the host while prod's configs live in its repository is refused; prod first is fine.
    refused = project.run("destroy", "staging", "--auto-approve", "--allow-destroy", expect=1)
    assert "Destroy prod first" in " ".join(refused.split())
    project.run("destroy", "prod", "--auto-approve", "--allow-destroy", "--confirm", "prod")
    assert "No changes" in project.run("plan", "staging", expect=0)  # staging untouched and still working
    assert not [id_ for kind, id_ in project.cloud.resources() if kind != "google_storage_bucket" and "-prod" in id_]


def test_destroy_all_goes_targets_first_and_keeps_a_log_per_run(applied):
    project = applied
    output = project.run("destroy", "--all", "--auto-approve", "--allow-destroy", "--confirm", "prod")
    assert output.index("== prod") < output.index("== staging")
    assert [kind for kind, _ in project.cloud.resources() if kind != "google_storage_bucket"] == []
    logs = sorted((project.root / "build" / "prod" / ".dfinfra" / "logs").glob("*.log"))
    assert any(log.name.endswith("-apply.log") for log in logs)
    apply_log = next(log for log in reversed(logs) if log.name.endswith("-apply.log")).read_text()
    assert apply_log.startswith("$ ") and "Destruction complete" in apply_log and "# exit status 0" in apply_log


def test_a_wrong_project_number_fails_the_plan_before_anything_is_granted(project):
    # The spec says 481516234200; the real project has another number (a typo in the spec).
    project.cloud.store.add_project("acme-analytics-staging", "481516234299")
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    out = " ".join(project.run("plan", "staging", expect=1).split())  # terraform wraps long messages
    assert "Resource postcondition failed" in out
    assert (
        "The project number in environments/staging.yaml (481516234200) is not the number of project "
        "acme-analytics-staging (481516234299): correct project.number there." in out
    )
    assert [kind for kind, _ in project.cloud.resources() if kind != "google_storage_bucket"] == []


def test_apply_retries_once_when_a_new_grant_has_not_propagated(project):
    """Strict act-as refuses the workflow configs until the deployer's fresh actAs propagates."""
    slow_iam = {
        "FAKEGCP_CALLER": "serviceAccount:terraform-deployer@acme-ci-automation.iam.gserviceaccount.com",
        "FAKEGCP_IAM_PROPAGATION_SECONDS": "2",
        "DFINFRA_IAM_PROPAGATION_WAIT": "2.5",
    }
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    out = project.run("apply", "--all", "--auto-approve", "--confirm", "prod", env=slow_iam)
    assert "staging: permission denied right after this apply created" in out
    assert "waiting 2.5s and applying once more" in out
    assert "Permission 'iam.serviceAccounts.actAs' denied" in out  # terraform's first attempt, shown
    assert "No changes" in project.run("plan", "--all", expect=0)


EXTRA_DATASET = """
resource "google_bigquery_dataset" "planted" {
  project    = "acme-analytics-staging"
  dataset_id = "planted"
  location   = "EU"
}
"""


def test_the_propagation_retry_applies_nothing_the_reviewed_plan_did_not_hold(project):
    """#22: the plan made after the IAM-propagation wait is shown and guarded; under --require-saved-plan a
    change that slipped into the module during the wait is refused, not applied."""
    slow_iam = {
        "FAKEGCP_CALLER": "serviceAccount:terraform-deployer@acme-ci-automation.iam.gserviceaccount.com",
        "FAKEGCP_IAM_PROPAGATION_SECONDS": "3",
        "DFINFRA_IAM_PROPAGATION_WAIT": "3.5",
    }
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    project.run("plan", "staging", expect=2)
    process = project.popen("apply", "staging", "--no-render", "--require-saved-plan", "--auto-approve", env=slow_iam)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "applying once more" in line:  # the wait window: the module changes under the apply
            with (project.root / "build" / "staging" / "bigquery.tf").open("a") as tf:
                tf.write(EXTRA_DATASET)
            break
    out = "".join(lines) + process.communicate(timeout=600)[0]
    assert process.returncode == 1, out
    assert "the plan after waiting, for what is left to apply:" in out
    assert "would also create google_bigquery_dataset.planted, which the reviewed plan did not" in out
    assert not [
        id_ for kind, id_ in project.cloud.resources() if kind == "google_bigquery_dataset" and "planted" in id_
    ]


def test_a_saved_plan_is_bound_to_its_plan_file_and_environment(host_applied):
    """#22: plan.json vouches for one tfplan of one environment: another environment's plan, or one planted
    beside the bookkeeping, is not "the reviewed plan"."""
    project = host_applied
    project.run("plan", "--all", expect=2)
    staging, prod = (project.root / "build" / env / ".dfinfra" for env in ("staging", "prod"))
    (prod / "tfplan").write_bytes((staging / "tfplan").read_bytes())
    refused = project.run("apply", "prod", "--no-render", "--require-saved-plan", "--auto-approve", expect=1)
    assert "no saved plan made from the files now in" in refused
    meta = json.loads((prod / "plan.json").read_text())
    assert meta["env"] == "prod" and len(meta["tfplan_sha256"]) == 64
    # Bookkeeping this machine did not seal (copied in, committed) is a CI artefact at best: only
    # --require-saved-plan takes it; a plain apply plans afresh instead of applying it.
    project.run("plan", "prod", expect=2)
    meta = json.loads((prod / "plan.json").read_text())
    del meta["seal"]
    (prod / "plan.json").write_text(json.dumps(meta))
    replanned = project.run("apply", "prod", "--auto-approve", "--confirm", "prod")
    assert "made from another render or mode; planning again" in replanned


def test_apply_does_not_retry_a_permission_error_without_new_grants(applied):
    project = applied
    spec = project.spec("prod")
    spec.write_text(
        spec.read_text()
        + "  - name: prod-extra\n    release: prod-nightly\n    runner: dataform-prod-runner\n    tags: [extra]\n"
    )
    # Applied by someone who is not a deployer: no act-as, and nothing in the plan would grant it.
    intruder = {"FAKEGCP_CALLER": "serviceAccount:intruder@acme-ci-automation.iam.gserviceaccount.com"}
    out = project.run(
        "apply",
        "prod",
        "--auto-approve",
        "--confirm",
        "prod",
        env={**intruder, "DFINFRA_IAM_PROPAGATION_WAIT": "0"},
        expect=1,
    )
    assert "applying once more" not in out
    assert "Permission 'iam.serviceAccounts.actAs' denied" in out


def _apply_until_creating(project: Project):
    """`apply prod` (the host applied already), stopped reading once terraform is creating resources."""
    process = project.popen("apply", "prod", "--auto-approve", "--confirm", "prod", env={"FAKEGCP_APPLY_DELAY": "1"})
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Creating..." in line:
            break
    return process, lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signals_stop_terraform_gracefully_and_the_next_apply_succeeds(host_applied, signum):
    """A cancelled CI job (SIGTERM) or a closed terminal (SIGHUP): state saved, lock released, no 409 after."""
    project = host_applied
    process, lines = _apply_until_creating(project)
    process.send_signal(signum)
    output = "".join(lines) + process.communicate(timeout=300)[0]
    assert process.returncode == 1, output
    assert f"{signum.name}: asking terraform to stop gracefully" in output
    assert "apply interrupted after" in output and "stopped gracefully and saved" in output
    assert "to create" in project.run("plan", "prod", "--lock-timeout", "5s", expect=2)  # no stale lock
    project.run("apply", "prod", "--auto-approve", "--confirm", "prod")  # no 409: state knew what was created
    assert len(project.state("prod")["resources"]) == PROD_RESOURCES


def test_sigkill_of_dfinfra_leaves_terraform_to_finish(host_applied):
    """Nothing can forward SIGKILL, so terraform must not depend on dfinfra: it finishes and unlocks."""
    project = host_applied
    process, _ = _apply_until_creating(project)
    process.kill()
    process.wait(timeout=60)
    # #22: the orphaned terraform still holds the module (it inherited the lock): nobody starts in it meanwhile.
    busy = project.run("plan", "prod", "--lock-timeout", "0s", expect=1)
    assert "is in use by another dfinfra" in busy
    assert "No changes" in project.run("plan", "prod", "--lock-timeout", "300s", expect=0)


def test_a_closed_output_pipe_neither_hangs_nor_stops_the_apply(host_applied):
    import subprocess
    import sys

    project = host_applied
    piped = subprocess.run(
        f"{sys.executable} -m dataform_infra apply prod --auto-approve --confirm prod | head -1",
        shell=True,
        cwd=project.root,
        env={**project.cloud.env, "FAKEGCP_APPLY_DELAY": "0.2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert piped.stdout.count("\n") == 1 and "Traceback" not in piped.stderr, piped.stderr
    assert "No changes" in project.run("plan", "prod", "--lock-timeout", "300s", expect=0)


def test_confirm_is_repeatable_for_several_protected_environments(project):
    spec = project.spec("staging")
    spec.write_text(
        spec.read_text().replace("labels:\n  team: data-platform", "protected: true\nlabels:\n  team: data-platform", 1)
    )
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod", "--confirm", "staging")
    refused = project.run("apply", "--all", "--auto-approve", "--confirm", "prod", expect=1)
    assert "staging is protected: with --auto-approve also pass --confirm staging" in refused
    project.run("apply", "--all", "--auto-approve", "--confirm", "prod", "--confirm", "staging")
    assert "No changes" in project.run("plan", "--all", expect=0)


def test_init_runs_again_when_the_installed_providers_change(project):
    """The CI failure 'Required plugins are not installed ... does not match any of the checksums':
    the module did not change, but its installed providers did (a cleaned cache, another platform)."""
    import shutil

    project.run("bootstrap", "prod", "--auto-approve", "--confirm", "prod")
    assert "terraform init" in project.run("plan", "prod", expect=2)
    assert "terraform init" not in project.run("plan", "prod", expect=2)
    shutil.rmtree(project.root / "build" / "prod" / ".terraform" / "providers")
    assert "terraform init" in project.run("plan", "prod", expect=2)
    lock = project.root / "build" / "prod" / ".terraform.lock.hcl"
    lock.write_text(lock.read_text() + "\n")  # a teammate's `init -upgrade` rewrote it
    assert "terraform init" in project.run("plan", "prod", expect=2)
    assert "terraform init" not in project.run("plan", "prod", expect=2)


def test_escape_hatches_without_leaving_dfinfra(applied):
    project = applied
    listed = project.run("terraform", "prod", "--", "state", "list")
    assert "google_service_account.dataform_prod_runner" in listed
    text = project.run("output", "staging", "--json")
    outputs = json.loads(text[text.index("{") :])
    assert outputs["repository_id"]["value"].endswith("/repositories/analytics")
    assert "No changes" in project.run("plan", "prod", "--target", "google_bigquery_dataset.marts", expect=0)
    grant = "google_bigquery_dataset_iam_member.dataform_prod_runner_writes_marts"
    assert "1 to replace" in project.run("plan", "prod", "--replace", grant, expect=2)
    # Drift: someone removed the grant by hand. Refresh-only records it without changing Google Cloud.
    store = project.cloud.store
    for _, id_, body in store.list("google_bigquery_dataset_iam_member"):
        if body["dataset_id"] == "marts":
            store.delete("google_bigquery_dataset_iam_member", id_)
    project.run("apply", "prod", "--refresh-only", "--auto-approve", "--confirm", "prod")
    assert grant not in project.run("terraform", "prod", "--", "state", "list")
    assert "1 to create" in project.run("plan", "prod", expect=2)
    bad = project.run("terraform", "prod", expect=2)
    assert "name the terraform command after `--`" in bad


def test_ctrl_d_at_the_confirmation_cancels_and_says_so(host_applied):
    import os

    from tests.support.terminal import drain, read_until, spawn

    project = host_applied
    process, controller = spawn("apply", "prod", cwd=project.root, env=project.cloud.env)
    transcript = read_until(controller, b"Type the environment name")
    os.write(controller, b"\x04")  # Ctrl-D
    process.wait(timeout=60)
    text = drain(controller, transcript).decode(errors="replace")
    assert process.returncode == 1, text
    assert "apply of prod cancelled" in text and "no terminal" not in text


def test_a_damaged_saved_plan_is_planned_again_not_a_traceback(host_applied):
    project = host_applied
    project.run("plan", "prod", expect=2)
    (project.root / "build" / "prod" / ".dfinfra" / "plan.json").write_text("{not json")
    out = project.run("apply", "prod", "--auto-approve", "--confirm", "prod")
    assert "the saved plan was made from another render or mode; planning again" in out
    assert "No changes" in project.run("plan", "prod", expect=0)


@pytest.mark.parametrize("ci", [None, "true"])
def test_plan_shows_progress_on_a_terminal_but_not_in_ci(project, ci):
    from tests.support.terminal import drain, spawn

    project.run("bootstrap", "prod", "--auto-approve", "--confirm", "prod")
    env = {k: v for k, v in project.cloud.env.items() if k != "CI"}
    if ci:
        env["CI"] = ci
    process, controller = spawn("plan", "prod", cwd=project.root, env=env)
    process.wait(timeout=300)
    shown = drain(controller).decode(errors="replace")
    assert process.returncode == 2, shown
    assert ("planning prod... " in shown) is (ci is None)


def test_plan_and_apply_stop_on_what_validate_rejects_unless_allowed(project):
    """#22: a run that would fail (the runner cannot write its release's assertion dataset) is refused before
    terraform; --allow-violations goes ahead and the PR comment says so."""
    spec = project.spec("prod")
    spec.write_text(spec.read_text().replace("writes: [marts, dataform_assertions]", "writes: [marts]"))
    for command in (("plan", "prod"), ("apply", "prod", "--auto-approve", "--confirm", "prod")):
        refused = project.run(*command, expect=1)
        assert "least-privilege violation(s)" in refused and "nothing planned or applied" in refused
        assert "dataset acme-analytics-prod.dataform_assertions" in refused
    assert not (project.root / "build" / "prod").exists()
    project.run("bootstrap", "prod", "--auto-approve", "--confirm", "prod")
    comment = project.run("plan", "prod", "--allow-violations", "--format", "markdown", expect=2)
    assert ":warning: **Planned with `--allow-violations`**: 1 least-privilege violation(s)" in comment


def test_the_host_deployer_updates_the_repository_after_other_environments_configs_exist(tmp_path, cloud):
    """#23: under strict act-as a repository update checks act-as on the account of every workflow config in
    it, prod's included. With one deployer per environment, staging's deployer used to lose the right to
    update its own repository once prod's configs existed; prod's module now grants it act-as on prod's
    runner, and without that grant the update fails as Google fails it."""
    import shutil

    from tests.support.specsets import REPO

    specs = tmp_path / "specs"
    shutil.copytree(REPO / "environments", specs)
    host_deployer = "serviceAccount:terraform-deployer@acme-ci-automation.iam.gserviceaccount.com"
    prod_deployer = "serviceAccount:prod-deployer@acme-ci-automation.iam.gserviceaccount.com"
    prod = specs / "prod.yaml"
    prod.write_text(prod.read_text().replace(host_deployer, prod_deployer))
    project = Project(tmp_path / "checkout", cloud, specs=specs)
    as_host, as_prod = {"FAKEGCP_CALLER": host_deployer}, {"FAKEGCP_CALLER": prod_deployer}
    project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    project.run("apply", "staging", "--auto-approve", env=as_host)
    project.run("apply", "prod", "--auto-approve", "--confirm", "prod", env=as_prod)
    granted = [
        (id_, body)
        for _, id_, body in cloud.store.list("google_service_account_iam_member")
        if body["member"] == host_deployer and "dataform-prod-runner" in body["service_account_id"]
    ]
    assert [body["role"] for _, body in granted] == ["roles/iam.serviceAccountUser"]

    staging = project.spec("staging")
    staging.write_text(staging.read_text().replace("Acme analytics (Dataform)", "Acme analytics"))
    assert "1 to update" in project.run("apply", "staging", "--auto-approve", env=as_host)

    cloud.store.delete("google_service_account_iam_member", granted[0][0])  # as if prod's module never granted it
    staging.write_text(staging.read_text().replace("Acme analytics", "Acme analytics, again"))
    out = project.run("apply", "staging", "--auto-approve", env=as_host, expect=1)
    assert "Error updating Repository" in out and "dataform-prod-runner@acme-analytics-prod" in out, out


def _dataset_change(address: str, type_: str, actions: list[str], **values: object) -> dict:
    key = "after" if "create" in actions or "update" in actions else "before"
    body = {"project": "p", "dataset_id": "marts", **values}
    return {"address": address, "type": type_, "mode": "managed", "change": {"actions": actions, key: body}}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (  # authorized_datasets added: the IAM member goes, the access-list entry comes, for the same member
            [
                _dataset_change(
                    "google_bigquery_dataset_iam_member.w", "google_bigquery_dataset_iam_member", ["delete"]
                ),
                _dataset_change("google_bigquery_dataset_access.w", "google_bigquery_dataset_access", ["create"]),
            ],
            "--target google_bigquery_dataset_iam_member.w`, then `dfinfra apply prod`",
        ),
        (  # the dataset and its access list in one apply
            [
                _dataset_change("google_bigquery_dataset.marts", "google_bigquery_dataset", ["update"]),
                _dataset_change("google_bigquery_dataset_access.a", "google_bigquery_dataset_access", ["delete"]),
            ],
            "--target google_bigquery_dataset.marts`, then",
        ),
    ],
)
def test_one_apply_never_mixes_a_datasets_two_kinds_of_grant(changes, fragment):
    """#24 review: Google's provider documents that dataset IAM members and access-list entries fight, and that a
    dataset and its entries cannot change in one apply: such a plan is refused with the two steps that do it."""
    from dataform_infra.errors import Refused
    from dataform_infra.lifecycle.guards import refuse_what_google_refuses as _refuse_what_google_refuses
    from dataform_infra.terraform.summary import summarise

    with pytest.raises(Refused) as info:
        _refuse_what_google_refuses("prod", summarise({"resource_changes": changes}))
    assert "dataset p/marts" in str(info.value) and fragment in str(info.value)
    other = [dict(c, change=dict(c["change"])) for c in changes]
    for c in other[1:]:
        for key in ("before", "after"):
            if key in c["change"]:
                c["change"][key] = {**c["change"][key], "dataset_id": "reports"}
    _refuse_what_google_refuses("prod", summarise({"resource_changes": other}))  # two datasets: nothing mixed
