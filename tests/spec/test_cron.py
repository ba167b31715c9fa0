import pytest

from dataform_infra.spec.cron import CronError, parse_cron, stagger_warning, weekly_fire_times


@pytest.mark.parametrize(
    "expression",
    ["30 6 * * *", "*/15 * * * *", "0 9-17/2 * * MON-FRI", "0 0 1,15 * *", "0 7 * JAN,jul SUN", "5 4 * * 7"],
)
def test_accepts_unix_cron(expression):
    parse_cron(expression)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("@daily", "macros"),
        ("30 6 * *", "expected 5 fields"),
        ("0 30 6 * * *", "expected 5 fields"),
        ("60 6 * * *", "minute field: 60 is outside 0-59"),
        ("0 24 * * *", "hour field"),
        ("0 0 0 * *", "day of month field"),
        ("0 0 * 13 *", "month field"),
        ("0 0 * * 8", "day of week field"),
        ("0 0 ? * *", "not a value"),
        ("0 0 L * *", "not a number"),
        ("0 10-5 * * *", "runs backwards"),
        ("*/0 * * * *", "at least 1"),
    ],
)
def test_rejects_what_dataform_rejects(expression, fragment):
    with pytest.raises(CronError, match=fragment):
        parse_cron(expression)


def test_sunday_is_0_or_7():
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * 0").weekdays == frozenset({0})


def test_fire_times_follow_the_time_zone():
    london = weekly_fire_times("30 6 * * *", "Europe/London")
    new_york = weekly_fire_times("30 6 * * *", "America/New_York")
    assert len(london) == len(new_york) == 7
    assert [t.strftime("%H:%M") for t in london[:1]] == ["06:30"]  # GMT in February
    assert [t.strftime("%H:%M") for t in new_york[:1]] == ["11:30"]


def test_day_fields_combine_with_or_when_both_restricted():
    assert len(weekly_fire_times("0 12 1 * MON", "Etc/UTC")) == 1  # 2 Feb 2026 is a Monday, not the 1st
    assert len(weekly_fire_times("0 12 2 * SUN", "Etc/UTC")) == 2  # the 2nd, and Sunday the 8th


def test_stagger_warning():
    assert stagger_warning(("30 6 * * *", "Etc/UTC"), ("45 6 * * *", "Etc/UTC")) is None
    assert "same minute" in stagger_warning(("30 6 * * *", "Etc/UTC"), ("30 6 * * *", "Etc/UTC"))
    assert "before its release" in stagger_warning(("30 6 * * *", "Etc/UTC"), ("15 6 * * *", "Etc/UTC"))
    # 06:45 in London is after 01:30 in New York (06:30 UTC).
    assert stagger_warning(("30 1 * * *", "America/New_York"), ("45 6 * * *", "Europe/London")) is None
    # Hourly runs of a daily compilation reuse the last compilation on purpose.
    assert stagger_warning(("0 5 * * *", "Etc/UTC"), ("10 * * * *", "Etc/UTC")) is None


def test_stagger_is_compared_at_every_offset_the_two_zones_share_in_a_year():
    """#23: a release at 06:30 Etc/UTC and a workflow at 06:45 Europe/London are staggered in winter, but
    all summer the workflow fires at 05:45 UTC, on yesterday's compilation. One reference week in
    February could not see it."""
    why = stagger_warning(("30 6 * * *", "Etc/UTC"), ("45 6 * * *", "Europe/London"))
    assert why is not None
    assert "first fires at Mon 05:45 UTC, before its release compiles at Mon 06:30 UTC" in why
    assert "while Etc/UTC is at UTC+00:00 and Europe/London at UTC+01:00, as from 29 Mar" in why
    # The same local times in one zone stay in order through its clock changes.
    assert stagger_warning(("30 6 * * *", "Europe/London"), ("45 6 * * *", "Europe/London")) is None
    # Southern-hemisphere summer is the northern winter: the order breaks in the other season.
    why = stagger_warning(("30 20 * * *", "Etc/UTC"), ("15 7 * * *", "Australia/Sydney"))
    assert why is not None and "Australia/Sydney at UTC+11:00" in why
    assert stagger_warning(("30 20 * * *", "Etc/UTC"), ("45 7 * * *", "Australia/Sydney")) is None
    # The three weeks when only one of two zones has changed its clocks (the US switches before the EU):
    # in order all winter and all summer, not from 8 to 29 March.
    why = stagger_warning(("0 11 * * *", "Europe/London"), ("15 6 * * *", "America/New_York"))
    assert why is not None and "Europe/London is at UTC+00:00 and America/New_York at UTC-04:00, as from 08 Mar" in why
