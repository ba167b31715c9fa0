"""`dfinfra`: thin typer commands over `Workspace`. Errors become one message and an exit code.

Exit codes: 0 success; 1 a check failed (render --check found drift, validate found a policy
violation); 2 bad input (spec errors, unknown environment, refusing to overwrite foreign files).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from dataform_infra import __version__
from dataform_infra.errors import DfinfraError, DriftDetected, PolicyViolation
from dataform_infra.workspace import Workspace

app = typer.Typer(
    name="dfinfra",
    help="Render reviewed, least-privilege Terraform for Google Cloud Dataform from environments/*.yaml.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

EnvironmentsOption = Annotated[
    Path,
    typer.Option(
        "--environments", "-e", envvar="DFINFRA_ENVIRONMENTS", help="Directory of environment specs.", show_default=True
    ),
]
F = TypeVar("F", bound=Callable[..., None])


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _handles_errors(command: F) -> F:
    """User mistakes end as one message and the error's exit code, never a traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DfinfraError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dfinfra {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """dfinfra turns environments/<env>.yaml into one Terraform root module per environment."""


@app.command()
@_handles_errors
def render(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to render.", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Render every environment.")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output root; modules go to OUT/<env>/.")] = Path("build"),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 with a diff if OUT differs.")] = False,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Render Terraform for environments.

    Examples:

      dfinfra render staging

      dfinfra render --all --out infra/

      dfinfra render --all --check --out infra/   # in CI
    """
    workspace = Workspace(environments)
    selected = workspace.select(envs or [], all_)
    _print_warnings(workspace)
    if check:
        diff = workspace.diff(out, selected)
        if diff:
            sys.stdout.write(diff)
            raise DriftDetected(f"{out} differs from what {environments} renders; run `dfinfra render` and commit")
        _err(f"up to date: {', '.join(str(out / e) for e in selected)}")
        return
    changed = workspace.write(out, selected)
    for env in selected:
        _err(f"rendered {env} -> {out / env}/")
    _err(f"{len(changed)} file(s) changed")


@app.command()
@_handles_errors
def validate(environments: EnvironmentsOption = Path("environments")) -> None:
    """Check the specs, across environments, against the least-privilege rules. No terraform needed.

    Exit 0 when everything passes (warnings allowed), 1 on a policy violation, 2 on a spec error.
    """
    workspace = Workspace(environments)
    report = workspace.validate()
    _print_warnings(workspace)
    for finding in report.violations:  # opt-in warnings were already printed with the spec's warnings
        _err(f"violation: {finding.render()}")
    if report.violations:
        raise PolicyViolation(f"{len(report.violations)} least-privilege violation(s)")
    typer.echo(
        f"ok: {len(report.environments)} environment(s) ({', '.join(report.environments)}), "
        f"{report.grants} IAM grants, {len(report.warnings)} warning(s)"
    )


def _print_warnings(workspace: Workspace) -> None:
    for warning in workspace.deployment.warnings:
        _err(f"warning: {warning.render()}")


def main() -> None:
    app()
