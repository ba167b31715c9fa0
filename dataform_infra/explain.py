"""The IAM a deployment grants and what its runs need, as tables a reviewer reads.

`iam_rows`: principal -> role -> resource -> why, and which requirements of which runs each grant
serves. `run_rows`: what every run needs, chain by chain, and the grant that provides it. Both are
data first (`--json`), then Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dataform_infra.access import CHAINS, Coverage
from dataform_infra.access.model import Run
from dataform_infra.render.module import Grant, Module
from dataform_infra.topology import Resource


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _serves(coverage: Coverage, grant: Grant) -> list[dict[str, object]]:
    chains: dict[str, set[str]] = {}
    for req in coverage.requirements_served_by(grant):
        chains.setdefault(req.chain, set()).update(req.runs)
    return [{"chain": chain, "runs": sorted(runs)} for chain, runs in sorted(chains.items())]


def iam_rows(modules: list[Module], coverage: Coverage) -> list[dict[str, object]]:
    """The grants as data: one dict per grant, for `explain --json`."""
    return [
        {
            "module": m.env_name,
            "principal": g.principal.label,
            "member": g.principal.member,
            "role": g.role,
            "resource": g.resource.label,
            "why": g.why,
            "rule": g.rule,
            "address": g.address,
            "serves": _serves(coverage, g),
        }
        for m in modules
        for g in m.grants
    ]


def _serves_cell(serves: object) -> str:
    assert isinstance(serves, list)
    parts = []
    for item in serves:
        runs = len(item["runs"])
        parts.append(f"{item['chain']} ({runs} run{'s' if runs != 1 else ''})" if runs else f"{item['chain']}")
    return ", ".join(parts) or "**nothing**"


def iam_table(modules: list[Module], coverage: Coverage) -> str:
    """Markdown table of every grant in `modules`, grouped by the module that makes it."""
    lines = [
        "| module | principal | role | resource | why (rule) | serves (chain, runs) |",
        "|---|---|---|---|---|---|",
    ]
    for row in iam_rows(modules, coverage):
        lines.append(
            f"| {row['module']} | {_cell(str(row['principal']))} | `{row['role']}` | {_cell(str(row['resource']))} | "
            f"{_cell(str(row['why']))} (`{row['rule']}`) | {_serves_cell(row['serves'])} |"
        )
    return "\n".join(lines) + "\n"


@dataclass
class NeedRow:
    """One (chain, principal, resource) of the runs: the permissions, the runs, and the grants meeting them."""

    chain: str
    principal: str
    member: str
    resource: str
    assumed: bool
    resource_kind: str = ""  # `topology.Resource.kind`: who makes an assumed grant depends on it
    permissions: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    granted_by: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, object]:
        return {
            "chain": self.chain,
            "principal": self.principal,
            "member": self.member,
            "resource": self.resource,
            "permissions": sorted(self.permissions),
            "runs": sorted(self.runs),
            "granted_by": sorted(self.granted_by),
            "assumed": self.assumed,
        }

    def granted_cell(self) -> str:
        if self.granted_by:
            return ", ".join(f"`{g}`" for g in sorted(self.granted_by))
        if not self.assumed:
            return "**missing**"
        outside = {
            "git_repository_link": "a Developer Connect grant made outside dfinfra",
            "service_account": "the account owner's grant (a runner made elsewhere)",
            "crypto_key": "the key owner's grant (a key outside this deployment)",
        }
        who = outside.get(self.resource_kind, "the deployer's own rights")
        return f"*{who}* (`dfinfra doctor` checks)"


def run_rows(all_runs: list[Run], coverage: Coverage, envs: list[str] | None = None) -> list[NeedRow]:
    """What the runs need, one row per (chain, principal, resource), in chain order."""
    labels = {run.id: run.label for run in all_runs if envs is None or run.env in envs}
    rows: dict[tuple[str, str, Resource], NeedRow] = {}
    for req in coverage.requirements:
        runs = [labels[r] for r in req.runs if r in labels]
        if not runs:
            continue
        key = (req.chain, req.principal.member, req.resource)
        row = rows.get(key) or rows.setdefault(
            key,
            NeedRow(
                req.chain,
                req.principal.label,
                req.principal.member,
                req.resource.label,
                req.assumed,
                req.resource.kind,
            ),
        )
        row.permissions.add(req.permission)
        row.runs.update(runs)
        row.granted_by.update(g.address for g in coverage.grants_for(req))
    order = list(CHAINS)
    return sorted(rows.values(), key=lambda r: (order.index(r.chain), r.principal, r.resource))


def runs_table(all_runs: list[Run], coverage: Coverage, envs: list[str] | None = None) -> str:
    lines = ["| chain | who | needs | on | for runs | granted by |", "|---|---|---|---|---|---|"]
    for row in run_rows(all_runs, coverage, envs):
        needs = ", ".join(f"`{p}`" for p in sorted(row.permissions))
        runs = "; ".join(sorted(row.runs))
        lines.append(
            f"| {row.chain} | {_cell(row.principal)} | {needs} | {_cell(row.resource)} | {_cell(runs)} | "
            f"{_cell(row.granted_cell())} |"
        )
    legend = "\n".join(f"- `{chain}`: {text}." for chain, text in CHAINS.items())
    return "\n".join(lines) + "\n\nChains:\n\n" + legend + "\n"
