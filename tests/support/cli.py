"""`dfinfra ARGS` in the test process: what the user would see, without a process per call.

`cli.execute` is what the `dfinfra` entry point runs (exit codes included); here stdout and stderr are
captured, the working directory and environment set for the call only, and stdin fed from a string (a
pipe, never a terminal). A Python exception escapes to the test as the traceback a user would have seen.
The few behaviours that need a real process (signals, terminals, the entry point itself) keep their
subprocess tests.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dataform_infra import cli


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@contextlib.contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def invoke(*args: str, cwd: Path, env: dict[str, str | None] | None = None, stdin: str = "") -> Result:
    """Run `dfinfra ARGS` in `cwd` with `env` changes (None unsets), as the entry point does."""
    out, err = io.StringIO(), io.StringIO()
    changes: dict[str, str | None] = {"DFINFRA_ENVIRONMENTS": None, **(env or {})}
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with (
            contextlib.chdir(cwd),
            _environment(changes),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = cli.execute(list(args))
    finally:
        sys.stdin = saved_stdin
    return Result(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())
