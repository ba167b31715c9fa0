"""The shared store stays consistent when several processes write at once."""

import contextlib
import multiprocessing

from tests.fakegcp.store import AlreadyExists, Store


def _writer(path: str, worker: int) -> None:
    store = Store(path)
    for i in range(50):
        store.put("google_thing", f"w{worker}-{i}", {"worker": worker, "i": i})
        with contextlib.suppress(AlreadyExists):
            store.create("google_shared", "only-one", {"worker": worker})


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "cloud.sqlite")
    Store(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = Store(path)
    assert len(store.list("google_thing")) == 200
    assert len(store.list("google_shared")) == 1
