"""The CI recipes and pre-commit hooks call only dfinfra commands and options that exist."""

import re
import shlex

import pytest
import yaml
from typer.testing import CliRunner

from dataform_infra.cli import app
from tests.conftest import REPO

RECIPES = [REPO / "examples" / "ci" / "github-actions.yml", REPO / "examples" / "ci" / "cloudbuild.yaml"]


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
    workflow = yaml.safe_load(RECIPES[0].read_text())
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
