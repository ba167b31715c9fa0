"""What a saved plan will do, read from `terraform show -json`: counts, IAM changes, destructive changes."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dataform_infra import resource_types as types


@dataclass(frozen=True)
class AttributeChange:
    """One attribute an update or replace changes, in terraform's notation; `name` is its path, nested
    blocks included (`invocation_config.included_tags`)."""

    name: str
    before: str
    after: str
    forces_replacement: bool = False


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    action: str  # create, update, replace, delete, forget (an adopted object a destroy leaves in Google Cloud)
    attributes: tuple[AttributeChange, ...] = ()
    label: str = ""  # what it is, as `explain` names it (`dataset p.marts`), where dfinfra knows
    # The dataset a dataset, its IAM member or an entry of its access list is about (`project/dataset_id`, from
    # the values the plan knows), for the guards that keep the two kinds of dataset grant apart.
    dataset: str = field(default="", compare=False)

    @property
    def shown(self) -> str:
        return f"{self.address} ({self.label})" if self.label else self.address

    def to_dict(self) -> dict[str, Any]:
        """As `plan --json` prints it (the dataset it is about is the guards' business, not the reader's)."""
        return {k: v for k, v in asdict(self).items() if k != "dataset"}

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
    # Root module outputs the apply changes: (name, action, before, after) as terraform prints values.
    outputs: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(c.action for c in self.changes)
        return {action: counted.get(action, 0) for action in ("create", "update", "replace", "delete", "forget")}

    @property
    def has_changes(self) -> bool:
        changes = self.changes or self.imports or self.moves or self.outputs
        return bool(changes) or (self.refresh_only and bool(self.drift))

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive]

    def forgetting(self, adopted: Collection[str]) -> PlanSummary:
        """This destroy plan with each deletion of an `adopted` address (`existing: true`: dfinfra imported it,
        never created it) shown as `forget`: the apply removes it from the state instead (`Lifecycle.apply`)."""
        changes = [
            replace(c, action="forget") if c.action == "delete" and c.address in adopted else c for c in self.changes
        ]
        return replace(self, changes=changes)

    def forgotten(self) -> list[str]:
        return [c.address for c in self.changes if c.action == "forget"]

    def beyond(self, reviewed: PlanSummary) -> list[Change]:
        """Changes this plan makes that `reviewed` did not (same address, action and attribute changes);
        a plan of what is left after a partial apply has none."""
        known = set(reviewed.changes)
        beyond = [c for c in self.changes if c not in known]
        # Imports, moves and output changes are changes too (an import adopts an object into the state).
        beyond += [Change(a, "import", "import") for a in self.imports if a not in reviewed.imports]
        beyond += [Change(f"{o} -> {n}", "moved", "move") for o, n in self.moves if (o, n) not in reviewed.moves]
        beyond += [Change(f"output.{o[0]}", "output", o[1]) for o in self.outputs if o not in reviewed.outputs]
        return beyond

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
            "changes": [c.to_dict() | {"destructive": c.destructive} for c in self.changes],
            "iam": [asdict(i) for i in self.iam],
            "destructive": [c.address for c in self.destructive],
            "drift": [c.to_dict() for c in self.drift],
            "imports": list(self.imports),
            "moves": [{"from": old, "to": new} for old, new in self.moves],
            "outputs": [{"name": n, "action": a, "before": b, "after": f} for n, a, b, f in self.outputs],
        }

    def describe(self) -> str:
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
        forgetting = f", {counts['forget']} to forget" if counts["forget"] else ""
        lines = [
            f"Plan: {adopting}{moving}{counts['create']} to create, {counts['update']} to update, "
            f"{counts['replace']} to replace, {counts['delete']} to delete{forgetting}."
        ]
        lines += [f"  <= import {address}" for address in self.imports]
        lines += [f"  -> move {old} to {new}" for old, new in self.moves]
        for type_, actions in self.by_type().items():
            lines.append(f"  {type_}: " + ", ".join(f"{n} {a}" for a, n in actions.items()))
        signs = {"create": "+", "delete": "-", "update": "~", "replace": "-/+", "forget": "."}
        for change in self.changes:
            lines.append(
                f"  {signs.get(change.action, '~')} {change.action} {change.shown}" + (":" if change.attributes else "")
            )
            for attr in change.attributes:
                forces = "  # forces replacement" if attr.forces_replacement else ""
                lines.append(f"      {attr.name}: {attr.before} -> {attr.after}{forces}")
        if self.outputs:
            lines.append("Outputs:")
            lines += [f"  {signs.get(a, '~')} {name}: {before} -> {after}" for name, a, before, after in self.outputs]
        if self.drift:
            lines.append("Changed outside Terraform since the last apply (the plan above undoes or records it):")
            lines += [f"  ~ {c.action} {c.shown}" for c in self.drift]
        if self.iam:
            lines.append("IAM changes (principal -> role -> resource):")
            for iam in self.iam:
                sign = "+" if iam.action == "grant" else "-"
                lines.append(f"  {sign} {iam.principal} -> {iam.role} -> {iam.resource}")
        if counts["forget"]:
            lines.append(
                "Forgotten, not deleted (adopted with `existing: true`: dfinfra never deletes what it did not "
                "create; they stay in Google Cloud and leave the state):"
            )
            lines += [f"  . {address}" for address in self.forgotten()]
        if self.destructive:
            lines.append("DESTRUCTIVE: these stateful resources would be deleted or replaced:")
            lines += [f"  !! {c.action.upper()} {c.address}" for c in self.destructive]
        return "\n".join(lines)


def _dataset_of(change: dict[str, Any]) -> str:
    """`project/dataset_id` of a dataset-scoped change, from its values before or after ("" where unknown)."""
    for values in (change.get("after"), change.get("before")):
        if isinstance(values, dict) and isinstance(values.get("dataset_id"), str) and values.get("project"):
            return f"{values['project']}/{values['dataset_id']}"
    return ""


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
    """Every attribute the change alters, nested blocks walked attribute by attribute. A value prints as
    `(sensitive)` only where the plan marks that value itself sensitive (the schema's `sensitive`), never
    a whole block because something inside it is."""
    forcing = {_path(path) for path in change.get("replace_paths") or [] if path}
    found: list[AttributeChange] = []
    _diff(
        change.get("before"),
        change.get("after"),
        change.get("after_unknown"),
        _merge(change.get("before_sensitive"), change.get("after_sensitive")),
        (),
        forcing,
        found,
    )
    return tuple(found)


def _merge(a: Any, b: Any) -> Any:
    """Two sensitivity markers as one: sensitive where either side is."""
    if a is True or b is True:
        return True
    if isinstance(a, dict) or isinstance(b, dict):
        a, b = a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}
        return {k: _merge(a.get(k), b.get(k)) for k in set(a) | set(b)}
    if isinstance(a, list) or isinstance(b, list):
        a, b = a if isinstance(a, list) else [], b if isinstance(b, list) else []
        return [_merge(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(max(len(a), len(b)))]
    return None


def _path(parts: tuple[Any, ...] | list[Any]) -> str:
    """`("invocation_config", 0, "included_tags")` as `invocation_config.included_tags` (a block that holds one
    item needs no index), `targets[1].name` otherwise."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text.replace("[0].", ".") if "[1]" not in text else text


def _at(node: Any, key: Any) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _diff(
    before: Any,
    after: Any,
    unknown: Any,
    sensitive: Any,
    path: tuple[Any, ...],
    forcing: set[str],
    found: list[AttributeChange],
) -> None:
    """Append to `found` what changes at `path`, walking into objects and into lists of blocks that keep
    their length (a block added or removed prints as the whole list)."""
    if path and (path[0] in ("id", "etag") or str(path[0]).startswith(("effective_", "terraform_"))):
        return
    name = _path(path)
    forces = name in forcing
    if sensitive is True:
        if before != after or unknown is True:
            found.append(AttributeChange(name, "(sensitive)", "(sensitive)", forces))
        return
    if unknown is True:
        found.append(AttributeChange(name, _literal(before), "(known after apply)", forces))
        return
    keys = _children(before, after, unknown)
    if keys is not None:
        for key in keys:
            below = (_at(before, key), _at(after, key), _at(unknown, key), _at(sensitive, key))
            _diff(*below, (*path, key), forcing, found)
        return
    if before == after and not _any_true(unknown):
        return
    if _any_true(sensitive):
        found.append(AttributeChange(name, "(sensitive)", "(sensitive)", forces))
        return
    pending = _any_true(unknown) and after in (None, [], {})
    found.append(AttributeChange(name, _literal(before), "(known after apply)" if pending else _literal(after), forces))


def _children(before: Any, after: Any, unknown: Any) -> list[Any] | None:
    """The keys or indexes to walk into at this level, or None to compare the values whole."""
    if isinstance(before, dict | None) and isinstance(after, dict | None) and (before or after):
        flagged = {k for k, v in unknown.items() if v} if isinstance(unknown, dict) else set()
        return sorted(set(before or {}) | set(after or {}) | flagged)
    if _is_block_list(before) and _is_block_list(after) and len(before) == len(after):
        return list(range(len(after)))
    return None


def _any_true(node: Any) -> bool:
    if node is True:
        return True
    if isinstance(node, dict):
        return any(_any_true(v) for v in node.values())
    if isinstance(node, list):
        return any(_any_true(v) for v in node)
    return False


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


_ACL_MEMBERS = (("user_by_email", "user:"), ("group_by_email", "group:"), ("domain", "domain:"), ("iam_member", ""))
_ACL_ROLES = {
    "READER": "roles/bigquery.dataViewer",
    "WRITER": "roles/bigquery.dataEditor",
    "OWNER": "roles/bigquery.dataOwner",
}


def _acl_entry(values: dict[str, Any]) -> tuple[str, str]:
    """(principal, role) of a dataset access-list entry: a member and its role, or the views it authorizes."""
    authorized = (values.get("dataset") or [{}])[0].get("dataset") or [{}]
    if authorized[0].get("dataset_id"):
        return f"views of dataset {authorized[0].get('project_id')}.{authorized[0]['dataset_id']}", "authorized views"
    for attribute, prefix in _ACL_MEMBERS:
        if values.get(attribute):
            member = str(values[attribute])
            if prefix == "user:" and member.endswith(".gserviceaccount.com"):
                prefix = "serviceAccount:"
            return _shown({"m": prefix + member}, None, "m"), _ACL_ROLES.get(
                values.get("role") or "", str(values.get("role"))
            )
    return "?", str(values.get("role"))


def _shown(values: dict[str, Any] | None, unknown: dict[str, Any] | None, key: str) -> str:
    """A state value as a summary line shows it: quoted and escaped when it holds a line break or a control
    character (a member someone wrote by hand must not forge a line of the plan a reviewer reads)."""
    if unknown and unknown.get(key) is True:
        return "(known after apply)"
    value = (values or {}).get(key)
    if value is None:
        return "?"
    text = str(value)
    return json.dumps(text) if _CONTROL.search(text) else text


# What dfinfra knows of each IAM member it renders: address -> (principal, role, resource) as `explain` names them.
IamNames = dict[str, tuple[str, str, str]]


def summarise(
    plan: dict[str, Any],
    refresh_only: bool = False,
    names: IamNames | None = None,
    labels: dict[str, str] | None = None,
) -> PlanSummary:
    """The plan as changes (each named as `explain` names it, from `labels`), IAM changes named the way
    `explain` names them (the spec determines every principal, so nothing it renders reads "known after
    apply"), drift and output changes."""
    names = names or {}
    labels = labels or {}
    summary = PlanSummary(refresh_only=refresh_only)
    for resource in plan.get("resource_drift", []):
        action = _action(resource["change"]["actions"])
        if action is not None and resource.get("mode") != "data":
            address = resource["address"]
            summary.drift.append(Change(address, resource["type"], action, label=labels.get(address, "")))
    for output, change in sorted((plan.get("output_changes") or {}).items()):
        action = _action(change.get("actions") or ["no-op"])
        if action is not None:
            before = "(sensitive)" if change.get("before_sensitive") else _literal(change.get("before"))
            after = "(sensitive)" if change.get("after_sensitive") else _literal(change.get("after"))
            if change.get("after_unknown") is True:
                after = "(known after apply)"
            summary.outputs.append((output, action, before, after))
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
        address = resource["address"]
        label = labels.get(address) or (" -> ".join(names[address]) if address in names else "")
        summary.changes.append(Change(address, resource["type"], action, attributes, label, _dataset_of(change)))
        if resource["type"].endswith("_iam_member") or resource["type"] == types.BIGQUERY_DATASET_ACCESS.name:
            sides: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
            if action in ("delete", "replace"):
                sides.append(("revoke", change.get("before"), None))
            if action in ("create", "replace"):
                sides.append(("grant", change.get("after"), change.get("after_unknown")))
            for verb, values, unknown in sides:
                # An access-list entry names its member in one of several attributes: named as dfinfra rendered it.
                acl = resource["type"] == types.BIGQUERY_DATASET_ACCESS.name
                if (verb == "grant" or acl) and resource["address"] in names:
                    principal, role, scope = names[resource["address"]]
                    summary.iam.append(IamChange(verb, principal, role, scope, resource["address"]))
                    continue
                if acl:  # an entry dfinfra no longer renders (or was written by hand): read from its values
                    entry = _acl_entry(values or {})
                    summary.iam.append(
                        IamChange(verb, *entry, _shown(values, unknown, "dataset_id"), resource["address"])
                    )
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


def markdown(plans: dict[str, PlanSummary], allowed_violations: list[str] | None = None) -> str:
    """A pull-request comment: environments with destructive changes first, each collapsible; violations
    of the least-privilege rules that `--allow-violations` let through stated first."""
    order = sorted(plans, key=lambda env: (not plans[env].destructive, not plans[env].has_changes))
    lines = ["### dfinfra plan", ""]
    if allowed_violations:
        lines += [
            f":warning: **Planned with `--allow-violations`**: {len(allowed_violations)} least-privilege "
            "violation(s) that `dfinfra validate` reports:",
            "",
            "```text",
            *allowed_violations,
            "```",
            "",
        ]
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
            summary.describe(),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)
