"""`dfinfra validate`'s reading of the coverage: each unmet requirement and each idle grant as a
finding that names the runs at stake, the principal, permission and resource, and the spec line to change."""

from __future__ import annotations

from collections.abc import Iterable

from dataform_infra.access.coverage import Coverage, GrantLike
from dataform_infra.access.model import AccessModel, Requirement
from dataform_infra.errors import Problem
from dataform_infra.policy.facts import Finding
from dataform_infra.spec.loader import SpecWarning
from dataform_infra.spec.yamlsource import dotted_path
from dataform_infra.topology import runner_resource


def findings(model: AccessModel, coverage: Coverage) -> list[Finding]:
    out = list(_unmet(model, coverage.unmet))
    out += [_idle(model, g) for g in coverage.unserved]
    return out


def warnings(model: AccessModel) -> list[SpecWarning]:
    """What the model cannot check from the spec alone, located at the field that leaves it open, and
    declared data access that no run uses (least privilege: drop it, or give it a run)."""
    found = [SpecWarning(_problem(model, env, path, message)) for env, path, message in dict.fromkeys(model.notes)]
    idle: dict[tuple[str, str, str, tuple[str | int, ...]], Requirement] = {}
    for req in model.requirements:
        if req.chain in ("runner-writes", "runner-reads", "runner-owns") and not req.runs and not req.assumed:
            idle.setdefault((req.principal.member, req.resource.label, req.env, req.spec_path), req)
    runs_as: dict[str, list[str]] = {}
    for run in model.runs:
        runs_as.setdefault(run.runner.principal.member, []).append(run.label)
    for (member, resource, env, path), req in idle.items():
        ran = runs_as.get(member)
        if ran:  # #24: it does run; what it writes is what its releases compile into, which is not this
            shown = ", ".join(ran[:3]) + (f" and {len(ran) - 3} more" if len(ran) > 3 else "")
            why = (
                f"its runs ({shown}) write only the datasets their releases and targets name, and none names it"
                if req.chain != "runner-reads"
                else f"its runs ({shown}) are not known to read it"
            )
        else:
            why = "no workflow, workspace run or run_as runs as it"
        message = (
            f"{req.principal.label} is granted access to {resource}, but no run uses it ({why}): remove it, or "
            "give it the run that needs it"
        )
        found.append(SpecWarning(_problem(model, env, path, message)))
    return found


def _problem(model: AccessModel, env: str, path: tuple[str | int, ...], message: str) -> Problem:
    """`message` located at `path` of `env`'s spec file, with its line."""
    doc = model.deployment.sources[env]
    return Problem(doc.file, dotted_path(path), message, doc.line_of(path))


def _where(model: AccessModel, env: str, path: tuple[str | int, ...]) -> str:
    return _problem(model, env, path, "").describe().rstrip(": ").rstrip()


def _unmet(model: AccessModel, unmet: list[Requirement]) -> Iterable[Finding]:
    groups: dict[tuple[object, ...], list[Requirement]] = {}
    for req in unmet:
        groups.setdefault((req.chain, req.principal.member, req.resource, req.env, req.spec_path), []).append(req)
    labels = {run.id: run.label for run in model.runs}
    for reqs in groups.values():
        first = reqs[0]
        perms = ", ".join(sorted({r.permission for r in reqs}))
        runs = sorted({labels[i] for r in reqs for i in r.runs})
        stake = f"these runs fail: {'; '.join(runs)}" if runs else "nothing runs, but this access is declared"
        message = (
            f"chain {first.chain}: {first.principal.member} lacks {perms} on {first.resource.label} "
            f"({first.why}); {stake}. Fix: {_hint(model, first)}"
        )
        yield Finding(f"run-needs:{first.chain}", message, _where(model, first.env, first.spec_path))


def _runner_of(req: Requirement) -> tuple[str, str]:
    """The runner a requirement is for, and its project (runners are granted only in their project)."""
    return req.principal.email.partition("@")[0], runner_resource(req.principal.email).project


def _granting_environment(model: AccessModel, req: Requirement) -> tuple[str, str] | None:
    """The environment that grants `req`'s runner in `req`'s project, and what it calls the runner: one whose
    project that is and that declares the runner (its own, or by email as made elsewhere)."""
    project = req.resource.project
    return next(
        (
            (n, r.name)
            for n, e in model.deployment.environments.items()
            if e.project.id == project
            for r in e.runners
            if r.email_in(project) == req.principal.email
        ),
        None,
    )


def _hint(model: AccessModel, req: Requirement) -> str:
    deployment = model.deployment
    if req.chain in ("runner-writes", "workspace-writes"):
        dataset = req.resource
        runner, _ = _runner_of(req)
        owners = [n for n, e in deployment.environments.items() if e.project.id == dataset.project]
        owner, runner = _granting_environment(model, req) or (None, runner)
        if owner is None:
            if not owners:
                return (
                    f"{dataset.project} is no environment's project, so dfinfra cannot grant there: write to a "
                    f"dataset of this deployment, or grant {req.principal.email} on it yourself"
                )
            declared = any(d.id == dataset.id for d in deployment.environments[owners[0]].datasets)
            step = "" if declared else f"declare `- id: {dataset.id}` under `datasets:`, and "
            return (
                f"in {deployment.spec_file(owners[0])}, {step}name the runner as made elsewhere and let it write "
                f"there: `runners: [{{name: {runner}, email: {req.principal.email}, bigquery: {{writes: "
                f"[{dataset.id}]}}}}]`"
            )
        declared = any(d.id == dataset.id for d in deployment.environments[owner].datasets)
        step = "" if declared else f"declare `- id: {dataset.id}` under `datasets:` and "
        return f"in {deployment.spec_file(owner)}, {step}add `{dataset.id}` to `bigquery.writes` of runner {runner}"
    if req.chain == "workspace-creates-datasets":
        project = req.resource.project
        runner, runner_project = _runner_of(req)
        owner, runner = _granting_environment(model, req) or (None, runner)
        if owner is None:
            there = next((n for n, e in deployment.environments.items() if e.project.id == project), None)
            if there is None:
                return (
                    f"runner {runner} can only be granted roles in this deployment's projects: set "
                    f"workspace_compilation.default_database to {runner_project}, or use a fixed schema_suffix"
                )
            return (
                f"in {deployment.spec_file(there)}, name the runner as made elsewhere and let it create datasets "
                f"there: `runners: [{{name: {runner}, email: {req.principal.email}, bigquery: {{project_wide: "
                "[{role: dataEditor, reason: ...}]}}]` (or use a fixed schema_suffix)"
            )
        return (
            f"in {deployment.spec_file(owner)}, give runner {runner} `bigquery.project_wide: [{{role: dataEditor, "
            "reason: ...}]` (BigQuery Data Editor on the project includes creating datasets), or use a fixed "
            "schema_suffix and declare the workspace datasets"
        )
    if req.chain == "start-runs":
        return (
            f"give {req.principal.member} role `editor` (or `admin`) in repository.access: a viewer cannot start runs"
        )
    return "dfinfra renders this grant itself; if it is missing, please report it (render and model disagree)"


def _idle(model: AccessModel, grant: GrantLike) -> Finding:
    return Finding(
        "grant-serves-a-run",
        f"{grant.address} grants {grant.role} to {grant.principal.member} on {grant.resource.label}, but no run "
        "or declared access needs it: least privilege says remove it",
        _where(model, grant.env or model.topology.host_name, grant.path),
    )
