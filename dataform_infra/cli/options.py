"""Options several commands share, declared once, and what they build: `TerraformOptions` (the
spec set and lifecycle of a terraform command), the approval its guards read, and the plan mode."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dataform_infra.cli.base import EnvironmentsOption, _command, _echo, _err, _google, _specs

if TYPE_CHECKING:
    from dataform_infra.lifecycle import Lifecycle
    from dataform_infra.lifecycle.guards import Approval
    from dataform_infra.specset import SpecSet
    from dataform_infra.terraform.runner import PlanMode


ImpersonateOption = Annotated[
    str | None,
    typer.Option(
        "--impersonate-service-account",
        # The provider's own variable too: inherited, it reached terraform's provider but neither its state
        # backend nor dfinfra's clients, so doctor and secret checked another principal without a word.
        envvar=["DFINFRA_IMPERSONATE_SERVICE_ACCOUNT", "GOOGLE_IMPERSONATE_SERVICE_ACCOUNT"],
        help="Act as this service account towards Google (APIs, terraform and its state backend).",
        show_default=False,
    ),
]
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
LockTimeoutOption = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        help="How long to wait for a state lock, and for another dfinfra rendering into OUT or working in a module.",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show terraform's own output and which binary runs.")
]
AutoApproveOption = Annotated[bool, typer.Option("--auto-approve", help="Do not ask (required without a terminal).")]
AllowDestroyOption = Annotated[
    bool, typer.Option("--allow-destroy", help="Allow deleting or replacing stateful resources.")
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target", help="Plan only this resource address (terraform -target; repeatable).", show_default=False
    ),
]
ReplaceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--replace", help="Plan replacing this resource (terraform -replace; repeatable).", show_default=False
    ),
]
RefreshOnlyOption = Annotated[
    bool, typer.Option("--refresh-only", help="Only update the state to match Google Cloud (terraform -refresh-only).")
]


def _mode(destroy: bool, target: list[str] | None, replace: list[str] | None, refresh_only: bool) -> PlanMode:
    from dataform_infra.terraform.runner import PlanMode

    return PlanMode(destroy, tuple(target or ()), tuple(replace or ()), refresh_only)


AllowViolationsOption = Annotated[
    bool,
    typer.Option(
        "--allow-violations",
        help="Go ahead although `dfinfra validate` reports violations (the plan summary and PR comment say so).",
    ),
]
ConfirmOption = Annotated[
    list[str] | None,
    typer.Option(
        "--confirm",
        help="With --auto-approve on a protected environment: its name, typed out (repeat for several).",
        show_default=False,
    ),
]


def _ask(question: str) -> str | None:
    """The answer typed on the terminal, or None when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        return None
    _echo(question, err=True, nl=False)
    try:
        return input()
    except EOFError:  # Ctrl-D: an answer, and not the expected one
        _echo("", err=True)
        return ""
    except KeyboardInterrupt:  # Ctrl-C: nothing was applied; say so rather than exit 130 silently
        _echo("", err=True)
        return ""


@dataclass(frozen=True)
class TerraformOptions:
    """The options every command that runs terraform takes alike: the specs, the modules, the binary,
    how long to wait for locks, how much to show, and whom to act as. Declared once here (each field's
    annotation is its option) and built once per invocation by `terraform_command`."""

    out: OutOption = Path("build")
    terraform_bin: TerraformBinOption = None
    lock_timeout: LockTimeoutOption = "60s"
    verbose: VerboseOption = False
    impersonate: ImpersonateOption = None
    environments: EnvironmentsOption = Path("environments")

    def lifecycle(self, *, to_stderr: bool = False) -> tuple[SpecSet, Lifecycle]:
        """The workspace and a lifecycle over it; progress to stderr when stdout carries data."""
        from dataform_infra.terraform.binary import PendingTerraform

        pending = PendingTerraform(self.terraform_bin)  # asked while the specs load
        try:
            from dataform_infra.lifecycle import Lifecycle  # imports python-terraform: only on these commands

            specs = _specs(self.environments)
        except BaseException:
            pending.cancel()
            raise
        binary = pending.result()
        if self.verbose:
            _err(f"using {binary.describe()}")
        echo = (lambda line: _echo(line, err=True)) if to_stderr else _echo
        lifecycle = Lifecycle(
            specs,
            self.out,
            binary,
            lock_timeout=self.lock_timeout,
            echo=echo,
            stream=self.verbose,
            impersonate=self.impersonate,
            secret_variables=_channel_tokens(specs, self.impersonate),
        )
        return specs, lifecycle


def terraform_command(
    group: typer.Typer, name: str | None = None, **settings: Any
) -> Callable[[Callable[..., None]], Any]:
    """Register a command that runs terraform: typer sees the command's own parameters followed by
    `TerraformOptions`' fields, and the command receives them as one `terraform: TerraformOptions`."""

    def register(command: Callable[..., None]) -> Any:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "terraform"]
        hints = inspect.get_annotations(TerraformOptions, eval_str=True)
        shared = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
            for f in fields(TerraformOptions)
        ]

        @wraps(command)
        def with_options(*args: Any, **kwargs: Any) -> None:
            terraform = TerraformOptions(**{f.name: kwargs.pop(f.name) for f in fields(TerraformOptions)})
            command(*args, terraform=terraform, **kwargs)

        parameters = [*own, *shared]
        with_options.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        with_options.__annotations__ = {p.name: p.annotation for p in parameters}
        return _command(group, name, **settings)(with_options)

    return register


def _channel_tokens(specs: SpecSet, impersonate: str | None) -> Callable[[str], dict[str, str]]:
    """Reads an environment's channel tokens from Secret Manager when its plan or apply needs them (never for a
    module without one: planning needs no Google call of dfinfra's own otherwise)."""

    def read(env: str) -> dict[str, str]:
        spec = specs.deployment.environments.get(env)
        if spec is None or spec.alerts is None or not any(c.token for c in spec.alerts.channels):
            return {}
        from dataform_infra.gcp.secrets import channel_tokens

        variables, missing = channel_tokens(_google(impersonate), specs.deployment.part(env), env)
        for channel in missing:
            _err(
                f"warning: notification channel {channel} of {env} has no token yet, so it is made without one: "
                f"set it with `dfinfra secret set {env} --channel {channel}`, then apply {env} again"
            )
        return variables

    return read


def _approval(auto_approve: bool, allow_destroy: bool, confirm: list[str] | None) -> Approval:
    """--auto-approve, --allow-destroy and --confirm as the lifecycle's guards read them; otherwise ask on the
    terminal."""
    from dataform_infra.lifecycle.guards import Approval

    return Approval(auto_approve, allow_destroy, tuple(confirm or ()), _ask)
