"""Commands on specs alone, no cloud: render, validate, lint, explain, graph, init, schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dataform_infra.cli.base import EnvironmentsOption, _command, _echo, _err, _info, _print_warnings, _specs, app
from dataform_infra.cli.options import LockTimeoutOption
from dataform_infra.errors import DriftDetected, PolicyViolation, UsageError

if TYPE_CHECKING:
    pass


@_command(app)
def render(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to render.", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Render every environment.")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output root; modules go to OUT/<env>/.")] = Path("build"),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 with a diff if OUT differs.")] = False,
    lock_timeout: LockTimeoutOption = "60s",
    environments: EnvironmentsOption = Path("environments"),
) -> None:
    """Render Terraform for environments.

    Examples:

      dfinfra render staging

      dfinfra render --all --out infra/

      dfinfra render --all --check --out infra/   # in CI
    """
    specs = _specs(environments)
    selected = specs.select(envs or [], all_)
    _print_warnings(specs)
    if check:
        diff = specs.diff(out, selected)
        if diff:
            _echo(diff, nl=False)  # a file name or spec value in it cannot drive the terminal
            raise DriftDetected(f"{out} differs from what {environments} renders; run `dfinfra render` and commit")
        _info(f"up to date: {', '.join(str(out / e) for e in selected)}")
        return
    changed = specs.write(out, selected, lock_timeout=lock_timeout, waiting=_info)
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
    specs = _specs(environments)
    report = specs.validate()
    if as_json:
        import json

        _echo(json.dumps(report.to_dict(), indent=2))
        if report.violations:
            raise typer.Exit(1)
        return
    for warning in report.warnings:
        _err(f"warning: {warning.describe()}")
    for finding in report.violations:  # opt-in warnings were already printed with the spec's warnings
        _err(f"violation: {finding.describe()}")
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
        _err(f"{finding.severity}: {finding.describe()}")
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

    specs = _specs(environments)
    envs = specs.select([env] if env else [], env is None)
    if deployer:
        from dataform_infra.deployer import deployer_needs, deployer_table
        from dataform_infra.lifecycle import apply_order

        ordered = apply_order(specs, envs)
        if as_json:
            import json

            rows = [n.to_dict() for e in ordered for n in deployer_needs(specs, e)]
            _echo(json.dumps(rows, indent=2))
            return
        _echo(deployer_table(specs, ordered), nl=False)
        return
    coverage = specs.coverage()
    if runs:
        scope = None if env is None else envs
        if as_json:
            import json

            _echo(json.dumps([r.to_dict() for r in run_rows(specs.runs(), coverage, scope)], indent=2))
            return
        _echo(runs_table(specs.runs(), coverage, scope), nl=False)
        return
    modules = [specs.module(e) for e in envs]
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
    specs = _specs(environments)
    envs = specs.select([env] if env else [], env is None)
    built = access.build_graph([specs.module(e) for e in envs])
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
