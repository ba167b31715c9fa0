"""`dfinfra terraform ENV -- ARGS` keeps dfinfra's guards (#22): `-chdir`, `apply` and `destroy` are refused,
a protected environment's state is written only after its name is confirmed, and a Ctrl-C reaches
terraform once, as a graceful stop that dfinfra waits for."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.support.cli import invoke
from tests.support.specsets import REPO


@pytest.fixture()
def checkout(tmp_path):
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-chdir=/etc", "state", "list"], "-chdir is not passed to terraform"),
        (["state", "list", "-chdir", "/etc"], "-chdir is not passed to terraform"),
        (["destroy", "-auto-approve"], "use `dfinfra destroy ENV`"),
        (["apply", "-auto-approve"], "use `dfinfra apply ENV`"),
        (["-no-color"], "name the terraform command after `--`"),
    ],
)
def test_what_would_escape_the_guards_is_refused_before_anything_runs(checkout, args, said):
    result = invoke("terraform", "staging", "--", *args, cwd=checkout)
    assert result.returncode == 2 and said in result.stderr, result.output
    assert not (checkout / "build").exists()  # refused before the render, the lock and terraform


def test_writing_a_protected_environments_state_needs_its_name(checkout):
    refused = invoke("terraform", "prod", "--", "state", "rm", "google_bigquery_dataset.marts", cwd=checkout)
    assert refused.returncode == 1 and "refusing `terraform state rm` in protected prod" in refused.stderr
    assert "--confirm prod" in refused.stderr
    wrong = invoke("terraform", "prod", "--confirm", "staging", "--", "import", "a.b", "c", cwd=checkout)
    assert wrong.returncode == 1 and "without confirmation" in wrong.stderr
    assert not (checkout / "build").exists()


FAKE_TERRAFORM = """#!/usr/bin/env bash
# Stops as terraform does on its first interrupt: finishes what it is doing, saves, exits; counts interrupts.
count=0
trap 'count=$((count+1)); echo "$count" > interrupts' INT
echo started > started
while [ "$count" = 0 ]; do sleep 0.05; done
sleep 0.6   # the graceful stop: longer than the 0.25 s after which subprocess.run kills its child
echo saved > saved
exit 1
"""

DRIVER = """
import sys
from pathlib import Path
from dataform_infra.terraform.binary import TerraformBinary
from dataform_infra.terraform.runner import TerraformRunner

module = Path(sys.argv[1])
runner = TerraformRunner(TerraformBinary(sys.argv[2], (1, 11, 4), "terraform"), module, module / ".dfinfra" / "logs")
sys.exit(runner.interactive(["state", "mv", "a", "b"], lambda note: print(note, flush=True)))
"""


def test_ctrl_c_reaches_terraform_once_and_dfinfra_waits_for_its_graceful_stop(tmp_path):
    fake = tmp_path / "terraform"
    fake.write_text(FAKE_TERRAFORM)
    fake.chmod(0o755)
    module = tmp_path / "prod"
    module.mkdir()
    # Its own process group, as a shell gives a foreground job: the terminal's Ctrl-C goes to the whole group.
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(module), str(fake)],
        start_new_session=True,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not (module / "started").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert (module / "saved").read_text() == "saved\n"  # not killed during its graceful stop
    assert (module / "interrupts").read_text() == "1\n"  # one interrupt: a second one means "stop now"
    assert process.returncode == 1  # terraform's own exit code
    assert "SIGINT: asking terraform to stop gracefully" in out
