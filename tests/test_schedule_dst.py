"""DST: check-ins stay at the client's wall-clock time across transitions, a time that does not
exist moves forward to the first valid time (the instant the clocks jump), and a time that happens
twice fires once (the first time). Spring and autumn in America/New_York, Europe/Berlin,
Australia/Sydney (southern hemisphere: forward in October, back in April), Asia/Kolkata (no DST)
and Australia/Lord_Howe (a 30-minute shift); APScheduler's triggers are checked alongside."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from schedules.rules import (
    AfterSession,
    EveryNDays,
    QuietHours,
    Weekly,
    occurrences,
    resolve_local,
)

ALLIANCE = ("alliance",)
SUNDAY = 6


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def walls(instants: list[datetime], zone: str) -> list[str]:
    tz = ZoneInfo(zone)
    return [i.astimezone(tz).isoformat(sep=" ", timespec="minutes") for i in instants]


def around(day: date, days: int = 30) -> tuple[datetime, datetime]:
    middle = datetime.combine(day, time(), UTC)
    return middle - timedelta(days=days), middle + timedelta(days=days)


# (zone, the Sunday the clocks go forward, the Sunday they go back) in 2024
TRANSITIONS = [
    ("America/New_York", date(2024, 3, 10), date(2024, 11, 3)),
    ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27)),
    ("Australia/Sydney", date(2024, 10, 6), date(2024, 4, 7)),
]


# --- the same wall-clock time across the transition ------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("America/New_York", date(2024, 3, 10), ["09:00-05:00", "09:00-04:00", "09:00-04:00"]),
        ("America/New_York", date(2024, 11, 3), ["09:00-04:00", "09:00-05:00", "09:00-05:00"]),
        ("Europe/Berlin", date(2024, 3, 31), ["09:00+01:00", "09:00+02:00", "09:00+02:00"]),
        ("Europe/Berlin", date(2024, 10, 27), ["09:00+02:00", "09:00+01:00", "09:00+01:00"]),
        ("Australia/Sydney", date(2024, 10, 6), ["09:00+10:00", "09:00+11:00", "09:00+11:00"]),
        ("Australia/Sydney", date(2024, 4, 7), ["09:00+11:00", "09:00+10:00", "09:00+10:00"]),
        ("Asia/Kolkata", date(2024, 3, 31), ["09:00+05:30", "09:00+05:30", "09:00+05:30"]),
        ("Asia/Kolkata", date(2024, 10, 27), ["09:00+05:30", "09:00+05:30", "09:00+05:30"]),
    ],
)
def test_weekly_check_in_keeps_its_local_time_across_the_change(
    zone: str, day: date, expected: list[str]
) -> None:
    rule = Weekly(weekdays=(SUNDAY,), at=time(9), instruments=ALLIANCE)
    start = datetime.combine(day - timedelta(days=7), time(), UTC) - timedelta(days=1)
    slots = occurrences(rule, zone, start, start + timedelta(days=16))
    days = [(day + timedelta(days=k)).isoformat() for k in (-7, 0, 7)]
    assert walls(slots, zone) == [f"{d} {w}" for d, w in zip(days, expected, strict=True)]


@pytest.mark.parametrize(("zone", "spring", "autumn"), TRANSITIONS)
@pytest.mark.parametrize("which", ["spring", "autumn"])
def test_fortnightly_check_in_keeps_its_local_time_across_the_change(
    zone: str, spring: date, autumn: date, which: str
) -> None:
    # The classic survey-tool bug: adding 14 x 24 h in UTC puts the check-in an hour off after
    # the change. Days are added to local dates, so it stays at 18:30.
    day = spring if which == "spring" else autumn
    rule = EveryNDays(
        every=14, start=day - timedelta(days=10), at=time(18, 30), instruments=("who5",)
    )
    slots = occurrences(rule, zone, *around(day, 40))
    local = [slot.astimezone(ZoneInfo(zone)) for slot in slots]
    assert [t.strftime("%H:%M") for t in local] == ["18:30"] * len(local)
    assert [t.date() for t in local] == [
        day + timedelta(days=-10 + 14 * k) for k in range(len(local))
    ]
    assert len({t.utcoffset() for t in local}) == 2  # the change really lies inside


def test_kolkata_check_ins_stay_at_the_same_utc_time_all_year() -> None:
    rule = EveryNDays(every=1, start=date(2024, 1, 1), at=time(9), instruments=ALLIANCE)
    slots = occurrences(rule, "Asia/Kolkata", utc(2024, 1, 1), utc(2025, 1, 1))
    assert len(slots) == 366
    assert {slot.strftime("%H:%M") for slot in slots} == {"03:30"}


# --- a time that does not exist moves forward -----------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected_wall", "expected_utc"),
    [
        ("America/New_York", date(2024, 3, 10), "2024-03-10 03:00-04:00", utc(2024, 3, 10, 7)),
        ("Europe/Berlin", date(2024, 3, 31), "2024-03-31 03:00+02:00", utc(2024, 3, 31, 1)),
        ("Australia/Sydney", date(2024, 10, 6), "2024-10-06 03:00+11:00", utc(2024, 10, 5, 16)),
    ],
)
@pytest.mark.parametrize("kind", ["weekly", "every_n_days"])
def test_a_check_in_in_the_skipped_hour_fires_when_the_clocks_jump(
    zone: str, day: date, expected_wall: str, expected_utc: datetime, kind: str
) -> None:
    rule: Weekly | EveryNDays
    if kind == "weekly":
        rule = Weekly(weekdays=(SUNDAY,), at=time(2, 30), instruments=ALLIANCE)
    else:
        rule = EveryNDays(
            every=7, start=day - timedelta(days=7), at=time(2, 30), instruments=ALLIANCE
        )
    slots = occurrences(rule, zone, *around(day, 10))
    assert len(slots) == 3  # the week before, the day itself, the week after: none dropped
    before, on_the_day, after = slots
    assert walls([on_the_day], zone) == [expected_wall]
    assert on_the_day == expected_utc
    assert walls([before, after], zone)[0][11:16] == "02:30"
    assert walls([before, after], zone)[1][11:16] == "02:30"


def test_lord_howe_half_hour_gap_moves_to_the_half_hour() -> None:
    # Lord Howe Island goes from 02:00 (+10:30) to 02:30 (+11:00) on 2024-10-06.
    rule = Weekly(weekdays=(SUNDAY,), at=time(2, 10), instruments=ALLIANCE)
    slots = occurrences(rule, "Australia/Lord_Howe", utc(2024, 10, 5), utc(2024, 10, 6))
    assert walls(slots, "Australia/Lord_Howe") == ["2024-10-06 02:30+11:00"]


# --- a time that happens twice fires once ----------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "at", "first", "second"),
    [
        ("America/New_York", date(2024, 11, 3), time(1, 30), (11, 3, 5, 30), (11, 3, 6, 30)),
        ("Europe/Berlin", date(2024, 10, 27), time(2, 30), (10, 27, 0, 30), (10, 27, 1, 30)),
        ("Australia/Sydney", date(2024, 4, 7), time(2, 30), (4, 6, 15, 30), (4, 6, 16, 30)),
    ],
)
@pytest.mark.parametrize("kind", ["weekly", "every_n_days"])
def test_a_check_in_in_the_repeated_hour_fires_once_the_first_time(
    zone: str,
    day: date,
    at: time,
    first: tuple[int, int, int, int],
    second: tuple[int, int, int, int],
    kind: str,
) -> None:
    # `first` and `second` are the two UTC instants (2024) at which the wall clock shows `at`.
    first_time, second_time = utc(2024, *first), utc(2024, *second)
    rule: Weekly | EveryNDays
    if kind == "weekly":
        rule = Weekly(weekdays=(SUNDAY,), at=at, instruments=ALLIANCE)
    else:
        rule = EveryNDays(every=1, start=day - timedelta(days=3), at=at, instruments=ALLIANCE)
    start, end = first_time - timedelta(hours=12), second_time + timedelta(hours=12)
    assert occurrences(rule, zone, start, end) == [first_time]
    # However the materialisation windows fall, the second time round is never a slot.
    between = first_time + (second_time - first_time) / 2
    assert occurrences(rule, zone, start, between) == [first_time]
    assert occurrences(rule, zone, between, end) == []
    assert occurrences(rule, zone, second_time, end) == []


# --- a sweep over every day of two years ----------------------------------------------------


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/Berlin",
        "Australia/Sydney",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Santiago",
    ],
)
@pytest.mark.parametrize(
    "at", [time(0, 0), time(0, 30), time(1, 30), time(2, 0), time(2, 15), time(2, 30), time(3, 0)]
)
def test_daily_sweep_one_slot_per_local_day_at_the_time_or_when_it_first_becomes_valid(
    zone: str, at: time
) -> None:
    tz = ZoneInfo(zone)
    rule = EveryNDays(every=1, start=date(2023, 12, 1), at=at, instruments=ALLIANCE)
    slots = occurrences(rule, tz, utc(2024, 1, 1), utc(2026, 1, 1))
    local = [slot.astimezone(tz) for slot in slots]
    days = [t.date() for t in local]
    assert days == sorted(set(days))
    assert days[1:] == [days[0] + timedelta(days=k) for k in range(1, len(days))]
    for slot, t in zip(slots, local, strict=True):
        if t.time() == at:
            assert t.fold == 0, f"{t} is the second occurrence of {at}"
        else:  # `at` did not exist that day: the slot is the instant the clocks jumped past it
            asked = datetime.combine(t.date(), at)
            before = (slot - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None)
            assert before < asked < t.replace(tzinfo=None), (slot, t, before)


# --- quiet hours and sessions across the change ---------------------------------------------


def test_quiet_hours_end_at_the_local_time_after_the_clocks_change() -> None:
    night = QuietHours(time(21), time(8))
    rule = Weekly(weekdays=(5,), at=time(22), instruments=ALLIANCE)  # Saturday 22:00
    spring = occurrences(rule, "Europe/Berlin", utc(2024, 3, 29), utc(2024, 4, 1), quiet=night)
    autumn = occurrences(rule, "Europe/Berlin", utc(2024, 10, 25), utc(2024, 10, 28), quiet=night)
    assert walls(spring, "Europe/Berlin") == ["2024-03-31 08:00+02:00"]
    assert walls(autumn, "Europe/Berlin") == ["2024-10-27 08:00+01:00"]


def test_quiet_hours_ending_in_the_skipped_or_repeated_hour() -> None:
    quiet = QuietHours(time(23), time(2, 30))
    rule = Weekly(weekdays=(5,), at=time(23, 30), instruments=ALLIANCE)  # Saturday 23:30
    spring = occurrences(rule, "Europe/Berlin", utc(2024, 3, 29), utc(2024, 4, 1), quiet=quiet)
    autumn = occurrences(rule, "Europe/Berlin", utc(2024, 10, 25), utc(2024, 10, 28), quiet=quiet)
    assert walls(spring, "Europe/Berlin") == ["2024-03-31 03:00+02:00"]
    assert walls(autumn, "Europe/Berlin") == ["2024-10-27 02:30+02:00"]


def test_days_after_a_session_keep_the_clock_time_hours_after_do_not() -> None:
    saturday_ten = utc(2024, 3, 30, 9)  # 10:00 CET, the day before spring forward
    days = AfterSession(after=1, unit="days", instruments=ALLIANCE)
    hours = AfterSession(after=24, unit="hours", instruments=ALLIANCE)
    window = (utc(2024, 3, 30), utc(2024, 4, 2))
    assert walls(occurrences(days, "Europe/Berlin", *window, [saturday_ten]), "Europe/Berlin") == [
        "2024-03-31 10:00+02:00"
    ]
    assert walls(occurrences(hours, "Europe/Berlin", *window, [saturday_ten]), "Europe/Berlin") == [
        "2024-03-31 11:00+02:00"
    ]
    saturday_ny = utc(2024, 11, 2, 14)  # 10:00 EDT, the day before fall back
    week = AfterSession(after=7, unit="days", instruments=ALLIANCE)
    window = (utc(2024, 11, 2), utc(2024, 11, 12))
    assert walls(
        occurrences(week, "America/New_York", *window, [saturday_ny]), "America/New_York"
    ) == ["2024-11-09 10:00-05:00"]


# --- APScheduler's triggers ------------------------------------------------------------------


def _cron_fires(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    fires: list[datetime] = []
    previous = None
    now = start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire >= end:
            return fires
        fires.append(fire)
        previous = now = fire


def _ordinary(instant: datetime, at: time, tz: ZoneInfo) -> bool:
    """Whether `at` exists and happens only once on the local date of `instant`."""
    wall = datetime.combine(instant.astimezone(tz).date(), at)
    first = wall.replace(tzinfo=tz, fold=0)
    return first.utcoffset() == wall.replace(tzinfo=tz, fold=1).utcoffset()


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]
)
@pytest.mark.parametrize("at", [time(1, 30), time(2, 30), time(9)])
def test_weekly_agrees_with_apscheduler_cron_on_every_ordinary_day(zone: str, at: time) -> None:
    tz = ZoneInfo(zone)
    rule = Weekly(weekdays=(0, 2, 6), at=at, instruments=ALLIANCE)
    trigger = CronTrigger(day_of_week="mon,wed,sun", hour=at.hour, minute=at.minute, timezone=tz)
    start, end = utc(2024, 1, 1), utc(2025, 1, 1)
    ours = occurrences(rule, tz, start, end)
    theirs = [fire.astimezone(UTC) for fire in _cron_fires(trigger, start, end)]
    assert len(ours) == 157
    ordinary = [t for t in ours if _ordinary(t, at, tz)]
    assert ordinary == [t for t in theirs if _ordinary(t, at, tz)]
    assert len(ordinary) >= len(ours) - 2  # at most a skipped and a repeated day


def test_apscheduler_triggers_get_the_dst_edges_wrong_which_is_why_rules_use_zoneinfo() -> None:
    # If this starts failing after an APScheduler upgrade, its triggers may now be usable in
    # schedules/rules.py; see the module docstring there.
    berlin = ZoneInfo("Europe/Berlin")
    cron = CronTrigger(hour=2, minute=30, timezone=berlin)
    autumn = _cron_fires(cron, utc(2024, 10, 26, 12), utc(2024, 10, 28))
    assert [f.astimezone(UTC) for f in autumn] == [
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 27, 1, 30),
    ]
    spring = _cron_fires(cron, utc(2024, 3, 30, 12), utc(2024, 4, 1))
    assert [f.astimezone(UTC) for f in spring] == [utc(2024, 3, 31, 1, 30)]  # 03:30, not 03:00
    assert resolve_local(datetime(2024, 3, 31, 2, 30), berlin) == utc(2024, 3, 31, 1)
    daily = IntervalTrigger(days=1, start_date=datetime(2024, 3, 30, 9), timezone=berlin)
    second = daily.get_next_fire_time(daily.start_date, daily.start_date)
    assert second is not None and second.astimezone(berlin).hour == 10  # drifted from 09:00
    calendar = CalendarIntervalTrigger(
        days=1, hour=2, minute=30, start_date=date(2024, 3, 30), timezone=berlin
    )
    first = calendar.get_next_fire_time(None, utc(2024, 3, 29))
    following = calendar.get_next_fire_time(first, utc(2024, 3, 29))
    assert following is not None and following.date() == date(2024, 4, 1)  # skipped the 31st


# --- a whole skipped day ----------------------------------------------------------------------


def test_a_skipped_calendar_day_moves_its_check_in_to_the_first_valid_time() -> None:
    # Samoa (Pacific/Apia) jumped from 29 to 31 December 2011 across the date line: the 30th
    # never happened there. Its check-in is not dropped; it comes when the clocks jumped.
    daily = EveryNDays(every=1, start=date(2011, 12, 1), at=time(9), instruments=ALLIANCE)
    slots = occurrences(daily, "Pacific/Apia", utc(2011, 12, 28), utc(2011, 12, 31))
    assert walls(slots, "Pacific/Apia") == [
        "2011-12-28 09:00-10:00",
        "2011-12-29 09:00-10:00",
        "2011-12-31 00:00+14:00",  # the 30th's
        "2011-12-31 09:00+14:00",
    ]
    # Thursday 29th 22:00 is in quiet hours, which would end on the 30th at 08:00, which did not
    # exist; midnight on the 31st is still quiet, so it waits until 08:00 on the 31st. A window
    # that starts after the jump still finds it.
    weekly = Weekly(weekdays=(3,), at=time(22), instruments=ALLIANCE)
    night = QuietHours(time(21), time(8))
    expected = ["2011-12-31 08:00+14:00"]
    whole = occurrences(weekly, "Pacific/Apia", utc(2011, 12, 29), utc(2012, 1, 1), quiet=night)
    late = occurrences(weekly, "Pacific/Apia", utc(2011, 12, 30, 12), utc(2012, 1, 1), quiet=night)
    assert walls(whole, "Pacific/Apia") == walls(late, "Pacific/Apia") == expected
