"""The base every `dfinfra` command stands on: the app, the error boundary that turns every
DfinfraError into one message and an exit code, and output (colour, escapes, -q, progress).

Exit codes (README's command table lists them per command, and a test checks each): 0 success;
1 a check failed or an operation failed or was refused (render --check found drift, validate found
a policy violation, terraform or a Google API failed, a guard refused); 2 bad input (spec errors,
unknown environment or option, refusing to overwrite foreign files). `plan` follows `terraform plan
-detailed-exitcode` instead: 0 no changes, 2 changes planned, 1 anything else (bad input included).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from dataform_infra import __version__
from dataform_infra.errors import DfinfraError, UsageError

if TYPE_CHECKING:
    from dataform_infra.gcp.clients import GoogleApis
    from dataform_infra.specset import SpecSet

app = typer.Typer(
    name="dfinfra",
    help="Render reviewed, least-privilege Terraform for Google Cloud Dataform from environments/*.yaml.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain click help: rich's help formatter costs more than all of dfinfra's own start-up.
    rich_markup_mode=None,
)

EnvironmentsOption = Annotated[
    Path,
    typer.Option(
        "--environments", "-e", envvar="DFINFRA_ENVIRONMENTS", help="Directory of environment specs.", show_default=True
    ),
]
F = TypeVar("F", bound=Callable[..., None])


def _specs(environments: Path) -> SpecSet:
    """The spec machinery (pydantic models, templates) loads only for commands that need it, so
    `--help` and completion stay instant."""
    from dataform_infra.specset import SpecSet

    return SpecSet(environments)


@dataclass
class Session:
    """What one invocation carries from its top-level options to the helpers deep in a command: -q, and
    whether `plan` exited 2 because it found changes (for `execute`'s exit-code mapping). One per
    `execute` call, held in a context variable rather than threaded through every command as
    `typer.Context.obj`: the helpers that read it (`_info`, `_progress`) are not commands, and typer's
    accessor for the current context is private."""

    quiet: bool = False
    plan_has_changes: bool = False


_SESSION: contextvars.ContextVar[Session] = contextvars.ContextVar("dfinfra_session")


def _session() -> Session:
    """This invocation's session (`execute` starts one; the top-level callback sets -q on it every time)."""
    session = _SESSION.get(None)
    if session is None:  # the app called without `execute` (typer's test runner)
        session = Session()
        _SESSION.set(session)
    return session


_COLOURS = {"error:": "red", "violation:": "red", "warning:": "yellow"}

# Characters a terminal acts on instead of showing: C0/C1 controls (ESC starts colour, title and
# clipboard sequences) and format characters (bidi overrides that reorder what is shown). File
# names, spec values and Google's messages reach the terminal through `_echo`, which shows them
# escaped instead; newline and tab stay, being layout.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _printable(text: str) -> str:
    """`text` with every character a terminal would act on shown as a Python escape (`\\x1b`)."""
    return _UNSAFE.sub(lambda m: repr(m.group())[1:-1], text)


def _echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """The one way text reaches stdout/stderr: whatever it quotes cannot drive the terminal."""
    typer.echo(_printable(message), err=err, nl=nl)


def _err(message: str) -> None:
    """To stderr; errors and warnings in colour on a terminal, unless NO_COLOR is set (no-color.org)."""
    message = _printable(message)
    colour = next((c for prefix, c in _COLOURS.items() if message.startswith(prefix)), None)
    if colour and sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        prefix, rest = message.split(":", 1)
        message = typer.style(prefix + ":", fg=colour, bold=True) + rest
    typer.echo(message, err=True)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[None]:
    """`label… 12s` on one terminal line while something slow runs; nothing in CI, under -q or in a pipe."""
    if _session().quiet or os.environ.get("CI") or not sys.stderr.isatty():
        yield
        return
    import threading
    import time

    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not done.wait(0.5):
            sys.stderr.write(f"\r{label}... {time.monotonic() - start:.0f}s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _info(message: str) -> None:
    """Progress chatter on stderr; -q silences it (errors and warnings always show)."""
    if not _session().quiet:
        _echo(message, err=True)


def _handles_errors(command: F) -> F:
    """User mistakes end as one message and the error's exit code, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DfinfraError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a path the user named that cannot be used: bad input, never a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            _err(f"error: {where}{exc.strerror or exc}")
            raise typer.Exit(UsageError.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _command(group: typer.Typer, name: str | None = None, **settings: Any) -> Callable[[F], F]:
    """Register a command on `group` inside dfinfra's error boundary (`_handles_errors`), in one step: no
    command can be added without it."""

    def register(command: F) -> F:
        guarded = _handles_errors(command)
        group.command(name, **settings)(guarded)
        return guarded

    return register


def _version(value: bool) -> None:
    if value:
        _echo(f"dfinfra {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors, warnings and the output itself.")] = False,
) -> None:
    """dfinfra turns environments/<env>.yaml into one Terraform root module per environment.

    Errors and warnings are coloured on a terminal unless NO_COLOR is set; data commands take --json.
    """
    _session().quiet = quiet


def _print_warnings(specs: SpecSet) -> None:
    for warning in specs.deployment.warnings:
        _err(f"warning: {warning.describe()}")


def _google(impersonate: str | None) -> GoogleApis:
    """Google's clients for a command, saying so when they would talk plaintext to a remote address."""
    from dataform_infra.gcp.clients import GoogleApis

    apis = GoogleApis(impersonate)
    if apis.plaintext_warning:
        _err(f"warning: {apis.plaintext_warning}")
    return apis
