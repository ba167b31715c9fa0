import os
from pathlib import Path

import pytest

from dataform_infra.errors import TerraformError
from dataform_infra.terraform.binary import find_terraform


def shim(directory: Path, name: str, version: str) -> Path:
    path = directory / name
    path.write_text(f'#!/bin/sh\necho \'{{"terraform_version": "{version}", "platform": "linux_amd64"}}\'\n')
    path.chmod(0o755)
    return path


def test_explicit_binary_wins_and_tofu_is_recognised(tmp_path, monkeypatch):
    monkeypatch.delenv("DFINFRA_TERRAFORM_BIN", raising=False)
    found = find_terraform(str(shim(tmp_path, "tofu", "1.8.2")))
    assert (found.flavour, found.version) == ("opentofu", (1, 8, 2))
    assert found.describe().startswith("OpenTofu 1.8.2 at ")


def test_environment_variable_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DFINFRA_TERRAFORM_BIN", str(shim(tmp_path, "terraform", "1.9.0")))
    assert find_terraform().version == (1, 9, 0)


def test_path_order_terraform_then_tofu(tmp_path, monkeypatch):
    monkeypatch.delenv("DFINFRA_TERRAFORM_BIN", raising=False)
    shim(tmp_path, "tofu", "1.7.0")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_terraform().flavour == "opentofu"
    shim(tmp_path, "terraform", "1.10.1")
    assert find_terraform().version == (1, 10, 1)


def test_too_old_is_refused(tmp_path):
    with pytest.raises(TerraformError, match=r"is Terraform 1\.4\.6; dfinfra needs 1\.5\.0 or newer"):
        find_terraform(str(shim(tmp_path, "terraform", "1.4.6")))


def test_missing_explicit_binary(tmp_path):
    with pytest.raises(TerraformError, match="does not exist or is not executable"):
        find_terraform(str(tmp_path / "nope"))


@pytest.mark.terraform
def test_bundled_fallback_when_nothing_is_on_path(tmp_path, monkeypatch):
    monkeypatch.delenv("DFINFRA_TERRAFORM_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = find_terraform()
    assert found.flavour == "bundled" and found.version >= (1, 5, 0)
    assert os.path.basename(found.path) == "dfinfra-terraform"


@pytest.fixture()
def own_state(tmp_path, monkeypatch):
    """A user of their own: a fresh dfinfra key and state directory."""
    from dataform_infra import trust

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    trust._key.cache_clear()
    yield trust.state_dir()
    trust._key.cache_clear()


def test_a_native_binary_is_asked_its_version_once_and_a_planted_answer_is_not_believed(own_state, terraform_bin):
    """`terraform version` was on every plan's critical path; a native binary's answer is kept by its file's
    identity, sealed with this user's key: an entry written by anyone else (claiming an old terraform is new
    enough, say) is ignored and the binary asked again."""
    import json

    from dataform_infra.terraform.binary import PendingTerraform

    first = PendingTerraform(terraform_bin)
    assert first._process is not None  # asked
    version = first.result().version
    again = PendingTerraform(terraform_bin)
    assert again._process is None and again.result().version == version  # remembered

    remembered = own_state / "terraform-versions.json"
    entries = json.loads(remembered.read_text())
    for entry in entries.values():
        entry["output"] = '{"terraform_version": "9.9.9"}'  # the seal no longer matches
    remembered.write_text(json.dumps(entries))
    planted = PendingTerraform(terraform_bin)
    assert planted._process is not None and planted.result().version == version


def test_a_script_is_asked_every_time(own_state, tmp_path):
    """A shim (tfenv, asdf, mise) answers by the directory it runs in: never remembered."""
    from dataform_infra.terraform.binary import PendingTerraform

    path = str(shim(tmp_path, "terraform", "1.9.0"))
    assert PendingTerraform(path).result().version == (1, 9, 0)
    assert PendingTerraform(path)._process is not None
    assert not (own_state / "terraform-versions.json").exists()


def test_a_version_managers_native_shim_is_never_remembered(tmp_path, terraform_bin):
    """mise, aqua and proto put a native binary of their own behind `terraform` (a link to it): its answer
    depends on the directory, so only a file that is terraform or tofu itself is remembered (review finding)."""
    import shutil

    from dataform_infra.terraform.binary import _identity

    assert _identity(terraform_bin) is not None
    shim = tmp_path / "terraform"
    shim.symlink_to(shutil.which("sleep") or "/bin/sleep")  # native, and named otherwise once resolved
    assert _identity(str(shim)) is None
