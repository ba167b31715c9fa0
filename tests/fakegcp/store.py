"""The offline cloud's single source of truth: one SQLite file, shared by every fake process.

Provider processes (several run at once during a plan), the Secret Manager and IAM API fakes and
the tests themselves open the file named by `FAKEGCP_STORE`. WAL mode and immediate transactions
make concurrent writers safe; each object is a JSON document keyed by (kind, id).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STORE_ENV = "FAKEGCP_STORE"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, number TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
"""

# A release config's live compilation (`release_compilation_result`): kept beside the Terraform-managed
# body, because the provider neither sets nor reads it, and its full-body update empties it.
RELEASE_STATE = "dataform_release_state"
# A repository created without a key in a region with a Dataform default key: the key it was created with.
DEFAULT_KEY_OF = "dataform_repository_default_key"


def default_key(store: Store, repository: str) -> str:
    """The key `repository` was created with from its region's Dataform default ("" for none)."""
    return (store.get(DEFAULT_KEY_OF, repository) or {}).get("kms_key_name", "")


class AlreadyExists(Exception):
    pass


class Store:
    def __init__(self, path: Path | str | None = None):
        location = path or os.environ.get(STORE_ENV)
        if not location:
            raise RuntimeError(f"set {STORE_ENV} to the offline cloud's SQLite file")
        self.path = Path(location)
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened once: an IAM check reads the store hundreds of times, and opening
        SQLite (and setting WAL) each time was most of a fake API call. Autocommit, so every read sees what
        other processes committed."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():  # a forked child opens its own
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=60000")
            self._local.db, self._local.pid = db, os.getpid()
        yield db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # --- projects ---------------------------------------------------------------------

    def add_project(self, project_id: str, number: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO projects VALUES (?, ?)", (project_id, str(number)))

    def project_number(self, project_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT number FROM projects WHERE id = ?", (project_id,)).fetchone()
        return row[0] if row else None

    def project_id(self, id_or_number: str) -> str | None:
        """The project id for a project id or number (Google accepts either in resource names)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id FROM projects WHERE id = ? OR number = ?", (id_or_number, str(id_or_number))
            ).fetchone()
        return row[0] if row else None

    # --- objects ----------------------------------------------------------------------

    def get(self, kind: str, id_: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT body FROM objects WHERE kind = ? AND id = ?", (kind, id_)).fetchone()
        return json.loads(row[0]) if row else None

    def create(self, kind: str, id_: str, body: dict[str, Any]) -> None:
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM objects WHERE kind = ? AND id = ?", (kind, id_)).fetchone():
                raise AlreadyExists(f"{kind} {id_} already exists")
            db.execute("INSERT INTO objects VALUES (?, ?, ?)", (kind, id_, json.dumps(body, sort_keys=True)))

    def put(self, kind: str, id_: str, body: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?)", (kind, id_, json.dumps(body, sort_keys=True)))

    def delete(self, kind: str, id_: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, id_)).rowcount > 0

    def list(self, kind: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        with self._connect() as db:
            if kind is None:
                rows = db.execute("SELECT kind, id, body FROM objects ORDER BY kind, id").fetchall()
            else:
                rows = db.execute("SELECT kind, id, body FROM objects WHERE kind = ? ORDER BY id", (kind,)).fetchall()
        return [(k, i, json.loads(b)) for k, i, b in rows]
