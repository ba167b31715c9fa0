"""`dfinfra`: thin typer commands over `SpecSet`, in rooms by concern over one base and one options
module: `specs` (no cloud), `terraform` (modules and state), `cloud` (Google APIs).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import Any

from dataform_infra.cli.base import _SESSION, Session, app

# Importing the rooms registers their commands, in the order `dfinfra --help` lists them.
# isort: off
from dataform_infra.cli import specs  # noqa: F401
from dataform_infra.cli import terraform  # noqa: F401
from dataform_infra.cli import cloud  # noqa: F401

# isort: on
from dataform_infra.cli.cloud import secret_app

__all__ = ["app", "execute", "main", "secret_app"]


def _invoked_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (global options come first)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


class _OutlivesItsReader:
    """stdout that survives a closed pipe (`dfinfra apply ... | head -1`): once the reader is gone,
    output goes to /dev/null and the approved operation carries on, instead of dying half-way or
    blocking terraform while it holds the state lock."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def _drop(self) -> None:
        sink = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout for the rest of the process
        with contextlib.suppress(OSError, ValueError):
            os.dup2(sink.fileno(), self._stream.fileno())
        self._stream = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def execute(argv: list[str]) -> int | str | None:
    """dfinfra with these arguments, in this process; returns the exit code `main` exits with (tests
    call this directly: one process for many invocations)."""
    session = Session()
    token = _SESSION.set(session)
    try:
        app(args=argv, prog_name="dfinfra")
    except SystemExit as exit_:
        # `plan` speaks `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 anything else,
        # so a nightly drift check can tell drift from a typo. Bad input (2 elsewhere) becomes 1 here.
        if exit_.code == 2 and _invoked_command(argv) == "plan" and not session.plan_has_changes:
            return 1
        return exit_.code
    finally:
        _SESSION.reset(token)
    return 0


def main() -> None:
    # A short-lived process building many small acyclic objects (YAML nodes, models, HCL lines):
    # with CPython's default thresholds the collector's repeated passes over them made render time
    # grow faster than the spec. Freeze what imports created and collect young objects rarely.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    sys.stdout = _OutlivesItsReader(sys.stdout)
    sys.exit(execute(sys.argv[1:]))
