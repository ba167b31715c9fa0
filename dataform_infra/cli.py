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


# --- terraform lifecycle -----------------------------------------------------------------------

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output root; modules live in OUT/<env>/.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every environment, in dependency order.")]
NoRenderOption = Annotated[bool, typer.Option("--no-render", help="Use the module already rendered in OUT/<env>/.")]
TerraformBinOption = Annotated[
    str | None,
    typer.Option(
        "--terraform-bin",
        help="terraform or tofu binary (default: $DFINFRA_TERRAFORM_BIN, then PATH, "
        "then the bundled dfinfra-terraform).",
        show_default=False,
    ),
]
LockTimeoutOption = Annotated[str, typer.Option("--lock-timeout", help="How long to wait for a state lock.")]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show terraform's own output and which binary runs.")
]
AutoApproveOption = Annotated[bool, typer.Option("--auto-approve", help="Do not ask (required without a terminal).")]
AllowDestroyOption = Annotated[
    bool, typer.Option("--allow-destroy", help="Allow deleting or replacing stateful resources.")
]
ConfirmOption = Annotated[
    str | None,
    typer.Option(
        "--confirm", help="With --auto-approve on a protected environment: its name, typed out.", show_default=False
    ),
]


def _ask(question: str) -> str | None:
    """The answer typed on the terminal, or None when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        return None
    typer.echo(question, err=True, nl=False)
    try:
        return input()
    except EOFError:
        return None


def _lifecycle(
    environments: Path, out: Path, terraform_bin: str | None, lock_timeout: str, verbose: bool, to_stderr: bool = False
):
    from dataform_infra.lifecycle import Lifecycle  # imports python-terraform: only on these commands
    from dataform_infra.terraform.binary import find_terraform

    workspace = Workspace(environments)
    binary = find_terraform(terraform_bin)
    if verbose:
        _err(f"using {binary.describe()}")
    echo = (lambda line: typer.echo(line, err=True)) if to_stderr else typer.echo
    return workspace, Lifecycle(workspace, out, binary, lock_timeout=lock_timeout, echo=echo, stream=verbose)


def _selected(workspace: Workspace, envs: list[str] | None, all_: bool) -> list[str]:
    from dataform_infra.lifecycle import apply_order

    return apply_order(workspace, workspace.select(envs or [], all_))


@app.command()
@_handles_errors
def plan(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to plan.", show_default=False)] = None,
    all_: AllOption = False,
    out: OutOption = Path("build"),
    no_render: NoRenderOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan destroying the environment.")] = False,
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Render, init (only when needed) and plan; print what would change.

    Exit codes: 0 no changes, 2 changes planned, 1 error. The plan is saved in OUT/<env>/.dfinfra/
    and `dfinfra apply` uses it while the rendered files are unchanged.

    Examples:

      dfinfra plan prod

      dfinfra plan --all --json
    """
    workspace, lifecycle = _lifecycle(environments, out, terraform_bin, lock_timeout, verbose, to_stderr=as_json)
    results = {}
    for env in _selected(workspace, envs, all_):
        outcome = lifecycle.plan(env, render=not no_render, destroy=destroy)
        results[env] = outcome.summary
        if not as_json:
            typer.echo(f"== {env}\n{outcome.summary.render()}")
    if as_json:
        import json

        typer.echo(json.dumps({env: s.to_dict() for env, s in results.items()}, indent=2))
    if any(s.has_changes for s in results.values()):
        raise typer.Exit(2)


def _apply_like(
    destroy: bool,
    envs,
    all_,
    out,
    no_render,
    auto_approve,
    allow_destroy,
    confirm,
    terraform_bin,
    lock_timeout,
    verbose,
    environments,
) -> None:
    workspace, lifecycle = _lifecycle(environments, out, terraform_bin, lock_timeout, verbose)
    order = _selected(workspace, envs, all_)
    for env in reversed(order) if destroy else order:
        typer.echo(f"== {env}")
        lifecycle.apply(
            env,
            render=not no_render,
            destroy=destroy,
            auto_approve=auto_approve,
            allow_destroy=allow_destroy,
            confirm=_ask,
            confirm_env=confirm,
        )


@app.command()
@_handles_errors
def apply(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to apply.", show_default=False)] = None,
    all_: AllOption = False,
    out: OutOption = Path("build"),
    no_render: NoRenderOption = False,
    auto_approve: AutoApproveOption = False,
    allow_destroy: AllowDestroyOption = False,
    confirm: ConfirmOption = None,
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Apply the saved plan if it still matches the render, else plan first; then confirm and apply.

    Protected environments need their name typed (or --auto-approve --confirm ENV). Plans that
    delete or replace stateful resources need --allow-destroy. --all applies targets before the host.
    Ctrl-C stops terraform gracefully; a second Ctrl-C stops it at once.

    Examples:

      dfinfra apply staging

      dfinfra apply prod --auto-approve --confirm prod   # CI
    """
    _apply_like(
        False,
        envs,
        all_,
        out,
        no_render,
        auto_approve,
        allow_destroy,
        confirm,
        terraform_bin,
        lock_timeout,
        verbose,
        environments,
    )


@app.command()
@_handles_errors
def destroy(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to destroy.", show_default=False)] = None,
    all_: AllOption = False,
    out: OutOption = Path("build"),
    no_render: NoRenderOption = False,
    auto_approve: AutoApproveOption = False,
    allow_destroy: AllowDestroyOption = False,
    confirm: ConfirmOption = None,
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Destroy what dfinfra created in environments (--all: the host first, then the targets).

    Same guards as apply: stateful resources need --allow-destroy, protected environments their name.
    APIs stay enabled (disable_on_destroy = false). The state bucket is not touched.
    """
    _apply_like(
        True,
        envs,
        all_,
        out,
        no_render,
        auto_approve,
        allow_destroy,
        confirm,
        terraform_bin,
        lock_timeout,
        verbose,
        environments,
    )


@app.command()
@_handles_errors
def bootstrap(
    envs: Annotated[
        list[str] | None, typer.Argument(help="Environments whose state bucket to create.", show_default=False)
    ] = None,
    all_: AllOption = False,
    out: OutOption = Path("build"),
    auto_approve: AutoApproveOption = False,
    confirm: ConfirmOption = None,
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Create each environment's state bucket (versioned, uniform access, public access prevention
    enforced, bounded old versions) with a small module on local state in OUT/.bootstrap/<env>/.
    Idempotent: an existing bucket is adopted, not recreated.
    """
    workspace, lifecycle = _lifecycle(environments, out, terraform_bin, lock_timeout, verbose)
    for env in _selected(workspace, envs, all_):
        typer.echo(f"== {env}")
        lifecycle.bootstrap(env, auto_approve=auto_approve, confirm=_ask, confirm_env=confirm)


def _print_warnings(workspace: Workspace) -> None:
    for warning in workspace.deployment.warnings:
        _err(f"warning: {warning.render()}")


def main() -> None:
    app()
