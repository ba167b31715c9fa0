"""A deployment applied once and restored for each test that only reads or breaks it.

Bootstrapping and applying the shipped environments through terraform takes most of a secret or doctor
test's time, and they only read the result or break one object of it. The snapshot is taken after one
real `dfinfra bootstrap/apply --all`: the offline cloud's store (an SQLite backup) and the checkout with
its rendered, initialised modules. Each test gets copies of both in a fresh offline cloud; the state
buckets stay in the session's GCS emulator, unchanged by tests that only plan against them.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tests.project import Project


@dataclass(frozen=True)
class Snapshot:
    store: Path
    checkout: Path

    @classmethod
    def take(cls, project: Project, where: Path) -> Snapshot:
        store = where / "store.sqlite"
        with sqlite3.connect(project.cloud.store.path) as source, sqlite3.connect(store) as target:
            source.backup(target)
        return cls(store, project.root)

    def restore(self, cloud, root: Path) -> Project:
        """The applied deployment in `cloud` (a fresh offline cloud), its checkout copied to `root`."""
        with sqlite3.connect(self.store) as source, sqlite3.connect(cloud.store.path) as target:
            source.backup(target)
        shutil.copytree(self.checkout, root, symlinks=True)
        return Project.restored(root, cloud)
