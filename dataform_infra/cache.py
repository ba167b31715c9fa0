"""Where dfinfra keeps caches it can always rebuild (compiled templates, terraform's plugin cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str) -> Path:
    """`$XDG_CACHE_HOME/dfinfra/<name>`, defaulting to `~/.cache`."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dfinfra" / name
