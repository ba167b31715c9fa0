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

import base64
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dataform_infra.spec.loader import load_deployment
from tests.support.project import Project
from tests.support.workers import exclusive, shared_dir


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

    def save(self, where: Path) -> None:
        """Write the buckets beside the store and checkout, for another worker to `load`."""
        buckets = {b: {n: base64.b64encode(d).decode() for n, d in o.items()} for b, o in self.buckets.items()}
        (where / "snapshot.json").write_text(
            json.dumps({"store": str(self.store), "checkout": str(self.checkout), "buckets": buckets})
        )

    @classmethod
    def load(cls, where: Path) -> Snapshot:
        saved = json.loads((where / "snapshot.json").read_text())
        buckets = {b: {n: base64.b64decode(d) for n, d in o.items()} for b, o in saved["buckets"].items()}
        return cls(Path(saved["store"]), Path(saved["checkout"]), buckets)

    def restore(self, cloud, root: Path) -> Project:
        """The applied deployment in `cloud` (a fresh offline cloud), its checkout copied to `root`."""
        with sqlite3.connect(self.store) as source, sqlite3.connect(cloud.store.path) as target:
            source.backup(target)
        shutil.copytree(self.checkout, root, symlinks=True)
        gcs = cloud.gcs
        for bucket, objects in self.buckets.items():
            gcs.create_bucket(bucket)  # this worker's emulator may not hold it yet (the store records its settings)
            for name in set(gcs.objects(bucket)) - set(objects):  # a lock, a state written since
                gcs.delete(bucket, name)
            for name, data in objects.items():
                gcs.write(bucket, name, data)
        return Project.restored(root, cloud)


def shared_snapshot(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Project]) -> Snapshot:
    """The snapshot `name`, made once per test run by `make(directory)` (the first worker to ask makes it; the
    others load it), instead of once per module and worker."""
    shared = shared_dir(tmp_path_factory)
    where = shared / f"snapshot-{name}"
    with exclusive(shared / f"snapshot-{name}.lock"):
        if not (where / "snapshot.json").exists():
            where.mkdir(exist_ok=True)
            Snapshot.take(make(where), where).save(where)
    return Snapshot.load(where)


def shipped(
    tmp_path_factory: pytest.TempPathFactory, terraform_bin: str, gcs, name: str, *steps: tuple[str, ...]
) -> Snapshot:
    """The shipped environments bootstrapped, then `steps` run through the CLI: once per test run under `name`
    (tests/test_lifecycle.py and tests/test_secrets_and_doctor.py both start from "applied")."""
    from tests.fakegcp.harness import OfflineCloud

    def make(root: Path) -> Project:
        project = Project(root / "checkout", OfflineCloud(root / "cloud", terraform_bin, gcs))
        project.run("bootstrap", "--all", "--auto-approve", "--confirm", "prod")
        for step in steps:
            project.run(*step)
        return project

    return shared_snapshot(tmp_path_factory, f"shipped-{name}", make)
