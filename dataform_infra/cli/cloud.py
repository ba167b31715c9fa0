"""Commands that talk to Google Cloud: the Git secret, doctor, adopt, release, run."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dataform_infra.cli.base import EnvironmentsOption, _command, _echo, _err, _google, _info, _specs, app
from dataform_infra.cli.options import ImpersonateOption
from dataform_infra.errors import UsageError

if TYPE_CHECKING:
    from dataform_infra.specset import SpecSet


secret_app = typer.Typer(help="The Git credential in Secret Manager (never through Terraform).", no_args_is_help=True)
app.add_typer(secret_app, name="secret")


def _read_secret(noun: str, from_env: str | None) -> str:
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
        return getpass.getpass(f"{noun[0].upper()}{noun[1:]} (input hidden): ")
    try:
        return sys.stdin.read(MAX_SECRET_BYTES + 1)
    except UnicodeDecodeError:
        raise UsageError(f"the {noun} is not UTF-8 text") from None


def _no_core_dumps() -> None:
    """This process writes no core file from here on (soft and hard limit 0: it cannot be raised again)."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


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
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            help="Set the token of this notification channel (`alerts.channels[].token`) of ENV instead of the Git "
            "token; the next plan and apply send it to Monitoring, write-only.",
            show_default=False,
        ),
    ] = None,
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

      dfinfra secret set prod --channel incident-hook      # a webhook channel's token
    """
    from dataform_infra.gcp.secrets import add_version, channel_secret, checked_secret, git_secret

    specs = _specs(environments)
    if channel is not None and repository is not None:
        raise UsageError("--channel and --repository name two different secrets: give one")
    if channel is not None:
        secret = channel_secret(specs.deployment.part(env), env, channel)
    else:
        secret = git_secret(specs.deployment.part(env), env, repository)
    apis = _google(impersonate)
    if apis.emulator and not apis.emulator_on_loopback:
        raise UsageError(
            f"refusing to send the {secret.noun} to {apis.emulator}: an emulator that is not on this machine "
            "would receive it unencrypted. Unset DFINFRA_GOOGLE_API_EMULATOR (or point it at a loopback address)."
        )
    data = checked_secret(secret.kind, _read_secret(secret.noun, from_env), secret.noun)
    try:
        name, disabled = add_version(apis, secret, data, disable_previous)
    finally:
        del data
    _echo(name)
    for old in disabled:
        _err(f"disabled {old}")
    if channel is not None:
        _err(f"note: `dfinfra apply {env}` sends it to Monitoring (write-only: never in state or plan)")
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

    specs = _specs(environments)
    secret = git_secret(specs.deployment.part(env), env, repository)
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
        topology = specs.topology_of(env)
        _echo(f"  no versions yet: {topology.secret_set_command(topology.repository(secret.owner))}")


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

    specs = _specs(environments)
    specs.select([env], False)
    checks = Doctor(specs.deployment.part(env), env, _google(impersonate)).run()
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

    specs = _specs(environments)
    specs.select([env], False)
    found = find_existing(specs.deployment.part(env), env, _google(impersonate))
    to_mark = [c for c in found if c.exists and not c.marked]
    written = specs.mark_existing(env, [c.mapping for c in to_mark]) if to_mark and not dry_run else None
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

    specs = _specs(environments)
    specs.select([env], False)
    shown = (lambda _: None) if as_json else (lambda item: _echo(item.describe()))  # each as it goes live
    done = make_live(specs.deployment.part(env), env, _google(impersonate), releases or None, shown)
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
    via_trigger: Annotated[
        bool,
        typer.Option(
            "--via-trigger",
            help="Start it the way its trigger does: execute the trigger's orchestrating workflow with the event the "
            "trigger passes (needs workflows.executions.create), and wait for it. The smoke test of the event path.",
        ),
    ] = False,
    trigger: Annotated[
        str | None,
        typer.Option("--trigger", help="With --via-trigger: which trigger (its name, e.g. dataform-x-gcs); the first."),
    ] = None,
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

      dfinfra run prod prod-landing --via-trigger --timeout 1800
    """
    from dataform_infra.errors import RunFailed
    from dataform_infra.gcp.runs import WorkflowRun

    specs = _specs(environments)
    specs.select([env], False)
    if trigger is not None and not via_trigger:
        raise UsageError("--trigger chooses the trigger of --via-trigger: add --via-trigger")
    if via_trigger:
        _run_via_trigger(specs, env, workflow, trigger, timeout, poll, as_json, impersonate)
        return
    runner = WorkflowRun(specs.deployment.part(env), env, workflow, _google(impersonate))
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


def _run_via_trigger(
    specs: SpecSet,
    env: str,
    workflow: str,
    trigger: str | None,
    timeout: float,
    poll: float,
    as_json: bool,
    impersonate: str | None,
) -> None:
    """`run --via-trigger`: the orchestrating workflow's execution always waits (it is what the trigger runs)."""
    from dataform_infra.errors import RunFailed
    from dataform_infra.gcp.runs import TriggeredRun

    triggered = TriggeredRun(specs.deployment.part(env), env, workflow, trigger, _google(impersonate))
    execution = triggered.start()
    _info(f"started {execution} ({triggered.trigger.describe()})")
    outcome = triggered.wait(timeout, poll)
    if as_json:
        import json

        _echo(json.dumps({**outcome.to_dict(), "execution": execution, "trigger": triggered.trigger_name}, indent=2))
    if outcome.state == "SUCCEEDED":
        if not as_json:
            _echo(f"{workflow} succeeded via {triggered.trigger_name}: {outcome.invocation}")
        return
    if outcome.state not in ("FAILED", "CANCELLED"):
        raise RunFailed(
            f"{workflow} via {triggered.trigger_name} is still {outcome.state} after {timeout:g}s: {execution}"
        )
    reasons = "".join(f"\n  {f}" for f in outcome.failures)
    raise RunFailed(f"{workflow} via {triggered.trigger_name} {outcome.state.lower()}: {execution}{reasons}")
