"""Bad input to the CLI's own options is refused with a clear message, never a traceback or a hang (#22)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.cli import invoke
from tests.support.specsets import REPO
from tests.test_init import FLAGS


@pytest.fixture()
def checkout(tmp_path):
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    return tmp_path


@pytest.mark.parametrize("option", [("--poll", "-1"), ("--poll", "nan"), ("--timeout", "nan"), ("--timeout", "-5")])
def test_run_refuses_a_poll_or_timeout_it_cannot_wait_by(checkout, option):
    result = invoke("run", "staging", "staging-daily", "--wait", *option, cwd=checkout)
    assert result.returncode == 2 and f"Invalid value for '{option[0]}'" in result.output
    assert "Traceback" not in result.output


def test_secret_set_from_an_empty_variable_name_is_refused_not_read_from_stdin(checkout):
    result = invoke("secret", "set", "staging", "--from-env", "", cwd=checkout, stdin="ghp_fromstdin")
    assert result.returncode == 2 and "--from-env names no variable" in result.stderr


def test_secret_set_refuses_an_emulator_off_this_machine(checkout):
    result = invoke(
        "secret",
        "set",
        "staging",
        "--from-env",
        "TOKEN",
        cwd=checkout,
        env={"DFINFRA_GOOGLE_API_EMULATOR": "127.evil.example:8085", "TOKEN": "ghp_x"},
    )
    assert result.returncode == 2 and "refusing to send the Git token to 127.evil.example:8085" in result.stderr


def test_render_check_shows_terminal_controls_in_the_diff_escaped(checkout):
    """The on-disk side of the diff is whatever a commit put there: a CSI (C1) or a bidi override in it must
    not reach the terminal."""
    assert invoke("render", "--all", cwd=checkout).returncode == 0
    tf = checkout / "build" / "prod" / "bigquery.tf"
    tf.write_text(tf.read_text() + "# \x9b31m red \u202e reversed \u2028 separated\n")
    result = invoke("render", "--all", "--check", cwd=checkout)
    assert result.returncode == 1
    for raw, shown in (("\x9b", "\\x9b"), ("\u202e", "\\u202e"), ("\u2028", "\\u2028")):
        assert raw not in result.stdout and shown in result.stdout


def test_a_file_name_with_a_line_break_cannot_forge_a_line_of_output(checkout):
    """#22: messages keep their own line breaks as layout, so a name read from disk (a planted file in the
    output directory, a module file that lint reads) must show its line break escaped, on the one line that
    quotes it."""
    assert invoke("render", "--all", cwd=checkout).returncode == 0
    module = checkout / "build" / "prod"
    (module / "x\nrender: prod is up to date").write_text("")
    result = invoke("render", "--all", cwd=checkout)
    assert result.returncode == 2 and "x\\nrender: prod is up to date" in result.stderr
    assert not any(line.startswith("render: prod") for line in result.output.splitlines())

    (module / "x\nrender: prod is up to date").unlink()
    (module / "a\nok.tf").write_text('resource "x" "y" {\n')  # unreadable HCL: lint names the file
    result = invoke("lint", str(module), cwd=checkout)
    assert result.returncode == 2 and "a\\nok.tf" in result.stderr
    assert not any(line.startswith("ok.tf") for line in result.output.splitlines())


def test_core_dumps_are_off_once_a_secret_is_read(checkout):
    import subprocess
    import sys

    probe = (
        "import resource, sys\n"
        "from dataform_infra.cli import cloud\n"
        "cloud._no_core_dumps()\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(0, 0)"


def test_init_into_the_current_directory_and_a_symlink_loop_are_plain_errors_or_work(tmp_path):
    """#22: `init -e .` failed with "File exists"; a symlink loop in environments/ was a traceback."""
    result = invoke("init", "-e", ".", *FLAGS, cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} >= {"staging.yaml", "prod.yaml", ".gitignore"}
    assert not (tmp_path.parent / ".gitignore").exists()
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    looped = invoke("validate", "-e", ".", cwd=tmp_path)
    assert looped.returncode == 2 and "loop.yaml: is a symbolic link that loops back on itself" in looped.stderr
    assert "Traceback" not in looped.output
