"""Every row of README's command table keeps its promise for bad input: an unknown option, and (where
the command takes one) an unknown environment, end with the exit code the table lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.specsets import REPO

README = (REPO / "README.md").read_text()
ROWS = re.findall(r"^\| `dfinfra ([^`]+)` \|.*\| ([^|]+) \|$", README, re.M)


def _command(usage: str) -> list[str]:
    """`secret set HOST [--from-env VAR]` -> ["secret", "set"]; `render --all --check [...]` keeps its flags."""
    words = []
    for word in usage.replace("\\|", "|").split():
        if word.startswith("[") or word.isupper() or word.rstrip(".") != word or word in ("|", "--all"):
            break
        words.append(word)
    if "--check" in usage:
        words.append("--check")
    return words


def _bad_input_code(codes: str) -> int:
    if "bad input included" in codes:
        return int(re.search(r"(\d) anything else \(bad input included\)", codes)[1])
    return int(re.search(r"(\d) bad input", codes)[1])


def dfinfra(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DFINFRA_ENVIRONMENTS"}
    return subprocess.run(
        [sys.executable, "-m", "dataform_infra", *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=60
    )


def test_the_table_lists_every_command():
    from dataform_infra.cli import app, secret_app

    listed = {" ".join(_command(usage)).removesuffix(" --check") for usage, _ in ROWS}

    def names(typer_app):
        return {c.name or c.callback.__name__ for c in typer_app.registered_commands}

    commands = names(app) | {f"secret {name}" for name in names(secret_app)}
    assert commands == listed


@pytest.mark.parametrize(("usage", "codes"), ROWS, ids=[usage.split(" [")[0] for usage, _ in ROWS])
def test_bad_input_exits_with_the_listed_code(usage, codes):
    command = _command(usage)
    expected = _bad_input_code(codes)
    unknown_option = dfinfra(*command, "--no-such-option")
    assert unknown_option.returncode == expected, unknown_option.stderr
    assert "Traceback" not in unknown_option.stderr
    if re.search(r"\b(ENV|HOST)\b", usage):
        extra = ["some-workflow"] if command == ["run"] else []
        unknown_env = dfinfra(*command, "no-such-env", *extra)
        assert unknown_env.returncode == expected, unknown_env.stderr
        assert "no-such-env" in unknown_env.stderr and "Traceback" not in unknown_env.stderr
