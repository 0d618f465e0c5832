"""Schedule rules: the pure calendar logic behind check-in slots.

A rule says when a client's check-ins fall due, in the client's local time; `occurrences` turns a
rule into the UTC instants of its slots inside a window, and the caller stores one slot per
(schedule, instant). Everything here is pure: no database, no Telegram, no clock, no I/O. The same
inputs always give the same instants, so re-running a materialisation pass (after a restart, or in
another process) produces the same slots and the unique constraint deduplicates them.

Kinds of rule (each names the instruments its check-in asks and whether it asks for a comment):

- `Weekly`: on chosen weekdays at a local time.
- `EveryNDays`: every N days from a start date, at a local time ("every 14 days" = fortnightly).
- `AfterSession`: after each logged session, either a number of hours later (exact elapsed
  time) or a number of days later (the same local wall-clock time, or a given time, N days on).
- `Once`: at one local date and time.

Time rules (see docs/scheduling.md for the practice-facing version):

- Days are always added to *local dates*, never to UTC instants, so a 09:00 check-in stays at
  09:00 local across a DST change (the "biweekly rule broken by UTC conversion" bug).
- A local time that does not exist (spring forward) moves forward to the first valid time, which
  is the instant the clocks jump: 02:30 on the spring-forward day in Europe/Berlin fires at
  03:00 CEST. We chose 03:00 over 03:30 (what Python's fold=0 arithmetic, APScheduler's
  DateTrigger and CronTrigger give) because it is the earliest moment at which the asked-for
  wall-clock time has passed: the check-in is as late as it must be and no later. It is also
  what ISC/Vixie cron does with jobs in a skipped hour, and for a quiet period that ends inside
  the gap it is exactly the end of the quiet period.
- A local time that happens twice (fall back) fires once, at its first occurrence (fold=0).
- Quiet hours ([start, end) in local time, may wrap midnight): a slot inside them moves to the end
  of the quiet period; it is never dropped. The window filter applies to the moved instant, so
  consecutive windows [a, b) and [b, c) give exactly the slots of [a, c).

Why not APScheduler's triggers here (checked in tests/test_schedule_dst.py): on ordinary days
`CronTrigger` agrees with us, but at the edges APScheduler 3.11 fires an ambiguous local time twice
(once per UTC offset, and which one you get depends on the `now` you ask from, so two windows can
each produce one), returns a non-existent wall-clock time such as 02:30+01:00 (= 03:30 CEST) in a
gap, `IntervalTrigger(days=N)` adds N x 24 h of elapsed time (a 09:00 check-in becomes 10:00 after
spring forward), and `CalendarIntervalTrigger` silently skips a day whose time does not exist.
Building a `CronTrigger` also costs about 100 us and each `get_next_fire_time` about 50 us, too slow
for 100,000 clients per pass. So the calendar is computed with `zoneinfo` directly; APScheduler
only drives the clock (see schedules/dispatcher.py).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_REMINDER_DELAY",
    "DEFAULT_WINDOW",
    "KINDS",
    "WEEKDAYS",
    "AfterSession",
    "EveryNDays",
    "Once",
    "QuietHours",
    "Rule",
    "RuleError",
    "Template",
    "Weekly",
    "defer_past_quiet",
    "expires_at",
    "next_occurrences",
    "occurrences",
    "parse_quiet_hours",
    "parse_templates",
    "reminder_at",
    "resolve_local",
    "rule_from_spec",
    "session_lookback",
]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_REMINDER_DELAY = timedelta(hours=4)

MAX_EVERY_DAYS = 366
MAX_AFTER_HOURS = 24 * 60
MAX_AFTER_DAYS = 60
MAX_INSTRUMENTS = 10

# How far a slot can move after its base instant: a quiet period (under 24 h), a DST gap (up to
# a whole skipped day, as in Pacific/Apia on 2011-12-30) and a second quiet period after that.
# Candidates are enumerated this far before the window so none that moves into it is missed.
_SLACK = timedelta(days=4)
_ONE_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_INSTRUMENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$")


class RuleError(ValueError):
    """A rule, quiet-hours or template spec cannot be used; `problems` are 'key: problem; fix'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# ---------------------------------------------------------------------------------------------
# Local time -> UTC instant, with the DST rules


def resolve_local(naive: datetime, tz: tzinfo) -> datetime:
    """The UTC instant at which the wall clock in `tz` shows `naive`.

    An ambiguous wall-clock time (fall back) gives its first occurrence (fold=0). A wall-clock time
    that does not exist (spring forward) gives the instant the clocks jump, i.e. the first valid
    local time after it: 02:30 on 2024-03-31 in Europe/Berlin gives 01:00 UTC (03:00 CEST).
    """
    if naive.tzinfo is not None:
        raise ValueError(f"resolve_local takes a naive local datetime, got {naive!r}")
    return _resolve(naive, tz)[0]


# Memoised: zoneinfo's local-to-UTC conversion is the costly step (about 2 us), and across
# 100,000 clients the same few (zone, local date and time) pairs come up again and again.
@lru_cache(maxsize=16384)
def _resolve(naive: datetime, tz: tzinfo) -> tuple[datetime, bool]:
    """`resolve_local`, and whether the wall clock shows exactly `naive` then (not in a gap)."""
    utc = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc, True
    return _end_of_gap(naive, tz), False


def _end_of_gap(naive: datetime, tz: tzinfo) -> datetime:
    # In a gap, fold=1 applies the offset from after the jump, which lands before it, and fold=0
    # the offset from before the jump, which lands after it (PEP 495). The jump lies between;
    # tz database transitions fall on whole seconds, so a binary search on seconds finds it.
    early = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    late = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    before = early.astimezone(tz).utcoffset()
    lo, hi = math.floor(early.timestamp()), math.ceil(late.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _resolve_after(naive: datetime, tz: tzinfo, after: datetime) -> datetime:
    """Like `resolve_local`, but the occurrence of an ambiguous time that is later than `after`."""
    instant = resolve_local(naive, tz)
    if instant <= after:
        second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        if second > instant and second.astimezone(tz).replace(tzinfo=None) == naive:
            return second
    return instant


def _zone(tz: tzinfo | str) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), not naive: {value!r}")


# ---------------------------------------------------------------------------------------------
# Quiet hours


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily quiet period [start, end) in local time; it wraps midnight when end < start."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall-clock times, without a time zone")
        if self.start == self.end:
            raise ValueError("quiet hours must not start and end at the same time")

    @property
    def wraps(self) -> bool:
        return self.end < self.start

    def contains(self, wall: time) -> bool:
        """Whether the local wall-clock time `wall` is inside the quiet period."""
        if self.wraps:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """From 'HH:MM-HH:MM', e.g. '21:00-08:00' (for a command line)."""
        start, sep, end = text.partition("-")
        if not sep:
            raise RuleError([f"{text!r} is not a quiet period; use HH:MM-HH:MM, e.g. 21:00-08:00"])
        return cls.from_spec({"start": start.strip(), "end": end.strip()})

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> QuietHours:
        problems: list[str] = []
        quiet = _read_quiet(spec, "", problems)
        if quiet is None:
            raise RuleError(problems)
        return quiet

    def to_spec(self) -> dict[str, Any]:
        return {"start": _time_text(self.start), "end": _time_text(self.end)}

    def __str__(self) -> str:
        return f"{_time_text(self.start)}-{_time_text(self.end)}"


def defer_past_quiet(instant: datetime, tz: tzinfo | str, quiet: QuietHours | None) -> datetime:
    """`instant` (aware), or the end of the quiet period it falls in, as a UTC instant.

    The end is a local wall-clock time and follows the DST rules of `resolve_local`; of an
    ambiguous end, the occurrence after `instant` is used, so a slot never moves backwards.
    """
    instant = instant.astimezone(UTC)
    if quiet is None:
        return instant
    zone = _zone(tz)
    # Normally one step. A second is needed only when the end of the quiet period does not exist
    # and resolves into the next quiet period (a skipped day, as in Pacific/Apia in 2011).
    for _ in range(4):
        local = instant.astimezone(zone)
        wall = local.time().replace(tzinfo=None)
        if not quiet.contains(wall):
            return instant
        day = local.date() + _ONE_DAY if quiet.wraps and wall >= quiet.start else local.date()
        instant = _resolve_after(datetime.combine(day, quiet.end), zone, instant)
    return instant


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True, slots=True, kw_only=True)
class Weekly:
    """On the given weekdays (0 = Monday .. 6 = Sunday) at local time `at`."""

    kind: ClassVar[str] = "weekly"
    weekdays: tuple[int, ...]
    at: time
    instruments: tuple[str, ...]
    comment: bool = False

    def __post_init__(self) -> None:
        days = tuple(sorted(set(self.weekdays)))
        if not days or days[0] < 0 or days[-1] > 6:
            raise ValueError(f"weekdays must be a non-empty set of 0..6, got {self.weekdays!r}")
        object.__setattr__(self, "weekdays", days)
        _check_common(self.at, self.instruments)

    def to_spec(self) -> dict[str, Any]:
        return {
            "weekdays": [WEEKDAYS[day] for day in self.weekdays],
            "at": _time_text(self.at),
            **_common_spec(self),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Weekly:
        return _from_spec_as(cls, spec)


@dataclass(frozen=True, slots=True, kw_only=True)
class EveryNDays:
    """Every `every` days from local date `start` (the first check-in's date), at local time `at`.

    `start` may be None only inside a template; `Template.rules_for` fills it in per client:
    the client's anchor date plus `start_after_days` (so two fortnightly rules of one template
    can take turns week by week).
    """

    kind: ClassVar[str] = "every_n_days"
    every: int
    start: date | None
    at: time
    instruments: tuple[str, ...]
    comment: bool = False
    start_after_days: int = 0  # only without `start`: days from the anchor to the first

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not 1 <= self.every <= MAX_EVERY_DAYS:
            raise ValueError(f"every must be 1..{MAX_EVERY_DAYS} days, got {self.every!r}")
        if isinstance(self.start, datetime):
            raise ValueError("start is a date, not a datetime")
        offset = self.start_after_days
        if isinstance(offset, bool) or not 0 <= offset <= MAX_EVERY_DAYS:
            raise ValueError(f"start_after_days must be 0..{MAX_EVERY_DAYS}, got {offset!r}")
        if offset and self.start is not None:
            raise ValueError("start_after_days is only for a rule without a start date")
        _check_common(self.at, self.instruments)

    def to_spec(self) -> dict[str, Any]:
        if self.start is None:
            raise ValueError(
                "this every_n_days rule has no start date; use Template.rules_for(anchor) first"
            )
        return {
            "every": self.every,
            "start": self.start.isoformat(),
            "at": _time_text(self.at),
            **_common_spec(self),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> EveryNDays:
        return _from_spec_as(cls, spec)


Unit: TypeAlias = Literal["hours", "days"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AfterSession:
    """After each logged session: `after` hours (elapsed) or `after` days (local calendar).

    With unit "hours" the slot is exactly that much elapsed time after the session (24 hours after
    a 10:00 session on the day before spring forward is 11:00 local). With unit "days" it is the
    session's local wall-clock time, or `at` if given, `after` local calendar days later.
    """

    kind: ClassVar[str] = "after_session"
    after: int
    unit: Unit
    at: time | None = None
    instruments: tuple[str, ...]
    comment: bool = False

    def __post_init__(self) -> None:
        if self.unit not in ("hours", "days"):
            raise ValueError(f"unit must be 'hours' or 'days', got {self.unit!r}")
        top = MAX_AFTER_HOURS if self.unit == "hours" else MAX_AFTER_DAYS
        if isinstance(self.after, bool) or not 1 <= self.after <= top:
            raise ValueError(f"after must be 1..{top} {self.unit}, got {self.after!r}")
        if self.at is not None and self.unit == "hours":
            raise ValueError("at is only for unit 'days'")
        _check_common(self.at, self.instruments)

    @property
    def offset(self) -> timedelta:
        """The nominal offset (for display and for how far back sessions matter)."""
        return timedelta(hours=self.after) if self.unit == "hours" else timedelta(days=self.after)

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {f"after_{self.unit}": self.after}
        if self.at is not None:
            spec["at"] = _time_text(self.at)
        return {**spec, **_common_spec(self)}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> AfterSession:
        return _from_spec_as(cls, spec)


@dataclass(frozen=True, slots=True, kw_only=True)
class Once:
    """Once, at the local date and time `at` (naive: the client's time zone applies)."""

    kind: ClassVar[str] = "once"
    at: datetime
    instruments: tuple[str, ...]
    comment: bool = False

    def __post_init__(self) -> None:
        if self.at.tzinfo is not None or self.at.microsecond:
            raise ValueError("at is a local date and time, without a time zone or microseconds")
        _check_common(None, self.instruments)

    def to_spec(self) -> dict[str, Any]:
        timespec = "seconds" if self.at.second else "minutes"
        return {"at": self.at.isoformat(timespec=timespec), **_common_spec(self)}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Once:
        return _from_spec_as(cls, spec)


Rule: TypeAlias = Weekly | EveryNDays | AfterSession | Once
KINDS: dict[str, type[Rule]] = {cls.kind: cls for cls in (Weekly, EveryNDays, AfterSession, Once)}


def rule_from_spec(kind: str, spec: Mapping[str, Any]) -> Rule:
    """The rule stored as (kind, spec); raises RuleError naming each problem and its fix."""
    problems: list[str] = []
    rule = _read_rule(kind, spec, "", problems, known=None, in_template=False)
    if rule is None:
        raise RuleError(problems)
    return rule


_R = TypeVar("_R", Weekly, EveryNDays, AfterSession, Once)


def _from_spec_as(cls: type[_R], spec: Mapping[str, Any]) -> _R:
    rule = rule_from_spec(cls.kind, spec)
    assert isinstance(rule, cls)
    return rule


def _check_common(at: time | None, instruments: tuple[str, ...]) -> None:
    if at is not None and (at.tzinfo is not None or at.microsecond):
        raise ValueError("at is a local wall-clock time, without a time zone or microseconds")
    if not instruments or len(instruments) > MAX_INSTRUMENTS:
        raise ValueError(f"a check-in asks 1..{MAX_INSTRUMENTS} instruments, got {instruments!r}")
    if not all(isinstance(name, str) and _INSTRUMENT.match(name) for name in instruments):
        raise ValueError(f"instrument ids are 1-64 letters, digits, '_', '.', '-': {instruments!r}")


def _common_spec(rule: Rule) -> dict[str, Any]:
    return {"instruments": list(rule.instruments), "comment": rule.comment}


def _time_text(value: time) -> str:
    text = f"{value.hour:02d}:{value.minute:02d}"
    return f"{text}:{value.second:02d}" if value.second else text


def session_lookback(rule: Rule) -> timedelta:
    """How long before `start_utc` the sessions passed to `occurrences` must reach back.

    Zero for rules that do not depend on sessions.
    """
    if isinstance(rule, AfterSession):
        return rule.offset + _SLACK + _ONE_DAY
    return timedelta(0)


# ---------------------------------------------------------------------------------------------
# Occurrences


def occurrences(
    rule: Rule,
    tz: tzinfo | str,
    start_utc: datetime,
    end_utc: datetime,
    sessions_utc: Sequence[datetime] = (),
    quiet: QuietHours | None = None,
) -> list[datetime]:
    """The slots of `rule` in [start_utc, end_utc): aware UTC instants, sorted and unique.

    `tz` is the client's IANA zone (a ZoneInfo, or its name); `sessions_utc` are the client's
    logged sessions (aware), used by `AfterSession` only, and must reach back `session_lookback`
    before `start_utc`; `quiet` is the quiet period in force for the client (their own, or the
    practice's). DST and quiet hours are applied before the window filter, so windows can be
    split anywhere without losing or duplicating a slot. Instants are whole seconds.
    """
    _aware(start_utc, "start_utc")
    _aware(end_utc, "end_utc")
    start = start_utc.astimezone(UTC)
    end = end_utc.astimezone(UTC)
    if end <= start:
        return []
    zone = _zone(tz)
    found: set[datetime] = set()
    for base, settled in _bases(rule, zone, start, end, sessions_utc, quiet):
        slot = base if settled else defer_past_quiet(base, zone, quiet)
        if start <= slot < end:
            found.add(slot)
    return sorted(found)


def next_occurrences(
    rule: Rule,
    tz: tzinfo | str,
    start_utc: datetime,
    n: int = 5,
    sessions_utc: Sequence[datetime] = (),
    quiet: QuietHours | None = None,
) -> list[datetime]:
    """The first `n` slots at or after `start_utc` (fewer if the rule has fewer), as occurrences.

    For `rapport schedule show`. Equal to the first `n` of `occurrences(rule, tz, start_utc, far)`.
    """
    _aware(start_utc, "start_utc")
    if n <= 0:
        return []
    zone = _zone(tz)
    start = start_utc.astimezone(UTC)
    if isinstance(rule, Once | AfterSession):
        latest = _latest_base(rule, zone, sessions_utc)
        if latest is None:
            return []
        return occurrences(rule, zone, start, latest + _SLACK, sessions_utc, quiet)[:n]
    if isinstance(rule, EveryNDays) and rule.start is not None:
        # A rule that begins far ahead would outrun the horizon below: search from its first day.
        first_day = datetime.combine(rule.start, time(), UTC) - _ONE_DAY * 2
        start = max(start, first_day)
    found: list[datetime] = []
    cursor, span = start, timedelta(days=8)
    horizon = start + timedelta(days=MAX_EVERY_DAYS * (n + 1) + 8)
    while len(found) < n and cursor < horizon:
        found += occurrences(rule, zone, cursor, cursor + span, (), quiet)
        cursor, span = cursor + span, span * 2
    return found[:n]


def _latest_base(
    rule: Once | AfterSession, zone: tzinfo, sessions: Sequence[datetime]
) -> datetime | None:
    if isinstance(rule, Once):
        return resolve_local(rule.at, zone)
    if not sessions:
        return None
    latest = max(session.astimezone(UTC) for session in sessions)
    # A days offset can land up to a day later than the nominal offset (the `at` time, a gap).
    return latest + rule.offset + _ONE_DAY * 2


def _bases(
    rule: Rule,
    zone: tzinfo,
    start: datetime,
    end: datetime,
    sessions: Sequence[datetime],
    quiet: QuietHours | None,
) -> Iterator[tuple[datetime, bool]]:
    """Each slot's instant before quiet hours, for every slot that can end up in [start, end),
    and whether it is settled: certainly outside quiet hours, so it need not be checked."""
    if isinstance(rule, AfterSession):
        for base in _session_bases(rule, zone, start, end, sessions):
            yield base, quiet is None
        return
    if isinstance(rule, Once):
        yield resolve_local(rule.at, zone), quiet is None
        return
    # Local dates whose slot can land in the window once moved by DST or quiet hours. A slot's
    # local date is not after the window end's local date (resolution only moves forward); one
    # more day covers a fall-back that crosses midnight, where local dates briefly run backwards.
    first = start.astimezone(zone).date() - _SLACK
    last = end.astimezone(zone).date() + _ONE_DAY
    at = rule.at
    # The fast path: when the rule's time is outside quiet hours, a slot that the wall clock shows
    # exactly (not moved by a DST gap) needs no quiet-hours check.
    clear = quiet is None or not quiet.contains(at)
    if isinstance(rule, Weekly):
        days: Iterator[date] = _weekly_days(rule.weekdays, first, last)
    else:
        days = _every_days(rule, first, last)
    for day in days:
        instant, exact = _resolve(datetime.combine(day, at), zone)
        yield instant, quiet is None or (exact and clear)


def _weekly_days(weekdays: tuple[int, ...], first: date, last: date) -> Iterator[date]:
    for weekday in weekdays:
        day = first + timedelta(days=(weekday - first.weekday()) % 7)
        while day <= last:
            yield day
            day += _WEEK


def _every_days(rule: EveryNDays, first: date, last: date) -> Iterator[date]:
    if rule.start is None:
        raise ValueError(
            "this every_n_days rule has no start date; use Template.rules_for(anchor) to set it"
        )
    step = timedelta(days=rule.every)
    skip = max(0, -(-(first - rule.start).days // rule.every))  # ceil division; not before start
    day = rule.start + skip * step
    while day <= last:
        yield day
        day += step


def _session_bases(
    rule: AfterSession,
    zone: tzinfo,
    start: datetime,
    end: datetime,
    sessions: Sequence[datetime],
) -> Iterator[datetime]:
    earliest = start - session_lookback(rule)
    for session in sessions:
        if session.tzinfo is None:
            raise ValueError(f"sessions_utc must be aware datetimes (UTC), got {session!r}")
        if not earliest <= session < end:
            continue
        session = session.astimezone(UTC).replace(microsecond=0)
        if rule.unit == "hours":
            yield session + timedelta(hours=rule.after)
            continue
        local = session.astimezone(zone)
        at = rule.at if rule.at is not None else local.time()
        day = local.date() + timedelta(days=rule.after)
        yield resolve_local(datetime.combine(day, at), zone)


# ---------------------------------------------------------------------------------------------
# Answer window and reminder


def expires_at(
    slot_utc: datetime, next_slot_utc: datetime | None = None, window: timedelta = DEFAULT_WINDOW
) -> datetime:
    """When the check-in of `slot_utc` stops accepting answers.

    `window` after the slot (its due time, not its send time, so a check-in caught up after
    downtime does not get a fresh window), or earlier, when the client's next check-in (of any
    rule) is due: `next_slot_utc`. A next slot at the same instant or before does not shorten it.
    """
    _aware(slot_utc, "slot_utc")
    if window <= timedelta(0):
        raise ValueError(f"the answer window must be positive, got {window}")
    slot = slot_utc.astimezone(UTC)
    expiry = slot + window
    if next_slot_utc is not None:
        _aware(next_slot_utc, "next_slot_utc")
        following = next_slot_utc.astimezone(UTC)
        if slot < following < expiry:
            return following
    return expiry


def reminder_at(
    sent_utc: datetime,
    expires_utc: datetime,
    tz: tzinfo | str,
    quiet: QuietHours | None = None,
    delay: timedelta = DEFAULT_REMINDER_DELAY,
) -> datetime | None:
    """When to remind the client of an unanswered check-in, or None for no reminder.

    `delay` after the send, moved to the end of quiet hours if it falls inside them; None if that
    is at or after the check-in's expiry (a reminder for a check-in that can no longer be answered
    would only nag).
    """
    _aware(sent_utc, "sent_utc")
    _aware(expires_utc, "expires_utc")
    if delay <= timedelta(0):
        raise ValueError(f"the reminder delay must be positive, got {delay}")
    remind = defer_past_quiet(sent_utc.astimezone(UTC) + delay, tz, quiet)
    return remind if remind < expires_utc.astimezone(UTC) else None


# ---------------------------------------------------------------------------------------------
# Templates from the practice config


@dataclass(frozen=True, slots=True)
class Template:
    """A named list of rules from the practice config, e.g. 'weekly-post-session'."""

    name: str
    rules: tuple[Rule, ...]
    description: str = ""

    def rules_for(self, anchor: date) -> tuple[Rule, ...]:
        """The rules for one client: an every_n_days rule without a start starts on `anchor`
        (typically the client's local enrolment date)."""
        return tuple(
            replace(rule, start=anchor + timedelta(days=rule.start_after_days), start_after_days=0)
            if isinstance(rule, EveryNDays) and rule.start is None
            else rule
            for rule in self.rules
        )


def parse_templates(
    raw: object, *, known_instruments: Collection[str] | None = None, key: str = "templates"
) -> dict[str, Template]:
    """The `[templates]` table of the config (as loaded from TOML) as templates by name.

    Raises RuleError with every problem as 'key: problem; fix'. With `known_instruments`, each
    rule's instruments must be among them.
    """
    if raw is None:
        return {}
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise RuleError([f"{key}: must be a table of named templates; see docs/scheduling.md"])
    found: dict[str, Template] = {}
    for name, table in raw.items():
        here = f"{key}.{name}"
        if not isinstance(name, str) or not _TEMPLATE_NAME.match(name):
            problems.append(
                f"{here}: {name!r} is not a template name; use 1-64 lowercase letters, digits, "
                "'-' and '_', starting with a letter or digit"
            )
            continue
        if not isinstance(table, Mapping):
            problems.append(f"{here}: must be a table with rules; add [[{here}.rules]] tables")
            continue
        _unknown(table, {"description", "rules"}, here, problems)
        description = table.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{here}.description: must be text; put it in quotes")
            description = ""
        rules_raw = table.get("rules")
        if not isinstance(rules_raw, list) or not rules_raw:
            problems.append(
                f"{here}.rules: missing or empty; add at least one [[{here}.rules]] table"
            )
            continue
        rules: list[Rule] = []
        for index, rule_raw in enumerate(rules_raw):
            rule_key = f"{here}.rules[{index}]"
            if not isinstance(rule_raw, Mapping):
                problems.append(f"{rule_key}: must be a table; write it as [[{here}.rules]]")
                continue
            kind = rule_raw.get("kind")
            spec = {k: v for k, v in rule_raw.items() if k != "kind"}
            rule = _read_rule(kind, spec, rule_key, problems, known_instruments, in_template=True)
            if rule is not None:
                rules.append(rule)
        if len(rules) == len(rules_raw):
            found[name] = Template(name=name, rules=tuple(rules), description=description)
    if problems:
        raise RuleError(problems)
    return found


def parse_quiet_hours(raw: object, *, key: str = "quiet_hours") -> QuietHours | None:
    """A `[quiet_hours]` table ({start = "21:00", end = "08:00"}); None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise RuleError([f'{key}: must be a table like {{start = "21:00", end = "08:00"}}'])
    problems: list[str] = []
    quiet = _read_quiet(raw, key, problems)
    if quiet is None:
        raise RuleError(problems)
    return quiet


# ---------------------------------------------------------------------------------------------
# Reading specs: each problem as "key: problem; fix"

_MISSING: Any = object()
_COMMON = {"instruments", "comment"}
_FIELDS = {
    "weekly": {"weekdays", "at"} | _COMMON,
    "every_n_days": {"every", "start", "start_after_days", "at"} | _COMMON,
    "after_session": {"after_hours", "after_days", "at"} | _COMMON,
    "once": {"at"} | _COMMON,
}


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _unknown(table: Mapping[Any, Any], allowed: set[str], key: str, problems: list[str]) -> None:
    for name in table:
        if name in allowed:
            continue
        close = difflib.get_close_matches(str(name), sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"{_join(key, str(name))}: unknown setting; remove it or check its spelling{hint}"
        )


def _read_rule(
    kind: object,
    spec: Mapping[str, Any],
    key: str,
    problems: list[str],
    known: Collection[str] | None,
    *,
    in_template: bool,
) -> Rule | None:
    kinds = ("weekly", "every_n_days", "after_session") if in_template else tuple(_FIELDS)
    if kind == "once" and in_template:
        problems.append(
            f"{_join(key, 'kind')}: 'once' is a single date, not for a template; "
            "use weekly, every_n_days or after_session"
        )
        return None
    if not isinstance(kind, str) or kind not in kinds:
        what = "missing" if kind is None else f"{kind!r} is not a kind of rule"
        problems.append(f"{_join(key, 'kind')}: {what}; use one of {', '.join(kinds)}")
        return None
    if not isinstance(spec, Mapping):
        problems.append(f"{key or 'spec'}: must be a table (a JSON object); see docs/scheduling.md")
        return None
    before = len(problems)
    _unknown(spec, _FIELDS[kind], key, problems)
    fields: dict[str, Any]
    if kind == "weekly":
        fields = {
            "weekdays": _read_weekdays(spec.get("weekdays", _MISSING), key, problems),
            "at": _read_time(spec.get("at", _MISSING), _join(key, "at"), problems),
        }
    elif kind == "every_n_days":
        fields = {
            "every": _read_int(
                spec.get("every", _MISSING),
                _join(key, "every"),
                1,
                MAX_EVERY_DAYS,
                "days",
                "every = 14 for fortnightly",
                problems,
            ),
            "start": _read_date(
                spec.get("start", _MISSING), _join(key, "start"), problems, optional=in_template
            ),
            "at": _read_time(spec.get("at", _MISSING), _join(key, "at"), problems),
        }
        if "start_after_days" in spec:
            fields["start_after_days"] = _read_start_after(spec, key, problems, in_template)
    elif kind == "after_session":
        fields = _read_after_session(spec, key, problems)
    else:
        fields = {"at": _read_local_datetime(spec.get("at", _MISSING), _join(key, "at"), problems)}
    instruments = _read_instruments(spec.get("instruments", _MISSING), key, problems, known)
    comment = spec.get("comment", False)
    if not isinstance(comment, bool):
        problems.append(f"{_join(key, 'comment')}: {comment!r} is not true or false; use one")
    if len(problems) != before:
        return None
    try:
        return KINDS[kind](**fields, instruments=instruments, comment=comment)
    except (TypeError, ValueError) as exc:  # the readers check everything; this is a backstop
        problems.append(f"{key or kind}: {exc}; see docs/scheduling.md")
        return None


def _read_after_session(spec: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    hours, days = spec.get("after_hours", _MISSING), spec.get("after_days", _MISSING)
    if hours is not _MISSING and days is not _MISSING:
        problems.append(
            f"{_join(key, 'after_days')}: give after_hours or after_days, not both; remove one"
        )
        return {}
    if hours is _MISSING and days is _MISSING:
        problems.append(
            f"{_join(key, 'after_hours')}: missing; give after_hours (elapsed hours, e.g. 24) "
            "or after_days (the same clock time N days later, e.g. 3)"
        )
        return {}
    unit: Unit = "hours" if hours is not _MISSING else "days"
    top = MAX_AFTER_HOURS if unit == "hours" else MAX_AFTER_DAYS
    example = "after_hours = 24" if unit == "hours" else "after_days = 3"
    fields: dict[str, Any] = {
        "unit": unit,
        "after": _read_int(
            hours if unit == "hours" else days,
            _join(key, f"after_{unit}"),
            1,
            top,
            unit,
            example,
            problems,
        ),
    }
    if "at" in spec:
        if unit == "hours":
            problems.append(
                f"{_join(key, 'at')}: only with after_days; remove it or use after_days"
            )
        else:
            fields["at"] = _read_time(spec["at"], _join(key, "at"), problems)
    return fields


def _read_start_after(
    spec: Mapping[str, Any], key: str, problems: list[str], in_template: bool
) -> int | None:
    here = _join(key, "start_after_days")
    if not in_template:
        problems.append(f"{here}: only in a template; give start = YYYY-MM-DD instead")
        return None
    if "start" in spec:
        problems.append(f"{here}: give start or start_after_days, not both; remove one")
        return None
    return _read_int(
        spec["start_after_days"],
        here,
        0,
        MAX_EVERY_DAYS,
        "days",
        "start_after_days = 1 for the day after the client joins",
        problems,
    )


def _read_quiet(spec: Mapping[str, Any], key: str, problems: list[str]) -> QuietHours | None:
    before = len(problems)
    _unknown(spec, {"start", "end"}, key, problems)
    start = _read_time(spec.get("start", _MISSING), _join(key, "start"), problems)
    end = _read_time(spec.get("end", _MISSING), _join(key, "end"), problems)
    if start is not None and end is not None and start == end:
        problems.append(
            f"{_join(key, 'end')}: the same as start; give a different end, "
            "or leave quiet hours out to have none"
        )
    if len(problems) != before or start is None or end is None:
        return None
    return QuietHours(start=start, end=end)


def _read_time(value: object, key: str, problems: list[str]) -> time | None:
    fix = "use HH:MM in 24-hour local time, e.g. 09:00"
    if value is _MISSING:
        problems.append(f"{key}: missing; {fix}")
        return None
    if isinstance(value, time):  # a TOML local time, 09:00:00
        if value.tzinfo is None and not value.microsecond:
            return value
        problems.append(f"{key}: {value.isoformat()} has a fraction or offset; {fix}")
        return None
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        problems.append(f"{key}: {value!r} is not a time; {fix}")
        return None
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def _read_date(value: object, key: str, problems: list[str], *, optional: bool) -> date | None:
    fix = "use YYYY-MM-DD, e.g. 2025-01-06"
    if value is _MISSING:
        if optional:
            return None
        problems.append(f"{key}: missing; give the first check-in's local date, {fix}")
        return None
    if isinstance(value, date) and not isinstance(value, datetime):  # a TOML local date
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(f"{key}: {value!r} is not a date; {fix}")
    return None


def _read_local_datetime(value: object, key: str, problems: list[str]) -> datetime | None:
    fix = "use a local date and time without an offset, e.g. 2025-03-30T18:00"
    if value is _MISSING:
        problems.append(f"{key}: missing; {fix}")
        return None
    parsed: datetime | None = None
    if isinstance(value, datetime):  # a TOML local date-time
        parsed = value
    elif isinstance(value, str) and _LOCAL_DATETIME.match(value):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        problems.append(f"{key}: {value!r} is not a local date and time; {fix}")
        return None
    if parsed.tzinfo is not None or parsed.microsecond:
        problems.append(f"{key}: {value!r} has an offset or a fraction; {fix}")
        return None
    return parsed


def _read_int(
    value: object, key: str, low: int, high: int, unit: str, example: str, problems: list[str]
) -> int | None:
    if value is _MISSING:
        problems.append(f"{key}: missing; give a whole number of {unit}, e.g. {example}")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(
            f"{key}: {value!r} is not a whole number from {low} to {high}; "
            f"give {unit} in that range, e.g. {example}"
        )
        return None
    return value


def _read_weekdays(value: object, key: str, problems: list[str]) -> tuple[int, ...]:
    here = _join(key, "weekdays")
    if value is _MISSING:
        problems.append(f'{here}: missing; list the days, e.g. ["monday", "thursday"]')
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        problems.append(f'{here}: must be a non-empty list of days, e.g. ["monday", "thursday"]')
        return ()
    days: set[int] = set()
    ok = True
    for index, item in enumerate(items):
        name = item.strip().lower() if isinstance(item, str) else None
        if name is None or name not in WEEKDAYS:
            problems.append(f"{here}[{index}]: {item!r} is not a weekday; use monday..sunday")
            ok = False
            continue
        days.add(WEEKDAYS.index(name))
    return tuple(sorted(days)) if ok else ()


def _read_instruments(
    value: object, key: str, problems: list[str], known: Collection[str] | None
) -> tuple[str, ...]:
    here = _join(key, "instruments")
    if value is _MISSING:
        problems.append(f'{here}: missing; list what the check-in asks, e.g. ["alliance"]')
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_INSTRUMENTS:
        problems.append(
            f'{here}: must be a list of 1 to {MAX_INSTRUMENTS} instrument ids, e.g. ["alliance"]'
        )
        return ()
    names: list[str] = []
    ok = True
    for index, item in enumerate(items):
        if not isinstance(item, str) or not _INSTRUMENT.match(item):
            problems.append(f"{here}[{index}]: {item!r} is not an instrument id; use e.g. 'who5'")
            ok = False
        elif known is not None and item not in known:
            choices = ", ".join(sorted(known)) or "(none loaded)"
            problems.append(f"{here}[{index}]: unknown instrument {item!r}; use one of {choices}")
            ok = False
        elif item not in names:
            names.append(item)
    return tuple(names) if ok else ()
