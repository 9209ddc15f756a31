from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meterline.errors import ValidationError
from meterline.reports.cron import CronSchedule, cron_for


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_monday_nine_berlin_moves_with_daylight_saving():
    schedule = CronSchedule.parse("0 9 * * 1", "Europe/Berlin")
    fired = schedule.due_times(utc(2026, 10, 12), utc(2026, 11, 3))
    assert fired == [utc(2026, 10, 12, 7), utc(2026, 10, 19, 7), utc(2026, 10, 26, 8),
                     utc(2026, 11, 2, 8)]  # fmt: skip
    assert all(f.astimezone(schedule_zone()).weekday() == 0 for f in fired)


def schedule_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


def test_daily_0230_fires_once_on_the_autumn_change():
    schedule = CronSchedule.parse("30 2 * * *", "Europe/Berlin")
    fired = schedule.due_times(utc(2026, 10, 24), utc(2026, 10, 26, 12))
    # 02:30 happens twice on 2026-10-25 (00:30Z and 01:30Z); it fires at the first only
    assert fired == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_daily_0230_still_fires_on_the_spring_change():
    schedule = CronSchedule.parse("30 2 * * *", "Europe/Berlin")
    fired = schedule.due_times(utc(2026, 3, 28), utc(2026, 3, 30, 12))
    # 02:30 does not exist on 2026-03-29; it fires when the clocks jump (03:30 CEST)
    assert fired == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_hourly_schedule_has_no_duplicate_on_the_autumn_change():
    schedule = CronSchedule.parse("0 * * * *", "America/New_York")
    fired = schedule.due_times(utc(2026, 11, 1, 3), utc(2026, 11, 1, 9))
    assert len(fired) == len(set(fired))
    assert fired == sorted(fired)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 * * * *", utc(2026, 1, 1, 0, 15)),
        ("0 12 1 * *", utc(2026, 1, 1, 12)),
        ("0 0 * * sun", utc(2026, 1, 4)),
        ("0 0 * * 7", utc(2026, 1, 4)),
        ("0 6 1-3 jan *", utc(2026, 1, 1, 6)),
    ],
)
def test_fields(expression: str, expected: datetime):
    assert CronSchedule.parse(expression, "UTC").next_after(utc(2026, 1, 1)) == expected


def test_day_of_month_or_day_of_week_as_cron_does():
    schedule = CronSchedule.parse("0 0 13 * 5", "UTC")
    fired = schedule.due_times(utc(2026, 2, 1), utc(2026, 2, 28))
    # Fridays in February 2026 (6, 13, 20, 27) and the 13th
    assert [f.day for f in fired] == [6, 13, 20, 27]


@pytest.mark.parametrize(
    ("expression", "zone"),
    [("0 9 * *", "UTC"), ("61 * * * *", "UTC"), ("0 9 * * 1", "Mars/Olympus"),
     ("0 0 31 2 *", "UTC"), ("x * * * *", "UTC"), ("*/0 * * * *", "UTC")],
)  # fmt: skip
def test_invalid(expression: str, zone: str):
    with pytest.raises(ValidationError):
        CronSchedule.parse(expression, zone)


def test_frequencies():
    assert cron_for("daily", "07:30", None, None) == "30 7 * * *"
    assert cron_for("weekly", "09:00", 1, None) == "0 9 * * 1"
    assert cron_for("monthly", "06:05", None, 15) == "5 6 15 * *"
    for bad in (("hourly", "09:00", None, None), ("daily", "25:00", None, None),
                ("monthly", "09:00", None, 31)):  # fmt: skip
        with pytest.raises(ValidationError):
            cron_for(*bad)
