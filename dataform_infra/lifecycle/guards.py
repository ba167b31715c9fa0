"""The guards between a plan and Google Cloud: what Google would refuse half way through an apply, destructive
changes, confirmations (a protected environment's name, typed), and what the terraform pass-through may run.

Pure decisions over a plan's summary and the caller's answers: no terraform, no terminal (questions go out through
`Confirm`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from dataform_infra import resource_types as types
from dataform_infra.errors import Refused, UsageError
from dataform_infra.terraform.summary import Change, PlanSummary

Confirm = Callable[[str], str | None]  # shows a prompt, returns the answer (None: no terminal)


def _no_terminal(_: str) -> str | None:
    return None


@dataclass(frozen=True)
class Approval:
    """What whoever runs dfinfra said before anything changes: --auto-approve, --allow-destroy, the protected
    environments' names typed with --confirm, and how to ask when none of those answers."""

    auto_approve: bool = False
    allow_destroy: bool = False
    confirmed: Collection[str] = ()
    confirm: Confirm = _no_terminal


ASK_NOBODY = Approval()  # nothing said, no terminal: every guard refuses what needs an answer


# Terraform commands that change the state (or the objects it records): guarded in a protected environment.
STATE_WRITERS = frozenset(
    {
        "import",
        "state mv",
        "state rm",
        "state push",
        "state replace-provider",
        "taint",
        "untaint",
        "force-unlock",
        "refresh",
        "workspace new",
        "workspace select",
        "workspace delete",
    }
)
# Done only through dfinfra's own commands, which show the plan, refuse destructive changes and keep the order.
NOT_PASSED_THROUGH = {
    "apply": "use `dfinfra apply ENV`, which shows the plan, refuses destructive changes without --allow-destroy, "
    "confirms protected environments and keeps the apply order",
    "destroy": "use `dfinfra destroy ENV`, with the same guards",
    "test": "terraform test creates and destroys real resources: run it in a module of its own, not an environment's",
}


def passthrough_command(args: list[str]) -> str:
    """The terraform command `args` run (`state mv`, `workspace select` for those families); refuses what would
    escape dfinfra's guards: `-chdir` (another module than the environment's), `apply`, `destroy` and `test`."""
    if any(a == "-chdir" or a.startswith(("-chdir=", "--chdir")) for a in args):
        raise UsageError(
            "-chdir is not passed to terraform: dfinfra runs it in the environment's own module (name another "
            "environment instead)"
        )
    words = [a for a in args if not a.startswith("-")]
    if not words or not words[0].strip():
        raise UsageError("name the terraform command after `--`, e.g. dfinfra terraform prod -- state list")
    command = " ".join(words[:2]) if words[0] in ("state", "workspace") else words[0]
    if command in NOT_PASSED_THROUGH:
        raise UsageError(f"`terraform {command}` is not passed through: {NOT_PASSED_THROUGH[command]}")
    return command


def refuse_what_google_refuses(env: str, summary: PlanSummary) -> None:
    """A plan that updates an attribute Google fixes at creation would fail half way through its apply:
    refused here, with the replacement that does it (behind --allow-destroy, the object being stateful).
    So is one apply that moves a dataset's grants between its IAM members and its access list, or changes a
    dataset together with its access list: Google's provider documents that the two fight."""
    _refuse_mixed_dataset_grants(env, summary)
    for change in summary.changes:
        known = types.get(change.type)
        fixed = [a.name for a in change.attributes if known and a.name in known.fixed_at_creation]
        if change.action == "update" and fixed:
            raise Refused(
                f"{env}: the plan changes {', '.join(fixed)} of {change.shown} in place, which Google refuses once "
                "it exists (the provider would plan it as an update and the apply would fail half way). To do it, "
                f"recreate it: `dfinfra plan {env} --replace {change.address}`, then `dfinfra apply {env} --replace "
                f"{change.address} --allow-destroy` (a repository's workspaces go with it; its Git remote stays)."
            )


def _refuse_mixed_dataset_grants(env: str, summary: PlanSummary) -> None:
    members, entries = types.BIGQUERY_DATASET_IAM_MEMBER.name, types.BIGQUERY_DATASET_ACCESS.name
    by_dataset: dict[str, list[Change]] = {}
    for change in summary.changes:
        if change.dataset and change.type in (members, entries, types.BIGQUERY_DATASET.name):
            by_dataset.setdefault(change.dataset, []).append(change)
    for dataset, changes in by_dataset.items():
        kinds = {c.type for c in changes if c.type != types.BIGQUERY_DATASET.name}
        updated = [c for c in changes if c.type == types.BIGQUERY_DATASET.name and c.action == "update"]
        if kinds == {members, entries}:
            first = [c.address for c in changes if c.action == "delete"]
            raise Refused(
                f"{env}: the plan moves dataset {dataset}'s grants between its IAM members and its access list in "
                "one apply, and the two fight (removing an IAM member removes the access-list entry for the same "
                "member); nothing applied. Apply in two steps: `dfinfra apply "
                f"{env} {' '.join('--target ' + a for a in first)}`, then `dfinfra apply {env}`."
            )
        if updated and entries in kinds:
            raise Refused(
                f"{env}: the plan changes dataset {dataset} and entries of its access list in one apply, which "
                "Google's provider documents it cannot do (the dataset's update writes back the list it read); "
                f"nothing applied. Apply in two steps: `dfinfra apply {env} --target {updated[0].address}`, then "
                f"`dfinfra apply {env}`."
            )


def confirm_changes(
    env: str,
    summary: PlanSummary,
    *,
    protected: bool,
    approval: Approval,
    verb: str,
) -> None:
    """Every guard between a plan and its apply: what Google refuses, destructive changes without
    --allow-destroy, and a confirmation (the environment's name, typed, when it is protected)."""
    refuse_what_google_refuses(env, summary)  # a saved plan made elsewhere too
    if summary.destructive and not approval.allow_destroy:
        listed = ", ".join(f"{c.action} {c.address}" for c in summary.destructive)
        raise Refused(
            f"refusing to {verb} {env}: the plan would {listed}. These hold data or identities other "
            "systems use; re-run with --allow-destroy if that is intended."
        )
    if approval.auto_approve:
        if protected and env not in approval.confirmed:
            raise Refused(f"{env} is protected: with --auto-approve also pass --confirm {env}")
        return
    question = (
        f"{env} is protected. Type the environment name to {verb} it: "
        if protected
        else f"{verb.capitalize()} these changes to {env}? Only 'yes' is accepted: "
    )
    answer = approval.confirm(question)
    if answer is None:
        raise Refused(
            f"refusing to {verb} {env} without confirmation: no terminal to ask on. "
            "Pass --auto-approve" + (f" --confirm {env}" if protected else "") + " in automation."
        )
    if answer.strip() != (env if protected else "yes"):
        raise Refused(f"{verb} of {env} cancelled")


def confirm_state_write(env: str, command: str, *, protected: bool, approval: Approval) -> None:
    """In a protected environment, a passed-through command that writes the state needs the environment's name."""
    if not (protected and command in STATE_WRITERS and env not in approval.confirmed):
        return
    answer = approval.confirm(f"{env} is protected. Type the environment name to run `terraform {command}` in it: ")
    if answer is None:
        raise Refused(
            f"refusing `terraform {command}` in protected {env} without confirmation: no terminal to ask "
            f"on. Pass --confirm {env}."
        )
    if answer.strip() != env:
        raise Refused(f"terraform {command} in {env} cancelled")
