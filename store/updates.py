"""Telegram update ids already handled (see handlers.context.unit_of_work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ProcessedUpdate


async def prune(session: AsyncSession, before: datetime) -> int:
    """Forget old update ids: Telegram redelivers an update for at most a day."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
