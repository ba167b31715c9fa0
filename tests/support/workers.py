"""What the test processes of one run (pytest-xdist's workers) share: a directory, and a lock in it.

An expensive fixture a test only reads (a deployment applied once, then copied by each test) is built by the first
worker that needs it and read by the others, instead of once per worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's directory, common to its workers (their base temporary directories' parent under xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold `lock` against the other workers (a blocking flock, released if the holder dies)."""
    with lock.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
