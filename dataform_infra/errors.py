"""Every error a user can cause, in one place, each with the exit code the CLI maps it to.

The core raises these; only `cli.py` turns them into text on stderr and an exit code, so the
core never prints and never calls `sys.exit`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# What a name read from disk may hold and a message must not pass on raw: line breaks and tabs (the CLI keeps
# those as layout, so a file named "x\nerror: ..." would print a line of its own), C0/C1 controls and the
# format characters that reorder text. The CLI escapes the rest of every message itself.
_NOT_IN_A_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def shown(name: object) -> str:
    """A file name or path as a message quotes it: one line, every control shown as its escape (`\\n`)."""
    return _NOT_IN_A_NAME.sub(lambda m: repr(m.group())[1:-1], str(name))


class DfinfraError(Exception):
    """Base class: a failure the user can act on. Never shown with a traceback."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located as precisely as we can: file, field path, line."""

    file: Path | None
    path: str
    message: str
    line: int | None = None

    def describe(self) -> str:
        where = shown(self.file) if self.file else "<spec>"
        if self.line is not None:
            where += f":{self.line}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class SpecError(DfinfraError):
    """The environment spec is malformed or would be rejected by Google. Exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(self.describe())

    def describe(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].describe()
        lines = [f"{len(self.problems)} problems in the environment spec:"]
        lines += [f"  {p.describe()}" for p in self.problems]
        return "\n".join(lines)


class UsageError(DfinfraError):
    """The command line asks for something that cannot be done (unknown env, missing dir). Exit 2."""

    exit_code = 2


class OutputConflict(DfinfraError):
    """The output directory holds files dfinfra did not write; overwriting them would lose work."""

    exit_code = 2


class Untrusted(DfinfraError):
    """A working file in the output directory that dfinfra cannot prove it wrote (it may have come from the
    repository): never replayed, followed or executed. Exit 2."""

    exit_code = 2


class DriftDetected(DfinfraError):
    """`render --check` found committed HCL that differs from what the spec renders."""

    exit_code = 1


class PolicyViolation(DfinfraError):
    """A least-privilege rule failed on rendered or hand-written Terraform."""

    exit_code = 1


class TerraformError(DfinfraError):
    """Terraform could not be found or run, or it failed; its own diagnostics are in the message."""

    exit_code = 1


class Interrupted(TerraformError):
    """A signal came before terraform started: nothing was run."""

    exit_code = 130


class StateLocked(TerraformError):
    """Another run holds the state lock past --lock-timeout."""


class ModuleBusy(TerraformError):
    """Another dfinfra works in the same module directory, or renders into the same --out, past --lock-timeout."""


class Refused(DfinfraError):
    """A guard refused the operation (no confirmation, destructive change, protected environment)."""

    exit_code = 1


class GcpError(DfinfraError):
    """A Google API refused or failed a call; the message says which and why."""

    exit_code = 1


class GcpNotFound(GcpError):
    """The Google API answered NOT_FOUND: callers that expect absence catch this type, never message text."""


class GcpPermissionDenied(GcpError):
    """The Google API answered PERMISSION_DENIED (Google also answers so for objects that may not exist)."""


class RunFailed(DfinfraError):
    """`dfinfra run`: the Dataform compilation or workflow invocation did not succeed. Exit 1."""

    exit_code = 1


class ReleaseFailed(DfinfraError):
    """A release config could not be compiled and made live (compilation errors, or it does not exist):
    its workflows keep running what they ran before. Exit 1."""

    exit_code = 1
