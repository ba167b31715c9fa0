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
