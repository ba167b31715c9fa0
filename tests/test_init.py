"""`dfinfra init`: from nothing to a rendered, validated pair of environments."""

import os
import time

import yaml

from tests.support.cli import Result, invoke
from tests.support.terminal import drain, spawn

FLAGS = [
    "--host-project",
    "acme-dataform-stg",
    "--host-number",
    "123456789012",
    "--prod-project",
    "acme-dataform-prd",
    "--prod-number",
    "210987654321",
    "--region",
    "europe-west2",
    "--git-url",
    "https://github.com/acme/dataform.git",
    "--deployer",
    "user:me@acme.example",
]


def dfinfra(*args: str, cwd) -> Result:
    return invoke(*args, cwd=cwd)


def test_flags_scaffold_a_pair_that_renders_and_validates(tmp_path):
    result = dfinfra("init", *FLAGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    staging = (tmp_path / "environments" / "staging.yaml").read_text()
    assert staging.startswith("# yaml-language-server: $schema=./environment.schema.json")
    assert "# Add the token with: dfinfra secret set staging" in staging  # commented for a new user
    assert yaml.safe_load(staging)["repository"]["git"]["https_token"]["secret_id"] == "dataform-git-token"
    assert (tmp_path / "environments" / "environment.schema.json").exists()
    for env in ("staging", "prod"):  # the current provider line, pinned in the spec (#24)
        assert yaml.safe_load((tmp_path / "environments" / f"{env}.yaml").read_text())["provider_version"] == "~> 8.7"
    assert dfinfra("render", "--all", cwd=tmp_path).returncode == 0
    assert "ok: 2 environment(s)" in dfinfra("validate", cwd=tmp_path).stdout
    assert (tmp_path / ".gitignore").read_text().splitlines()[1:] == ["build/**/.dfinfra/", ".terraform/"]


def test_an_existing_gitignore_is_left_alone(tmp_path):
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    result = dfinfra("init", *FLAGS, cwd=tmp_path)
    assert result.returncode == 0 and "keep build/**/.dfinfra/ and .terraform/ out of git" in result.stderr
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n"


def test_ssh_remote_asks_for_the_host_key(tmp_path):
    flags = [
        f if f != "https://github.com/acme/dataform.git" else "git@gitlab.acme.example:data/dataform.git" for f in FLAGS
    ]
    missing = dfinfra("init", *flags, cwd=tmp_path)
    assert missing.returncode == 2 and "--ssh-host-key is required" in missing.stderr
    assert not (tmp_path / "environments").exists()
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    assert dfinfra("init", *flags, "--ssh-host-key", key, cwd=tmp_path).returncode == 0
    assert "ssh:" in (tmp_path / "environments" / "staging.yaml").read_text()
    assert dfinfra("validate", cwd=tmp_path).returncode == 0


def test_refuses_to_overwrite_and_bad_answers_write_nothing(tmp_path):
    assert dfinfra("init", *FLAGS, cwd=tmp_path).returncode == 0
    before = (tmp_path / "environments" / "staging.yaml").read_text()
    again = dfinfra("init", *FLAGS, cwd=tmp_path)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    assert (tmp_path / "environments" / "staging.yaml").read_text() == before
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    bad = dfinfra("init", *[f if f != "acme-dataform-prd" else "Prod_Project" for f in FLAGS], cwd=fresh)
    assert bad.returncode == 2 and "Prod_Project" in bad.stderr and "Traceback" not in bad.stderr
    assert not (fresh / "environments").exists()


def test_asks_on_a_terminal(tmp_path):
    process, controller = spawn("init", cwd=tmp_path)
    answers = [
        "https://github.com/acme/dataform.git",
        "acme-dataform-stg",
        "123456789012",
        "acme-dataform-prd",
        "210987654321",
        "",
        "group:platform@acme.example",
    ]  # "" takes the default region
    transcript = b""
    deadline = time.monotonic() + 60
    for answer in answers:
        while transcript.count(b": ") < answers.index(answer) + 1 and time.monotonic() < deadline:
            transcript += os.read(controller, 4096)
        os.write(controller, answer.encode() + b"\n")
    process.wait(timeout=60)
    transcript = drain(controller, transcript)
    assert process.returncode == 0, transcript.decode(errors="replace")
    assert b"Region [europe-west2]" in transcript
    staging = yaml.safe_load((tmp_path / "environments" / "staging.yaml").read_text())
    assert staging["deployers"] == ["group:platform@acme.example"] and staging["region"] == "europe-west2"


def test_a_symlinked_schema_file_is_replaced_not_written_through(tmp_path):
    shared = tmp_path / "shared.json"
    shared.write_text("somebody else's file\n")
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "environment.schema.json").symlink_to(shared)
    result = dfinfra("init", *FLAGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert shared.read_text() == "somebody else's file\n"
    schema = tmp_path / "environments" / "environment.schema.json"
    assert not schema.is_symlink() and '"additionalProperties": false' in schema.read_text()
