from pathlib import Path

import pytest

from dataform_infra.errors import StateLocked, TerraformError
from dataform_infra.terraform.binary import TerraformBinary
from dataform_infra.terraform.runner import RunResult, TerraformRunner

LOCKED = """
Error: Error acquiring the state lock

Error message: writing "gs://b/p/default.tflock" failed: googleapi: Error 412: At least one of the pre-conditions
you specified did not hold., conditionNotMet
Lock Info:
  ID:        1795932649071865
  Path:      gs://b/p/default.tflock
  Operation: OperationTypeApply
  Who:       ci@runner-7
  Version:   1.11.4
  Created:   2026-11-29 06:10:49.071865 +0000 UTC
  Info:
"""


@pytest.fixture()
def runner(tmp_path) -> TerraformRunner:
    return TerraformRunner(
        TerraformBinary("/usr/bin/terraform", (1, 11, 4), "terraform"), tmp_path / "prod", tmp_path / "logs", "5s"
    )


def test_argv_comes_from_python_terraform_without_its_defects(runner):
    from python_terraform import IsFlagged

    argv = runner.argv("plan", input=False, no_color=IsFlagged, out="tfplan", destroy=None)
    assert argv == ["/usr/bin/terraform", "plan", "-input=false", "-no-color", "-out=tfplan"]
    assert not any(a.startswith(("-force", "-synchronous", "-var-file")) for a in argv)


def test_lock_error_names_the_holder_and_the_unlock_command(runner):
    with pytest.raises(StateLocked) as info:
        runner.check(RunResult(("terraform", "plan"), 1, "", LOCKED), "plan")
    message = str(info.value)
    assert "locked by ci@runner-7" in message and "OperationTypeApply" in message
    assert f"-chdir={runner.module_dir} force-unlock 1795932649071865" in message
    assert "--lock-timeout 5s" in message


def test_failure_shows_terraform_diagnostics(runner):
    box = "╷\n│ Error: Unsupported argument\n│ \n│   on main.tf line 3\n╵\n"
    with pytest.raises(TerraformError) as info:
        runner.check(RunResult(("terraform", "validate"), 1, "", box), "validate")
    assert "Error: Unsupported argument\n  on main.tf line 3" in str(info.value)
    assert "╷" not in str(info.value)


def test_environment_is_for_automation(runner, monkeypatch):
    monkeypatch.delenv("TF_PLUGIN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(runner.log_dir.parent / "cache"))
    env = runner.environment()
    assert env["TF_IN_AUTOMATION"] == "1" and env["TF_INPUT"] == "0"
    assert Path(env["TF_PLUGIN_CACHE_DIR"]).is_dir()


def test_secrets_reach_only_the_commands_that_carry_them_and_never_with_debug_logs(runner, monkeypatch):
    """A channel's token (`TF_VAR_*` of an ephemeral variable) is in terraform's environment only inside
    `carrying`, and then TF_LOG* (which prints request bodies to the output dfinfra logs) is dropped."""
    monkeypatch.setenv("TF_LOG", "DEBUG")
    monkeypatch.setenv("TF_LOG_PATH", "/tmp/tf.log")
    assert runner.environment()["TF_LOG"] == "DEBUG"  # the user's choice, when no secret is carried
    with runner.carrying({"TF_VAR_hook_auth_token": "t0ken"}):
        env = runner.environment()
        assert env["TF_VAR_hook_auth_token"] == "t0ken"
        assert not [name for name in env if name.startswith("TF_LOG")]
        assert "t0ken" not in " ".join(runner.argv("plan"))
    assert "TF_VAR_hook_auth_token" not in runner.environment()


def test_impersonation_reaches_the_provider_and_the_state_backend_by_environment(tmp_path):
    runner = TerraformRunner(
        TerraformBinary("/usr/bin/terraform", (1, 11, 4), "terraform"),
        tmp_path / "prod",
        tmp_path / "logs",
        impersonate="deployer@acme-ci.iam.gserviceaccount.com",
    )
    env = runner.environment()
    assert env["GOOGLE_IMPERSONATE_SERVICE_ACCOUNT"] == "deployer@acme-ci.iam.gserviceaccount.com"
    assert env["GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT"] == "deployer@acme-ci.iam.gserviceaccount.com"
    assert not any("deployer@" in arg for arg in runner.argv("plan"))


def test_missing_credentials_are_one_sentence_with_the_fixes(runner):
    raw = "Error: storage.NewClient() failed: dialing: google: could not find default credentials. See ..."
    with pytest.raises(TerraformError) as caught:
        runner.check(RunResult(("terraform", "init"), 1, "", raw), "init")
    message = str(caught.value)
    assert "found no Google credentials" in message and "gcloud auth application-default login" in message
    assert "--impersonate-service-account" in message and "Workload Identity Federation" in message


def test_logs_are_kept_to_the_newest_n_per_module(runner, monkeypatch):
    monkeypatch.setenv("DFINFRA_KEEP_LOGS", "5")
    runner.log_dir.mkdir(parents=True)
    for i in range(12):
        (runner.log_dir / f"20260101T0000{i:02d}000000Z-plan.log").write_text("x")
    newest = runner.open_log("apply")
    kept = sorted(p.name for p in runner.log_dir.glob("*.log"))
    assert kept == [f"20260101T0000{i:02d}000000Z-plan.log" for i in range(8, 12)]  # + the new one, not yet written
    assert not newest.exists() and newest.parent == runner.log_dir


def test_an_apply_error_already_on_screen_is_not_printed_again(runner):
    failed = RunResult(("terraform", "apply"), 1, "", "Error: googleapi: Error 403: denied\n")
    with pytest.raises(TerraformError) as caught:
        runner.check(failed, "apply", shown=True)
    assert "Error 403" not in str(caught.value) and "its errors are above" in str(caught.value)


def test_a_signal_before_terraform_is_started_means_it_is_never_started(tmp_path):
    """A Ctrl-C or SIGTERM that lands after the handlers are in place but before the start: terraform is not
    started and then stopped, it is never started; dfinfra says so and exits 130."""
    import subprocess
    import sys

    probe = """
import os, signal
from dataform_infra.errors import Interrupted
from dataform_infra.terraform import runner

install = signal.signal
def installing(signum, handler):
    previous = install(signum, handler)
    if signum == signal.SIGHUP and callable(handler):
        os.kill(os.getpid(), signal.SIGTERM)  # the last handler is in; terraform is not started yet
    return previous
runner.signal.signal = installing
started = []
try:
    runner.supervise(lambda: started.append(1), lambda stream, line: None)
except Interrupted as error:
    print(error.exit_code, started, error)
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "130 [] SIGTERM before terraform started: nothing was run"


def test_a_signal_before_terraform_has_started_is_forwarded_once_it_has(tmp_path):
    """#22: the handlers went in after Popen returned, so a Ctrl-C or SIGTERM in between raised in dfinfra
    (or killed it) while terraform, in its own session, ran on unwatched. The signal now waits for the
    process and reaches it as the graceful stop; dfinfra itself carries on to wait for the exit."""
    import subprocess
    import sys

    marker = tmp_path / "stopped"
    probe = f"""
import os, signal, subprocess, sys
from dataform_infra.terraform.runner import supervise
child = (
    "import signal, sys, time, pathlib\\n"
    "signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).write_text('graceful'), sys.exit(3)))\\n"
    "print('ready', flush=True)\\n"
    "time.sleep(30)\\n"
)
def start():
    os.kill(os.getpid(), signal.SIGTERM)  # arrives while terraform is being started
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE)
    process.stdout.readline()  # its handler is in place before the forwarded signal is sent
    return process
notes = []
process, seen = supervise(start, lambda stream, line: notes.append(line))
print(process.returncode, seen, notes[0].split(":")[0])
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "1", "SIGTERM"]
    assert marker.read_text() == "graceful"
