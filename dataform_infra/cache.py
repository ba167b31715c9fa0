"""Where dfinfra keeps caches it can always rebuild (compiled templates, parsed HCL, terraform's plugin
cache), and how it keeps them its own: a cache someone else can write could run code as whoever renders
(compiled templates) or hide a violation from `lint` (a planted parse)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def cache_dir(name: str) -> Path:
    """`$XDG_CACHE_HOME/dfinfra/<name>`, defaulting to `~/.cache`."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dfinfra" / name


def _ours(info: os.stat_result) -> bool:
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def private(directory: Path) -> bool:
    """It and the dfinfra directory above it are real directories (not symlinks someone could swap), ours,
    and writable by no one else."""
    for path in (directory, directory.parent):
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or not _ours(info):
            return False
    return True


def make_private(directory: Path) -> bool:
    """Create `directory` (and the dfinfra directory above it) mode 0700 whatever the umask; True when it is
    then `private`. A read-only or shared home is no error: the caller works without the cache."""
    try:
        for path in (directory.parent, directory):
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.mkdir(mode=0o700)
                path.chmod(0o700)  # mkdir's mode is masked by the umask
        # One that others could write stays unused, never repaired: something may already be planted in it.
        return private(directory)
    except OSError:
        return False


def read_private(directory: Path, name: str) -> bytes | None:
    """The entry's bytes when the directory is `private` and the entry a regular file of ours, opened
    without following a symlink; None otherwise (a miss, never an error)."""
    try:
        if not private(directory):
            return None
        fd = os.open(directory / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or not _ours(info):
            return None
        return handle.read()


def write_private(directory: Path, name: str, data: bytes) -> None:
    """Write an entry atomically (a unique temporary file, then rename), mode 0600; a failure only costs speed."""
    if not make_private(directory):
        return
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, directory / name)
    except OSError:
        pass
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
