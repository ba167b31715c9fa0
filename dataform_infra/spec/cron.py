"""The unix-cron dialect Dataform accepts for release and workflow schedules.

Parsed here rather than with a cron library because we need exactly two things: reject what
Dataform rejects (five fields, numeric ranges, month/day names, `*`, `,`, `-`, `/`; no macros,
no seconds, no Quartz `?`/`L`/`W`), and compare two schedules to warn when a workflow fires
before the release it runs has compiled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_offset: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, tuple(_MONTHS), 1),
    _Field("day of week", 0, 7, tuple(_DAYS), 0),
)

_TOKEN = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


class CronError(ValueError):
    """A schedule Dataform would reject; the message says which part and why."""


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        # Vixie cron: when both day fields are restricted, either one matching is enough.
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays


def _value(text: str, spec: _Field) -> int:
    upper = text.upper()
    if spec.names and upper in spec.names:
        return spec.names.index(upper) + spec.name_offset
    if not text.isdigit():
        raise CronError(f"{spec.name} field: {text!r} is not a number")
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise CronError(f"{spec.name} field: {number} is outside {spec.low}-{spec.high}")
    return number


def _parse_field(text: str, spec: _Field) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    for part in text.split(","):
        match = _TOKEN.match(part)
        if not match:
            raise CronError(f"{spec.name} field: {part!r} is not a value, range or step")
        rng, step_text = match["range"], match["step"]
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"{spec.name} field: a step must be at least 1")
        if rng == "*":
            low, high = spec.low, spec.high
        elif "-" in rng:
            first, last = rng.split("-", 1)
            low, high = _value(first, spec), _value(last, spec)
            if low > high:
                raise CronError(f"{spec.name} field: range {rng!r} runs backwards")
        else:
            low = _value(rng, spec)
            high = spec.high if step_text else low
        values.update(range(low, high + 1, step))
    if spec.name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values), text != "*"


@lru_cache(maxsize=1024)
def parse_cron(expression: str) -> CronSchedule:
    parts = expression.split()
    if expression.strip().startswith("@"):
        raise CronError("macros such as @daily are not accepted; write five fields, e.g. '30 6 * * *'")
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    (minutes, _), (hours, _), (days, days_r), (months, _), (weekdays, weekdays_r) = (
        _parse_field(text, spec) for text, spec in zip(parts, _FIELDS, strict=True)
    )
    return CronSchedule(minutes, hours, days, months, weekdays, days_r, weekdays_r)


# A week with no DST change in either hemisphere's common zones.
_REFERENCE_MONDAY = datetime(2026, 2, 2)


# Staggering matters for schedules at a daily or hourly pace; one firing more often than every 15
# minutes (672 times a week) is not checked, which also bounds the work a spec can ask for.
MAX_WEEKLY_FIRINGS = 7 * 24 * 4


@lru_cache(maxsize=1024)
def weekly_fire_times(expression: str, time_zone: str, offset_minutes: int | None = None) -> tuple[datetime, ...]:
    """UTC instants at which the schedule fires during the reference week, sorted; () for a schedule
    firing more than MAX_WEEKLY_FIRINGS times a week. With `offset_minutes`, `time_zone` is taken at that
    UTC offset all week (one of its offsets in the year: summer or winter time)."""
    schedule = parse_cron(expression)
    if len(schedule.minutes) * len(schedule.hours) * 7 > MAX_WEEKLY_FIRINGS:
        return ()
    zone: tzinfo = ZoneInfo(time_zone) if offset_minutes is None else timezone(timedelta(minutes=offset_minutes))
    times: list[datetime] = []
    for offset in range(-1, 8):  # a day either side so zone offsets cannot drop a firing
        day = _REFERENCE_MONDAY + timedelta(days=offset)
        if not schedule.matches_day(day):
            continue
        for hour in sorted(schedule.hours):
            for minute in sorted(schedule.minutes):
                local = day.replace(hour=hour, minute=minute, tzinfo=zone)
                times.append(local.astimezone(timezone.utc))
    start = _REFERENCE_MONDAY.replace(tzinfo=timezone.utc)
    return tuple(sorted(t for t in times if start <= t < start + timedelta(days=7)))


@lru_cache(maxsize=256)
def offset_periods(zones: tuple[str, ...]) -> tuple[tuple[tuple[int, ...], date], ...]:
    """Each combination of the zones' UTC offsets (minutes) that holds on some day of the reference year,
    with the first such day: one entry where neither zone changes its clocks, more across DST (the
    zones' transitions need not fall on the same dates, nor in the same season)."""
    found: dict[tuple[int, ...], date] = {}
    loaded = [ZoneInfo(zone) for zone in zones]
    for n in range(365):
        noon = datetime(_REFERENCE_MONDAY.year, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=n)
        offsets = tuple(int((noon.astimezone(z).utcoffset() or timedelta()).total_seconds() // 60) for z in loaded)
        found.setdefault(offsets, noon.date())
    return tuple(found.items())


def stagger_warning(release: tuple[str, str], workflow: tuple[str, str]) -> str | None:
    """Why a workflow's (cron, zone) may run a stale compilation of its release, or None. Compared at every
    pair of UTC offsets the two zones are at together during a year: a workflow at 06:45 Europe/London
    after a release at 06:30 Etc/UTC fires at 05:45 UTC all summer, on yesterday's compilation."""
    periods = offset_periods((release[1], workflow[1]))
    for (release_offset, workflow_offset), since in periods:
        if len(periods) == 1:
            return _stagger(release, workflow)
        why = _stagger((*release, release_offset), (*workflow, workflow_offset))
        if why:
            why = why.replace(_ADVICE, "give both the same time_zone, then stagger the workflow after the release")
            return (
                f"{why} (while {release[1]} is at {_utc(release_offset)} and {workflow[1]} at "
                f"{_utc(workflow_offset)}, as from {since:%d %b})"
            )
    return None


_ADVICE = "stagger it after the release (e.g. release 30 6, workflow 45 6)"


def _utc(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


_Schedule = tuple[str, str] | tuple[str, str, int]  # (cron, zone) or (cron, zone, that zone's UTC offset)


def _stagger(release: _Schedule, workflow: _Schedule) -> str | None:
    release_times = weekly_fire_times(*release)
    workflow_times = weekly_fire_times(*workflow)
    if not release_times or not workflow_times:
        return None
    clash = sorted(set(release_times) & set(workflow_times))
    if clash:
        return f"fires at the same minute as its release ({_describe(clash[0])}), racing the compilation"
    # A workflow firing more often than its release (hourly runs of a daily compilation) is meant
    # to reuse the last compilation; only a schedule at the release's pace must follow it.
    if len(workflow_times) <= len(release_times) and workflow_times[0] < release_times[0]:
        return (
            f"first fires at {_describe(workflow_times[0])}, before its release compiles at "
            f"{_describe(release_times[0])}; {_ADVICE}"
        )
    return None


def _describe(instant: datetime) -> str:
    return instant.strftime("%a %H:%M UTC")
