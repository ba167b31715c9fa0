"""Where dfinfra keeps caches it can always rebuild (compiled templates, terraform's plugin cache), and
how it keeps them its own: compiled templates someone else can write would run code as whoever renders."""

from __future__ import annotations

import os
import stat
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
