"""dfinfra's bookkeeping beside each module, in OUT/<env>/.dfinfra/: the saved plan (`tfplan`), the record that
binds it to what it was planned from (`plan.json`), and what `terraform init` depended on (the stamp `trust` seals).

A saved plan is applied only while its record says it was made for this environment, from exactly the files now
rendered, in the same mode, with the same secret versions, and the plan file is the one recorded: no terraform
runs to check it, so every environment can be checked before any is applied.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from dataform_infra import trust
from dataform_infra.terraform.binary import TerraformBinary
from dataform_infra.terraform.runner import PlanMode
from dataform_infra.terraform.summary import PlanSummary

# Environment variables that change what `terraform init` would do with the backend.
BACKEND_ENV = ("GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT", "GOOGLE_STORAGE_CUSTOM_ENDPOINT", "GOOGLE_BACKEND_CREDENTIALS")
SAVED_PLAN = "saved-plan"  # what plan.json's seal is for
MAX_PLAN_JSON = 64 << 20  # its summary grows with the plan; anything larger is not dfinfra's


def meta_dir(directory: Path) -> Path:
    """The module's `.dfinfra/`: a real directory of this user's, never a link."""
    return trust.own_dir(directory / ".dfinfra")


def plan_file(directory: Path) -> Path:
    return meta_dir(directory) / "tfplan"


def _record_file(directory: Path) -> Path:
    return meta_dir(directory) / "plan.json"


def _fingerprint(path: Path) -> str:
    """Size and modification time of what a path (or the link in the plugin cache) holds."""
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def render_digest(directory: Path, extra: list[str] | None = None) -> str:
    """The module's `.tf` files (and `extra`), as one digest."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.tf")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for item in extra or []:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


def init_digest(directory: Path, binary: TerraformBinary) -> str:
    """Everything `terraform init` depends on: a change to any of them means init again.

    The module's files, the binary, the backend settings, and also the dependency lock file, the
    CLI configuration and the installed providers, which a teammate's `init -upgrade`, another
    platform or a cleaned plugin cache change without touching the module.
    """
    config = os.environ.get("TF_CLI_CONFIG_FILE") or str(Path.home() / ".terraformrc")
    providers = directory / ".terraform" / "providers"
    installed = sorted(
        f"{p.relative_to(providers)}:{_fingerprint(p)}"
        for p in (providers.rglob("*") if providers.is_dir() else [])
        if p.is_file() or p.is_symlink()
    )
    inputs = [
        binary.path,
        binary.version_text,
        *(f"{k}={os.environ.get(k, '')}" for k in (*BACKEND_ENV, "TF_PLUGIN_CACHE_DIR")),
        _read(directory / ".terraform.lock.hcl"),
        _read(Path(config)),
        *installed,
    ]
    return render_digest(directory, inputs)


def record_plan(
    directory: Path, env: str, mode: PlanMode, secret_versions: dict[str, str], summary: PlanSummary
) -> None:
    """Bind the plan just saved to what it was planned from, sealed: made here, it is trusted without a flag."""
    record: dict[str, object] = {
        "env": env,
        "render_sha256": render_digest(directory),
        "tfplan_sha256": file_digest(plan_file(directory)),
        "mode": mode.to_dict(),
        "secret_versions": secret_versions,
        "planned_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": summary.to_dict(),
    }
    seal = trust.seal(SAVED_PLAN, json.dumps(record, sort_keys=True))
    trust.write_file(_record_file(directory), json.dumps({**record, "seal": seal}, indent=2))


def saved_plan_file(
    directory: Path, env: str, mode: PlanMode, secret_versions: dict[str, str], *, from_elsewhere: bool = False
) -> Path | None:
    """The saved plan file, if its bookkeeping says it was made for this environment from exactly the files
    now rendered, for the same mode (and, for a plan that may change a channel, the same token versions), and
    the plan file carries exactly those files as its configuration (what `terraform apply PLAN` applies).
    Bookkeeping this machine's dfinfra did not seal (a CI plan job's artefact) is accepted only
    `from_elsewhere` (--require-saved-plan)."""
    saved = plan_file(directory)
    raw = trust.read_file(_record_file(directory), MAX_PLAN_JSON)
    if raw is None or saved.is_symlink() or not saved.is_file():
        return None
    try:
        meta = json.loads(raw)
    except ValueError:  # damaged bookkeeping: plan again rather than trust it
        return None
    if not isinstance(meta, dict):
        return None
    seal = meta.pop("seal", None)
    if not from_elsewhere and not trust.sealed(SAVED_PLAN, json.dumps(meta, sort_keys=True), seal):
        return None
    if meta.get("render_sha256") != render_digest(directory) or meta.get("mode") != mode.to_dict():
        return None
    if mode.creates_or_updates and meta.get("secret_versions", {}) != secret_versions:
        return None  # a channel's token was set since it was planned
    # The plan file itself, written with this bookkeeping for this environment: not one planned later, nor
    # another environment's copied in, nor one made from another configuration than the render.
    if meta.get("env") != env or meta.get("tfplan_sha256") != file_digest(saved):
        return None
    return saved if trust.plan_config_matches(saved, directory) else None


def discard_plan(directory: Path) -> None:
    """Forget the saved plan (applied, or no longer what is rendered)."""
    plan_file(directory).unlink(missing_ok=True)
    _record_file(directory).unlink(missing_ok=True)
