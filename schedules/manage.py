"""What people change about one client's schedule, and what it will do next.

The command line (`rapport schedule`) and a therapist's Telegram commands (`/schedule`,
`/session`) both go through here, so both change and show a schedule the same way; a session
itself is logged with store.plans.add_session.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from schedules.planner import session_rule
from schedules.rules import QuietHours, Rule, Template, next_occurrences, rule_from_spec
from store import audit, people, plans
from store.models import Client
from store.people import IssuedInvite
from store.vault import Vault

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
# How far from now a logged session may lie: a typo of a year is refused, not planned.
SESSION_RANGE = timedelta(days=62)


@dataclass(frozen=True)
class Upcoming:
    """A client's schedule as a person reads it: the rules and the next due times."""

    timezone: str
    template: str | None
    quiet: QuietHours | None
    rules: list[Rule]
    due: list[datetime]


def template_rules(template: Template, client: Client, at: datetime) -> list[tuple[str, str]]:
    """(kind, spec) for each rule; fortnightly rules start on the client's local date."""
    anchor = at.astimezone(ZoneInfo(client.timezone)).date()
    return [(rule.kind, json.dumps(rule.to_spec())) for rule in template.rules_for(anchor)]


async def apply_template(
    session: AsyncSession,
    client: Client,
    template: Template,
    now: datetime,
    *,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> int:
    """Give the client the template's rules; what the old ones planned is cancelled."""
    rows = await plans.set_schedule(
        session,
        client,
        template_rules(template, client, now),
        template=template.name,
        now=now,
        actor_kind=actor_kind,
        actor_id=actor_id,
    )
    return len(rows)


async def invite(
    session: AsyncSession,
    vault: Vault,
    *,
    therapist_id: uuid.UUID,
    label: str,
    timezone: str,
    template: Template | None,
    now: datetime,
    invite_ttl: timedelta,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> tuple[Client, IssuedInvite]:
    """Invite a client (store.people.invite_client) and give them the template's rules from
    now: the one way /invite, the web dashboard and `rapport client invite` invite. Raises
    NotFound for a therapist who is not active, ValueError for an unknown timezone."""
    client, issued = await people.invite_client(
        session,
        vault,
        therapist_id=therapist_id,
        label=label,
        timezone=timezone,
        schedule_template=template.name if template is not None else None,
        now=now,
        invite_ttl=invite_ttl,
        actor_kind=actor_kind,
        actor_id=actor_id,
    )
    if template is not None:
        await apply_template(
            session, client, template, now, actor_kind=actor_kind, actor_id=actor_id
        )
    return client, issued


async def start_on_joining(
    session: AsyncSession,
    client: Client,
    templates: Mapping[str, Template],
    practice_quiet: QuietHours | None,
    now: datetime,
) -> Upcoming:
    """A client who has just joined: what their schedule will do next.

    A template given at the invitation is given again now, so that its fortnightly rules count
    from the day the client joined (as docs/scheduling.md says), not from the invitation,
    which may have been days before. Rules changed by hand since are left as they are.
    """
    template = templates.get(client.schedule_template or "")
    rows = await plans.active_schedules(session, client.id)
    if template is not None and rows and all(row.template == template.name for row in rows):
        await apply_template(session, client, template, now, actor_kind="system")
    return await upcoming(session, client, practice_quiet, now)


async def upcoming(
    session: AsyncSession,
    client: Client,
    practice_quiet: QuietHours | None,
    now: datetime,
    count: int = 5,
) -> Upcoming:
    zone = ZoneInfo(client.timezone)
    rules = [
        rule_from_spec(row.kind, json.loads(row.spec))
        for row in await plans.active_schedules(session, client.id)
    ]
    quiet = QuietHours.parse(client.quiet_hours) if client.quiet_hours else practice_quiet
    sessions = await plans.sessions_between(session, client.id, EPOCH, FOREVER)  # ahead too
    if client.session_rule:
        sessions += next_occurrences(session_rule(client.session_rule), zone, now, 10)
    due = sorted(
        {t for rule in rules for t in next_occurrences(rule, zone, now, count, sessions, quiet)}
    )[:count]
    return Upcoming(client.timezone, client.schedule_template, quiet, rules, due)


def set_recurring(
    session: AsyncSession,
    client: Client,
    weekdays: list[str] | None,
    at: str | None,
    now: datetime,
    *,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> str | None:
    """The client's regular session time (weekdays at HH:MM, local), or none when `weekdays`
    is empty; the client is planned again from now. Raises ValueError (RuleError) with what
    is wrong. Returns the stored rule."""
    spec = None
    if weekdays:
        spec = json.dumps({"weekdays": weekdays, "at": at or ""})
        session_rule(spec)  # raises when a weekday or the time is wrong
    client.session_rule = spec
    client.planned_until = min(client.planned_until or now, now)
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="session.recurring",
        target_kind="client",
        target_id=client.id,
        detail="set" if spec else "cleared",
    )
    return spec


def set_quiet_hours(
    session: AsyncSession,
    client: Client,
    hours: str | None,
    now: datetime,
    *,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> QuietHours | None:
    """The client's own quiet hours ('HH:MM-HH:MM', local), or the practice's with None; the
    client is planned again from now. Raises ValueError (RuleError) with what is wrong."""
    quiet = QuietHours.parse(hours) if hours else None
    client.quiet_hours = str(quiet) if quiet else None
    client.planned_until = min(client.planned_until or now, now)
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="schedule.quiet",
        target_kind="client",
        target_id=client.id,
        detail="own" if quiet else "practice",
    )
    return quiet


_RELATIVE = {"today": 0, "yesterday": -1, "tomorrow": 1}
_CLOCK = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)$")


def parse_when(text: str | None, zone: str, now: datetime) -> datetime:
    """A session time as a person writes it, in the client's zone unless it has an offset:
    nothing (now), '14:00', 'yesterday 15:30', 'today', '2026-12-01 10:00', ISO 8601.

    Raises ValueError with a message that says what is accepted.
    """
    tz = ZoneInfo(zone)
    words = (text or "").strip().lower().split()
    if not words:
        return now
    local_today = now.astimezone(tz).date()
    day: date | None = None
    if words[0] in _RELATIVE:
        day = local_today + timedelta(days=_RELATIVE[words.pop(0)])
    elif _CLOCK.match(words[0]) is None:
        try:
            parsed = datetime.fromisoformat(" ".join(words))
        except ValueError:
            raise ValueError(_WHEN_HELP) from None
        if len(words) == 1 and len(words[0]) == len("2026-12-01"):
            parsed = parsed.replace(hour=12)  # a date alone: midday, as 'today' is
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(UTC)
    at = time(12, 0) if day is not None and not words else _clock(words)
    if day is None:
        day = local_today
    if len(words) > 1:
        raise ValueError(_WHEN_HELP)
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _clock(words: list[str]) -> time:
    match = _CLOCK.match(words[0]) if words else None
    if match is None:
        raise ValueError(_WHEN_HELP)
    return time(int(match.group(1)), int(match.group(2)))


async def log_session(
    session: AsyncSession,
    client: Client,
    when: str,
    now: datetime,
    *,
    actor_kind: str,
    actor_id: uuid.UUID | None,
) -> datetime:
    """Log a session as a therapist writes its time (`parse_when`, within SESSION_RANGE of
    now): /session and the web client page. Raises ValueError with what is wrong."""
    at = parse_when(when, client.timezone, now)
    check_session_time(at, now)
    await plans.add_session(session, client, at, now, actor_kind=actor_kind, actor_id=actor_id)
    return at


def check_session_time(at: datetime, now: datetime) -> None:
    if abs(at - now) > SESSION_RANGE:
        raise ValueError(
            f"that is more than {SESSION_RANGE.days} days from today; give a date close to now"
        )


_WHEN_HELP = "give the time as 14:00, 'yesterday 15:30', 'today' or a date such as 2026-12-01 10:00"
