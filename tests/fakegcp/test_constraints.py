"""Every entry of the provider's recorded constraints (x_constraints), enforced by the offline provider.

The offline cloud is the proof that rendered HCL works, so what the real provider rejects or plans
differently, it must too. For each entry of `tests/provider_schema/constraints.json` (copied from
../shared, never edited) this test derives, from the entry's own keys and note, one configuration the real
provider accepts (or plans as recorded) and one it rejects (or plans otherwise), and runs both
through the fake at the step where the real provider acts: validation (`ValidateResourceConfig`,
`ValidateProviderConfig`), `ConfigureProvider`, `PlanResourceChange`, or delete. A key the fake has no
check for fails the test, and so does a note describing a validator it has no check for (NOTE_PATTERNS
reads every note), so a new fact in the file cannot go unenforced unnoticed.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st

from tests.fakegcp import constraints as checker
from tests.fakegcp import planning
from tests.fakegcp.cloud import Cloud
from tests.fakegcp.engine import CloudError, ProviderConfig
from tests.fakegcp.schema import block_schema, constraints
from tests.fakegcp.store import Store
from tests.fakegcp.types import resource_type


@dataclass(frozen=True)
class Entry:
    source: str
    kind: str  # resource, data or provider
    type_name: str
    index: int
    rule: dict[str, Any]

    @property
    def path(self) -> str:
        return self.rule["path"]

    @property
    def rules(self) -> list[dict[str, Any]]:
        table = constraints()[self.source][self.kind]
        return table[self.type_name]["x_constraints"]

    @property
    def block(self) -> dict[str, Any]:
        block = block_schema(self.source, self.kind, self.type_name)
        assert block is not None
        return block

    def __str__(self) -> str:
        return f"{self.source.rsplit('/', 1)[-1]}:{self.type_name}:{self.path}#{self.index}"


ENTRIES = [
    Entry(source, kind, type_name, index, rule)
    for source, kinds in constraints().items()
    for kind, types in kinds.items()
    for type_name, facts in types.items()
    for index, rule in enumerate(facts["x_constraints"])
]


# --- configurations built from a path ---------------------------------------------------------


def _spec(block: dict[str, Any], path: str) -> tuple[str, Any]:
    """("attribute", type) or ("block", nested block schema) at a Go path (`a.0.b`, `x.*`)."""
    parts = [p for p in path.split(".") if not (p.isdigit() or p == "*")]
    for i, part in enumerate(parts):
        if part in block.get("attributes", {}):
            assert i == len(parts) - 1, path
            return "attribute", block["attributes"][part]["type"]
        block = block["block_types"][part]["block"]
    return "block", block


def _sample(kind_type: tuple[str, Any], variant: int = 0) -> Any:
    """A well-typed value, different for each variant."""
    kind, spec = kind_type
    if kind == "block":
        return [{}]
    if spec == "string":
        return f"value-{variant}"
    if spec == "bool":
        return variant % 2 == 0
    if spec == "number":
        return 3600000 + variant
    if isinstance(spec, list) and spec[0] in ("list", "set"):
        return [_sample(("attribute", spec[1]), variant)]
    if isinstance(spec, list) and spec[0] == "map":
        return {f"key{variant}": _sample(("attribute", spec[1]), variant)}
    raise AssertionError(f"no sample for type {spec}")


def _at(path: str, value: Any, into: dict[str, Any] | None = None) -> dict[str, Any]:
    """`value` placed at `path` in a configuration (blocks as one-element lists)."""
    config = copy.deepcopy(into) if into else {}
    parts = path.split(".")
    node: Any = config
    for i, part in enumerate(parts[:-1]):
        if part.isdigit() or part == "*":
            continue
        following = parts[i + 1]
        if following.isdigit():
            node = node.setdefault(part, [{}])[0]
        else:  # `x.*`: the elements of a list attribute
            node[part] = [value]
            return config
    node[parts[-1]] = value
    return config


def _violations(entry: Entry, config: dict[str, Any]) -> list[checker.Violation]:
    return checker.check(config, entry.rules)


def _about(violations: list[checker.Violation], *paths: str, summary: str = "") -> list[checker.Violation]:
    """The violations that name one of `paths` (the diagnostic's attribute path or its detail),
    of one kind when `summary` is given."""
    violations = [v for v in violations if summary in v.summary]
    wanted = [tuple(int(p) if p.isdigit() else p for p in path.split(".") if p != "*") for path in paths]
    return [
        v
        for v in violations
        if any(f'"{p}"' in v.detail or p in v.detail for p in paths) or any(v.path[: len(w)] == w for w in wanted)
    ]


FIND_SETTINGS = settings(
    database=None,
    derandomize=True,
    deadline=None,
    max_examples=2000,
    phases=[Phase.generate],  # the first example found is good enough; shrinking costs seconds
    suppress_health_check=list(HealthCheck),
)


@functools.cache
def _matching(regex: str, lo: int = 1, hi: int = 64, must_not: str | None = None) -> str:
    """A string `re.search(regex)` accepts with a length in [lo, hi] that does not match `must_not`: the
    first hypothesis generates, derandomized so always the same (the same regex recurs hundreds of times,
    so it is found once)."""
    return find(
        st.from_regex(regex),
        lambda s: (
            bool(re.search(regex, s))
            and "\n" not in s
            and lo <= len(s) <= hi
            and not (must_not and re.search(must_not, s))
        ),
        settings=FIND_SETTINGS,
    )


NOT_MATCHING = ("Not Valid!", "-", "UPPER/Case:", "x" * 2000)


def _not_matching(regex: str) -> str:
    return next(s for s in NOT_MATCHING if not re.search(regex, s))


# --- one check per key: (accepted, rejected) ------------------------------------------------

CONFLICT, MISSING, COMBINATION = "Conflicting", "Missing required", "Invalid combination"
Check = Callable[[Entry], None]
CHECKS: dict[str, Check] = {}


def check(*keys: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        for key in keys:
            CHECKS[key] = function
        return function

    return register


def _configure_time(entry: Entry) -> bool:
    return "ProviderConfigure" in entry.rule.get("note", "")


def _valid_string(entry: Entry) -> str:
    """A value every string rule of this entry accepts."""
    rule = entry.rule
    length = rule.get("length", {})
    lo, hi = length.get("min", 1), min(length.get("max", 64), rule.get("max_length", 64))
    if "regex" in rule and "KEY" not in rule.get("note", ""):
        return _matching(rule["regex"], lo, hi, rule.get("regex_must_not_match"))
    return "a" * max(lo, 6)


@check("regex", "regex_anchored", "regex_must_not_match", "validator")
def regex_or_validator(entry: Entry) -> None:
    rule = entry.rule
    if "regex" in rule and "KEY" in rule.get("note", ""):  # a map whose keys the regex checks
        assert not _about(_violations(entry, _at(entry.path, {_matching(rule["regex"]): "any value"})), entry.path)
        assert _about(_violations(entry, _at(entry.path, {"Bad Key": "v"})), entry.path)
        return
    if "regex" in rule:
        good = _valid_string(entry)
        assert not _about(_violations(entry, _at(entry.path, good)), entry.path), good
        if "ValidateDSProjectID" in rule.get("validator", ""):  # only the last segment is checked
            assert not _about(_violations(entry, _at(entry.path, f"projects/{good}")), entry.path)
        if rule.get("regex_anchored") is False or "unanchored" in rule.get("note", ""):  # at the start
            assert not _about(_violations(entry, _at(entry.path, f"  {good}")), entry.path)
        bad = _not_matching(rule["regex"])
        found = _about(_violations(entry, _at(entry.path, bad)), entry.path)
        assert found and all(v.path[0] == entry.path.split(".")[0] for v in found), found
        return
    if {"min", "length", "max_length"} & set(rule):
        return  # the validator is what those keys record; their checks run
    validator = rule["validator"]
    if validator.startswith("none in schema"):
        for value in ("DELETE", "ANYTHING"):
            assert not _about(_violations(entry, _at(entry.path, value)), entry.path)
        return
    good, bad = VALIDATOR_SAMPLES[next(k for k in VALIDATOR_SAMPLES if k in validator)]
    assert not _about(_violations(entry, _at(entry.path, good)), entry.path), good
    assert _about(_violations(entry, _at(entry.path, bad)), entry.path), bad


# validator text (as recorded) -> (a value it accepts, a value it rejects)
VALIDATOR_SAMPLES: dict[str, tuple[Any, Any]] = {
    "ValidateCredentials": ('{"type": "service_account", "project_id": "p"}', "neither a file nor JSON"),
    "ValidateJWT": ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "not-a-jwt"),
    "Go duration": ("30s", "-5s"),
    "non-empty string": ("value", ""),
    "StringLenBetween": ("a description", "x" * 300),
    "IsCIDR": ("10.0.0.0/8", "10.0.0.0"),
}


@check("enum", "enum_source")
def enum(entry: Entry) -> None:
    rule = entry.rule
    outside = "NOT_ONE_OF_THEM"
    if _configure_time(entry):  # checked when the provider is configured, not by a schema validator
        assert not _about(_violations(entry, _at(entry.path, outside)), entry.path)
        assert ProviderConfig.from_config({entry.path: rule["enum"][-1]})
        with pytest.raises(CloudError) as error:
            ProviderConfig.from_config({entry.path: outside})
        assert error.value.path == (entry.path,)
        return
    if "not a schema ValidateFunc" in rule.get("enum_source", ""):  # acted on, never validated
        assert not _about(_violations(entry, _at(entry.path, outside)), entry.path)
        assert not _about(_violations(entry, _at(entry.path, rule["enum"][0])), entry.path)
        return
    assert not _about(_violations(entry, _at(entry.path, rule["enum"][0])), entry.path)
    assert _about(_violations(entry, _at(entry.path, outside)), entry.path)


@check("length", "max_length")
def length(entry: Entry) -> None:
    rule = entry.rule
    good = _valid_string(entry)
    assert not _about(_violations(entry, _at(entry.path, good)), entry.path), good
    hi = min(rule.get("length", {}).get("max", 1 << 30), rule.get("max_length", 1 << 30))
    too_long = (good * (hi // len(good) + 2))[: hi + 1]
    assert _about(_violations(entry, _at(entry.path, too_long)), entry.path)
    lo = rule.get("length", {}).get("min", 0)
    if lo:
        assert _about(_violations(entry, _at(entry.path, good[: lo - 1] or "a")), entry.path)


@check("min")
def minimum(entry: Entry) -> None:
    assert not _about(_violations(entry, _at(entry.path, entry.rule["min"])), entry.path)
    assert _about(_violations(entry, _at(entry.path, entry.rule["min"] - 1)), entry.path)


@check("max_items")
def max_items(entry: Entry) -> None:
    limit = entry.rule["max_items"]
    assert not _about(_violations(entry, {entry.path: [{}] * limit}), entry.path, summary="Too many")
    assert _about(_violations(entry, {entry.path: [{}] * (limit + 1)}), entry.path, summary="Too many")


def _set(entry: Entry, path: str, config: dict[str, Any] | None = None, variant: int = 0) -> dict[str, Any]:
    return _at(path, _sample(_spec(entry.block, path), variant), config)


@check("conflicts_with")
def conflicts_with(entry: Entry) -> None:
    for other in entry.rule["conflicts_with"]:
        alone = _set(entry, entry.path, {} if _configure_time(entry) else None)
        both = _set(entry, other, alone)
        if _configure_time(entry):  # ProviderConfigure: only both true conflict
            assert ProviderConfig.from_config({entry.path: True, other: False})
            with pytest.raises(CloudError) as error:
                ProviderConfig.from_config({entry.path: True, other: True})
            assert error.value.path[0] in (entry.path, other)
            assert not _about(_violations(entry, {entry.path: True, other: True}), entry.path)
            continue
        assert not _about(_violations(entry, alone), entry.path, other, summary=CONFLICT)
        assert _about(_violations(entry, both), entry.path, summary=CONFLICT)


@check("required_with")
def required_with(entry: Entry) -> None:
    for needed in entry.rule["required_with"]:
        alone = _set(entry, entry.path)
        assert _about(_violations(entry, alone), entry.path, summary=MISSING)
        assert not _about(_violations(entry, _set(entry, needed, alone)), entry.path, summary=MISSING)


@check("exactly_one_of", "at_least_one_of")
def one_of(entry: Entry) -> None:
    key = "exactly_one_of" if "exactly_one_of" in entry.rule else "at_least_one_of"
    group = entry.rule[key]
    empty = _at(entry.path, None)  # the enclosing block present, none of the group set
    assert _about(_violations(entry, empty), *group, summary=COMBINATION), "none of the group set"
    one = _set(entry, entry.path)
    assert not _about(_violations(entry, one), *group, summary=COMBINATION)
    if key == "exactly_one_of":
        other = next(g for g in group if g != entry.path)
        assert _about(_violations(entry, _set(entry, other, one)), *group, summary=COMBINATION), "two set"


# --- plan-time facts ---------------------------------------------------------------------------


def _plan(entry: Entry, prior: dict | None, config: dict, provider: ProviderConfig | None = None):
    rtype = resource_type(entry.source, entry.kind, entry.type_name)
    return rtype.plan(copy.deepcopy(prior), copy.deepcopy(config), config, provider or ProviderConfig())


def _stored(planned: Any) -> Any:
    """A planned value as state holds it after apply: unknowns resolved (here: to null)."""
    if isinstance(planned, dict):
        return {k: _stored(v) for k, v in planned.items()}
    if isinstance(planned, list):
        return [_stored(v) for v in planned]
    return None if planned is checker.UNKNOWN else planned


def _value(state: dict | None, path: str) -> Any:
    """The value at a recorded path (`block.0.field`), read as the fake's plan rules read it."""
    return planning.get(state, planning.steps(path))


@check("force_new")
def force_new(entry: Entry) -> None:
    if not entry.rule["force_new"]:
        return
    spec = _spec(entry.block, entry.path)
    before = _at(entry.path, _sample(spec, 0))
    after = _at(entry.path, _sample(spec, 1) if spec[0] == "attribute" else [{"changed": True}])
    if spec[0] == "block":
        before = {entry.path: [{}]}
    prior = _stored(_plan(entry, None, before)[0])
    _, replace = _plan(entry, prior, before)
    assert not replace, "no change, no replacement"
    _, replace = _plan(entry, prior, after)
    assert tuple(entry.path.split(".")[:1]) in {r[:1] for r in replace}, replace


@check("default", "default_mechanism", "values_handled_by_code", "effective_default", "default_derivation")
def default(entry: Entry) -> None:
    rule = entry.rule
    expected = rule.get("default", rule.get("effective_default", "DELETE"))
    if entry.kind == "provider":
        assert getattr(ProviderConfig.from_config({}), entry.path) == expected
        other = not expected if isinstance(expected, bool) else "PROACTIVE"
        assert getattr(ProviderConfig.from_config({entry.path: other}), entry.path) == other
        return
    parent = entry.path.rsplit(".", 2)[0] if "." in entry.path else None
    config = _at(parent, [{}]) if parent else {}
    planned, _ = _plan(entry, None, config)
    assert _value(planned, entry.path) == expected, planned
    if "." not in entry.path and entry.path == "deletion_policy":  # the provider block's choice wins
        planned, _ = _plan(entry, None, config, ProviderConfig(deletion_policy="ABANDON"))
        assert planned["deletion_policy"] == "ABANDON"
    chosen = _sample(_spec(entry.block, entry.path), 1)
    if chosen == expected:
        chosen = _sample(_spec(entry.block, entry.path), 2)
    planned, _ = _plan(entry, None, _at(entry.path, chosen, config))
    assert _value(planned, entry.path) == chosen


@check("diff_suppress")
def diff_suppress(entry: Entry) -> None:
    sample = {"location": ("EU", "eu", "US"), "member": ("user:Ann@example.com", "user:ann@example.com", "user:bo@x.y")}
    old, same, different = sample[entry.path]
    planned, replace = _plan(entry, {entry.path: old}, {entry.path: same})
    assert planned[entry.path] == old and not replace
    planned, replace = _plan(entry, {entry.path: old}, {entry.path: different})
    assert planned[entry.path] == different.upper() if entry.path == "location" else different


@check("set_hash")
def set_hash(entry: Entry) -> None:
    prior = {"access": [{"role": "OWNER", "user_by_email": "Ann@Example.com"}]}
    planned, _ = _plan(
        entry, prior, {"access": [{"role": "roles/bigquery.dataOwner", "user_by_email": "ann@example.com"}]}
    )
    assert planned["access"] == prior["access"], "the same set element: no diff"
    planned, _ = _plan(
        entry, prior, {"access": [{"role": "roles/bigquery.dataEditor", "user_by_email": "ann@example.com"}]}
    )
    assert planned["access"] != prior["access"]


@check("behavior")
def behaviour(entry: Entry) -> None:
    """deletion_policy on delete: PREVENT refuses, ABANDON forgets, anything else deletes."""
    import tempfile
    from pathlib import Path

    store = Store(Path(tempfile.mkdtemp()) / "store.sqlite")
    cloud = Cloud(store)
    rtype = resource_type(entry.source, entry.kind, entry.type_name)
    state = {"id": "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com"}
    store.put(entry.type_name, state["id"], state)
    with pytest.raises(CloudError, match="deletion_policy"):
        rtype.delete({**state, "deletion_policy": "PREVENT"}, cloud)
    rtype.delete({**state, "deletion_policy": "ABANDON"}, cloud)
    assert store.get(entry.type_name, state["id"]) is not None
    rtype.delete({**state, "deletion_policy": "DELETE"}, cloud)
    assert store.get(entry.type_name, state["id"]) is None


# --- notes: what an entry's `note` says in words ---------------------------------------------------------
#
# A note may describe a validator no structured key records (a ValidateFunc by name, an item count, a value
# the provider refuses), say that there is none, describe a plan or delete behaviour, or only remark. Every
# note is read against the table below, one row per recognised wording: the validators (VALIDATOR: what
# it rejects, checked both ways at the step where the provider rejects it; NO_VALIDATOR: that the fake
# rejects nothing either), the behaviours checked here (BEHAVIOUR), and remarks, which describe no
# validator (REMARK: why there is nothing to check here). A note no row recognises fails, and so does a
# word of validation (VALIDATION_WORDS) outside the text a VALIDATOR or NO_VALIDATOR row recognised: a
# validator the fake has no check for. Teach the fake (tests/fakegcp/constraints.py), then this table.

VALIDATOR, NO_VALIDATOR, BEHAVIOUR, REMARK = "validator", "no validator", "behaviour", "remark"
NoteCheck = Callable[[Entry, re.Match[str]], None]


@dataclass(frozen=True)
class NotePattern:
    pattern: str  # a regex searched in the note; what it matches is the text this row understands
    kind: str  # VALIDATOR, NO_VALIDATOR, BEHAVIOUR or REMARK
    check: NoteCheck | None = None  # what the note says, checked (None: a remark)
    why: str = ""  # a remark's reason to check nothing here


NOTE_PATTERNS: list[NotePattern] = []

# Words that describe validation; each must lie inside the text a VALIDATOR or NO_VALIDATOR row matched.
VALIDATION_WORDS = re.compile(
    r"(?i:validat\w*|regexp?|\bmust\b|\bchecked\b|\benforced\b|\brejects?\b|\binvalid\b|\bnot allowed\b"
    r"|\bone of\b|\bat (?:least|most)\b|\blength\b|\bbetween\b|\bmin(?:imum)?\b|\bmax(?:imum)?\b)"
    r"|\bM(?:in|ax)Items\b|\bString\w*(?:Slice|Between|Match\w*)\b|\bInt(?:Between|AtLeast|AtMost|InSlice)\b"
    r"|\bIs[A-Z]\w*|\bConflictsWith\b|\bExactlyOneOf\b|\bAtLeastOneOf\b|\bRequiredWith\b"
)


def _note(pattern: str, kind: str = VALIDATOR) -> Callable[[NoteCheck], NoteCheck]:
    def register(function: NoteCheck) -> NoteCheck:
        NOTE_PATTERNS.append(NotePattern(pattern, kind, function))
        return function

    return register


def _remark(pattern: str, why: str) -> None:
    NOTE_PATTERNS.append(NotePattern(pattern, REMARK, why=why))


# validators a note describes


@_note(r"validateIAMMember: value must NOT match \^deleted .*? and MUST match the \(unanchored\) regex")
def iam_member_validator(entry: Entry, _: re.Match[str]) -> None:
    for good in ("user:ann@example.com", "serviceAccount:r@p.iam.gserviceaccount.com", "allUsers", "the allUsers"):
        assert not _about(_violations(entry, _at(entry.path, good)), entry.path), good
    for bad in ("deleted:user:ann@example.com?uid=1", "ann@example.com"):
        assert _about(_violations(entry, _at(entry.path, bad)), entry.path), bad


@_note(r"ValidateFunc verify\.ValidateRegexp\(verify\.\w+\) \(regexp\.MatchString, i\.e\. unanchored at the start\)")
def unanchored_regexp(entry: Entry, _: re.Match[str]) -> None:
    good = _matching(entry.rule["regex"])
    for value in (good, f"//iam.googleapis.com/{good}"):
        assert not _about(_violations(entry, _at(entry.path, value)), entry.path), value
    assert _about(_violations(entry, _at(entry.path, _not_matching(entry.rule["regex"]))), entry.path)


@_note(
    r'validateProjectServiceService: must not be "([^"]+)" \(verify\.StringNotInSlice, case-sensitive\) '
    r"and must contain a '(.)'"
)
def project_service_name(entry: Entry, noted: re.Match[str]) -> None:
    banned, needed = noted[1], noted[2]
    for good in ("dataform.googleapis.com", banned.upper()):  # StringNotInSlice(..., false): case-sensitive
        assert not _about(_violations(entry, _at(entry.path, good)), entry.path), good
    without = "dataform-googleapis-com".replace(needed, "")
    for bad in (banned, without):
        assert _about(_violations(entry, _at(entry.path, bad)), entry.path, summary="Invalid value"), bad


@_note(r"\bMinItems (\d+)\b")
def min_items(entry: Entry, noted: re.Match[str]) -> None:
    least = int(noted[1])
    sample = _sample(_spec(entry.block, entry.path))
    element = sample[0] if isinstance(sample, list) else sample
    assert not _about(_violations(entry, _at(entry.path, [element] * least)), entry.path, summary="Not enough")
    assert _about(_violations(entry, _at(entry.path, [element] * (least - 1))), entry.path, summary="Not enough")
    unknown = _at(entry.path, [checker.UNKNOWN] * max(least - 1, 1))  # SDKv2 counts only a wholly known list
    assert not _about(_violations(entry, unknown), entry.path, summary="Not enough")


@_note(r"\bMaxItems (\d+)\b")
def max_items_noted(entry: Entry, noted: re.Match[str]) -> None:
    limit = int(noted[1])
    assert entry.rule.get("max_items", limit) == limit, "the note and max_items agree"
    assert not _about(_violations(entry, {entry.path: [{}] * limit}), entry.path, summary="Too many")
    assert _about(_violations(entry, {entry.path: [{}] * (limit + 1)}), entry.path, summary="Too many")


@_note(r"ValidateFunc validation\.IsCIDR")
def is_cidr(entry: Entry, _: re.Match[str]) -> None:
    assert not _about(_violations(entry, _at(entry.path, "10.0.0.0/8")), entry.path.rstrip(".*"))
    assert _about(_violations(entry, _at(entry.path, "10.0.0.0")), entry.path.rstrip(".*"))


@_note(r"labelKeyValidator: regex applies to every map KEY \(not value\)")
def label_keys(entry: Entry, _: re.Match[str]) -> None:
    key = _matching(entry.rule["regex"])
    assert not _about(_violations(entry, _at(entry.path, {key: "Any Value: not checked"})), entry.path)
    assert _about(_violations(entry, _at(entry.path, {"Bad Key": "v"})), entry.path)


@_note(r"checked in ProviderConfigure \(not a schema validator\), only when (\w+) is true")
def configure_time_enum(entry: Entry, noted: re.Match[str]) -> None:
    outside = "NOT_ONE_OF_THEM"
    assert not _violations(entry, {entry.path: outside}), "not at validate"
    for flag in (None, True):
        with pytest.raises(CloudError) as error:
            ProviderConfig.from_config({entry.path: outside, noted[1]: flag})
        assert error.value.path == (entry.path,)
    assert ProviderConfig.from_config({entry.path: outside, noted[1]: False})


@_note(r"enforced in ProviderConfigure when both are true, not a schema ConflictsWith")
def configure_time_conflict(entry: Entry, _: re.Match[str]) -> None:
    for other in entry.rule["conflicts_with"]:
        assert not _violations(entry, {entry.path: True, other: True}), "not at validate"
        assert ProviderConfig.from_config({entry.path: True, other: False})
        with pytest.raises(CloudError):
            ProviderConfig.from_config({entry.path: True, other: True})


@_note(r"ProviderConfigure: must match universe_domain found in credentials")
def universe_domain(entry: Entry, _: re.Match[str]) -> None:
    assert ProviderConfig.from_config({"universe_domain": "googleapis.com"})
    with pytest.raises(CloudError) as error:
        ProviderConfig.from_config({"universe_domain": "example-sovereign.cloud"})
    assert error.value.path == ("universe_domain",)


# notes that say there is no validator: the fake rejects nothing either


@_note(r"No ValidateFunc: any string is accepted at plan time|no schema Default and no ValidateFunc", NO_VALIDATOR)
def any_string(entry: Entry, _: re.Match[str]) -> None:
    for value in ("DELETE", "ANYTHING", "lower case, spaces!", ""):
        assert not _about(_violations(entry, _at(entry.path, value)), entry.path), value


@_note(r"no validation; used as the default deletion_policy", NO_VALIDATOR)
def provider_deletion_policy(entry: Entry, _: re.Match[str]) -> None:
    assert ProviderConfig.from_config({"deletion_policy": "ANY VALUE"}).deletion_policy == "ANY VALUE"
    assert not _violations(entry, {"deletion_policy": "ANY VALUE"})


# behaviours a note describes, checked here


@_note(r"StateFunc: each element upper-cased", BEHAVIOUR)
def upper_cased(entry: Entry, _: re.Match[str]) -> None:
    planned, _ = _plan(entry, None, _at(entry.path, "europe-west2"))
    assert _value(planned, entry.path.rsplit(".", 1)[0]) == ["EUROPE-WEST2"]
    planned, _ = _plan(entry, None, _at(entry.path, "EU"))
    assert _value(planned, entry.path.rsplit(".", 1)[0]) == ["EU"]


@_note(r"adding/removing a block whose enabled=false is suppressed", BEHAVIOUR)
def autoclass_disabled(entry: Entry, _: re.Match[str]) -> None:
    planned, _ = _plan(entry, {"autoclass": []}, {"autoclass": [{"enabled": False}]})
    assert planned["autoclass"] == []
    planned, _ = _plan(entry, {"autoclass": []}, {"autoclass": [{"enabled": True}]})
    assert planned["autoclass"] == [{"enabled": True}]


@_note(r"old mode == 'Disabled'", BEHAVIOUR)
def ip_filter_disabled(entry: Entry, _: re.Match[str]) -> None:
    prior = {"ip_filter": [{"mode": "Disabled"}]}
    planned, _ = _plan(entry, prior, {"ip_filter": []})
    assert planned["ip_filter"] == prior["ip_filter"]
    planned, _ = _plan(entry, {"ip_filter": [{"mode": "Enabled"}]}, {"ip_filter": []})
    assert planned["ip_filter"] == []


@_note(r"old != '' && new == '' suppressed", BEHAVIOUR)
def website_kept(entry: Entry, _: re.Match[str]) -> None:
    field = entry.path.rsplit(".", 1)[1]
    prior = {"website": [{field: "index.html"}]}
    planned, _ = _plan(entry, prior, {"website": [{field: ""}]})
    assert planned["website"][0][field] == "index.html"
    planned, _ = _plan(entry, prior, {"website": [{field: "home.html"}]})
    assert planned["website"][0][field] == "home.html"


@_note(r"delete skips disabling the service unless true", BEHAVIOUR)
def disable_on_destroy(entry: Entry, _: re.Match[str]) -> None:
    import tempfile
    from pathlib import Path

    cloud = Cloud(Store(Path(tempfile.mkdtemp()) / "store.sqlite"))
    cloud.store.add_project("p", "1")
    rtype = resource_type(entry.source, entry.kind, entry.type_name)
    for flag, enabled_after in ((None, True), (False, True), (True, False)):
        cloud.enable_service("p", "dataform.googleapis.com")
        rtype.delete({"project": "p", "service": "dataform.googleapis.com", "disable_on_destroy": flag}, cloud)
        assert cloud.service_enabled("p", "dataform.googleapis.com") is enabled_after, flag


@_note(r"Optional, NOT Computed, no Default", BEHAVIOUR)
def region_stays_null(entry: Entry, _: re.Match[str]) -> None:
    planned, _ = _plan(entry, None, {"name": "r"}, ProviderConfig(region="europe-west2"))
    assert planned.get("region") is None
    planned, _ = _plan(entry, None, {"name": "r", "region": "us-east1"}, ProviderConfig(region="europe-west2"))
    assert planned["region"] == "us-east1"


@_note(r"CustomizeDiff ForceNewIfChange\(([\w.]+), \w+\): forces replacement when old=true and new=false", BEHAVIOUR)
def unlocking_replaces(entry: Entry, noted: re.Match[str]) -> None:
    locked, unlocked = _at(noted[1], True), _at(noted[1], False)
    _, replace = _plan(entry, _stored(_plan(entry, None, locked)[0]), unlocked)
    assert planning.steps(noted[1]) in replace, replace
    _, replace = _plan(entry, _stored(_plan(entry, None, unlocked)[0]), locked)
    assert not replace


# remarks: no validator described, nothing more to check here

_remark(r"^DiffSuppressFunc (?:tpgresource\.)?Compare\w+", "plan-time (planning.SUPPRESSORS), no validation")
_remark(r"DiffSuppressFunc iamMemberCaseDiffSuppress", "plan-time (planning.SUPPRESSORS), no validation")
_remark(r"DiffSuppressFunc hierachicalNamespaceDiffSuppress", "plan-time, no validation (not modelled by the fake)")
_remark(r"^StateFunc: value stored upper-cased", "plan-time (types.Bucket), no validation")
_remark(r"^Optional\+Computed; planned from provider project", "plan-time (engine._plan_defaults), no validation")
_remark(r"CustomizeDiff tpgresource\.DefaultProviderProject", "plan-time (engine._plan_defaults), no validation")
_remark(r"Delete\(\): PREVENT -> returns error", "delete-time: the `default`/`behavior` keys' checks")
_remark(r"Values acted on: PREVENT", "delete-time: the `effective_default` key's check")
_remark(r"^SDKv2 Default true \(FW attribute has no default", "the `default` key's check")
_remark(r"^Optional in schema \(no Required\), but substituted verbatim", "the API's malformed URL, no validation")


def _note_checks(entry: Entry) -> list[Callable[[], None]]:
    """The checks of what the entry's note says; fails on a note, or a validator in it, no row recognises."""
    note = entry.rule.get("note", "")
    if not note:
        return []
    found = [(row, match) for row in NOTE_PATTERNS if (match := re.search(row.pattern, note))]
    assert found, (
        f"{entry}: the offline provider does not understand the note {note!r}: if it describes a validator, "
        "teach it (tests/fakegcp/constraints.py), then NOTE_PATTERNS; if not, record it there as a remark"
    )
    understood = [match.span() for row, match in found if row.kind in (VALIDATOR, NO_VALIDATOR)]
    for word in VALIDATION_WORDS.finditer(note):
        assert any(start <= word.start() and word.end() <= end for start, end in understood), (
            f"{entry}: the note describes a validator ({word[0]!r} in {note!r}) the offline provider has no "
            "check for: teach it (tests/fakegcp/constraints.py), then NOTE_PATTERNS"
        )
    return [functools.partial(row.check, entry, match) for row, match in found if row.check is not None]


IGNORED_KEYS = {"path", "note"}


def _checks_for(entry: Entry) -> list[Callable[[], None]]:
    keys = set(entry.rule) - IGNORED_KEYS
    found: list[Check] = []
    for key in sorted(keys):
        assert key in CHECKS, f"{entry}: the offline provider has no check for {key!r}: teach it, then this test"
        if CHECKS[key] not in found:
            found.append(CHECKS[key])
    return [functools.partial(function, entry) for function in found] + _note_checks(entry)


NOTED = [entry for entry in ENTRIES if entry.rule.get("note")]


def test_every_note_pattern_recognises_a_note():
    """No row of the table is stale: each recognises a note of constraints.json."""
    for row in NOTE_PATTERNS:
        assert any(re.search(row.pattern, entry.rule["note"]) for entry in NOTED), row.pattern
        assert (row.check is None) == (row.kind == REMARK) and (row.kind != REMARK or row.why), row


@pytest.mark.parametrize(
    "note",
    [
        "ValidateFunc validation.StringIsJSON",
        "MinItems 1; each element must be lower-case",  # the count is known, the second rule is not
        "DiffSuppressFunc tpgresource.CompareResourceNames; ValidateFunc verify.ValidateEnum",
        "a wording no row knows",
    ],
)
def test_a_note_describing_an_unknown_validator_fails_until_taught(note):
    entry = Entry(
        "registry.terraform.io/hashicorp/google",
        "resource",
        "google_storage_bucket",
        99,
        {
            "path": "custom_placement_config.0.data_locations",
            "note": note,
        },
    )
    with pytest.raises(AssertionError, match="teach it"):
        _note_checks(entry)


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_every_recorded_constraint_is_enforced_both_ways(entry):
    checks = _checks_for(entry)
    assert checks, f"{entry}: nothing in this entry is checked: {entry.rule}"
    for function in checks:
        function()
