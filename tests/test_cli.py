"""The `dfinfra` command as users run it: exit codes, messages, and what it leaves on disk."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.specs import host, target, write_specs
from tests.support.cli import Result, invoke
from tests.support.specsets import REPO


def dfinfra(*args: str, cwd: Path) -> Result:
    """In this process (`tests/support/cli.py`); the entry point itself has its smoke tests below."""
    return invoke(*args, cwd=cwd)


def test_the_entry_point_runs_as_a_process(project):
    """The few things only a real process shows: the console script, its exit code, its streams."""
    env = {k: v for k, v in os.environ.items() if k != "DFINFRA_ENVIRONMENTS"}
    ok = subprocess.run(
        [sys.executable, "-m", "dataform_infra", "validate"], cwd=project, capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 2 environment(s)"), ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "dataform_infra", "plan", "nope"], cwd=project, capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1 and "no environment 'nope'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    write_specs(tmp_path / "environments", {"staging": host(), "prod": target()})
    return tmp_path


def test_render_all_then_check_is_clean(project):
    result = dfinfra("render", "--all", cwd=project)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (project / "build").iterdir()) == ["prod", "staging"]
    staging = (project / "build" / "staging" / "dataform.tf").read_text()
    prod = (project / "build" / "prod" / "dataform.tf").read_text()
    # Each module holds its own configs; only the host's creates the repository.
    assert 'resource "google_dataform_repository" "analytics"' in staging and "google_dataform_repository." not in prod
    assert '"target-daily"' in prod and '"target-daily"' not in staging
    check = dfinfra("render", "--all", "--check", cwd=project)
    assert check.returncode == 0, check.stderr


def test_check_catches_a_hand_edit_and_writes_nothing(project):
    dfinfra("render", "--all", "--out", "infra", cwd=project)
    iam = project / "infra" / "prod" / "iam.tf"
    iam.write_text(iam.read_text().replace("roles/bigquery.dataEditor", "roles/bigquery.admin"))
    edited = iam.read_text()
    result = dfinfra("render", "--all", "--check", "--out", "infra", cwd=project)
    assert result.returncode == 1
    assert '-  role       = "roles/bigquery.admin"' in result.stdout
    assert '+  role       = "roles/bigquery.dataEditor"' in result.stdout
    assert "differs" in result.stderr
    assert iam.read_text() == edited


def test_render_one_environment(project):
    assert dfinfra("render", "prod", cwd=project).returncode == 0
    assert [p.name for p in (project / "build").iterdir()] == ["prod"]


def test_environments_option_and_env_var(project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = dfinfra("validate", "--environments", str(project / "environments"), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "ok: 2 environment(s)" in result.stdout


@pytest.mark.parametrize(
    "breakage",
    [
        "project:\n  id: x\n",  # invalid + missing fields
        "project: [unclosed\n",
        "a: 1\na: 2\n",
        "\x00\x01binary",
        "- just\n- a list\n",
    ],
)
def test_bad_spec_exits_2_with_a_message_and_writes_nothing(project, breakage):
    (project / "environments" / "prod.yaml").write_text(breakage)
    for args in (("render", "--all"), ("validate",), ("render", "--all", "--check")):
        result = dfinfra(*args, cwd=project)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ")
        assert "prod.yaml" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
    assert not (project / "build").exists()


def test_unknown_environment_and_missing_directory_exit_2(project, tmp_path):
    result = dfinfra("render", "qa", cwd=project)
    assert result.returncode == 2 and "no environment 'qa'" in result.stderr
    result = dfinfra("validate", cwd=tmp_path / "environments")
    assert result.returncode == 2 and "no environments directory" in result.stderr


def test_refuses_to_overwrite_foreign_files(project):
    target_dir = project / "build" / "prod"
    target_dir.mkdir(parents=True)
    (target_dir / "main.tf").write_text("# mine\n")
    result = dfinfra("render", "--all", cwd=project)
    assert result.returncode == 2
    assert "main.tf" in result.stderr
    assert (target_dir / "main.tf").read_text() == "# mine\n"
    assert not (project / "build" / "staging").exists()


def test_validate_reports_warnings_but_passes(project):
    spec = host()
    spec["workflows"][0]["cron"] = "30 6 * * *"
    write_specs(project / "environments", {"staging": spec})
    result = dfinfra("validate", cwd=project)
    assert result.returncode == 0
    assert "warning:" in result.stderr and "same minute" in result.stderr


def test_version_and_help():
    assert dfinfra("--version", cwd=REPO).stdout.startswith("dfinfra ")
    help_text = dfinfra("render", "--help", cwd=REPO).stdout
    assert "--check" in help_text and "Examples" in help_text


def test_lint_passes_rendered_modules_and_flags_hand_written_mistakes(project, tmp_path):
    assert dfinfra("render", "--all", cwd=project).returncode == 0
    ok = dfinfra("lint", "build/staging", "build/prod", cwd=project)
    assert ok.returncode == 0 and "no violations" in ok.stdout
    bad = tmp_path / "handwritten"
    bad.mkdir()
    (bad / "main.tf").write_text(
        'resource "google_project_iam_binding" "x" {\n  project = "p"\n  role    = "roles/editor"\n'
        '  members = ["user:a@example.com"]\n}\n'
    )
    result = dfinfra("lint", str(bad), cwd=project)
    assert result.returncode == 1
    assert "[additive-iam-only]" in result.stderr and "main.tf" in result.stderr
    assert dfinfra("lint", str(tmp_path / "missing"), cwd=project).returncode == 2


def test_explain_lists_every_grant_with_its_rule(project):
    result = dfinfra("explain", "staging", cwd=project)
    assert result.returncode == 0
    rows = [line for line in result.stdout.splitlines() if line.startswith("| staging |")]
    # 3 datasets, the secret, the agent's role, and for its one attached runner: token creator, job user, act-as
    assert len(rows) == 8
    assert all("(`" in row for row in rows)
    assert not [row for row in rows if row.endswith("| **nothing** |")]  # every grant serves a run
    assert "Dataform service agent | `roles/iam.serviceAccountTokenCreator`" in result.stdout


def test_schema_is_the_strict_json_schema_of_a_spec():
    import json

    schema = json.loads(dfinfra("schema", cwd=REPO).stdout)
    assert schema["additionalProperties"] is False
    assert {"project", "region", "bigquery_location", "state", "repository", "workflows"} <= set(schema["properties"])
    assert set(schema["required"]) == {"project", "region", "bigquery_location", "state"}


COMMANDS = [
    "render",
    "validate",
    "lint",
    "explain",
    "graph",
    "schema",
    "init",
    "plan",
    "apply",
    "destroy",
    "bootstrap",
    "doctor",
    "secret set",
    "secret status",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example_and_no_colour(command):
    result = dfinfra(*command.split(), "--help", cwd=REPO)
    assert result.returncode == 0
    assert "Example" in result.stdout
    assert "\x1b[" not in result.stdout + result.stderr


def test_quiet_leaves_only_the_output(project):
    noisy = dfinfra("render", "--all", cwd=project)
    quiet = dfinfra("-q", "render", "--all", cwd=project)
    assert "rendered" in noisy.stderr and quiet.stderr == "" and quiet.returncode == 0


def test_data_commands_speak_json(project):
    import json

    report = json.loads(dfinfra("validate", "--json", cwd=project).stdout)
    assert report["environments"] == ["prod", "staging"] and report["violations"] == []
    rows = json.loads(dfinfra("explain", "--json", cwd=project).stdout)
    assert {"module", "principal", "member", "role", "resource", "why", "rule", "address", "serves"} == set(rows[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("render", "--all", "--out", "{file}"), "is not a directory"),
        (("render", "--all", "--out", "/dev/null"), "is not a directory"),
        (("render", "--all", "--out", "{dangling}"), "is not a directory"),
        (("graph", "-o", "{dir}"), "name a file in an existing directory"),
        (("graph", "-o", "{dir}/missing/graph.md"), "name a file in an existing directory"),
    ],
)
def test_unusable_output_paths_are_bad_input_not_tracebacks(project, tmp_path, args, message):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    paths = {"file": tmp_path / "a-file", "dangling": tmp_path / "dangling", "dir": tmp_path}
    result = dfinfra(*(a.format(**paths) for a in args), cwd=project)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "a-file").read_text() == "x"


@pytest.mark.parametrize("no_color", [None, "1"])
def test_errors_are_coloured_on_a_terminal_unless_no_color(project, no_color):
    from tests.support.terminal import drain, spawn

    (project / "environments" / "prod.yaml").write_text("project: [\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI", "DFINFRA_ENVIRONMENTS")}
    if no_color:
        env["NO_COLOR"] = no_color
    process, controller = spawn("validate", cwd=project, env=env)
    process.wait(timeout=60)
    shown = drain(controller).decode(errors="replace")
    assert process.returncode == 2 and "error:" in shown
    assert ("\x1b[" in shown) is (no_color is None)


def test_lint_of_a_missing_directory_says_so(project):
    result = dfinfra("lint", "no-such-dir", cwd=project)
    assert result.returncode == 2 and "no-such-dir does not exist or is not a directory" in result.stderr


def test_explain_deployer_names_what_a_target_deployer_needs_in_the_host(project):
    import json

    rows = json.loads(dfinfra("explain", "--deployer", "prod", "--json", cwd=project).stdout)
    by_resource = {r["resource"]: r for r in rows}
    assert {r["env"] for r in rows} == {"prod"}
    assert by_resource["project acme-host-proj"]["roles"] == ["roles/resourcemanager.projectIamAdmin"]
    assert by_resource["repository analytics"]["roles"] == ["roles/dataform.admin"]
    table = dfinfra("explain", "--deployer", cwd=project).stdout
    assert table.index("| staging |") < table.index("| prod |")  # in apply order
    assert "grant it on that repository only from staging's spec" in table


@pytest.mark.parametrize(
    "name",
    [
        "mod\x1b]52;c;cm0gLXJmIH4=\x07",  # OSC 52: writes to the clipboard of whoever reads the output
        "mod\x1b[2J\x1b[H",  # clears the screen, hiding what came before
        "mod\u202eft.",  # right-to-left override: shows the name reversed
        "mod\x9b31m",  # C1 CSI, the one-byte form of ESC [
    ],
)
def test_names_from_disk_cannot_drive_the_terminal(project, tmp_path, name):
    """File names (and anything else dfinfra quotes) are shown escaped, never acted on by the terminal."""
    from tests.support.terminal import drain, spawn

    module = tmp_path / name
    module.mkdir()
    (module / f"{name}.tf").write_text(
        'resource "google_project_iam_member" "x" {\n'
        '  project = "p"\n  role    = "roles/owner"\n  member  = "user:a@example.com"\n}\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI")}
    for args, code in (("lint", str(module)), 1), (("lint", str(tmp_path / f"missing-{name}")), 2):
        process, controller = spawn(*args, cwd=project, env=env)
        process.wait(timeout=60)
        shown = drain(controller).decode(errors="replace")
        ours = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # dfinfra's own colour on "violation:" / "error:"
        assert process.returncode == code, shown
        assert not re.search(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e]", ours), repr(shown)
        assert repr(name)[1:-1].split("mod", 1)[1] in ours, repr(shown)


def test_every_command_is_registered_inside_the_error_boundary():
    """`cli.base._command` registers a command and its error boundary in one step: none can end in a traceback."""
    from dataform_infra import cli
    from dataform_infra.cli import base

    boundary = base._handles_errors(lambda: None).__code__  # every wrapper runs this one code object
    commands = [info for group in (cli.app, cli.secret_app) for info in group.registered_commands]
    assert len(commands) >= 19
    unguarded = [
        info.callback.__name__ if info.callback else info.name
        for info in commands
        if info.callback is None or info.callback.__code__ is not boundary
    ]
    assert unguarded == []
