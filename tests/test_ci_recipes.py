"""The CI recipes and pre-commit hooks call only dfinfra commands and options that exist."""

import re
import shlex

import pytest
import yaml
from typer.testing import CliRunner

from dataform_infra.cli import app
from tests.support.specsets import REPO

CI = REPO / "examples" / "ci"
GITHUB, CLOUD_BUILD = CI / "github-actions.yml", CI / "cloudbuild.yaml"
RECIPES = sorted(CI.glob("*.y*ml"))  # the Dataform code repository's release recipe among them


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def dfinfra_invocations(text: str) -> list[list[str]]:
    """Every `dfinfra ...` / `python3 -m dataform_infra ...` command in a shell snippet."""
    found = []
    for line in text.splitlines():
        for segment in re.split(r"&&|\|\||;|\|", line):
            segment = re.split(r"\s[0-9]?>", segment)[0].strip()  # drop redirections
            words = [w for w in segment.split() if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # drop VAR=value
            if words[:1] == ["dfinfra"]:
                found.append(shlex.split(" ".join(words[1:])))
            elif words[:3] == ["python3", "-m", "dataform_infra"]:
                found.append(shlex.split(" ".join(words[3:])))
    return found


def assert_command_exists(words: list[str]) -> None:
    command = [w for w in words if not w.startswith("-")][:1]
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, f"dfinfra {' '.join(words)}: no such command"
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert option in result.output, f"dfinfra {command[0]} has no option {option}"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_parses_and_calls_only_real_commands(recipe):
    document = yaml.safe_load(recipe.read_text())
    calls = [words for text in _strings(document) for words in dfinfra_invocations(text)]
    assert calls, "the recipe runs no dfinfra command"
    for words in calls:
        assert_command_exists(words)


def test_github_workflow_applies_behind_an_environment_with_wif():
    workflow = yaml.safe_load(GITHUB.read_text())
    assert workflow["jobs"]["apply"]["environment"] == "production"
    assert workflow["permissions"]["id-token"] == "write"
    steps = [step.get("uses", "") for step in workflow["jobs"]["apply"]["steps"]]
    assert any(s.startswith("google-github-actions/auth") for s in steps)


def test_pre_commit_hooks_call_real_commands():
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"dfinfra-validate", "dfinfra-render-check"}
    for hook in hooks:
        words = shlex.split(hook["entry"])
        assert words[0] == "dfinfra" and hook["pass_filenames"] is False
        assert_command_exists(words[1:])


def _job_scripts(job: str, names: tuple[str, ...]) -> list[str]:
    workflow = yaml.safe_load(GITHUB.read_text())
    return [step["run"] for step in workflow["jobs"][job]["steps"] if step.get("name") in names]


@pytest.mark.terraform
def test_github_recipe_applies_exactly_the_plans_it_reviewed(tmp_path, cloud):
    """The plan job's and the apply job's own shell steps, against the offline cloud: the saved plans
    travel as the artefact would, and an apply after the render changed is refused."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.project import Project

    bin_dir = str(Path(sys.executable).parent)
    env = {**cloud.env, "PATH": f"{bin_dir}:{cloud.env['PATH']}", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}

    def bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
        )

    reviewed = Project(tmp_path / "pr", cloud)
    reviewed.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    reviewed.run("render", "--all", "--out", "infra")  # the HCL the repository commits
    for script in _job_scripts("plan", ("dfinfra plan",)):
        result = bash(script, reviewed.root)
        assert result.returncode == 0, result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### dfinfra plan") and "<b>staging</b>" in summary

    def fresh_checkout(name: str, edit=None) -> Path:
        """A new clone with the committed specs and HCL, then the downloaded artefact (saved plans, lock files)."""
        root = tmp_path / name
        shutil.copytree(reviewed.root / "environments", root / "environments")
        if edit:
            edit(root / "environments")
        subprocess.run(
            [sys.executable, "-m", "dataform_infra", "render", "--all", "--out", "infra"],
            cwd=root,
            check=True,
            env=env,
            capture_output=True,
        )
        for module in (reviewed.root / "infra").iterdir():  # download-artifact merges into what is there
            shutil.copytree(module / ".dfinfra", root / "infra" / module.name / ".dfinfra", dirs_exist_ok=True)
            shutil.copy(module / ".terraform.lock.hcl", root / "infra" / module.name)
        return root

    apply_step = _job_scripts("apply", ("dfinfra apply (the reviewed plans, nothing else)",))
    assert len(apply_step) == 1

    changed = fresh_checkout(
        "changed",
        lambda d: (d / "prod.yaml").write_text((d / "prod.yaml").read_text().replace('"45 6 * * *"', '"0 7 * * *"')),
    )
    refused = bash(apply_step[0], changed)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "no saved plan made from the files now in" in refused.stderr
    assert [kind for kind, _ in cloud.resources() if kind != "google_storage_bucket"] == []

    applied = bash(apply_step[0], fresh_checkout("main"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "applying the saved plan" in applied.stdout
    assert "No changes" in reviewed.run("plan", "--all", "--out", "infra", expect=0)


@pytest.mark.terraform
def test_cloud_build_recipe_runs_in_one_image_and_applies_the_plans_it_made(tmp_path, cloud):
    """#22: every step in one image (wheels load where pip built them); its steps, in order, against the offline
    cloud: the apply step applies the plan step's saved plans, planning nothing afresh."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.project import Project

    build = yaml.safe_load(CLOUD_BUILD.read_text())
    steps = build["steps"]
    assert len({step["name"] for step in steps}) == 1, "one image for every step"
    assert [step["id"] for step in steps] == ["install", "check", "plan", "apply"]
    workspace = Project(tmp_path / "workspace", cloud)
    workspace.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
    workspace.run("render", "--all", "--out", "infra")  # the HCL the repository commits
    (workspace.root / ".venv").symlink_to(Path(sys.prefix))  # what the install step leaves in /workspace
    env = {**cloud.env, "PATH": f"{Path(sys.executable).parent}:{cloud.env['PATH']}"}
    outputs = {}
    for step in steps[1:]:
        assert step["entrypoint"] == "bash" and step["args"][0] == "-c"
        script = step["args"][1].replace("/workspace", str(workspace.root))
        result = subprocess.run(  # as Cloud Build runs the step: its entrypoint and args, nothing more
            ["bash", "-c", script], cwd=workspace.root, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"{step['id']}: {result.stdout}{result.stderr}"
        outputs[step["id"]] = result.stdout + result.stderr
    assert outputs["apply"].count("applying the saved plan") == 2  # staging's and prod's, as planned
    assert "planning again" not in outputs["apply"]
    assert "No changes" in workspace.run("plan", "--all", "--out", "infra", expect=0)
