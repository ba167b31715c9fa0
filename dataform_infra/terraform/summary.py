"""What a saved plan will do, read from `terraform show -json`: counts, IAM changes, destructive changes."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from dataform_infra import resource_types as types


@dataclass(frozen=True)
class AttributeChange:
    """One top-level attribute an update or replace changes, in terraform's notation."""

    name: str
    before: str
    after: str
    forces_replacement: bool = False


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    action: str  # create, update, replace, delete
    attributes: tuple[AttributeChange, ...] = ()

    @property
    def destructive(self) -> bool:
        known = types.get(self.type)
        return self.action in ("delete", "replace") and known is not None and known.stateful


@dataclass(frozen=True)
class IamChange:
    action: str  # grant, revoke
    principal: str
    role: str
    resource: str
    address: str


@dataclass
class PlanSummary:
    changes: list[Change] = field(default_factory=list)
    iam: list[IamChange] = field(default_factory=list)
    # Objects changed outside Terraform: what a refresh-only plan would record in the state.
    drift: list[Change] = field(default_factory=list)
    refresh_only: bool = False
    # Existing objects the apply adopts into the state (import blocks), by address.
    imports: list[str] = field(default_factory=list)
    # State entries the apply renames (`moved` blocks): (old address, new address). Nothing is replaced,
    # but only an apply records the new names.
    moves: list[tuple[str, str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(c.action for c in self.changes)
        return {action: counted.get(action, 0) for action in ("create", "update", "replace", "delete")}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.imports or self.moves) or (self.refresh_only and bool(self.drift))

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive]

    def beyond(self, reviewed: PlanSummary) -> list[Change]:
        """Changes this plan makes that `reviewed` did not (same address, action and attribute changes);
        a plan of what is left after a partial apply has none."""
        known = set(reviewed.changes)
        return [c for c in self.changes if c not in known]

    @property
    def steps(self) -> int:
        """Completion lines an apply prints: a replacement is a destruction and a creation."""
        return sum(2 if c.action == "replace" else 1 for c in self.changes) + len(self.imports)

    def by_type(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = {}
        for change in self.changes:
            table.setdefault(change.type, Counter())[change.action] += 1
        return {type_: dict(sorted(counts.items())) for type_, counts in sorted(table.items())}

    def to_dict(self) -> dict[str, Any]:
        return {
            "has_changes": self.has_changes,
            "counts": self.counts,
            "by_type": self.by_type(),
            "changes": [asdict(c) | {"destructive": c.destructive} for c in self.changes],
            "iam": [asdict(i) for i in self.iam],
            "destructive": [c.address for c in self.destructive],
            "drift": [asdict(c) for c in self.drift],
            "imports": list(self.imports),
            "moves": [{"from": old, "to": new} for old, new in self.moves],
        }

    def render(self) -> str:
        if self.refresh_only:
            if not self.drift:
                return "No changes. The state matches Google Cloud."
            lines = [f"Refresh only: {len(self.drift)} object(s) changed outside Terraform; the state will record:"]
            return "\n".join(lines + [f"  ~ {c.action} {c.address}" for c in self.drift])
        if not self.has_changes:
            return "No changes. The infrastructure matches the spec."
        counts = self.counts
        adopting = f"{len(self.imports)} to import, " if self.imports else ""
        moving = f"{len(self.moves)} to move, " if self.moves else ""
        lines = [
            f"Plan: {adopting}{moving}{counts['create']} to create, {counts['update']} to update, "
            f"{counts['replace']} to replace, {counts['delete']} to delete."
        ]
        lines += [f"  <= import {address}" for address in self.imports]
        lines += [f"  -> move {old} to {new}" for old, new in self.moves]
        for type_, actions in self.by_type().items():
            lines.append(f"  {type_}: " + ", ".join(f"{n} {a}" for a, n in actions.items()))
        for change in self.changes:
            if change.attributes:
                lines.append(f"  ~ {change.address} ({change.action}):")
                for attr in change.attributes:
                    forces = "  # forces replacement" if attr.forces_replacement else ""
                    lines.append(f"      {attr.name}: {attr.before} -> {attr.after}{forces}")
        if self.iam:
            lines.append("IAM changes (principal -> role -> resource):")
            for iam in self.iam:
                sign = "+" if iam.action == "grant" else "-"
                lines.append(f"  {sign} {iam.principal} -> {iam.role} -> {iam.resource}")
        if self.destructive:
            lines.append("DESTRUCTIVE: these stateful resources would be deleted or replaced:")
            lines += [f"  !! {c.action.upper()} {c.address}" for c in self.destructive]
        return "\n".join(lines)


def _action(actions: list[str]) -> str | None:
    if actions in (["no-op"], ["read"]):
        return None
    if set(actions) == {"create", "delete"}:
        return "replace"
    return actions[0]


def _literal(value: Any) -> str:
    """A value as terraform prints it in a plan, cut to one readable line."""
    if value is None:
        return "null"
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _attribute_changes(change: dict[str, Any]) -> tuple[AttributeChange, ...]:
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    sensitive = {**(change.get("before_sensitive") or {}), **(change.get("after_sensitive") or {})}
    forcing = {str(path[0]) for path in change.get("replace_paths") or [] if path}
    found = []
    for name in sorted(set(before) | set(after) | {k for k, v in unknown.items() if v is True}):
        if name in ("id", "etag") or name.startswith(("effective_", "terraform_")):
            continue
        old, new = before.get(name), after.get(name)
        if unknown.get(name) is True:
            shown_new = "(known after apply)"
        elif old == new:
            continue
        else:
            shown_new = _literal(new)
        if sensitive.get(name):
            found.append(AttributeChange(name, "(sensitive)", "(sensitive)", name in forcing))
        else:
            found.append(AttributeChange(name, _literal(old), shown_new, name in forcing))
    return tuple(found)


def _shown(values: dict[str, Any] | None, unknown: dict[str, Any] | None, key: str) -> str:
    if unknown and unknown.get(key) is True:
        return "(known after apply)"
    value = (values or {}).get(key)
    return str(value) if value is not None else "?"


# What dfinfra knows of each IAM member it renders: address -> (principal, role, resource) as `explain` names them.
IamNames = dict[str, tuple[str, str, str]]


def summarise(plan: dict[str, Any], refresh_only: bool = False, names: IamNames | None = None) -> PlanSummary:
    """The plan as changes, IAM changes named the way `explain` names them (the spec determines every
    principal, so nothing it renders reads "known after apply"), and drift."""
    names = names or {}
    summary = PlanSummary(refresh_only=refresh_only)
    for resource in plan.get("resource_drift", []):
        action = _action(resource["change"]["actions"])
        if action is not None and resource.get("mode") != "data":
            summary.drift.append(Change(resource["address"], resource["type"], action))
    for resource in plan.get("resource_changes", []):
        if resource.get("mode") == "data":
            continue
        change = resource["change"]
        if change.get("importing"):
            summary.imports.append(resource["address"])
        if resource.get("previous_address"):
            summary.moves.append((resource["previous_address"], resource["address"]))
        action = _action(change["actions"])
        if action is None:
            continue
        attributes = _attribute_changes(change) if action in ("update", "replace") else ()
        summary.changes.append(Change(resource["address"], resource["type"], action, attributes))
        if resource["type"].endswith("_iam_member"):
            sides: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
            if action in ("delete", "replace"):
                sides.append(("revoke", change.get("before"), None))
            if action in ("create", "replace"):
                sides.append(("grant", change.get("after"), change.get("after_unknown")))
            for verb, values, unknown in sides:
                if verb == "grant" and resource["address"] in names:
                    principal, role, scope = names[resource["address"]]
                    summary.iam.append(IamChange(verb, principal, role, scope, resource["address"]))
                    continue
                known = types.get(resource["type"])
                target = known.target.attribute if known and known.target else "project"
                summary.iam.append(
                    IamChange(
                        verb,
                        _shown(values, unknown, "member"),
                        _shown(values, unknown, "role"),
                        _shown(values, unknown, target),
                        resource["address"],
                    )
                )
    return summary


def markdown(plans: dict[str, PlanSummary]) -> str:
    """A pull-request comment: environments with destructive changes first, each collapsible."""
    order = sorted(plans, key=lambda env: (not plans[env].destructive, not plans[env].has_changes))
    lines = ["### dfinfra plan", ""]
    for env in order:
        summary = plans[env]
        counts = summary.counts
        head = (
            f"{counts['create']} to create, {counts['update']} to update, {counts['replace']} to replace, "
            f"{counts['delete']} to delete"
            if summary.has_changes
            else "no changes"
        )
        flag = " :warning: **destructive**" if summary.destructive else ""
        lines += [
            f"<details{' open' if summary.destructive else ''}><summary><b>{env}</b>: {head}{flag}</summary>",
            "",
            "```text",
            summary.render(),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)
