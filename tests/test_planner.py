"""Planning stored rules into check-ins on real databases: the right instants, nothing twice,
schedule changes, sessions, catch-up after downtime."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.config import load_instruments
from review import decide as review
from schedules import manage
from schedules.planner import Planner
from schedules.rules import AfterSession, QuietHours, Weekly
from store import checkins, plans
from store.db import transaction
from store.models import CheckIn, CheckInState, Client
from store.vault import Vault
from tests.conftest import Database
from tests.factories import team

INSTRUMENTS = load_instruments(None, Path("."))
MONDAY_0900_BERLIN = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)  # CET, UTC+1
WEEKLY = Weekly(weekdays=(0, 3), at=time(9), instruments=("alliance",))
PLANNER = Planner(quiet=QuietHours(time(21), time(8)), window=timedelta(hours=24))


async def _give(database: Database, client_id: object, *rules: object, now: datetime) -> None:
    async with transaction(database.sessions) as session:
        client = await session.get(Client, client_id)
        assert client is not None
        specs = [(rule.kind, json.dumps(rule.to_spec())) for rule in rules]  # type: ignore[attr-defined]
        await plans.set_schedule(session, client, specs, template=None, now=now)


async def _plan(database: Database, now: datetime) -> int:
    async with transaction(database.sessions) as session:
        return await PLANNER.plan(session, now)


async def _slots(database: Database) -> list[tuple[datetime, str]]:
    async with database.sessions() as session:
        rows = (await session.scalars(select(CheckIn).order_by(CheckIn.slot_at))).all()
    return [(row.slot_at, row.state) for row in rows]


async def test_weekly_rule_plans_local_times_once(database: Database, vault: Vault) -> None:
    start = MONDAY_0900_BERLIN - timedelta(days=1)  # Sunday
    made = await team(database.sessions, vault, now=start)
    await _give(database, made.client.id, WEEKLY, now=start)
    assert await _plan(database, start) == 1
    assert await _slots(database) == [(MONDAY_0900_BERLIN, "due")]  # within the 2-day horizon
    assert await _plan(database, start) == 0  # nothing new to plan yet
    later = start + timedelta(days=3)  # Wednesday: the plan now reaches Friday
    assert await _plan(database, later) == 1
    assert [t for t, _ in await _slots(database)] == [
        MONDAY_0900_BERLIN,
        MONDAY_0900_BERLIN + timedelta(days=3),
    ]
    async with database.sessions() as session:
        first = await session.scalar(select(CheckIn).order_by(CheckIn.slot_at))
    assert first is not None
    assert first.expires_at == MONDAY_0900_BERLIN + timedelta(hours=24)
    assert first.instruments == "alliance"


async def test_a_schedule_change_cancels_what_the_old_one_planned(
    database: Database, vault: Vault
) -> None:
    start = MONDAY_0900_BERLIN - timedelta(days=1)
    made = await team(database.sessions, vault, now=start)
    await _give(database, made.client.id, WEEKLY, now=start)
    await _plan(database, start)
    other = Weekly(weekdays=(0,), at=time(9), instruments=("who5",))
    await _give(database, made.client.id, other, now=start + timedelta(minutes=1))
    await _plan(database, start + timedelta(minutes=1))
    slots = await _slots(database)
    assert slots == [(MONDAY_0900_BERLIN, "cancelled"), (MONDAY_0900_BERLIN, "due")]
    async with database.sessions() as session:
        due = await session.scalar(select(CheckIn).where(CheckIn.state == "due"))
    assert due is not None and due.instruments == "who5"


async def test_after_session_rule_follows_a_logged_session(
    database: Database, vault: Vault
) -> None:
    start = MONDAY_0900_BERLIN
    made = await team(database.sessions, vault, now=start)
    rule = AfterSession(after=24, unit="hours", instruments=("alliance",), comment=True)
    await _give(database, made.client.id, rule, now=start)
    await _plan(database, start)
    assert await _slots(database) == []
    session_at = start + timedelta(hours=2)  # 11:00 local
    async with transaction(database.sessions) as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        await plans.add_session(session, client, session_at, start + timedelta(hours=3))
    await _plan(database, start + timedelta(hours=3))
    assert await _slots(database) == [(session_at + timedelta(hours=24), "due")]


async def test_upcoming_shows_the_check_in_after_a_session_logged_ahead(
    database: Database, vault: Vault
) -> None:
    """What `rapport schedule show` and /plan list is what the planner will send: a session
    logged for next week brings its after-session check-in into the list."""
    start = MONDAY_0900_BERLIN
    made = await team(database.sessions, vault, now=start)
    rule = AfterSession(after=24, unit="hours", instruments=("alliance",), comment=True)
    await _give(database, made.client.id, rule, now=start)
    session_at = start + timedelta(days=7, hours=2)
    async with transaction(database.sessions) as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        await plans.add_session(session, client, session_at, start)
        shown = await manage.upcoming(session, client, PLANNER.quiet, start)
    assert shown.due == [session_at + timedelta(hours=24)]
    await _plan(database, session_at + timedelta(hours=1))
    assert await _slots(database) == [(session_at + timedelta(hours=24), "due")]


async def test_a_session_logged_for_the_past_plans_nothing_from_before_the_rules_existed(
    database: Database, vault: Vault
) -> None:
    wednesday = MONDAY_0900_BERLIN + timedelta(days=2, hours=3)
    made = await team(database.sessions, vault, now=wednesday)
    await _give(database, made.client.id, WEEKLY, now=wednesday)  # Mondays and Thursdays
    await _plan(database, wednesday)
    async with transaction(database.sessions) as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        saturday = MONDAY_0900_BERLIN - timedelta(days=2)  # before the rule was given
        await plans.add_session(session, client, saturday, wednesday)
    await _plan(database, wednesday)
    async with transaction(database.sessions) as session:
        assert await review.close_expired(session, vault, wednesday, INSTRUMENTS) == 0
    thursday = MONDAY_0900_BERLIN + timedelta(days=3)
    assert await _slots(database) == [(thursday, "due")]  # not Monday's, recorded as missed


async def test_after_downtime_stale_slots_are_missed_not_sent(
    database: Database, vault: Vault
) -> None:
    start = MONDAY_0900_BERLIN - timedelta(days=1)
    made = await team(database.sessions, vault, now=start)
    await _give(database, made.client.id, WEEKLY, now=start)
    await _plan(database, start)
    back = MONDAY_0900_BERLIN + timedelta(days=3, hours=2)  # down over Monday and Thursday 09:00
    await _plan(database, back)
    async with transaction(database.sessions) as session:
        assert await review.close_expired(session, vault, back, INSTRUMENTS) == 1
        claimed = await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=back, limit=10, lease=timedelta(minutes=5)
        )
    assert [c.step.item.id for c in claimed] == ["bond"]  # Thursday's, still answerable
    states = dict(await _slots(database))
    assert states[MONDAY_0900_BERLIN] == CheckInState.MISSED  # Monday's: recorded, never sent


async def test_quiet_hours_move_a_slot_to_their_end(database: Database, vault: Vault) -> None:
    start = MONDAY_0900_BERLIN - timedelta(days=1)
    made = await team(database.sessions, vault, now=start)
    late = Weekly(weekdays=(0,), at=time(22, 30), instruments=("alliance",))
    await _give(database, made.client.id, late, now=start)
    await _plan(database, start)
    # 22:30 Monday is quiet (21:00-08:00): due at 08:00 Tuesday local = 07:00 UTC.
    assert await _slots(database) == [(datetime(2026, 3, 24, 7, 0, tzinfo=UTC), "due")]
