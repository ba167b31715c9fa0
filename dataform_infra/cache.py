"""Where dfinfra keeps caches it can always rebuild (compiled templates, terraform's plugin cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str) -> Path:
    """`$XDG_CACHE_HOME/dfinfra/<name>`, defaulting to `~/.cache`."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dfinfra" / name


def private(directory: Path) -> bool:
    """It and the dfinfra cache directory above it are ours and writable by no one else: safe to load
    compiled code from (a poisoned template cache would otherwise run as whoever renders)."""
    for path in (directory, directory.parent):
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            return False
    return True
