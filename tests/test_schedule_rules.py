"""Schedule rules: each kind, specs and templates, quiet hours, answer window and reminder, and the
properties the materialisation pass relies on (sorted, unique, in the window, never in quiet hours,
and the same slots however the window is split)."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules.rules import (
    AfterSession,
    EveryNDays,
    Once,
    QuietHours,
    Rule,
    RuleError,
    Weekly,
    defer_past_quiet,
    expires_at,
    next_occurrences,
    occurrences,
    parse_quiet_hours,
    parse_templates,
    reminder_at,
    rule_from_spec,
    session_lookback,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietHours(time(21), time(8))  # the usual practice default
ALLIANCE = ("alliance",)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(instant: datetime, zone: ZoneInfo = BERLIN) -> str:
    """An instant as the client's wall clock shows it, with the offset: '2024-06-03 09:00+02:00'."""
    return instant.astimezone(zone).isoformat(sep=" ", timespec="minutes")


def walls(instants: list[datetime], zone: ZoneInfo = BERLIN) -> list[str]:
    return [local(instant, zone) for instant in instants]


# --- each kind of rule -----------------------------------------------------------------------


def test_weekly_fires_on_the_chosen_weekdays_at_the_local_time() -> None:
    rule = Weekly(weekdays=(0, 3), at=time(9), instruments=ALLIANCE)  # Monday and Thursday
    slots = occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 6, 15))
    assert walls(slots) == [
        "2024-06-03 09:00+02:00",
        "2024-06-06 09:00+02:00",
        "2024-06-10 09:00+02:00",
        "2024-06-13 09:00+02:00",
    ]
    assert all(slot.tzinfo is UTC for slot in slots)


def test_a_zone_name_and_a_zoneinfo_give_the_same_slots() -> None:
    rule = Weekly(weekdays=(4,), at=time(18, 30), instruments=ALLIANCE)
    window = (utc(2024, 1, 1), utc(2024, 3, 1))
    assert occurrences(rule, "America/New_York", *window) == occurrences(rule, NEW_YORK, *window)


def test_every_n_days_counts_from_its_start_date_and_never_before_it() -> None:
    rule = EveryNDays(every=14, start=date(2024, 5, 6), at=time(18), instruments=("who5",))
    slots = occurrences(rule, BERLIN, utc(2024, 4, 1), utc(2024, 6, 20))
    assert walls(slots) == [
        "2024-05-06 18:00+02:00",
        "2024-05-20 18:00+02:00",
        "2024-06-03 18:00+02:00",
        "2024-06-17 18:00+02:00",
    ]
    # A window that starts between two slots finds the next one on the same fortnightly rhythm.
    assert walls(occurrences(rule, BERLIN, utc(2024, 5, 21), utc(2024, 6, 10))) == [
        "2024-06-03 18:00+02:00"
    ]


def test_after_session_in_hours_is_exact_elapsed_time_after_each_session() -> None:
    rule = AfterSession(after=24, unit="hours", instruments=ALLIANCE, comment=True)
    sessions = [utc(2024, 6, 3, 8, 15, 30, 123456), utc(2024, 6, 10, 14)]
    slots = occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 7, 1), sessions)
    # Whole seconds, so the slot does not depend on how precisely the session time was stored.
    assert slots == [utc(2024, 6, 4, 8, 15, 30), utc(2024, 6, 11, 14)]


def test_after_session_in_days_keeps_the_sessions_clock_time_or_uses_the_given_time() -> None:
    session = utc(2024, 6, 3, 8, 15)  # 10:15 in Berlin
    same_time = AfterSession(after=3, unit="days", instruments=("who5",))
    at_six = AfterSession(after=3, unit="days", at=time(18), instruments=("who5",))
    window = (utc(2024, 6, 1), utc(2024, 7, 1))
    assert walls(occurrences(same_time, BERLIN, *window, [session])) == ["2024-06-06 10:15+02:00"]
    assert walls(occurrences(at_six, BERLIN, *window, [session])) == ["2024-06-06 18:00+02:00"]


def test_after_session_slot_is_found_by_a_window_that_starts_after_the_session() -> None:
    # The materialisation window moves on; the session that caused a slot lies before it.
    rule = AfterSession(after=3, unit="days", instruments=("who5",))
    session = utc(2024, 6, 3, 8, 15)
    start = utc(2024, 6, 5)
    assert session >= start - session_lookback(rule)
    assert occurrences(rule, BERLIN, start, utc(2024, 6, 7), [session]) == [utc(2024, 6, 6, 8, 15)]
    assert occurrences(rule, BERLIN, start, utc(2024, 6, 7), []) == []


def test_once_fires_at_its_local_datetime_only_inside_the_window() -> None:
    rule = Once(at=datetime(2024, 6, 7, 17, 45), instruments=ALLIANCE)
    assert walls(occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 7, 1))) == [
        "2024-06-07 17:45+02:00"
    ]
    assert occurrences(rule, BERLIN, utc(2024, 6, 8), utc(2024, 7, 1)) == []
    # The same local datetime is a different instant for a client in another zone.
    assert occurrences(rule, NEW_YORK, utc(2024, 6, 1), utc(2024, 7, 1)) == [
        utc(2024, 6, 7, 21, 45)
    ]


def test_window_edges_are_start_inclusive_end_exclusive() -> None:
    rule = Weekly(weekdays=(0,), at=time(9), instruments=ALLIANCE)
    slot = utc(2024, 6, 3, 7)
    assert occurrences(rule, BERLIN, slot, slot + timedelta(seconds=1)) == [slot]
    assert occurrences(rule, BERLIN, slot - timedelta(hours=1), slot) == []
    assert occurrences(rule, BERLIN, slot, slot) == []


def test_naive_window_is_refused() -> None:
    rule = Weekly(weekdays=(0,), at=time(9), instruments=ALLIANCE)
    with pytest.raises(ValueError, match="aware"):
        occurrences(rule, BERLIN, datetime(2024, 6, 1), utc(2024, 6, 8))
    with pytest.raises(ValueError, match="aware"):
        occurrences(
            AfterSession(after=1, unit="days", instruments=ALLIANCE),
            BERLIN,
            utc(2024, 6, 1),
            utc(2024, 6, 8),
            [datetime(2024, 6, 2, 10)],
        )


def test_next_occurrences_lists_the_next_five_due_times() -> None:
    rule = Weekly(weekdays=(1, 4), at=time(19), instruments=ALLIANCE)
    now = utc(2024, 6, 5, 12)  # a Wednesday
    upcoming = next_occurrences(rule, BERLIN, now, 5)
    assert walls(upcoming) == [
        "2024-06-07 19:00+02:00",
        "2024-06-11 19:00+02:00",
        "2024-06-14 19:00+02:00",
        "2024-06-18 19:00+02:00",
        "2024-06-21 19:00+02:00",
    ]
    sparse = EveryNDays(every=90, start=date(2024, 1, 1), at=time(9), instruments=ALLIANCE)
    assert len(next_occurrences(sparse, BERLIN, now, 5)) == 5
    years_ahead = EveryNDays(every=1, start=date(2030, 2, 1), at=time(0), instruments=ALLIANCE)
    assert walls(next_occurrences(years_ahead, BERLIN, now, 2)) == [
        "2030-02-01 00:00+01:00",
        "2030-02-02 00:00+01:00",
    ]
    assert (
        next_occurrences(Once(at=datetime(2024, 6, 1, 9), instruments=ALLIANCE), BERLIN, now) == []
    )
    after = AfterSession(after=24, unit="hours", instruments=ALLIANCE)
    assert next_occurrences(after, BERLIN, now, 5) == []
    assert next_occurrences(after, BERLIN, now, 5, [utc(2024, 6, 5, 10)]) == [utc(2024, 6, 6, 10)]


# --- specs (what the database stores) ----------------------------------------------------------

SPEC_EXAMPLES: list[tuple[Rule, dict[str, object]]] = [
    (
        Weekly(weekdays=(3, 0), at=time(9), instruments=ALLIANCE),
        {
            "weekdays": ["monday", "thursday"],
            "at": "09:00",
            "instruments": ["alliance"],
            "comment": False,
        },
    ),
    (
        EveryNDays(every=14, start=date(2025, 1, 6), at=time(18, 30), instruments=("who5",)),
        {
            "every": 14,
            "start": "2025-01-06",
            "at": "18:30",
            "instruments": ["who5"],
            "comment": False,
        },
    ),
    (
        AfterSession(after=24, unit="hours", instruments=ALLIANCE, comment=True),
        {"after_hours": 24, "instruments": ["alliance"], "comment": True},
    ),
    (
        AfterSession(after=3, unit="days", at=time(18), instruments=("who5", "alliance")),
        {"after_days": 3, "at": "18:00", "instruments": ["who5", "alliance"], "comment": False},
    ),
    (
        Once(at=datetime(2025, 3, 30, 2, 30), instruments=ALLIANCE),
        {"at": "2025-03-30T02:30", "instruments": ["alliance"], "comment": False},
    ),
]


@pytest.mark.parametrize(("rule", "spec"), SPEC_EXAMPLES, ids=lambda v: getattr(v, "kind", ""))
def test_spec_shape_is_stable_and_round_trips_through_json(
    rule: Rule, spec: dict[str, object]
) -> None:
    assert rule.to_spec() == spec
    stored = json.dumps(rule.to_spec())
    assert rule_from_spec(rule.kind, json.loads(stored)) == rule
    assert type(rule).from_spec(json.loads(stored)) == rule


@pytest.mark.parametrize(
    ("kind", "spec", "problem"),
    [
        (
            "weekly",
            {"weekdays": ["Mon"], "at": "09:00", "instruments": ["alliance"]},
            "weekdays[0]: 'Mon' is not a weekday; use monday..sunday",
        ),
        (
            "weekly",
            {"weekday": ["monday"], "weekdays": ["monday"], "at": "9:00", "instruments": ["a"]},
            "weekday: unknown setting; remove it or check its spelling (did you mean 'weekdays'?)",
        ),
        (
            "weekly",
            {"weekdays": ["monday"], "at": "24:00", "instruments": ["alliance"]},
            "at: '24:00' is not a time; use HH:MM in 24-hour local time, e.g. 09:00",
        ),
        (
            "every_n_days",
            {"every": 0, "start": "2025-01-06", "at": "09:00", "instruments": ["who5"]},
            "every: 0 is not a whole number from 1 to 366",
        ),
        (
            "every_n_days",
            {"every": True, "start": "2025-01-06", "at": "09:00", "instruments": ["who5"]},
            "every: True is not a whole number",
        ),
        (
            "every_n_days",
            {"every": 14, "at": "09:00", "instruments": ["who5"]},
            "start: missing; give the first check-in's local date",
        ),
        (
            "after_session",
            {"after_hours": 24, "after_days": 1, "instruments": ["alliance"]},
            "after_days: give after_hours or after_days, not both; remove one",
        ),
        (
            "after_session",
            {"after_hours": 24, "at": "18:00", "instruments": ["alliance"]},
            "at: only with after_days; remove it or use after_days",
        ),
        (
            "after_session",
            {"instruments": ["alliance"]},
            "after_hours: missing; give after_hours (elapsed hours, e.g. 24) or after_days",
        ),
        (
            "once",
            {"at": "2025-03-30T18:00+02:00", "instruments": ["alliance"]},
            "at: '2025-03-30T18:00+02:00' is not a local date and time",
        ),
        (
            "weekly",
            {"weekdays": ["monday"], "at": "09:00"},
            'instruments: missing; list what the check-in asks, e.g. ["alliance"]',
        ),
        (
            "weekly",
            {"weekdays": ["monday"], "at": "09:00", "instruments": ["alliance"], "comment": "yes"},
            "comment: 'yes' is not true or false",
        ),
        ("fortnightly", {}, "kind: 'fortnightly' is not a kind of rule; use one of weekly,"),
    ],
)
def test_a_bad_spec_names_the_key_the_problem_and_the_fix(
    kind: str, spec: dict[str, object], problem: str
) -> None:
    with pytest.raises(RuleError) as caught:
        rule_from_spec(kind, spec)
    assert any(text.startswith(problem) for text in caught.value.problems), caught.value.problems


def test_every_n_days_without_start_cannot_be_used_or_stored() -> None:
    rule = EveryNDays(every=14, start=None, at=time(9), instruments=ALLIANCE)
    with pytest.raises(ValueError, match="rules_for"):
        occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 7, 1))
    with pytest.raises(ValueError, match="rules_for"):
        rule.to_spec()


# --- templates in the practice config --------------------------------------------------------

CONFIG = """
[quiet_hours]
start = "21:00"
end = "08:00"

[templates.weekly-post-session]
description = "Alliance the day after each session, wellbeing three days after"

[[templates.weekly-post-session.rules]]
kind = "after_session"
after_hours = 24
instruments = ["alliance"]
comment = true

[[templates.weekly-post-session.rules]]
kind = "after_session"
after_days = 3
at = 18:00:00
instruments = ["who5"]

[templates.fortnightly]
[[templates.fortnightly.rules]]
kind = "every_n_days"
every = 14
at = "18:30"
instruments = ["alliance", "who5"]

[[templates.fortnightly.rules]]
kind = "weekly"
weekdays = ["Monday", "friday"]
at = "09:00"
instruments = ["who5"]
"""


def test_templates_and_quiet_hours_load_from_the_config_file() -> None:
    raw = tomllib.loads(CONFIG)
    templates = parse_templates(raw["templates"], known_instruments={"alliance", "who5"})
    assert parse_quiet_hours(raw["quiet_hours"]) == NIGHT
    post = templates["weekly-post-session"]
    assert post.description.startswith("Alliance the day after")
    assert post.rules == (
        AfterSession(after=24, unit="hours", instruments=ALLIANCE, comment=True),
        AfterSession(after=3, unit="days", at=time(18), instruments=("who5",)),
    )
    fortnightly = templates["fortnightly"]
    assert fortnightly.rules[1] == Weekly(weekdays=(0, 4), at=time(9), instruments=("who5",))
    # An every_n_days rule in a template starts on each client's own date.
    first, second = fortnightly.rules_for(date(2025, 2, 3))
    assert first == EveryNDays(
        every=14, start=date(2025, 2, 3), at=time(18, 30), instruments=("alliance", "who5")
    )
    assert second == fortnightly.rules[1]
    assert walls(next_occurrences(first, BERLIN, utc(2025, 1, 1), 2)) == [
        "2025-02-03 18:30+01:00",
        "2025-02-17 18:30+01:00",
    ]


def test_template_problems_are_all_reported_with_their_keys() -> None:
    raw = {
        "weekly": {
            "rules": [
                {"kind": "weekly", "weekdays": ["Mon"], "at": "09:00", "instruments": ["alliance"]}
            ]
        },
        "Bad Name": {"rules": []},
        "bare": {"description": "no rules"},
        "one-off": {"rules": [{"kind": "once", "at": "2025-01-01T09:00", "instruments": ["a"]}]},
        "typo": {
            "rule": [],
            "rules": [{"kind": "weekly", "weekdays": "monday", "at": 9, "instruments": ["phq9"]}],
        },
    }
    with pytest.raises(RuleError) as caught:
        parse_templates(raw, known_instruments={"alliance", "who5"})
    problems = caught.value.problems
    for expected in (
        "templates.weekly.rules[0].weekdays[0]: 'Mon' is not a weekday; use monday..sunday",
        "templates.typo.rules[0].at: 9 is not a time; use HH:MM in 24-hour local time, e.g. 09:00",
        "templates.typo.rules[0].instruments[0]: unknown instrument 'phq9'; "
        "use one of alliance, who5",
    ):
        assert expected in problems
    for beginning in (
        "templates.Bad Name: 'Bad Name' is not a template name",
        "templates.bare.rules: missing or empty",
        "templates.one-off.rules[0].kind: 'once' is a single date",
        "templates.typo.rule: unknown setting",
    ):
        assert any(p.startswith(beginning) for p in problems), (beginning, problems)
    assert all(": " in p and "; " in p for p in problems), problems


def test_quiet_hours_problems_name_the_key() -> None:
    with pytest.raises(RuleError) as caught:
        parse_quiet_hours({"start": "21:00", "end": "21:00"})
    assert caught.value.problems[0].startswith("quiet_hours.end: the same as start")
    with pytest.raises(RuleError) as caught:
        parse_quiet_hours({"start": "9pm", "end": "08:00"})
    assert caught.value.problems == [
        "quiet_hours.start: '9pm' is not a time; use HH:MM in 24-hour local time, e.g. 09:00"
    ]
    assert parse_quiet_hours(None) is None
    assert QuietHours.parse("22:30-07:00") == QuietHours(time(22, 30), time(7))
    assert str(QuietHours.parse("22:30-07:00")) == "22:30-07:00"


# --- quiet hours -----------------------------------------------------------------------------


def test_a_check_in_in_the_evening_part_of_quiet_hours_moves_to_the_next_morning() -> None:
    rule = Weekly(weekdays=(0,), at=time(22), instruments=ALLIANCE)
    slots = occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 6, 12), quiet=NIGHT)
    assert walls(slots) == ["2024-06-04 08:00+02:00", "2024-06-11 08:00+02:00"]  # Tuesdays


def test_a_check_in_after_midnight_in_quiet_hours_moves_to_the_same_morning() -> None:
    rule = Weekly(weekdays=(0,), at=time(6, 30), instruments=ALLIANCE)
    slots = occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 6, 8), quiet=NIGHT)
    assert walls(slots) == ["2024-06-03 08:00+02:00"]


def test_quiet_hours_start_is_quiet_and_end_is_not() -> None:
    window = (utc(2024, 6, 1), utc(2024, 6, 8))
    at_end = Weekly(weekdays=(0,), at=time(8), instruments=ALLIANCE)
    at_start = Weekly(weekdays=(0,), at=time(21), instruments=ALLIANCE)
    assert walls(occurrences(at_end, BERLIN, *window, quiet=NIGHT)) == ["2024-06-03 08:00+02:00"]
    assert walls(occurrences(at_start, BERLIN, *window, quiet=NIGHT)) == ["2024-06-04 08:00+02:00"]


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours(time(12), time(14))
    rule = Weekly(weekdays=(0,), at=time(13), instruments=ALLIANCE)
    slots = occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 6, 8), quiet=lunch)
    assert walls(slots) == ["2024-06-03 14:00+02:00"]


def test_a_clients_own_quiet_hours_replace_the_practice_default() -> None:
    night_owl = QuietHours(time(23, 30), time(9, 30))
    rule = Weekly(weekdays=(0,), at=time(22), instruments=ALLIANCE)
    window = (utc(2024, 6, 1), utc(2024, 6, 8))
    assert walls(occurrences(rule, BERLIN, *window, quiet=NIGHT)) == ["2024-06-04 08:00+02:00"]
    assert walls(occurrences(rule, BERLIN, *window, quiet=night_owl)) == ["2024-06-03 22:00+02:00"]
    early = Weekly(weekdays=(0,), at=time(8, 30), instruments=ALLIANCE)
    assert walls(occurrences(early, BERLIN, *window, quiet=night_owl)) == ["2024-06-03 09:30+02:00"]


def test_quiet_hours_move_session_check_ins_and_never_drop_them() -> None:
    rule = AfterSession(after=24, unit="hours", instruments=ALLIANCE)
    late_session = utc(2024, 6, 3, 20, 30)  # 22:30 in Berlin
    slots = occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 7, 1), [late_session], NIGHT)
    assert walls(slots) == ["2024-06-05 08:00+02:00"]
    # A month of nightly check-ins: every one is moved, none is lost.
    nightly = EveryNDays(every=1, start=date(2024, 6, 1), at=time(23), instruments=ALLIANCE)
    moved = occurrences(nightly, BERLIN, utc(2024, 6, 1, 12), utc(2024, 7, 1, 12), quiet=NIGHT)
    assert len(moved) == 30
    assert {local(slot)[11:] for slot in moved} == {"08:00+02:00"}


def test_two_slots_moved_to_the_same_morning_become_one() -> None:
    rule = AfterSession(after=24, unit="hours", instruments=ALLIANCE)
    sessions = [utc(2024, 6, 3, 19, 30), utc(2024, 6, 3, 21)]  # 21:30 and 23:00 local
    slots = occurrences(rule, BERLIN, utc(2024, 6, 1), utc(2024, 7, 1), sessions, NIGHT)
    assert walls(slots) == ["2024-06-05 08:00+02:00"]


def test_moving_out_of_quiet_hours_never_goes_back_in_time() -> None:
    # New York falls back at 02:00 EDT to 01:00 EST on 2024-11-03, so 01:00-01:59 happens twice.
    # A slot at 01:15 EST (the second time round) in quiet hours ending 01:30 waits for 01:30 EST,
    # not 01:30 EDT, which was 45 minutes earlier.
    quiet = QuietHours(time(0), time(1, 30))
    second_pass = utc(2024, 11, 3, 6, 15)
    assert local(second_pass, NEW_YORK) == "2024-11-03 01:15-05:00"
    moved = defer_past_quiet(second_pass, NEW_YORK, quiet)
    assert local(moved, NEW_YORK) == "2024-11-03 01:30-05:00"
    first_pass = utc(2024, 11, 3, 5, 15)  # 01:15 EDT
    assert (
        local(defer_past_quiet(first_pass, NEW_YORK, quiet), NEW_YORK) == "2024-11-03 01:30-04:00"
    )


# --- answer window and reminder --------------------------------------------------------------


def test_a_check_in_expires_after_its_window_or_when_the_next_is_due() -> None:
    slot = utc(2024, 6, 3, 7)
    assert expires_at(slot) == slot + timedelta(hours=24)
    assert expires_at(slot, window=timedelta(hours=48)) == slot + timedelta(hours=48)
    assert expires_at(slot, utc(2024, 6, 3, 19)) == utc(2024, 6, 3, 19)
    assert expires_at(slot, utc(2024, 6, 10, 7)) == slot + timedelta(hours=24)
    # Two check-ins due at once (alliance and WHO-5): neither cuts the other's window to nothing.
    assert expires_at(slot, slot) == slot + timedelta(hours=24)
    with pytest.raises(ValueError, match="positive"):
        expires_at(slot, window=timedelta(0))


def test_expiry_counts_from_the_due_time_not_the_send_time() -> None:
    # A check-in sent late (after downtime) keeps its original deadline.
    slot = utc(2024, 6, 3, 7)
    expiry = expires_at(slot)
    assert expiry == utc(2024, 6, 4, 7)
    sent_late = utc(2024, 6, 4, 4)  # 21 hours late
    assert reminder_at(sent_late, expiry, BERLIN) is None  # 4 h later would be past expiry


def test_reminder_is_four_hours_after_the_send() -> None:
    sent = utc(2024, 6, 3, 7)  # 09:00 Berlin
    assert reminder_at(sent, expires_at(sent), BERLIN, NIGHT) == utc(2024, 6, 3, 11)
    assert reminder_at(sent, expires_at(sent), BERLIN, NIGHT, timedelta(hours=2)) == utc(
        2024, 6, 3, 9
    )


def test_reminder_waits_for_the_end_of_quiet_hours() -> None:
    sent = utc(2024, 6, 3, 16)  # 18:00 Berlin; +4 h = 22:00, quiet
    reminder = reminder_at(sent, expires_at(sent), BERLIN, NIGHT)
    assert reminder is not None
    assert local(reminder) == "2024-06-04 08:00+02:00"


def test_reminder_is_skipped_when_it_would_come_at_or_after_expiry() -> None:
    sent = utc(2024, 6, 3, 17)  # 19:00 Berlin; reminder would wait until 08:00
    short = expires_at(sent, window=timedelta(hours=12))  # 07:00 Berlin
    assert reminder_at(sent, short, BERLIN, NIGHT) is None
    assert reminder_at(sent, sent + timedelta(hours=4), BERLIN) is None  # exactly at expiry
    assert reminder_at(sent, sent + timedelta(hours=4, seconds=1), BERLIN) == sent + timedelta(
        hours=4
    )


# --- properties the materialisation pass relies on -------------------------------------------

SOME_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "America/Santiago",
    "America/Havana",  # DST changes at midnight
    "UTC",
]
ALL_ZONES = sorted(available_timezones() - {"Factory", "localtime"})

zones = st.sampled_from(SOME_ZONES) | st.sampled_from(ALL_ZONES)
clock_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
instruments = st.sampled_from([("alliance",), ("who5",), ("alliance", "who5")])
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
rules: st.SearchStrategy[Rule] = st.one_of(
    st.builds(
        Weekly,
        weekdays=st.lists(st.integers(0, 6), min_size=1, max_size=7).map(tuple),
        at=clock_times,
        instruments=instruments,
        comment=st.booleans(),
    ),
    st.builds(
        EveryNDays,
        every=st.integers(1, 30),
        start=st.dates(min_value=date(1999, 6, 1), max_value=date(2037, 12, 31)),
        at=clock_times,
        instruments=instruments,
        comment=st.booleans(),
    ),
    st.builds(
        AfterSession,
        after=st.integers(1, 72),
        unit=st.just("hours"),
        instruments=instruments,
        comment=st.booleans(),
    ),
    st.builds(
        AfterSession,
        after=st.integers(1, 14),
        unit=st.just("days"),
        at=st.none() | clock_times,
        instruments=instruments,
        comment=st.booleans(),
    ),
    st.builds(
        Once,
        at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)).map(
            lambda d: d.replace(microsecond=0)
        ),
        instruments=instruments,
        comment=st.booleans(),
    ),
)


@st.composite
def quiets(draw: st.DrawFn) -> QuietHours | None:
    start, end = draw(clock_times), draw(clock_times)
    return None if start == end or draw(st.booleans()) else QuietHours(start, end)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[Rule, str, datetime, datetime, datetime, list[datetime], QuietHours | None]:
    """A rule, a zone, window edges a <= b <= c, sessions and quiet hours.

    The edges are often placed shortly before one of the rule's slots, where a slot moved by quiet
    hours or DST crosses from one window into the next: the place where a slot gets lost."""
    rule = draw(rules)
    zone = draw(zones)
    origin = draw(moments)
    if isinstance(rule, Once) and draw(st.booleans()):
        origin = rule.at.replace(tzinfo=UTC) - timedelta(days=2)
    if isinstance(rule, EveryNDays) and rule.start is not None and draw(st.booleans()):
        start = datetime.combine(rule.start, time(), UTC)
        origin = start + timedelta(days=draw(st.integers(-3, 60)))
    span = timedelta(days=20)
    minutes = st.integers(-60 * 24 * 20, 60 * 24 * 20)
    sessions = [origin + timedelta(minutes=m) for m in draw(st.lists(minutes, max_size=8))]
    quiet = draw(quiets())
    slots = occurrences(rule, zone, origin, origin + span, sessions, quiet)

    def edge() -> datetime:
        if slots and draw(st.booleans()):
            before = timedelta(minutes=draw(st.integers(0, 60 * 30)))
            return draw(st.sampled_from(slots)) - before
        return origin + timedelta(minutes=draw(st.integers(0, 60 * 24 * 20)))

    a, b, c = sorted([edge(), edge(), edge()])
    return rule, zone, a, b, c, sessions, quiet


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_occurrences_are_sorted_unique_in_the_window_and_never_in_quiet_hours(
    scenario: tuple[Rule, str, datetime, datetime, datetime, list[datetime], QuietHours | None],
) -> None:
    rule, zone, a, _, c, sessions, quiet = scenario
    slots = occurrences(rule, zone, a, c, sessions, quiet)
    assert slots == sorted(set(slots))
    assert all(a <= slot < c and slot.tzinfo is UTC and not slot.microsecond for slot in slots)
    if quiet is not None:
        assert not any(quiet.contains(slot.astimezone(ZoneInfo(zone)).time()) for slot in slots)


@PROPERTY
@given(scenarios())
def test_splitting_the_window_neither_loses_nor_duplicates_a_slot(
    scenario: tuple[Rule, str, datetime, datetime, datetime, list[datetime], QuietHours | None],
) -> None:
    rule, zone, a, b, c, sessions, quiet = scenario
    whole = occurrences(rule, zone, a, c, sessions, quiet)
    assert whole == occurrences(rule, zone, a, b, sessions, quiet) + occurrences(
        rule, zone, b, c, sessions, quiet
    )


@PROPERTY
@given(scenarios())
def test_slots_are_the_same_in_a_fresh_process_and_with_quiet_hours_applied_one_by_one(
    scenario: tuple[Rule, str, datetime, datetime, datetime, list[datetime], QuietHours | None],
) -> None:
    rule, zone, a, _, c, sessions, quiet = scenario
    slots = occurrences(rule, zone, a, c, sessions, quiet)
    # A new process has its own ZoneInfo objects and an empty memo: same instants.
    assert occurrences(rule, ZoneInfo.no_cache(zone), a, c, sessions, quiet) == slots
    # Quiet hours move each slot, one by one, and never drop one.
    lookback = timedelta(days=5)
    unmoved = occurrences(rule, zone, a - lookback, c, sessions, None)
    moved = {defer_past_quiet(slot, zone, quiet) for slot in unmoved}
    assert slots == sorted(slot for slot in moved if a <= slot < c)


@PROPERTY
@given(scenarios(), st.integers(1, 6))
def test_next_occurrences_are_the_first_of_the_occurrences(
    scenario: tuple[Rule, str, datetime, datetime, datetime, list[datetime], QuietHours | None],
    n: int,
) -> None:
    rule, zone, a, _, _, sessions, quiet = scenario
    upcoming = next_occurrences(rule, zone, a, n, sessions, quiet)
    assert len(upcoming) <= n
    if not upcoming:
        return
    horizon = upcoming[-1] + timedelta(seconds=1)
    assert upcoming == occurrences(rule, zone, a, horizon, sessions, quiet)[:n]
    if not isinstance(rule, Once | AfterSession):
        assert len(upcoming) == n


@given(rules)
def test_every_rule_round_trips_through_its_json_spec(rule: Rule) -> None:
    assert rule_from_spec(rule.kind, json.loads(json.dumps(rule.to_spec()))) == rule
