"""`dfinfra`: thin typer commands over `Workspace`. Errors become one message and an exit code.

Exit codes (README's command table lists them per command, and a test checks each): 0 success;
1 a check failed or an operation failed or was refused (render --check found drift, validate found
a policy violation, terraform or a Google API failed, a guard refused); 2 bad input (spec errors,
unknown environment or option, refusing to overwrite foreign files). `plan` follows `terraform plan
-detailed-exitcode` instead: 0 no changes, 2 changes planned, 1 anything else (bad input included).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
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
from dataform_infra.errors import DfinfraError, DriftDetected, PolicyViolation, UsageError

if TYPE_CHECKING:
    from dataform_infra.gcp.clients import GoogleApis
    from dataform_infra.lifecycle import Lifecycle
    from dataform_infra.terraform.runner import PlanMode
    from dataform_infra.workspace import Workspace

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


def _workspace(environments: Path) -> Workspace:
    """The spec machinery (pydantic models, templates) loads only for commands that need it, so
    `--help` and completion stay instant."""
    from dataform_infra.workspace import Workspace

    return Workspace(environments)


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


@_command(app)
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
    workspace = _workspace(environments)
    selected = workspace.select(envs or [], all_)
    _print_warnings(workspace)
    if check:
        diff = workspace.diff(out, selected)
        if diff:
            _echo(diff, nl=False)  # a file name or spec value in it cannot drive the terminal
            raise DriftDetected(f"{out} differs from what {environments} renders; run `dfinfra render` and commit")
        _info(f"up to date: {', '.join(str(out / e) for e in selected)}")
        return
    changed = workspace.write(out, selected)
    for env in selected:
        _info(f"rendered {env} -> {out / env}/")
    _info(f"{len(changed)} file(s) changed")


@_command(app)
def validate(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Check the specs, across environments, against the least-privilege rules. No terraform needed.

    Exit 0 when everything passes (warnings allowed), 1 on a policy violation, 2 on a spec error.

    Examples:

      dfinfra validate

      dfinfra validate --json -e path/to/environments
    """
    workspace = _workspace(environments)
    report = workspace.validate()
    if as_json:
        import json

        _echo(json.dumps(report.to_dict(), indent=2))
        if report.violations:
            raise typer.Exit(1)
        return
    for warning in report.warnings:
        _err(f"warning: {warning.render()}")
    for finding in report.violations:  # opt-in warnings were already printed with the spec's warnings
        _err(f"violation: {finding.render()}")
    if report.violations:
        raise PolicyViolation(f"{len(report.violations)} least-privilege violation(s)")
    _echo(
        f"ok: {len(report.environments)} environment(s) ({', '.join(report.environments)}), "
        f"{report.grants} IAM grants, {len(report.warnings)} warning(s)"
    )


@_command(app)
def lint(
    directories: Annotated[list[Path], typer.Argument(help="Terraform module directories to check.")],
) -> None:
    """Check existing Terraform (hand-written or generated) against dfinfra's least-privilege rules.

    Reads every *.tf and *.tf.json file of each directory, evaluating literal locals, escapes and a
    literal for_each as Terraform would. Exit 0 when no rule is violated (warnings allowed), 1 on a
    violation, 2 when a directory is missing or holds what lint cannot read.

    Example:

      dfinfra lint staging/ prod/
    """
    from dataform_infra import policy

    violations = 0
    for finding in policy.lint(directories):
        violations += finding.severity == "violation"
        _err(f"{finding.severity}: {finding.render()}")
    if violations:
        raise PolicyViolation(f"{violations} least-privilege violation(s)")
    _echo(f"ok: {len(directories)} module(s), no violations")


@_command(app)
def explain(
    env: Annotated[str | None, typer.Argument(help="Environment (default: all).", show_default=False)] = None,
    runs: Annotated[
        bool, typer.Option("--runs", help="What each run needs, chain by chain, and which grant gives it.")
    ] = False,
    deployer: Annotated[
        bool,
        typer.Option(
            "--deployer", help="What each environment's deployer needs on which resource, and the narrowest roles."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Print the IAM an environment grants: principal -> role -> resource -> why, and which runs each grant serves.

    With --runs: every requirement of every run (scheduled, started by a deployer, workspace), as
    principal -> permissions -> resource, and the grant that meets it.

    With --deployer: what whoever applies each environment needs, per resource (both projects for a
    target), with the narrowest predefined roles from Google's role table.

    Examples:

      dfinfra explain prod

      dfinfra explain --runs

      dfinfra explain --deployer prod

      dfinfra explain --json | jq '.[] | select(.role | test("TokenCreator"))'
    """
    from dataform_infra.explain import iam_rows, iam_table, run_rows, runs_table

    workspace = _workspace(environments)
    envs = workspace.select([env] if env else [], env is None)
    if deployer:
        from dataform_infra.deployer import deployer_needs, deployer_table
        from dataform_infra.lifecycle import apply_order

        ordered = apply_order(workspace, envs)
        if as_json:
            import json

            rows = [n.to_dict() for e in ordered for n in deployer_needs(workspace, e)]
            _echo(json.dumps(rows, indent=2))
            return
        _echo(deployer_table(workspace, ordered), nl=False)
        return
    coverage = workspace.coverage()
    if runs:
        scope = None if env is None else envs
        if as_json:
            import json

            _echo(json.dumps([r.to_dict() for r in run_rows(workspace.runs(), coverage, scope)], indent=2))
            return
        _echo(runs_table(workspace.runs(), coverage, scope), nl=False)
        return
    modules = [workspace.module(e) for e in envs]
    if as_json:
        import json

        _echo(json.dumps(iam_rows(modules, coverage), indent=2))
        return
    _echo(iam_table(modules, coverage), nl=False)


@_command(app)
def graph(
    env: Annotated[str | None, typer.Argument(help="Environment (default: all).", show_default=False)] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="mermaid, dot or png.")] = "mermaid",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to a file (png needs one).", show_default=False)
    ] = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Draw the access graph: people, deployers, the service agent, runners, secrets, datasets and
    projects, edges labelled with roles; cross-project impersonation shows as edges between projects.

    Examples:

      dfinfra graph                       # Mermaid, for a README or pull request

      dfinfra graph prod -f png -o access.png
    """
    from dataform_infra import graph as access

    if output_format not in ("mermaid", "dot", "png"):
        raise UsageError(f"--format must be mermaid, dot or png, not {output_format!r}")
    workspace = _workspace(environments)
    envs = workspace.select([env] if env else [], env is None)
    built = access.build_graph([workspace.module(e) for e in envs])
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        raise UsageError(f"--output {output}: name a file in an existing directory")
    if output_format == "png":
        if output is None:
            raise UsageError("--format png writes a file: pass --output FILE.png")
        output.write_bytes(access.png(built))
        _err(f"wrote {output}")
        return
    text = access.mermaid(built) if output_format == "mermaid" else access.dot(built)
    if output is None:
        _echo(text, nl=False)
    else:
        output.write_text(text)
        _err(f"wrote {output}")


def _answer(value: str | None, flag: str, question: str, default: str | None = None) -> str:
    if value:
        return value
    if sys.stdin.isatty():
        return str(typer.prompt(question, default=default))
    if default is not None:
        return default
    raise UsageError(f"{flag} is required when there is no terminal to ask on")


@_command(app)
def init(
    host_project: Annotated[
        str | None,
        typer.Option("--host-project", help="Staging project id (hosts the repository).", show_default=False),
    ] = None,
    host_number: Annotated[
        str | None, typer.Option("--host-number", help="Staging project number.", show_default=False)
    ] = None,
    prod_project: Annotated[
        str | None, typer.Option("--prod-project", help="Prod project id.", show_default=False)
    ] = None,
    prod_number: Annotated[
        str | None, typer.Option("--prod-number", help="Prod project number.", show_default=False)
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Region of the repository.", show_default=False)
    ] = None,
    git_url: Annotated[
        str | None,
        typer.Option("--git-url", help="https:// URL (token) or git@host:org/repo.git (SSH).", show_default=False),
    ] = None,
    ssh_host_key: Annotated[
        str | None, typer.Option("--ssh-host-key", help="Git server host key (SSH only).", show_default=False)
    ] = None,
    deployer: Annotated[
        str | None,
        typer.Option(
            "--deployer",
            help="Who runs Terraform, e.g. serviceAccount:ci@proj.iam.gserviceaccount.com.",
            show_default=False,
        ),
    ] = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Scaffold environments/staging.yaml and prod.yaml from a few answers (asked on a terminal,
    or all given as flags), commented, valid, and ready for `dfinfra render --all`. Never overwrites.

    Example:

      dfinfra init --host-project acme-dataform-stg --host-number 123456789012 \\
        --prod-project acme-dataform-prd --prod-number 210987654321 --region europe-west2 \\
        --git-url https://github.com/acme/dataform.git --deployer user:me@acme.com
    """
    from dataform_infra.scaffold import Answers, ensure_free, gitignore, scaffold

    ensure_free(environments)
    url = _answer(git_url, "--git-url", "Git repository URL (https:// for a token, git@... for SSH)")
    answers = Answers(
        host_project=_answer(host_project, "--host-project", "Staging project id (hosts the Dataform repository)"),
        host_number=_answer(host_number, "--host-number", "Staging project number"),
        prod_project=_answer(prod_project, "--prod-project", "Prod project id"),
        prod_number=_answer(prod_number, "--prod-number", "Prod project number"),
        region=_answer(region, "--region", "Region", default="europe-west2"),
        git_url=url,
        deployer=_answer(deployer, "--deployer", "Deployer principal (who runs Terraform)"),
        ssh_host_key=None
        if url.startswith("https://")
        else _answer(ssh_host_key, "--ssh-host-key", "Git server's public host key (from ssh-keyscan)"),
    )
    for path in scaffold(environments, answers):
        _err(f"wrote {path}")
    # Beside the environments directory, where `build/` lands; with `-e .` that is here, not the parent.
    here = Path.cwd()
    ignore = gitignore(here if environments.resolve() == here.resolve() else environments.absolute().parent)
    if ignore:
        _err(f"wrote {ignore}")
    else:
        _err("note: keep build/**/.dfinfra/ and .terraform/ out of git (see .gitignore)")
    _err("next: dfinfra render --all && dfinfra validate, then dfinfra bootstrap --all")


@_command(app)
def schema() -> None:
    """Print the JSON Schema of an environment spec (for editor completion and checks).

    Example:

      dfinfra schema > environments/environment.schema.json
    """
    import json

    from dataform_infra.spec.models import Environment

    _echo(json.dumps(Environment.model_json_schema(by_alias=True), indent=2, sort_keys=True))


# --- terraform lifecycle -----------------------------------------------------------------------

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
LockTimeoutOption = Annotated[str, typer.Option("--lock-timeout", help="How long to wait for a state lock.")]
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
    how long to wait for locks, how much to show, and whom to act as."""

    environments: Path
    out: Path
    terraform_bin: str | None
    lock_timeout: str = "60s"
    verbose: bool = False
    impersonate: str | None = None

    def lifecycle(self, *, to_stderr: bool = False) -> tuple[Workspace, Lifecycle]:
        """The workspace and a lifecycle over it; progress to stderr when stdout carries data."""
        from dataform_infra.terraform.binary import PendingTerraform

        pending = PendingTerraform(self.terraform_bin)  # asked while the specs load
        try:
            from dataform_infra.lifecycle import Lifecycle  # imports python-terraform: only on these commands

            workspace = _workspace(self.environments)
        except BaseException:
            pending.cancel()
            raise
        binary = pending.result()
        if self.verbose:
            _err(f"using {binary.describe()}")
        echo = (lambda line: _echo(line, err=True)) if to_stderr else _echo
        lifecycle = Lifecycle(
            workspace,
            self.out,
            binary,
            lock_timeout=self.lock_timeout,
            echo=echo,
            stream=self.verbose,
            impersonate=self.impersonate,
        )
        return workspace, lifecycle


@dataclass(frozen=True)
class Guards:
    """What stands between a plan and its apply: confirmation, destructive changes, protected names."""

    auto_approve: bool
    allow_destroy: bool
    confirm: list[str] | None


def _selected(workspace: Workspace, envs: list[str] | None, all_: bool, *, destroy: bool = False) -> list[str]:
    from dataform_infra.lifecycle import apply_order

    return apply_order(workspace, workspace.select(envs or [], all_), destroy=destroy)


@_command(app)
def plan(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to plan.", show_default=False)] = None,
    all_: AllOption = False,
    out: OutOption = Path("build"),
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
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
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
    terraform = TerraformOptions(environments, out, terraform_bin, lock_timeout, verbose, impersonate)
    workspace, lifecycle = terraform.lifecycle(to_stderr=quiet)
    selected = _selected(workspace, envs, all_)
    mode = _mode(destroy, target, replace, refresh_only)
    allowed = [] if destroy or refresh_only else lifecycle.check_policy(allow_violations=allow_violations)
    for violation in allowed:
        _err(f"violation (allowed by --allow-violations): {violation}")
    results = {}
    for env in selected:
        with _progress(f"planning {env}"):
            outcome = lifecycle.plan(env, render=not no_render, mode=mode)
        results[env] = outcome.summary
        if not quiet:
            _echo(f"== {env}\n{outcome.summary.render()}")
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
    guards: Guards,
    no_render: bool,
    require_saved_plan: bool = False,
    allow_violations: bool = False,
) -> None:
    workspace, lifecycle = terraform.lifecycle()
    order = _selected(workspace, envs, all_, destroy=mode.destroy)
    if not (mode.destroy or mode.refresh_only):  # neither changes what the spec grants: its rules protect nothing
        for violation in lifecycle.check_policy(allow_violations=allow_violations):
            _err(f"violation (allowed by --allow-violations): {violation}")
    if require_saved_plan:
        lifecycle.check_saved_plans(order, mode)  # all of them before applying any
    changes_releases = not (mode.destroy or mode.refresh_only)
    for env in order:
        _echo(f"== {env}")
        try:
            applied = lifecycle.apply(
                env,
                render=not no_render,
                mode=mode,
                require_saved_plan=require_saved_plan,
                auto_approve=guards.auto_approve,
                allow_destroy=guards.allow_destroy,
                confirm=_ask,
                confirmed=guards.confirm or (),
            )
        except DfinfraError:
            # An apply that failed part way may still have updated a release config, which empties its live
            # compilation: make those live before reporting the failure, so the next scheduled run has something
            # to run (a branch's current head, as its next cron would compile). Never after an interrupt.
            partly = lifecycle.partly_applied.get(env)
            if partly is not None and changes_releases:
                _make_live(workspace, env, lifecycle.releases_to_make_live(env, partly), terraform.impersonate)
            raise
        if changes_releases:
            _make_live(workspace, env, lifecycle.releases_to_make_live(env, applied), terraform.impersonate)


def _make_live(workspace: Workspace, env: str, releases: list[str], impersonate: str | None) -> None:
    """After an apply that created or changed release configs: compile them and make that compilation
    live, or say plainly why not. The apply itself succeeded either way, so this warns instead of failing
    it (a first apply comes before `dfinfra secret set`, when nothing can compile yet)."""
    if not releases:
        return
    from dataform_infra.gcp.releases import release

    try:
        release(
            workspace.deployment.part(env),
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


@_command(app)
def apply(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to apply.", show_default=False)] = None,
    all_: AllOption = False,
    out: OutOption = Path("build"),
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
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
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
        TerraformOptions(environments, out, terraform_bin, lock_timeout, verbose, impersonate),
        envs,
        all_,
        mode=_mode(False, target, replace, refresh_only),
        guards=Guards(auto_approve, allow_destroy, confirm),
        no_render=no_render,
        require_saved_plan=require_saved_plan,
        allow_violations=allow_violations,
    )


@_command(app)
def destroy(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to destroy.", show_default=False)] = None,
    all_: AllOption = False,
    out: OutOption = Path("build"),
    no_render: NoRenderOption = False,
    auto_approve: AutoApproveOption = False,
    allow_destroy: AllowDestroyOption = False,
    confirm: ConfirmOption = None,
    target: TargetOption = None,
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Destroy what dfinfra created in environments (--all: the host first, then the targets).

    Same guards as apply: stateful resources need --allow-destroy, protected environments their name.
    APIs stay enabled (disable_on_destroy = false). The state bucket is not touched.

    Example:

      dfinfra destroy staging --allow-destroy
    """
    _apply_like(
        TerraformOptions(environments, out, terraform_bin, lock_timeout, verbose, impersonate),
        envs,
        all_,
        mode=_mode(True, target, None, False),
        guards=Guards(auto_approve, allow_destroy, confirm),
        no_render=no_render,
    )


@_command(app)
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
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Create each environment's state bucket (versioned, uniform access, public access prevention
    enforced, bounded old versions) with a small module on local state in OUT/.bootstrap/<env>/.
    Idempotent: an existing bucket is adopted, not recreated.

    Example:

      dfinfra bootstrap --all
    """
    workspace, lifecycle = TerraformOptions(
        environments, out, terraform_bin, lock_timeout, verbose, impersonate
    ).lifecycle()
    for env in _selected(workspace, envs, all_):
        _echo(f"== {env}")
        lifecycle.bootstrap(env, auto_approve=auto_approve, confirm=_ask, confirmed=confirm or ())


@_command(
    app,
    "terraform",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def terraform_passthrough(
    ctx: typer.Context,
    env: Annotated[str, typer.Argument(help="Environment whose module to run terraform in.")],
    out: OutOption = Path("build"),
    no_render: NoRenderOption = False,
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    impersonate: ImpersonateOption = None,
    confirm: ConfirmOption = None,
    environments: EnvironmentsOption = Path("environments"),
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
    workspace, lifecycle = TerraformOptions(
        environments, out, terraform_bin, lock_timeout, impersonate=impersonate
    ).lifecycle(to_stderr=True)
    workspace.select([env], False)
    if not ctx.args:
        raise UsageError("name the terraform command after `--`, e.g. dfinfra terraform prod -- state list")
    code = lifecycle.terraform(env, list(ctx.args), render=not no_render, confirm=_ask, confirmed=confirm or ())
    raise typer.Exit(code)


@_command(app)
def output(
    env: Annotated[str, typer.Argument(help="Environment whose outputs to print.")],
    as_json: Annotated[bool, typer.Option("--json", help="All outputs as JSON (terraform output -json).")] = False,
    out: OutOption = Path("build"),
    terraform_bin: TerraformBinOption = None,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Print an environment's Terraform outputs (from its state), e.g. the repository and secret names.

    Example:

      dfinfra output staging --json | jq -r .git_secret.value
    """
    workspace, lifecycle = TerraformOptions(environments, out, terraform_bin, impersonate=impersonate).lifecycle(
        to_stderr=True
    )
    workspace.select([env], False)
    code = lifecycle.terraform(env, ["output", "-no-color", *(["-json"] if as_json else [])])
    if code:
        raise typer.Exit(code)


@_command(app)
def migrate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the moves; change no state.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the moves as JSON.")] = False,
    out: OutOption = Path("build"),
    terraform_bin: TerraformBinOption = None,
    lock_timeout: LockTimeoutOption = "60s",
    verbose: VerboseOption = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
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

    _, lifecycle = TerraformOptions(environments, out, terraform_bin, lock_timeout, verbose, impersonate).lifecycle(
        to_stderr=as_json
    )
    result = run_migration(lifecycle, dry_run=dry_run)
    if as_json:
        import json

        _echo(json.dumps(result.to_dict(), indent=2))
        return
    for move in result.moves:
        _echo(("would move " if dry_run else "moved ") + move.render())
    if not result.moves:
        _echo("nothing to move: every state entry is in the module that declares it")
    elif result.backup:
        _echo(f"{len(result.moves)} state entries moved; the states before: {result.backup}")


# --- Google Cloud APIs --------------------------------------------------------------------------

secret_app = typer.Typer(help="The Git credential in Secret Manager (never through Terraform).", no_args_is_help=True)
app.add_typer(secret_app, name="secret")


def _read_secret(kind: str, from_env: str | None) -> str:
    """The credential from an environment variable, a hidden terminal prompt, or stdin."""
    import getpass

    from dataform_infra.gcp.secrets import MAX_SECRET_BYTES

    _no_core_dumps()  # a SIGQUIT while the token is in memory would otherwise write it to ./core
    if from_env is not None:
        if not from_env:
            raise UsageError("--from-env names no variable: give the name of the environment variable holding it")
        if from_env not in os.environ:
            raise UsageError(f"environment variable {from_env} is not set")
        return os.environ[from_env]
    if sys.stdin.isatty():
        return getpass.getpass(f"Git {kind} (input hidden): ")
    try:
        return sys.stdin.read(MAX_SECRET_BYTES + 1)
    except UnicodeDecodeError:
        raise UsageError(f"the Git {kind} is not UTF-8 text") from None


def _no_core_dumps() -> None:
    """This process writes no core file from here on (soft and hard limit 0: it cannot be raised again)."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _google(impersonate: str | None) -> GoogleApis:
    """Google's clients for a command, saying so when they would talk plaintext to a remote address."""
    from dataform_infra.gcp.clients import GoogleApis

    apis = GoogleApis(impersonate)
    if apis.plaintext_warning:
        _err(f"warning: {apis.plaintext_warning}")
    return apis


RepositoryOption = Annotated[
    str | None,
    typer.Option(
        "--repository",
        help="Whose Git secret, when the host has several repositories.",
        show_default=False,
    ),
]


@_command(secret_app, "set")
def secret_set(
    env: Annotated[str, typer.Argument(help="The host environment (it holds the repository).")],
    from_env: Annotated[
        str | None,
        typer.Option("--from-env", help="Read the token from this environment variable (CI).", show_default=False),
    ] = None,
    disable_previous: Annotated[
        bool, typer.Option("--disable-previous", help="Disable older enabled versions.")
    ] = False,
    repository: RepositoryOption = None,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Add the Git token (or SSH private key) as a new secret version, read from stdin.

    On a terminal the input is hidden; in CI use --from-env VAR. The value never touches disk,
    logs, argv or Terraform. Prints the new version's resource name.

    Examples:

      dfinfra secret set staging

      printf %s "$GITHUB_TOKEN" | dfinfra secret set staging --disable-previous

      dfinfra secret set staging --repository marketing   # a host with several repositories
    """
    from dataform_infra.gcp.secrets import add_version, checked_secret, git_secret

    workspace = _workspace(environments)
    secret = git_secret(workspace.deployment.part(env), env, repository)
    apis = _google(impersonate)
    if apis.emulator and not apis.emulator_on_loopback:
        raise UsageError(
            f"refusing to send the Git {secret.kind} to {apis.emulator}: an emulator that is not on this machine "
            "would receive it unencrypted. Unset DFINFRA_GOOGLE_API_EMULATOR (or point it at a loopback address)."
        )
    data = checked_secret(secret.kind, _read_secret(secret.kind, from_env))
    try:
        name, disabled = add_version(apis, secret, data, disable_previous)
    finally:
        del data
    _echo(name)
    for old in disabled:
        _err(f"disabled {old}")
    if secret.pinned is not None:
        _err(
            f"note: the repository pins version {secret.pinned} in {secret.spec_file}; to use the new one set "
            f"`version: {name.rsplit('/', 1)[-1]}` (or `version: latest`) there and run `dfinfra apply {env}`"
        )


@_command(secret_app, "status")
def secret_status(
    env: Annotated[str, typer.Argument(help="The host environment.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    repository: RepositoryOption = None,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """List the Git secret's versions with state and creation time (never payloads).

    Example:

      dfinfra secret status staging --json
    """
    from dataform_infra.gcp.secrets import git_secret, versions

    workspace = _workspace(environments)
    secret = git_secret(workspace.deployment.part(env), env, repository)
    found = versions(_google(impersonate), secret)
    if as_json:
        import json

        _echo(json.dumps([v.to_dict() for v in found], indent=2))
        return
    _echo(
        f"{secret.name} ({secret.kind}; repository uses "
        f"{'version ' + str(secret.pinned) if secret.pinned is not None else 'latest'})"
    )
    for version in found:
        _echo(f"  {version.name.rsplit('/', 1)[-1]:>4}  {version.state:<9} {version.created}")
    if not found:
        topology = workspace.topology_of(env)
        _echo(f"  no versions yet: {topology.secret_set_command(topology.repository(secret.repository))}")


@_command(app)
def doctor(
    env: Annotated[str, typer.Argument(help="Environment to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Live pre-flight checks against Google Cloud, each with the exact fix.

    The project number is right; the APIs are enabled; runner accounts exist; the Dataform service
    agent may impersonate each attached runner; you may act as them; the Git secret has a usable
    version the agent can read and Dataform accepts the token; no org policy breaks a run; and every
    requirement of every run of the environment holds (IAM Policy Troubleshooter). Exit 0 when
    every check passes, 1 otherwise.

    Examples:

      dfinfra doctor staging

      dfinfra doctor prod --json --impersonate-service-account deployer@acme-ci.iam.gserviceaccount.com
    """
    from dataform_infra.gcp.doctor import Doctor

    workspace = _workspace(environments)
    workspace.select([env], False)
    checks = Doctor(workspace.deployment.part(env), env, _google(impersonate)).run()
    if as_json:
        import json

        _echo(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        marks = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIP"}
        for check in checks:
            _echo(f"{marks[check.status]}  {check.name}: {check.detail}")
            if check.fix:
                _echo(f"      fix: {check.fix}")
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@_command(app)
def adopt(
    env: Annotated[str, typer.Argument(help="Environment whose objects to look for.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what exists; change no spec file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Find the objects the environment's module would create that already exist, and mark them.

    Asks Google (Dataform, Secret Manager, IAM, BigQuery) for each repository, secret, runner
    account, dataset, release and workflow config the module declares. Each one found gets
    `existing: true` in the spec file (comments and layout kept; the file is replaced only if the
    specs still load), and render then imports it: the next plan reads "N to import", not 409.

    Examples:

      dfinfra adopt staging --dry-run

      dfinfra adopt staging && dfinfra plan staging
    """
    from dataform_infra.gcp.adopt import find_existing

    workspace = _workspace(environments)
    workspace.select([env], False)
    found = find_existing(workspace.deployment.part(env), env, _google(impersonate))
    to_mark = [c for c in found if c.exists and not c.marked]
    written = workspace.mark_existing(env, [c.mapping for c in to_mark]) if to_mark and not dry_run else None
    if as_json:
        import json

        _echo(json.dumps([c.to_dict() for c in found], indent=2))
        return
    for c in found:
        if c.exists:
            state = "already marked existing" if c.marked else ("would mark" if dry_run else "marked") + " existing"
        else:
            state = "not found: the module creates it"
        _echo(f"{c.what}: {state} ({c.name})")
    if written:
        _echo(f"{len(to_mark)} object(s) marked in {written}; `dfinfra plan {env}` imports them")


@_command(app)
def release(
    env: Annotated[str, typer.Argument(help="Environment declaring the releases.")],
    releases: Annotated[
        list[str] | None, typer.Argument(help="Releases to make live (default: all of ENV's).", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what each release now serves as JSON.")] = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Compile releases from Git now and make each compilation the one their workflows run.

    A workflow config runs its release's live compilation, not the branch: without this, merged code
    waits for the release's cron, and a release created or changed by an apply has none (apply runs
    this itself for those). CI runs it after a merge to the release's branch. Exit 1 when a release
    does not compile; it keeps serving what it served.

    Examples:

      dfinfra release prod

      dfinfra release staging staging-nightly --json
    """
    from dataform_infra.gcp.releases import release as make_live

    workspace = _workspace(environments)
    workspace.select([env], False)
    shown = (lambda _: None) if as_json else (lambda item: _echo(item.describe()))  # each as it goes live
    done = make_live(workspace.deployment.part(env), env, _google(impersonate), releases or None, shown)
    if as_json:
        import json

        _echo(json.dumps([d.to_dict() for d in done], indent=2))


@_command(app)
def run(
    env: Annotated[str, typer.Argument(help="Environment declaring the workflow.")],
    workflow: Annotated[str, typer.Argument(help="Workflow name (its workflow config).")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the run until it ends.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, max=7 * 24 * 3600, help="With --wait: give up after this many seconds.")
    ] = 3600,
    poll: Annotated[
        float, typer.Option("--poll", min=0.01, max=3600, help="With --wait: seconds between state checks.")
    ] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    impersonate: ImpersonateOption = None,
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Run a workflow now, as its schedule would: its release's live compilation, its config's settings.

    The smoke test right after `apply` (and `dfinfra release`, to run code just merged): it exercises
    the whole chain (act-as, service agent, runner, BigQuery) through Google's Dataform API, with the
    invocation naming the workflow config, as a cron tick does. With --wait it streams the run's state
    and exits 0 when it succeeds, 1 with Google's reason when it fails or is still running at
    --timeout. Ctrl-C while waiting cancels the invocation.

    Examples:

      dfinfra run prod prod-daily --wait

      dfinfra run staging staging-daily --wait --timeout 900 --json
    """
    from dataform_infra.errors import RunFailed
    from dataform_infra.gcp.runs import WorkflowRun

    workspace = _workspace(environments)
    workspace.select([env], False)
    runner = WorkflowRun(workspace.deployment.part(env), env, workflow, _google(impersonate))
    invocation = runner.start()
    _info(f"started {invocation}")
    if not wait:
        _echo(invocation)
        return
    import signal

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a cancelled CI job (SIGTERM) or a closed terminal (SIGHUP), as Ctrl-C

    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        outcome = runner.wait(lambda state: _info(f"{workflow}: {state}"), timeout, poll)
    except KeyboardInterrupt:
        runner.cancel()
        _err(f"interrupted: cancelled {invocation}")
        raise typer.Exit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        import json

        _echo(json.dumps(outcome.to_dict(), indent=2))
    if outcome.state == "SUCCEEDED":
        if not as_json:
            _echo(f"{workflow} succeeded: {invocation}")
        return
    if outcome.state not in ("FAILED", "CANCELLED"):
        raise RunFailed(f"{workflow} is still {outcome.state} after {timeout:g}s: {invocation}")
    reasons = "".join(f"\n  {f}" for f in outcome.failures)
    raise RunFailed(f"{workflow} {outcome.state.lower()}: {invocation}{reasons}")


def _print_warnings(workspace: Workspace) -> None:
    for warning in workspace.deployment.warnings:
        _err(f"warning: {warning.render()}")


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
