"""A deployment applied once and restored for each test that starts from it.

Bootstrapping and applying the shipped environments through terraform takes most of such a test's time.
The snapshot is taken after one real `dfinfra bootstrap/apply`: the offline cloud's store (an SQLite backup),
the checkout with its rendered, initialised modules, and every object of its state buckets. Each test gets
copies of the store and the checkout in a fresh offline cloud, and the state buckets (in the session's GCS
emulator, under the snapshot's names) are put back exactly as they were: objects written since are deleted,
the snapshot's rewritten. Tests run one at a time, so a test that applies or destroys starts from the
snapshot and leaves nothing the next one sees.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from dataform_infra.spec.loader import load_deployment
from tests.project import Project


@dataclass(frozen=True)
class Snapshot:
    store: Path
    checkout: Path
    buckets: dict[str, dict[str, bytes]] = field(default_factory=dict)  # bucket -> object name -> bytes

    @classmethod
    def take(cls, project: Project, where: Path) -> Snapshot:
        store = where / "store.sqlite"
        with sqlite3.connect(project.cloud.store.path) as source, sqlite3.connect(store) as target:
            source.backup(target)
        gcs = project.cloud.gcs
        buckets: dict[str, dict[str, bytes]] = {}
        for env in load_deployment(project.root / "environments").environments.values():
            bucket = env.state.bucket
            buckets[bucket] = {name: gcs.read(bucket, name) for name in gcs.objects(bucket)} if gcs else {}
        return cls(store, project.root, buckets)

    def restore(self, cloud, root: Path) -> Project:
        """The applied deployment in `cloud` (a fresh offline cloud), its checkout copied to `root`."""
        with sqlite3.connect(self.store) as source, sqlite3.connect(cloud.store.path) as target:
            source.backup(target)
        shutil.copytree(self.checkout, root, symlinks=True)
        gcs = cloud.gcs
        for bucket, objects in self.buckets.items():
            for name in set(gcs.objects(bucket)) - set(objects):  # a lock, a state written since
                gcs.delete(bucket, name)
            for name, data in objects.items():
                gcs.write(bucket, name, data)
        return Project.restored(root, cloud)
