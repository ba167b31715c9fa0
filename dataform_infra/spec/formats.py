"""Identifier formats Google enforces, as reusable annotated string types.

Each type fails with a sentence a user can act on instead of a bare regular expression. The
rules are the ones the APIs (and the provider's validators, where it has them) apply.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from dataform_infra.spec.cron import CronError, parse_cron


def _matching(pattern: str, rule: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not valid: {rule}")
        return value

    return AfterValidator(check)


ProjectId = Annotated[
    str,
    _matching(
        r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
        "a project id is 6-30 lowercase letters, digits or hyphens, starts with a letter "
        "and does not end with a hyphen",
    ),
]


def _number_as_text(value: object) -> object:
    # YAML reads an unquoted project number as an int; both spellings mean the same number.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ProjectNumber = Annotated[
    str,
    BeforeValidator(_number_as_text),
    _matching(r"[1-9][0-9]{5,19}", "a project number is the numeric id shown in the console (6-20 digits)"),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": "^[1-9][0-9]{5,19}$"}, {"type": "integer", "minimum": 100000}]}
    ),
]

# Where another team's object lives: its project's id, or its number (as Google's own outputs and many teams
# name it, e.g. `projects/123456789012/secrets/...`).
ProjectIdOrNumber = Annotated[
    str,
    BeforeValidator(_number_as_text),
    _matching(
        r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[1-9][0-9]{5,19}",
        "a project is named by its id (6-30 lowercase letters, digits or hyphens, starting with a letter) or its "
        "number (6-20 digits)",
    ),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": "^([a-z][a-z0-9-]{4,28}[a-z0-9]|[1-9][0-9]{5,19})$"},
                {"type": "integer", "minimum": 100000},
            ]
        }
    ),
]
Region = Annotated[str, _matching(r"[a-z]+-[a-z]+[0-9]+", "a region looks like 'europe-west2' or 'us-central1'")]

KmsKeyName = Annotated[
    str,
    _matching(
        r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z0-9-]+/keyRings/[A-Za-z0-9_-]{1,63}"
        r"/cryptoKeys/[A-Za-z0-9_-]{1,63}",
        "a Cloud KMS key looks like 'projects/<p>/locations/<l>/keyRings/<ring>/cryptoKeys/<key>'",
    ),
]
BigQueryLocation = Annotated[
    str,
    _matching(r"(US|EU|[a-z]+-[a-z]+[0-9]+)", "a BigQuery location is 'US', 'EU' or a region like 'europe-west2'"),
]

ServiceAccountId = Annotated[
    str,
    _matching(
        r"[a-z](?:[-a-z0-9]{4,28}[a-z0-9])",
        "a service account id is 6-30 lowercase letters, digits or hyphens, starts with a letter "
        "and does not end with a hyphen",
    ),
]

ServiceAccountEmail = Annotated[
    str,
    _matching(
        r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com",
        "a runner's email looks like 'name@project-id.iam.gserviceaccount.com' (a custom service account)",
    ),
]
SecretId = Annotated[
    str, _matching(r"[A-Za-z0-9_-]{1,255}", "a secret id is 1-255 letters, digits, underscores or hyphens")
]

DataformId = Annotated[
    str,
    _matching(
        r"[A-Za-z][A-Za-z0-9_-]{0,62}",
        "Dataform names are 1-63 letters, digits, underscores or hyphens and start with a letter",
    ),
]

RunnerRef = Annotated[
    str,
    _matching(
        r"(?:[a-z][a-z0-9_-]{0,29}/)?[a-z](?:[-a-z0-9]{4,28}[a-z0-9])",
        "a runner is named `<runner>` (a runner of the host environment) or `<environment>/<runner>`",
    ),
]

DatasetId = Annotated[str, _matching(r"[A-Za-z0-9_]{1,1024}", "a dataset id is letters, digits and underscores only")]

GitRepositoryLink = Annotated[
    str,
    _matching(
        r"projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/locations/[a-z]+-[a-z]+[0-9]+/connections/[A-Za-z0-9_-]{1,63}"
        r"/gitRepositoryLinks/[A-Za-z0-9_-]{1,63}",
        "a Developer Connect link looks like "
        "'projects/<p>/locations/<region>/connections/<connection>/gitRepositoryLinks/<link>'",
    ),
]

# Dataform replaces `${workspaceName}` with the workspace's name when a workspace compiles.
WORKSPACE_NAME = "${workspaceName}"
WorkspaceNamePart = Annotated[
    str,
    _matching(
        # Empty is allowed and means none (#24: teams write `schema_suffix: ""`, which Google accepts).
        r"(?:[A-Za-z0-9_]|\$\{workspaceName\}){0,128}",
        "a workspace suffix or prefix is letters, digits, underscores and `${workspaceName}` (no other ${...})",
    ),
]

# A dataset of this environment (`raw_events`) or, for reads, of another project (`acme-ingest.raw_events`).
DatasetRef = Annotated[
    str,
    _matching(
        r"([a-z][a-z0-9-]{4,28}[a-z0-9]\.)?[A-Za-z0-9_]{1,1024}",
        "a dataset is `dataset_id`, or `project-id.dataset_id` for another project's",
    ),
]
ConnectionRef = Annotated[
    str,
    _matching(
        r"[a-z][a-z0-9-]{4,28}[a-z0-9]\.[A-Za-z0-9-]{2,40}\.[A-Za-z0-9_-]{1,1024}",
        "a connection is `project-id.location.connection_id`, as SQL names it (`WITH CONNECTION`)",
    ),
]
BucketName = Annotated[
    str,
    _matching(
        r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]",
        "a bucket name is 3-63 lowercase letters, digits, dots, underscores or hyphens, "
        "starting and ending with a letter or digit",
    ),
]

# What an event trigger or an alert names. Each value reaches a Cloud Logging filter, an Eventarc filter or a Workflows
# environment variable, never the Workflows source: these rules are Google's, and quoting does the rest.
ObjectPrefix = Annotated[
    str,
    _matching(
        r"[^\x00-\x1f\x7f]{1,1024}",
        "an object prefix is up to 1024 characters of an object name, without control characters",
    ),
]
TopicRef = Annotated[
    str,
    _matching(
        r"(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/)?(?!goog)[A-Za-z][A-Za-z0-9_.~+%-]{2,254}",
        "a topic is its id (3-255 letters, digits, `-_.~+%`, starting with a letter, not with 'goog') in the "
        "environment's project, or `projects/<project>/topics/<id>`",
    ),
]


def topic_name(project: str, ref: str) -> str:
    """A Pub/Sub topic's full name: `ref` as `projects/<p>/topics/<t>`, or its id in `project`."""
    return ref if ref.startswith("projects/") else f"projects/{project}/topics/{ref}"


BucketLocation = Annotated[
    str, _matching(r"[a-z]+(-[a-z]+[0-9]+)?", "a bucket location is a region ('europe-west2') or 'eu', 'us', 'asia'")
]
ServiceName = Annotated[
    str,
    _matching(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*\.googleapis\.com", "a service is e.g. 'bigquery.googleapis.com'"),
]
MethodName = Annotated[
    str,
    _matching(
        r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+",
        "a method is its audit-log name, e.g. 'google.cloud.bigquery.v2.JobService.InsertJob'",
    ),
]
ResourcePattern = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9_.*-]+(/[A-Za-z0-9_.*-]+)*",
        "a resource is an audit-log resource name or path pattern, e.g. 'projects/p/datasets/raw/tables/*'",
    ),
]
EmailAddress = Annotated[
    str, _matching(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "an e-mail address is name@example.com")
]
HttpsUrl = Annotated[
    str,
    _matching(
        r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?",
        "a webhook is an https:// URL without a query string (a token there would sit in Terraform state)",
    ),
]
Duration = Annotated[str, _matching(r"[1-9][0-9]{0,6}s", "a duration is whole seconds, e.g. '300s'")]

StatePrefix = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*",
        "a state prefix is a relative object path such as 'dataform/prod' (no leading or trailing '/')",
    ),
]

LabelKey = Annotated[
    str,
    _matching(
        r"[a-z][a-z0-9_-]{0,62}",
        "label keys are 1-63 lowercase letters, digits, underscores or hyphens and start with a letter",
    ),
]
LabelValue = Annotated[
    str,
    _matching(r"[a-z0-9_-]{0,63}", "label values are up to 63 lowercase letters, digits, underscores or hyphens"),
]

EnvironmentName = Annotated[
    str,
    _matching(
        r"[a-z][a-z0-9_-]{0,29}",
        "an environment name (the file name) is 1-30 lowercase letters, digits, '_' or '-', starting with a letter",
    ),
]

_MEMBER = re.compile(
    r"(user|group|serviceAccount):[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|domain:[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|principal(Set)?://[!-~]+"
)


def _check_member(value: str) -> str:
    if value in ("allUsers", "allAuthenticatedUsers"):
        raise ValueError(f"{value!r} would make the grant public; name a user, group or service account")
    if not _MEMBER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an IAM principal: write 'user:someone@example.com', 'group:team@example.com', "
            "'serviceAccount:name@project.iam.gserviceaccount.com', 'domain:example.com' or a principal:// URI"
        )
    return value


Member = Annotated[str, AfterValidator(_check_member)]


# tzdata files that are not zones a schedule can name.
_NOT_ZONES = frozenset({"posixrules", "Factory", "localtime"})


def _check_time_zone(value: str) -> str:
    problem = f"{value[:60]!r} is not an IANA time zone (e.g. 'Europe/London', 'Etc/UTC')"
    if len(value) > 64 or value in _NOT_ZONES:
        raise ValueError(problem)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as 'Europe'
        raise ValueError(problem) from None
    return value


TimeZone = Annotated[str, AfterValidator(_check_time_zone)]


def _check_cron(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty cron never fires: leave `cron` out to compile or run only by hand")
    if not re.fullmatch(r"[ -~]+", value):  # a newline, a tab or a no-break space would split fields unseen
        raise ValueError(f"{value!r} is not a unix-cron schedule: use plain ASCII fields separated by spaces")
    try:
        parse_cron(value)
    except CronError as exc:
        raise ValueError(f"{value!r} is not a unix-cron schedule: {exc}") from None
    return value


Cron = Annotated[str, AfterValidator(_check_cron)]


def _check_git_ref(value: str) -> str:
    # git check-ref-format's rules, the ones that matter for a branch, tag or commit sha.
    bad = (
        not value
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "@{" in value
        or "//" in value
        or any(c in value for c in " ~^:?*[\\")
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    )
    if bad:
        raise ValueError(f"{value!r} is not a valid git branch, tag or commit")
    return value


GitRef = Annotated[str, AfterValidator(_check_git_ref)]


def _check_text(value: str) -> str:
    if any(ord(c) < 0x20 and c not in "\t" for c in value):
        raise ValueError("must be a single line of text without control characters")
    return value


Text = Annotated[str, AfterValidator(_check_text)]
"""Free text (display names, descriptions, reasons): any characters but no line breaks."""


@lru_cache(maxsize=8192)  # one spec name slugs again for every grant it appears in
def slug(text: str) -> str:
    """`dataform-runner` -> `dataform_runner`; `group:data-eng@acme.com` -> `data_eng`: how a spec name
    becomes part of a Terraform identifier (two names with one slug would collide, see the loader)."""
    text = text.split(":", 1)[-1].split("@", 1)[0].lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return text if text and not text[0].isdigit() else f"_{text}"


# An environment's name: its spec file's stem, and how other specs refer to it (`host:`, `run_as: [env/runner]`).
ENV_NAME_PATTERN = r"[a-z][a-z0-9_-]{0,29}"

SecretVersion = Annotated[int, Field(ge=1, description="A secret version number (versions start at 1).")]


# The Google provider lines dfinfra's rendered HCL, its checks and its offline cloud cover: 7.45 and later 7.x,
# and 8.x (8.7.0 is the current release; see tests/provider_schema).
SUPPORTED_PROVIDERS = ((7, 45, 0), (9, 0, 0))  # from (inclusive), until (exclusive)
CURRENT_PROVIDER = "~> 8.7"
_CLAUSE = re.compile(r"\s*(=|!=|>=|<=|>|<|~>)?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*")


def _bounds(constraint: str) -> tuple[tuple[int, int, int], tuple[int, int, int] | None]:
    """The lowest version a Terraform version constraint admits and the first it no longer admits (None:
    unbounded), for the operators Terraform has (`!=` narrows nothing here)."""
    low, high = (0, 0, 0), None
    for clause in constraint.split(","):
        found = _CLAUSE.fullmatch(clause)
        if not found:
            raise ValueError(f"{clause.strip()!r} is not a Terraform version constraint (e.g. {CURRENT_PROVIDER})")
        op, *parts = found.groups()
        given = [int(p) for p in parts if p is not None]
        version = (*given, *([0] * (3 - len(given))))
        assert len(version) == 3
        at = (version[0], version[1], version[2])
        if op in (None, "=", ">=", "~>"):
            low = max(low, at)
        elif op == ">":
            low = max(low, (at[0], at[1], at[2] + 1))
        ends: tuple[int, int, int] | None = None
        if op in (None, "="):
            ends = (at[0], at[1], at[2] + 1)
        elif op in ("<", "<="):
            ends = at if op == "<" else (at[0], at[1], at[2] + 1)
        elif op == "~>" and len(given) == 2:
            ends = (at[0] + 1, 0, 0)
        elif op == "~>" and len(given) == 3:
            ends = (at[0], at[1] + 1, 0)
        if ends is not None:
            high = ends if high is None else min(high, ends)
    return low, high


def provider_floor(constraint: str) -> tuple[int, int, int]:
    """The lowest provider version a (valid) constraint admits: which line's facts a module is held to."""
    return _bounds(constraint)[0]


def _check_provider_version(value: str) -> str:
    low, high = _bounds(value)
    first, beyond = SUPPORTED_PROVIDERS
    if high is not None and high <= low:
        raise ValueError(f"{value!r} admits no version")
    if low < first:
        raise ValueError(
            f"{value!r} admits Google provider versions before 7.45, which dfinfra's HCL and checks do not cover: "
            f"use {CURRENT_PROVIDER} (current) or ~> 7.45"
        )
    if high is None or high > beyond:
        raise ValueError(
            f"{value!r} admits Google provider versions after 8.x, which dfinfra does not know yet: bound it, "
            f"e.g. {CURRENT_PROVIDER}"
        )
    return value


ProviderVersion = Annotated[str, AfterValidator(_check_provider_version)]
"""A Terraform version constraint for `hashicorp/google` and `-beta` within the lines dfinfra covers."""
