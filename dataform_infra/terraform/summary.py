"""What a saved plan will do, read from `terraform show -json`: counts, IAM changes, destructive changes."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# Deleting or replacing these loses data or identity that other systems refer to.
STATEFUL_TYPES = frozenset(
    {
        "google_dataform_repository",
        "google_secret_manager_secret",
        "google_storage_bucket",
        "google_service_account",
        "google_bigquery_dataset",
    }
)
_IAM_TARGETS = ("service_account_id", "secret_id", "dataset_id", "repository", "project")


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    action: str  # create, update, replace, delete

    @property
    def destructive(self) -> bool:
        return self.action in ("delete", "replace") and self.type in STATEFUL_TYPES


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

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(c.action for c in self.changes)
        return {action: counted.get(action, 0) for action in ("create", "update", "replace", "delete")}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes) or (self.refresh_only and bool(self.drift))

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive]

    @property
    def steps(self) -> int:
        """Completion lines an apply prints: a replacement is a destruction and a creation."""
        return sum(2 if c.action == "replace" else 1 for c in self.changes)

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
        lines = [
            f"Plan: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['replace']} to replace, {counts['delete']} to delete."
        ]
        for type_, actions in self.by_type().items():
            lines.append(f"  {type_}: " + ", ".join(f"{n} {a}" for a, n in actions.items()))
        if self.iam:
            lines.append("IAM changes (principal -> role -> resource):")
            for change in self.iam:
                sign = "+" if change.action == "grant" else "-"
                lines.append(f"  {sign} {change.principal} -> {change.role} -> {change.resource}")
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


def _shown(values: dict[str, Any] | None, unknown: dict[str, Any] | None, key: str) -> str:
    if unknown and unknown.get(key) is True:
        return "(known after apply)"
    value = (values or {}).get(key)
    return str(value) if value is not None else "?"


def summarise(plan: dict[str, Any], refresh_only: bool = False) -> PlanSummary:
    summary = PlanSummary(refresh_only=refresh_only)
    for resource in plan.get("resource_drift", []):
        action = _action(resource["change"]["actions"])
        if action is not None and resource.get("mode") != "data":
            summary.drift.append(Change(resource["address"], resource["type"], action))
    for resource in plan.get("resource_changes", []):
        if resource.get("mode") == "data":
            continue
        change = resource["change"]
        action = _action(change["actions"])
        if action is None:
            continue
        summary.changes.append(Change(resource["address"], resource["type"], action))
        if resource["type"].endswith("_iam_member"):
            sides: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
            if action in ("delete", "replace"):
                sides.append(("revoke", change.get("before"), None))
            if action in ("create", "replace"):
                sides.append(("grant", change.get("after"), change.get("after_unknown")))
            for verb, values, unknown in sides:
                target = next((k for k in _IAM_TARGETS if (values or {}).get(k) or (unknown or {}).get(k)), "project")
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
