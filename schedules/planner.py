"""Planning: a client's stored rules become check-in rows, a little ahead of time.

Each client is planned up to `horizon` ahead and planned again when half of that is left, so
a tick with nothing to plan costs one indexed query. Slots are written with "insert unless it
exists" on (schedule, time): planning twice, or in two processes, never makes a slot twice.
After downtime the plan simply continues from where it ended; slots that are already past
their answer window are recorded as missed when claimed, never sent.
"""

from __future__ import annotations

import bisect
import json
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from schedules.rules import (
    QuietHours,
    Rule,
    Weekly,
    expires_at,
    occurrences,
    rule_from_spec,
    session_lookback,
)
from store import plans
from store.models import Client

HORIZON = timedelta(days=2)


@lru_cache(maxsize=4096)
def _rule(kind: str, spec: str) -> Rule:
    return rule_from_spec(kind, json.loads(spec))


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def _quiet(text: str) -> QuietHours:
    return QuietHours.parse(text)


def session_rule(spec: str) -> Weekly:
    """A client's recurring session time, e.g. {"weekdays": ["tuesday"], "at": "10:00"}."""
    return Weekly.from_spec({**json.loads(spec), "instruments": ["session"]})


@dataclass
class Planner:
    quiet: QuietHours | None
    window: timedelta
    horizon: timedelta = HORIZON
    batch: int = 500
    budget: float = 1.0  # seconds of planning per tick at most, so sending is never starved

    def quiet_for(self, client: Client) -> QuietHours | None:
        return _quiet(client.quiet_hours) if client.quiet_hours else self.quiet

    async def plan(self, session: AsyncSession, now: datetime) -> int:
        """Plan the clients whose plan runs out soon; returns how many were planned.

        The budget is checked after each client, so a tick never plans for much longer than
        it: the rest is planned by the next ticks, and due check-ins are sent in between.
        Clients taken but not planned are released when the transaction ends.
        """
        deadline, planned = clock.monotonic() + self.budget, 0
        while True:
            due = await plans.clients_to_plan(
                session, before=now + self.horizon / 2, limit=self.batch
            )
            for client in due:
                await self.plan_client(session, client, now)
                planned += 1
                if clock.monotonic() >= deadline:
                    return planned
            if len(due) < self.batch:
                return planned

    async def plan_client(self, session: AsyncSession, client: Client, now: datetime) -> None:
        start = client.planned_until or now
        until = now + self.horizon
        if start >= until:
            return
        schedules = await plans.active_schedules(session, client.id)
        rules = [(row, _rule(row.kind, row.spec)) for row in schedules]
        tz, quiet = _zone(client.timezone), self.quiet_for(client)
        # Look far enough ahead to know each slot's successor (it can shorten the window).
        end = until + self.window
        sessions = await self._sessions(session, client, [r for _, r in rules], start, end, tz)
        found = sorted(
            (
                (slot, row.id, rule)
                for row, rule in rules
                # A rule has no slots from before it was given (a re-plan from a past session).
                for slot in occurrences(rule, tz, max(start, row.created_at), end, sessions, quiet)
            ),
            key=lambda found: (found[0], found[1]),
        )
        times = sorted({slot for slot, _, _ in found})
        slots = []
        for slot, schedule_id, rule in found:
            if slot >= until:
                break
            later = times[bisect.bisect_right(times, slot) :]
            slots.append(
                plans.Slot(
                    schedule_id=schedule_id,
                    client_id=client.id,
                    slot_at=slot,
                    expires_at=expires_at(slot, later[0] if later else None, self.window),
                    instruments=rule.instruments,
                    with_comment=rule.comment,
                )
            )
        await plans.insert_slots(session, slots, now)
        client.planned_until = until

    async def _sessions(
        self,
        session: AsyncSession,
        client: Client,
        rules: Sequence[Rule],
        start: datetime,
        end: datetime,
        tz: ZoneInfo,
    ) -> list[datetime]:
        lookbacks = [session_lookback(rule) for rule in rules]
        if not any(lookbacks):
            return []
        since = start - max(lookbacks)
        logged = await plans.sessions_between(session, client.id, since, end)
        if client.session_rule:
            logged += occurrences(session_rule(client.session_rule), tz, since, end)
        return sorted(set(logged))
