"""What dfinfra trusts in an output directory: only the working files it wrote itself, on this machine.

An output directory usually sits in a Git checkout, so anything found in it may have come from a pull
request: a render journal that names paths to delete or rename, a `.dfinfra/lock` or `logs` that is a
symlink to a file elsewhere, a `.terraform/` holding a provider binary whose hash is in the lock file.
dfinfra acts on such a file only when it can prove it wrote it:

- **Sealed files** (the render journal's lines, the `terraform init` stamp) carry an HMAC under a key kept
  outside every checkout (`$XDG_STATE_HOME/dfinfra/trust/key`, 0600, this user's), over their content (and,
  for the journal, its absolute path). A fresh clone or another machine has no such seal, so nothing
  committed or copied in from elsewhere is replayed or executed.
- **Directories dfinfra writes in** (`.dfinfra/`, its `logs/`) must be real directories, never symlinks, and
  the files it creates there are opened without following links.

Saved plans travel between machines on purpose (a CI plan job's artefact), so they are bound by digest to
their plan file, render and environment instead (`lifecycle`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shlex
import stat
from functools import lru_cache
from pathlib import Path

from dataform_infra.cache import make_private
from dataform_infra.errors import Untrusted, shown

KEY_BYTES = 32


def state_dir() -> Path:
    """`$XDG_STATE_HOME/dfinfra/trust`, defaulting to `~/.local/state`: state, not a cache one may wipe."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "dfinfra" / "trust"


@lru_cache(maxsize=1)
def _key() -> tuple[bytes, bool]:
    """This user's key, and whether it persists (False: a read-only or shared home; nothing an earlier
    process wrote can then be proved, and what it left is refused)."""
    directory = state_dir()
    if make_private(directory):
        path = directory / "key"
        try:
            return _read_key(path), True
        except FileNotFoundError:
            pass
        try:
            staged = directory / f".key-{secrets.token_hex(8)}"
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
            try:
                os.link(staged, path)  # atomic: a concurrent first run reads one key or the other, whole
            except FileExistsError:
                pass
            finally:
                staged.unlink(missing_ok=True)
            return _read_key(path), True
        except OSError:
            pass
    return secrets.token_bytes(KEY_BYTES), False


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        key = handle.read()
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or len(key) != KEY_BYTES:
        raise OSError(f"{path} is not this user's private key")
    return key


def key_persists() -> bool:
    return _key()[1]


def seal(purpose: Path | str, content: str) -> str:
    """The HMAC proving this user's dfinfra wrote `content` for `purpose`: a file's absolute path (the journal:
    its lines are good for that file only) or a name (an init stamp, whose listing is relative to its module)."""
    scope = str(purpose.absolute()) if isinstance(purpose, Path) else f"purpose:{purpose}"
    message = scope.encode() + b"\0" + content.encode()
    return hmac.new(_key()[0], message, hashlib.sha256).hexdigest()


def sealed(purpose: Path | str, content: str, mac: object) -> bool:
    if not isinstance(mac, str) or not mac.isascii():  # compare_digest refuses non-ASCII text
        return False
    return hmac.compare_digest(seal(purpose, content), mac)


def own_dir(path: Path) -> Path:
    """`path` as a directory dfinfra may write in: created if missing, refused if it is a symlink or
    anything but a directory (a link would send dfinfra's writes to wherever it points)."""
    check_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    check_dir(path)
    return path


def check_dir(path: Path) -> None:
    """Refuse `path` if it exists as anything but a real directory."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise Untrusted(
            f"{shown(path)} is {'a symlink' if stat.S_ISLNK(info.st_mode) else 'not a directory'}, not dfinfra's "
            "working directory: dfinfra never writes through a link it did not make. Remove it (it may have come "
            "from the repository; keep .dfinfra/ out of git) and run again."
        )


def open_new(path: Path, flags: int = os.O_WRONLY | os.O_APPEND) -> int:
    """A file descriptor for `path` inside an `own_dir` (created if missing), never following a symlink
    found there."""
    try:
        return os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if path.is_symlink():
            link = shown(path)
            raise Untrusted(f"{link} is a symlink: dfinfra never writes through a link it did not make.") from exc
        raise


def write_file(path: Path, text: str) -> None:
    """Replace `path` (in an `own_dir`) with `text` atomically; a symlink there is replaced, never followed."""
    own_dir(path.parent)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def read_file(path: Path, max_bytes: int) -> bytes | None:
    """A working file's bytes, or None when it is missing, a link, not a regular file (a FIFO, a device) or
    larger than `max_bytes`: dfinfra's bookkeeping is read only as the small regular file dfinfra wrote."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        data = handle.read(max_bytes + 1)
    return data if len(data) <= max_bytes else None


def plan_config_matches(plan_file: Path, module: Path) -> bool:
    """Does the saved plan carry exactly the module's configuration? `terraform apply PLAN` applies the
    configuration inside the plan file (a zip: `tfconfig/m-/<file>`), not the files beside it, so a plan made
    from anything else (a `local-exec` provisioner, say) must not pass for the reviewed render."""
    import zipfile

    ours = {p.name: p.read_bytes() for p in sorted(module.glob("*.tf")) + sorted(module.glob("*.tf.json"))}
    try:
        with zipfile.ZipFile(plan_file) as archive:
            names = [n for n in archive.namelist() if n.startswith("tfconfig/")]
            modules = json.loads(archive.read("tfconfig/modules.json"))
            theirs = {n.removeprefix("tfconfig/m-/"): archive.read(n) for n in names if n.startswith("tfconfig/m-/")}
            extra = [n for n in names if n != "tfconfig/modules.json" and not n.startswith("tfconfig/m-/")]
            lock = archive.read(".terraform.lock.hcl") if ".terraform.lock.hcl" in archive.namelist() else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RuntimeError):
        return False
    root_only = modules == [{"Key": "", "Dir": "."}]
    local_lock = module / ".terraform.lock.hcl"
    lock_matches = lock is None or (local_lock.is_file() and local_lock.read_bytes() == lock)
    return root_only and not extra and theirs == ours and lock_matches


def tree_listing(root: Path) -> list[str]:
    """Every entry under `root` as it is now (path, type; for files their size and modification time, for
    links their target): what an init stamp seals. An entry added or changed afterwards (a provider swapped
    in) is not in the sealed listing; one deleted (a cleaned cache) leaves the rest a part of it."""
    lines: list[str] = []
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(current) / name
            info = path.lstat()
            kind = stat.S_IFMT(info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                detail = ""
            elif stat.S_ISLNK(info.st_mode):
                detail = os.readlink(path)
            else:
                detail = f"{info.st_size}:{info.st_mtime_ns}"
            lines.append(f"{path.relative_to(root)}\0{kind}\0{detail}")
    return lines


INIT_STAMP = "init.json"


def init_stamp(directory: Path) -> str | None:
    """What the module's last `terraform init` by this user's dfinfra was made from (None: none yet). A
    `.terraform/` that init did not leave as it is now (committed to the repository, copied in, a provider
    swapped since) is refused: terraform would run the provider binaries it holds."""
    working = directory / ".terraform"
    stamp = directory / ".dfinfra" / INIT_STAMP
    if not (working.exists() or working.is_symlink()):
        return None
    try:
        if stamp.is_symlink():
            raise ValueError(f"{stamp} is a symlink")
        recorded = json.loads(stamp.read_text())
        inputs, listed = recorded["inputs"], recorded["working"]
        content = json.dumps({"inputs": inputs, "working": listed})
        unchanged = set(tree_listing(working)) <= set(listed)  # files removed since: still ours
        if not working.is_symlink() and unchanged and sealed(INIT_STAMP, content, recorded["seal"]):
            return str(inputs)
    except (OSError, ValueError, TypeError, KeyError):
        pass
    persisted = (
        ""
        if key_persists()
        else (f" (dfinfra's key could not be kept in {state_dir()}: make it writable, or set XDG_STATE_HOME)")
    )
    raise Untrusted(
        f"{shown(working)} was not left there by dfinfra's own terraform init on this machine{persisted}: it may hold "
        "provider binaries from the repository, which terraform would run with your credentials. Remove it "
        f"(rm -rf {shown(shlex.quote(str(working)))}) and run again; never commit .terraform/."
    )


def seal_init(directory: Path, inputs: str) -> None:
    """Record that dfinfra's own init left `.terraform/` as it is now, made from `inputs`."""
    stamp = directory / ".dfinfra" / INIT_STAMP
    listed = tree_listing(directory / ".terraform")
    content = json.dumps({"inputs": inputs, "working": listed})
    write_file(stamp, json.dumps({"inputs": inputs, "working": listed, "seal": seal(INIT_STAMP, content)}))
