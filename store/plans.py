"""Schedules, sessions and planned slots in the database.

The calendar arithmetic lives in schedules/rules.py; this module only stores rules, reads what
the planner needs, and writes slots so that each (schedule, time) exists at most once, however
many processes plan at the same moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.models import CheckIn, CheckInState, Client, ClientStatus, Schedule, SessionLog


@dataclass(frozen=True)
class Slot:
    """A check-in the planner wants to exist."""

    schedule_id: uuid.UUID
    client_id: uuid.UUID
    slot_at: datetime
    expires_at: datetime
    instruments: Sequence[str]
    with_comment: bool


async def set_schedule(
    session: AsyncSession,
    client: Client,
    rules: Sequence[tuple[str, str]],
    *,
    template: str | None,
    now: datetime,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> list[Schedule]:
    """Replace a client's rules (kind, JSON spec): what the old ones planned is cancelled, so
    nothing fires twice, and planning restarts now (no past slots for the new rules)."""
    old = (
        await session.scalars(
            select(Schedule.id).where(Schedule.client_id == client.id, Schedule.active.is_(True))
        )
    ).all()
    if old:
        await session.execute(update(Schedule).where(Schedule.id.in_(old)).values(active=False))
        await session.execute(
            update(CheckIn)
            .where(CheckIn.schedule_id.in_(old), CheckIn.state == CheckInState.DUE)
            .values(state=CheckInState.CANCELLED, closed_at=now)
        )
    rows = [
        Schedule(
            id=uuid.uuid4(),
            client_id=client.id,
            kind=kind,
            spec=spec,
            template=template,
            active=True,
            created_at=now,
        )
        for kind, spec in rules
    ]
    session.add_all(rows)
    client.schedule_template = template
    client.planned_until = now
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="schedule.set",
        target_kind="client",
        target_id=client.id,
        detail=template,
    )
    return rows


async def active_schedules(session: AsyncSession, client_id: uuid.UUID) -> list[Schedule]:
    rows = await session.scalars(
        select(Schedule)
        .where(Schedule.client_id == client_id, Schedule.active.is_(True))
        .order_by(Schedule.created_at, Schedule.id)
    )
    return list(rows.all())


async def add_session(
    session: AsyncSession,
    client: Client,
    at: datetime,
    now: datetime,
    *,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> SessionLog:
    """Record a session; a session in the past re-plans the client from it, so check-ins
    relative to it are planned at the next tick."""
    row = SessionLog(id=uuid.uuid4(), client_id=client.id, at=at, created_at=now)
    session.add(row)
    if client.planned_until is not None and at < client.planned_until:
        client.planned_until = at
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="session.add",
        target_kind="client",
        target_id=client.id,
    )
    return row


async def sessions_between(
    session: AsyncSession, client_id: uuid.UUID, start: datetime, end: datetime
) -> list[datetime]:
    rows = await session.scalars(
        select(SessionLog.at)
        .where(SessionLog.client_id == client_id, SessionLog.at >= start, SessionLog.at < end)
        .order_by(SessionLog.at)
    )
    return list(rows.all())


async def clients_to_plan(session: AsyncSession, *, before: datetime, limit: int) -> list[Client]:
    """Active clients with an active rule whose plan ends before `before`; claimed with SKIP
    LOCKED on PostgreSQL so that several processes plan different clients.

    Every way of activating a client sets `planned_until` (migration 0006 filled in older
    rows), so the query is a range on its index: with `OR planned_until IS NULL`, or with
    `IN (SELECT ...)` instead of the correlated EXISTS, SQLite scans every schedule on each
    tick (about a second at 100,000 clients; docs/performance.md).
    """
    rows = await session.scalars(
        select(Client)
        .where(
            Client.status == ClientStatus.ACTIVE,
            Client.planned_until < before,
            exists().where(Schedule.client_id == Client.id, Schedule.active.is_(True)),
        )
        .order_by(Client.planned_until)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Client)
    )
    return list(rows.all())


async def insert_slots(session: AsyncSession, slots: Sequence[Slot], now: datetime) -> None:
    """Insert check-ins for slots; one that exists already (same schedule and time) is kept."""
    if not slots:
        return
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "client_id": slot.client_id,
            "schedule_id": slot.schedule_id,
            "slot_at": slot.slot_at,
            "instruments": ",".join(slot.instruments),
            "with_comment": slot.with_comment,
            "state": CheckInState.DUE,
            "position": 0,
            "created_at": now,
            "due_at": slot.slot_at,
            "expires_at": slot.expires_at,
        }
        for slot in slots
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(CheckIn).values(rows)
    await session.execute(
        statement.on_conflict_do_nothing(index_elements=["schedule_id", "slot_at"])
    )
