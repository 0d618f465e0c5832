"""When each pre-session brief is due: a set time before the client's next session, moved
earlier when that falls in the practice's quiet hours, never after the session has begun."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from schedules.planner import session_rule
from schedules.rules import QuietHours, next_occurrences
from store import briefs

# How far back from a time in the quiet hours the brief may move (a quiet period is shorter
# than a day), and the step it moves by.
_QUIET_SEARCH = timedelta(hours=24)
_STEP = timedelta(minutes=5)


def brief_at(
    session_at: datetime, lead: timedelta, zone: str, quiet: QuietHours | None
) -> datetime:
    """When the brief for a session at `session_at` goes out: `lead` before it, or, when that
    is in the quiet hours, just before they began (the evening before an early session)."""
    at = session_at - lead
    if quiet is None:
        return at
    tz = ZoneInfo(zone)
    moved = at
    while quiet.contains(moved.astimezone(tz).time().replace(tzinfo=None)):
        moved -= _STEP
        if at - moved > _QUIET_SEARCH:
            return at
    return moved


def next_session(candidate: briefs.Candidate, now: datetime) -> datetime | None:
    """The client's next session at or after `now`: logged, or from the recurring time."""
    found: list[datetime] = [at for at in candidate.logged if at >= now]
    if candidate.session_rule:
        rule = session_rule(candidate.session_rule)
        found += next_occurrences(rule, candidate.timezone, now, 1)
    return min(found, default=None)


def lookahead(lead: timedelta) -> timedelta:
    """How far ahead to look for sessions whose brief may be due now."""
    return lead + _QUIET_SEARCH


async def claim_due(
    session: AsyncSession,
    now: datetime,
    lead: timedelta,
    zone: str,
    quiet: QuietHours | None,
) -> Sequence[uuid.UUID]:
    """Claim the briefs due now (each client and session at most once); their ids."""
    now = now.astimezone(UTC)
    claimed = []
    for candidate in await briefs.candidates(session, now, now + lookahead(lead)):
        session_at = next_session(candidate, now)
        if session_at is None or now < brief_at(session_at, lead, zone, quiet):
            continue
        brief_id = await briefs.claim(session, candidate.client_id, session_at, now)
        if brief_id is not None:
            claimed.append(brief_id)
    return claimed
