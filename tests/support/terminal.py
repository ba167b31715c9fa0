"""Driving dfinfra on a pseudo-terminal, as a person at a keyboard would."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path


def spawn(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`dfinfra ARGS` with a pseudo-terminal as stdin, stdout and stderr; returns it and the controller fd."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "dataform_infra", *args],
        cwd=cwd,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    return process, controller


def read_until(controller: int, needle: bytes, transcript: bytes = b"", timeout: float = 300) -> bytes:
    """What the terminal showed, read until `needle` appears (or `timeout` seconds pass)."""
    deadline = time.monotonic() + timeout
    while needle not in transcript and time.monotonic() < deadline:
        transcript += os.read(controller, 4096)
    return transcript


def drain(controller: int, transcript: bytes = b"") -> bytes:
    """Everything left on the terminal once the process has exited (reading ends with an OSError)."""
    try:
        while True:
            transcript += os.read(controller, 4096)
    except OSError:
        return transcript
