"""What SDKv2 does to a planned value, read from each type's recorded constraints (x_constraints).

Kept apart from the per-type API behaviour in `cloud.py`: these are the provider's generic plan-time
rules (ForceNew, ForceNewIfChange, schema defaults, DiffSuppressFuncs, StateFuncs, set hashes), each
recognised from the entry that records it, at any depth of the configuration (`block.0.field`,
`list.*`). `tests/fakegcp/test_constraints.py` checks every entry both ways.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.fakegcp.constraints import UNKNOWN

Path = tuple[str | int, ...]


def steps(path: str) -> Path:
    """`a.0.b` as attribute-path steps; a trailing `.*` (every element) addresses the list itself."""
    parts = [p for p in path.split(".") if p != "*"]
    return tuple(int(p) if p.isdigit() else p for p in parts)


def get(value: Any, path: Path) -> Any:
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def put(value: Any, path: Path, new: Any) -> None:
    """Set `new` at `path` when every enclosing element exists (never creates a block)."""
    parent = get(value, path[:-1]) if len(path) > 1 else value
    last = path[-1]
    fits_list = isinstance(last, int) and isinstance(parent, list) and len(parent) > last
    if fits_list or (isinstance(last, str) and isinstance(parent, dict)):
        parent[last] = new


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


# --- DiffSuppressFuncs: (old, new) -> the diff is not a change --------------------------------

CASE_SENSITIVE_MEMBER = re.compile(r"allUsers|allAuthenticatedUsers|^principal(Set|Hierarchy)?:")


def _same_resource_name(old: Any, new: Any) -> bool:
    return isinstance(old, str) and isinstance(new, str) and old.rsplit("/", 1)[-1] == new.rsplit("/", 1)[-1]


def _same_ignoring_case(old: Any, new: Any) -> bool:
    return isinstance(old, str) and isinstance(new, str) and old.lower() == new.lower()


def _same_member(old: Any, new: Any) -> bool:
    if not isinstance(old, str) or not isinstance(new, str):
        return False
    if CASE_SENSITIVE_MEMBER.search(old) or CASE_SENSITIVE_MEMBER.search(new):
        return old == new
    return old.lower() == new.lower()


def _disabled_block_ignored(old: Any, new: Any) -> bool:
    """autoclass: adding or removing a block whose `enabled` is false is no change."""

    def enabled(items: Any) -> list[Any]:
        return [i for i in (items or []) if not (isinstance(i, dict) and i.get("enabled") is False)]

    return enabled(old) == enabled(new)


def _disabled_filter_ignored(old: Any, new: Any) -> bool:
    """ip_filter: removing a filter whose mode was Disabled is no change."""
    was_disabled = (
        isinstance(old, list) and len(old) == 1 and isinstance(old[0], dict) and old[0].get("mode") == "Disabled"
    )
    return was_disabled and _blank(new)


def _kept_when_emptied(old: Any, new: Any) -> bool:
    """website fields: clearing a set value is no change (old != '' && new == '')."""
    return not _blank(old) and _blank(new)


_ACCESS_ROLES = {
    "OWNER": "roles/bigquery.dataOwner",
    "WRITER": "roles/bigquery.dataEditor",
    "READER": "roles/bigquery.dataViewer",
}


def _access_key(item: Any) -> Any:
    """resourceBigqueryDatasetAccessHash: e-mails lower-cased, legacy role names mapped."""
    if not isinstance(item, dict):
        return repr(item)
    normal = dict(item)
    for field in ("user_by_email", "group_by_email"):
        if isinstance(normal.get(field), str):
            normal[field] = normal[field].lower()
    if isinstance(normal.get("role"), str):
        normal["role"] = _ACCESS_ROLES.get(normal["role"], normal["role"])
    return repr(sorted((k, repr(v)) for k, v in normal.items() if v not in (None, [], "")))


def _same_access_set(old: Any, new: Any) -> bool:
    if not isinstance(old, list) or not isinstance(new, list):
        return False
    return sorted(map(_access_key, old)) == sorted(map(_access_key, new))


# recorded text (a `diff_suppress`, `set_hash` or `note`) -> when a diff is not a change
SUPPRESSORS: dict[str, Callable[[Any, Any], bool]] = {
    "CompareSelfLinkOrResourceName": _same_resource_name,
    "CompareProjectName": _same_resource_name,
    "CompareResourceNames": _same_resource_name,
    "iamMemberCaseDiffSuppress": _same_member,
    "CaseDiffSuppress": _same_ignoring_case,
    "adding/removing a block whose enabled=false is suppressed": _disabled_block_ignored,
    "ip_filter.# suppressed when old mode == 'Disabled'": _disabled_filter_ignored,
    "old != '' && new == '' suppressed": _kept_when_emptied,
    "resourceBigqueryDatasetAccessHash": _same_access_set,
}

# StateFuncs: what the provider stores instead of the configured element
STATE_FUNCS: dict[str, Callable[[Any], Any]] = {
    "StateFunc: each element upper-cased": lambda v: v.upper() if isinstance(v, str) else v,
}


def _recorded(rule: dict[str, Any]) -> str:
    return " ".join(str(rule.get(key, "")) for key in ("note", "diff_suppress", "set_hash"))


class PlanRules:
    """The plan-time rules of one type, from its x_constraints."""

    def __init__(self, rules: list[dict[str, Any]]):
        self.force_new = [steps(r["path"]) for r in rules if r.get("force_new")]
        self.force_new_if_unlocked = [
            steps(r["path"])
            for r in rules
            if "ForceNewIfChange" in r.get("note", "") and "old=true and new=false" in r["note"]
        ]
        self.suppress: list[tuple[Path, Callable[[Any, Any], bool]]] = []
        self.state_funcs: list[tuple[Path, Callable[[Any], Any]]] = []
        for rule in rules:
            text = _recorded(rule)
            # the first (most specific) recorded name wins: CaseDiffSuppress is inside iamMemberCaseDiffSuppress
            name = next((n for n in SUPPRESSORS if n in text), None)
            if name:
                self.suppress.append((steps(rule["path"]), SUPPRESSORS[name]))
            self.state_funcs += [(steps(rule["path"]), f) for n, f in STATE_FUNCS.items() if n in text]
        # schema defaults (deletion_policy is planned by CustomizeDiff from the provider block instead)
        self.defaults = [
            (steps(r["path"]), r["default"]) for r in rules if "default" in r and r["path"] != "deletion_policy"
        ]

    def apply_state_funcs(self, planned: dict[str, Any]) -> None:
        for path, function in self.state_funcs:
            items = get(planned, path)
            if isinstance(items, list):
                put(planned, path, [function(v) for v in items])

    def suppress_diffs(self, prior: dict[str, Any], planned: dict[str, Any]) -> None:
        for path, same in self.suppress:
            old, new = get(prior, path), get(planned, path)
            if old != new and same(old, new):
                if get(planned, path[:-1]) is None and len(path) > 1:
                    continue
                put(planned, path, old)

    def replacements(self, prior: dict[str, Any] | None, planned: dict[str, Any], config: dict[str, Any]) -> list[Path]:
        """Attribute paths whose change forces a new object (ForceNew, ForceNewIfChange)."""
        if prior is None:
            return []
        found = []
        for path in self.force_new:
            old, new = get(prior, path), get(planned, path)
            if new is UNKNOWN and get(config, path) is None:
                continue  # computed and left to the provider: no change to act on
            if old != new and not (_blank(old) and _blank(new)):
                found.append(path)
        for path in self.force_new_if_unlocked:
            if get(prior, path) is True and get(planned, path) in (False, None):
                found.append(path)
        return sorted(set(found), key=repr)

    def apply_defaults(self, planned: dict[str, Any], config: dict[str, Any], attributes: dict[str, Any]) -> None:
        for path, default in self.defaults:
            if len(path) == 1 and path[0] not in attributes:
                continue
            enclosing = get(config, path[:-1]) if len(path) > 1 else config
            if enclosing is not None and get(config, path) is None:
                put(planned, path, default)
