"""Telegram update ids already handled (see handlers.context.unit_of_work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ProcessedUpdate


async def first_time(session: AsyncSession, update_id: int, now: datetime) -> bool:
    """Record this update id; False when it was recorded already (a redelivery).

    One insert-unless-present, so two processes handed the same update cannot both pass (a
    read-then-insert would let the second fail at commit instead of stopping quietly).
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(ProcessedUpdate)
        .values(update_id=update_id, processed_at=now)
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(ProcessedUpdate.update_id)
    )
    return (await session.execute(statement)).first() is not None


async def prune(session: AsyncSession, before: datetime) -> int:
    """Forget old update ids: Telegram redelivers an update for at most a day."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
