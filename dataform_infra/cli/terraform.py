"""Commands that run terraform on the rendered modules: plan, apply, destroy, bootstrap, output, migrate, and
the guarded pass-through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dataform_infra.cli.base import (
    _echo,
    _err,
    _google,
    _progress,
    _session,
    app,
)
from dataform_infra.cli.options import (
    AllOption,
    AllowDestroyOption,
    AllowViolationsOption,
    AutoApproveOption,
    ConfirmOption,
    NoRenderOption,
    RefreshOnlyOption,
    ReplaceOption,
    TargetOption,
    TerraformOptions,
    _approval,
    _mode,
    terraform_command,
)
from dataform_infra.errors import DfinfraError, UsageError

if TYPE_CHECKING:
    from dataform_infra.lifecycle.guards import Approval
    from dataform_infra.specset import SpecSet
    from dataform_infra.terraform.runner import PlanMode


@terraform_command(app)
def plan(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to plan.", show_default=False)] = None,
    all_: AllOption = False,
    no_render: NoRenderOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    output_format: Annotated[
        str, typer.Option("--format", help="text, json (= --json) or markdown (a pull-request comment).")
    ] = "text",
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan destroying the environment.")] = False,
    target: TargetOption = None,
    replace: ReplaceOption = None,
    refresh_only: RefreshOnlyOption = False,
    allow_violations: AllowViolationsOption = False,
    *,
    terraform: TerraformOptions,
) -> None:
    """Render, init (only when needed) and plan; print what would change.

    Exit codes: 0 no changes, 2 changes planned, 1 error. The plan is saved in OUT/<env>/.dfinfra/
    and `dfinfra apply` uses it while the rendered files are unchanged.

    Examples:

      dfinfra plan prod

      dfinfra plan --all --json
    """
    if output_format not in ("text", "json", "markdown"):
        raise UsageError(f"--format must be text, json or markdown, not {output_format!r}")
    output_format = "json" if as_json else output_format
    quiet = output_format != "text"
    _, lifecycle = terraform.lifecycle(to_stderr=quiet)
    selected = lifecycle.selected(envs or [], all_)
    mode = _mode(destroy, target, replace, refresh_only)
    allowed = [] if destroy or refresh_only else lifecycle.check_policy(allow_violations=allow_violations)
    for violation in allowed:
        _err(f"violation (allowed by --allow-violations): {violation}")
    results = lifecycle.plan_each(
        selected,
        render=not no_render,
        mode=mode,
        progress=_progress,
        planned=(lambda env, summary: None)
        if quiet
        else (lambda env, summary: _echo(f"== {env}\n{summary.describe()}")),
    )
    if output_format == "json":
        import json

        _echo(json.dumps({env: s.to_dict() for env, s in results.items()}, indent=2))
    elif output_format == "markdown":
        from dataform_infra.terraform.summary import markdown

        _echo(markdown(results, allowed), nl=False)
    if any(s.has_changes for s in results.values()):
        _session().plan_has_changes = True
        raise typer.Exit(2)


def _apply_like(
    terraform: TerraformOptions,
    envs: list[str] | None,
    all_: bool,
    *,
    mode: PlanMode,
    approval: Approval,
    no_render: bool,
    require_saved_plan: bool = False,
    allow_violations: bool = False,
) -> None:
    specs, lifecycle = terraform.lifecycle()
    order = lifecycle.selected(envs or [], all_, destroy=mode.destroy)
    if not (mode.destroy or mode.refresh_only):  # neither changes what the spec grants: its rules protect nothing
        for violation in lifecycle.check_policy(allow_violations=allow_violations):
            _err(f"violation (allowed by --allow-violations): {violation}")
    lifecycle.apply_each(
        order,
        render=not no_render,
        mode=mode,
        require_saved_plan=require_saved_plan,
        approval=approval,
        # After a partial failure too: the next scheduled run then has something to run (a branch's current head,
        # as its next cron would compile).
        changed_releases=lambda env, releases: _make_live(specs, env, releases, terraform.impersonate),
    )


def _make_live(specs: SpecSet, env: str, releases: list[str], impersonate: str | None) -> None:
    """After an apply that created or changed release configs: compile them and make that compilation
    live, or say plainly why not. The apply itself succeeded either way, so this warns instead of failing
    it (a first apply comes before `dfinfra secret set`, when nothing can compile yet)."""
    if not releases:
        return
    from dataform_infra.gcp.releases import release

    try:
        release(
            specs.deployment.part(env),
            env,
            _google(impersonate),
            releases,
            lambda done: _echo(f"{env}: {done.describe()}"),
        )
    except DfinfraError as exc:
        _err(
            f"warning: {env}: a release this apply created or changed has no live compilation, so its workflows' "
            f"scheduled runs fail until it has one: {exc}. Run `dfinfra release {env}` once it can compile (after "
            "`dfinfra secret set` on a first apply)."
        )


@terraform_command(app)
def apply(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to apply.", show_default=False)] = None,
    all_: AllOption = False,
    no_render: NoRenderOption = False,
    auto_approve: AutoApproveOption = False,
    allow_destroy: AllowDestroyOption = False,
    require_saved_plan: Annotated[
        bool,
        typer.Option(
            "--require-saved-plan",
            help="Apply only the saved plan (from `dfinfra plan`) made from exactly the files now rendered; "
            "never plan again (CI: apply what was reviewed).",
        ),
    ] = False,
    confirm: ConfirmOption = None,
    target: TargetOption = None,
    replace: ReplaceOption = None,
    refresh_only: RefreshOnlyOption = False,
    allow_violations: AllowViolationsOption = False,
    *,
    terraform: TerraformOptions,
) -> None:
    """Apply the saved plan if it still matches the render, else plan first; then confirm and apply.

    Protected environments need their name typed (or --auto-approve --confirm ENV). Plans that
    delete or replace stateful resources need --allow-destroy. --all applies the host before its targets.
    Ctrl-C stops terraform gracefully; a second Ctrl-C stops it at once.

    Examples:

      dfinfra apply staging

      dfinfra apply prod --auto-approve --confirm prod   # CI
    """
    _apply_like(
        terraform,
        envs,
        all_,
        mode=_mode(False, target, replace, refresh_only),
        approval=_approval(auto_approve, allow_destroy, confirm),
        no_render=no_render,
        require_saved_plan=require_saved_plan,
        allow_violations=allow_violations,
    )


@terraform_command(app)
def destroy(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to destroy.", show_default=False)] = None,
    all_: AllOption = False,
    no_render: NoRenderOption = False,
    auto_approve: AutoApproveOption = False,
    allow_destroy: AllowDestroyOption = False,
    confirm: ConfirmOption = None,
    target: TargetOption = None,
    *,
    terraform: TerraformOptions,
) -> None:
    """Destroy what dfinfra created in environments (--all: the host first, then the targets).

    Same guards as apply: stateful resources need --allow-destroy, protected environments their name.
    APIs stay enabled (disable_on_destroy = false). The state bucket is not touched.

    Example:

      dfinfra destroy staging --allow-destroy
    """
    _apply_like(
        terraform,
        envs,
        all_,
        mode=_mode(True, target, None, False),
        approval=_approval(auto_approve, allow_destroy, confirm),
        no_render=no_render,
    )


@terraform_command(app)
def bootstrap(
    envs: Annotated[
        list[str] | None, typer.Argument(help="Environments whose state bucket to create.", show_default=False)
    ] = None,
    all_: AllOption = False,
    auto_approve: AutoApproveOption = False,
    confirm: ConfirmOption = None,
    *,
    terraform: TerraformOptions,
) -> None:
    """Create each environment's state bucket (versioned, uniform access, public access prevention
    enforced, bounded old versions) with a small module on local state in OUT/.bootstrap/<env>/.
    Idempotent: an existing bucket is adopted, not recreated.

    Example:

      dfinfra bootstrap --all
    """
    _, lifecycle = terraform.lifecycle()
    for env in lifecycle.selected(envs or [], all_):
        _echo(f"== {env}")
        lifecycle.bootstrap(env, _approval(auto_approve, False, confirm))


@terraform_command(
    app,
    "terraform",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def terraform_passthrough(
    ctx: typer.Context,
    env: Annotated[str, typer.Argument(help="Environment whose module to run terraform in.")],
    no_render: NoRenderOption = False,
    confirm: ConfirmOption = None,
    *,
    terraform: TerraformOptions,
) -> None:
    """Run any terraform command in an environment's module, with dfinfra's settings (binary,
    backend, plugin cache; init first when due). Everything after `--` goes to terraform; its exit
    code is dfinfra's. `apply` and `destroy` go through `dfinfra apply`/`destroy` (their guards),
    `-chdir` is refused, and in a protected environment a command that writes the state asks for the
    environment's name (or --confirm ENV).

    Examples:

      dfinfra terraform prod -- state list

      dfinfra terraform staging -- import google_dataform_repository.analytics projects/p/locations/r/repositories/x

      dfinfra terraform prod -- force-unlock 1714070000000000
    """
    specs, lifecycle = terraform.lifecycle(to_stderr=True)
    specs.select([env], False)
    if not ctx.args:
        raise UsageError("name the terraform command after `--`, e.g. dfinfra terraform prod -- state list")
    code = lifecycle.terraform(env, list(ctx.args), render=not no_render, approval=_approval(False, False, confirm))
    raise typer.Exit(code)


@terraform_command(app)
def output(
    env: Annotated[str, typer.Argument(help="Environment whose outputs to print.")],
    as_json: Annotated[bool, typer.Option("--json", help="All outputs as JSON (terraform output -json).")] = False,
    *,
    terraform: TerraformOptions,
) -> None:
    """Print an environment's Terraform outputs (from its state), e.g. the repository and secret names.

    Example:

      dfinfra output staging --json | jq -r .git_secret.value
    """
    specs, lifecycle = terraform.lifecycle(to_stderr=True)
    specs.select([env], False)
    code = lifecycle.terraform(env, ["output", "-no-color", *(["-json"] if as_json else [])])
    if code:
        raise typer.Exit(code)


@terraform_command(app)
def migrate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the moves; change no state.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the moves as JSON.")] = False,
    *,
    terraform: TerraformOptions,
) -> None:
    """Move state entries to the module that now declares them (once, after upgrading from 0.x).

    dfinfra 0.x kept every environment's configs, and the grants on their runners, in the host
    module; now each environment's module owns them. This renders every environment, pulls each
    state (backed up under OUT/.migrate/), and moves every entry whose object another module now
    declares with `terraform state mv`: nothing is destroyed or recreated. Run it before any apply
    with the new version; then `dfinfra plan --all` shows no destroys for moved objects.

    Examples:

      dfinfra migrate --dry-run

      dfinfra migrate
    """
    from dataform_infra.migration import migrate as run_migration

    _, lifecycle = terraform.lifecycle(to_stderr=as_json)
    result = run_migration(lifecycle, dry_run=dry_run)
    if as_json:
        import json

        _echo(json.dumps(result.to_dict(), indent=2))
        return
    for move in result.moves:
        _echo(("would move " if dry_run else "moved ") + move.describe())
    if not result.moves:
        _echo("nothing to move: every state entry is in the module that declares it")
    elif result.backup:
        _echo(f"{len(result.moves)} state entries moved; the states before: {result.backup}")


# --- Google Cloud APIs --------------------------------------------------------------------------
