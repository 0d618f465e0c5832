"""Telegram update ids already handled (see handlers.context.unit_of_work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ProcessedUpdate

_UPDATES = ProcessedUpdate.metadata.tables[ProcessedUpdate.__tablename__]
_FIRST_TIME = text(
    "INSERT INTO processed_update (update_id, processed_at) VALUES (:update_id, :processed_at)"
    " ON CONFLICT (update_id) DO NOTHING RETURNING update_id"
).bindparams(
    bindparam("update_id", type_=_UPDATES.c.update_id.type),
    bindparam("processed_at", type_=_UPDATES.c.processed_at.type),
)
"""Insert unless present: the same SQL on SQLite and PostgreSQL. Text, because SQLAlchemy
2.0 compiles `insert().on_conflict_do_nothing()` anew on every execution (it has no cache
key), and this runs for every update."""


async def first_time(session: AsyncSession, update_id: int, now: datetime) -> bool:
    """Record this update id; False when it was recorded already (a redelivery).

    One insert-unless-present, so two processes handed the same update cannot both pass (a
    read-then-insert would let the second fail at commit instead of stopping quietly).
    """
    params = {"update_id": update_id, "processed_at": now}
    return (await session.execute(_FIRST_TIME, params)).first() is not None


async def prune(session: AsyncSession, before: datetime) -> int:
    """Forget old update ids: Telegram redelivers an update for at most a day."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
