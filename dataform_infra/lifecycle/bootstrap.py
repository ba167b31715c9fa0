"""The state bucket each environment's backend needs before its first init: a small module on local state in
OUT/.bootstrap/<env>/, which creates the bucket or adopts the one that exists."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from dataform_infra import resource_types as types
from dataform_infra.lifecycle import bookkeeping, guards
from dataform_infra.lifecycle.guards import ASK_NOBODY, Approval
from dataform_infra.render.engine import render_bootstrap
from dataform_infra.render.output import RenderedModule, write_modules
from dataform_infra.terraform.summary import PlanSummary

if TYPE_CHECKING:
    from dataform_infra.lifecycle.core import Lifecycle


def state_bucket(
    lifecycle: Lifecycle,
    env: str,
    approval: Approval = ASK_NOBODY,
) -> PlanSummary:
    """Create the environment's state bucket with a small module on local state; adopt it if it exists.

    Environments may share one bucket (different prefixes): the first environment naming it owns
    its bootstrap module, so two modules never fight over one bucket in different projects.
    """
    environments = lifecycle.specs.deployment.environments
    spec = environments[env]
    owner = next(name for name, other in environments.items() if other.state.bucket == spec.state.bucket)
    if owner != env:
        lifecycle.echo(f"{env}: state bucket gs://{spec.state.bucket} is shared with {owner}; bootstrapping it there")
        return state_bucket(lifecycle, owner, approval)
    directory = lifecycle.out / ".bootstrap" / env
    module = RenderedModule(env, render_bootstrap(lifecycle.specs.deployment, env))
    write_modules(directory.parent, [module], lock_timeout=lifecycle.lock_timeout, waiting=lifecycle.echo)
    runner = lifecycle.runner_in(directory, "bootstrap")
    bucket = f"{types.STORAGE_BUCKET.name}.state"  # the bootstrap template's one resource
    if bucket not in runner.state_list():
        adopted = runner.import_resource(
            bucket, types.STORAGE_BUCKET.import_id_of(project=spec.project.id, name=spec.state.bucket)
        )
        if adopted.returncode == 0:
            lifecycle.echo(f"{env}: bucket gs://{spec.state.bucket} already exists; adopted it")
        elif "non-existent remote object" not in adopted.output and "Cannot import" not in adopted.output:
            runner.check(adopted, "import")
    plan_file = bookkeeping.plan_file(directory)
    runner.plan(plan_file)
    summary = runner.show_plan(plan_file)
    lifecycle.echo(summary.describe())
    if summary.has_changes:
        guards.confirm_changes(
            env,
            summary,
            protected=spec.protected,
            approval=replace(approval, allow_destroy=False),  # a state bucket is never destroyed here
            verb="bootstrap",
        )
        runner.check(
            runner.apply(plan_file, on_line=lambda s, line: lifecycle.echo(line) if line.strip() else None), "apply"
        )
    plan_file.unlink(missing_ok=True)
    lifecycle.echo(
        f"{env}: state bucket gs://{spec.state.bucket} ready (versioned, uniform access, "
        "public access prevention enforced)"
    )
    return summary
