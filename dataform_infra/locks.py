"""dfinfra's locks, one primitive for both: a render into an `--out` directory, and a run in a module directory.

Both are flocks, released by the kernel when the process dies (so never left stale, unlike a state lock), and
both wait as long as `--lock-timeout`, as terraform waits for its own lock, saying once that they wait.

A render locks the `--out` directory itself (nothing is added to it) while it swaps files in or rolls back a
killed render. A terraform run locks its module directory: terraform's state lock protects the state, not the
directory, and two dfinfra runs in one `--out` share
`.terraform/` (two `terraform init`s race on the plugin cache), the saved plan and its metadata, so one
could apply the other's plan. A run therefore holds an flock on `<module>/.dfinfra/lock` from its first
step in that module until it exits. The kernel releases it when the process dies, so it is never left
stale (unlike a state lock); it waits as long as `--lock-timeout`, as terraform waits for its own lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from dataform_infra import trust
from dataform_infra.errors import ModuleBusy, UsageError

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def duration_seconds(text: str) -> float:
    """A Go duration as terraform's `-lock-timeout` takes it (`60s`, `5m`, `1h30m`, `0s`), in seconds."""
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"--lock-timeout {text!r} is not a duration: write it as terraform does, e.g. 60s, 5m or 0s")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


POLL_SECONDS = 0.2


def _acquire(fd: int, seconds: float, waiting: Callable[[], None]) -> bool:
    """Take an exclusive flock on `fd` within `seconds` (calling `waiting` once if it has to wait); False when
    it is still held by another process then."""
    deadline = time.monotonic() + seconds
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            if not told:
                waiting()
                told = True
            time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def render_lock(root: Path, timeout: str, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """One render into `root` at a time: another dfinfra rendering there is waited for up to `timeout`."""
    seconds = duration_seconds(timeout)

    def tell() -> None:
        if waiting is not None:
            waiting(f"{root}: waiting for another dfinfra to finish rendering there")

    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if not _acquire(fd, seconds, tell):
            raise ModuleBusy(
                f"{root} is being rendered by another dfinfra, which did not finish within --lock-timeout "
                f"{timeout}: wait for it, or pass a longer --lock-timeout; nothing was written."
            )
        yield
    finally:
        os.close(fd)  # releases the lock


class ModuleLocks:
    """The module directories this process works in, each locked until the process ends."""

    def __init__(self, timeout: str):
        self.timeout = timeout
        self._held: dict[Path, IO[str]] = {}
        self._first: dict[Path, str] = {}  # what this process came to do there (`apply`, not its inner `plan`)

    def hold(self, directory: Path, operation: str, *, waiting: Callable[[str], None] | None = None) -> None:
        """Lock `directory` for this process (again: a no-op), waiting up to the timeout for another."""
        directory = directory.absolute()
        operation = self._first.setdefault(directory, operation)
        if directory in self._held or not directory.is_dir():
            return  # held already, or nothing there yet to share (the first step that creates it locks it)
        seconds = duration_seconds(self.timeout)
        trust.check_dir(directory)  # the module directory itself may be a committed link to elsewhere
        lock_path = trust.own_dir(directory / ".dfinfra") / "lock"  # never a link to someone's file
        handle = os.fdopen(trust.open_new(lock_path, os.O_RDWR), "r+", encoding="utf-8")

        def tell() -> None:
            if waiting is not None:
                waiting(f"{directory.name}: waiting for another dfinfra ({_holder(handle)}) to finish")

        if not _acquire(handle.fileno(), seconds, tell):
            holder = _holder(handle)
            handle.close()
            raise ModuleBusy(
                f"{directory} is in use by another dfinfra ({holder}) and it did not finish within "
                f"--lock-timeout {self.timeout}: wait for it, or pass a longer --lock-timeout. Two runs in "
                "one --out would share terraform's working files and saved plan; nothing was done here."
            )
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "operation": operation,
                    "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            )
        )
        handle.flush()
        self._held[directory] = handle

    def descriptor(self, directory: Path) -> int | None:
        """The lock's open descriptor for `directory`, for terraform to inherit (None when not held)."""
        handle = self._held.get(directory.absolute())
        return handle.fileno() if handle is not None else None

    def release_all(self) -> None:
        for handle in self._held.values():
            handle.close()
        self._held.clear()


def _holder(handle: IO[str]) -> str:
    """Who holds the lock, as its holder wrote it (it may not have written yet)."""
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except ValueError:
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "starting up"
    return f"pid {info['pid']}, {info.get('operation', '?')}, since {info.get('since', '?')}"
