"""The IAM a deployment grants, as a table a reviewer reads: principal -> role -> resource -> why."""

from __future__ import annotations

from dataform_infra.render.module import Module


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def iam_rows(modules: list[Module]) -> list[dict[str, str]]:
    """The grants as data: one dict per grant, for `explain --json`."""
    return [
        {
            "module": m.env_name,
            "principal": g.member_label if g.principal_kind != "service_agent" else "Dataform service agent",
            "role": g.role,
            "resource": g.scope_label,
            "why": g.why,
            "rule": g.rule,
            "address": g.address,
        }
        for m in modules
        for g in m.grants
    ]


def iam_table(modules: list[Module]) -> str:
    """Markdown table of every grant in `modules`, grouped by the module that makes it."""
    lines = ["| module | principal | role | resource | why (rule) |", "|---|---|---|---|---|"]
    for row in iam_rows(modules):
        lines.append(
            f"| {row['module']} | {_cell(row['principal'])} | `{row['role']}` | {_cell(row['resource'])} | "
            f"{_cell(row['why'])} (`{row['rule']}`) |"
        )
    return "\n".join(lines) + "\n"
