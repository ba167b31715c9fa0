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
    for module in modules:
        for grant in module.grants:
            principal = "Dataform service agent" if grant.principal_kind == "service_agent" else grant.member_label
            lines.append(
                f"| {module.env_name} | {_cell(principal)} | `{grant.role}` | {_cell(grant.scope_label)} | "
                f"{_cell(grant.why)} (`{grant.rule}`) |"
            )
    return "\n".join(lines) + "\n"
