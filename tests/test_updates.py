"""Handled update ids are forgotten after two days, and only those."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from store import updates
from store.db import transaction
from store.models import ProcessedUpdate
from tests.conftest import Database
from tests.factories import NOW


async def test_prune_forgets_only_old_update_ids(database: Database) -> None:
    async with transaction(database.sessions) as session:
        session.add(ProcessedUpdate(update_id=1, processed_at=NOW - timedelta(days=3)))
        session.add(ProcessedUpdate(update_id=2, processed_at=NOW - timedelta(hours=1)))
    async with transaction(database.sessions) as session:
        assert await updates.prune(session, NOW - timedelta(days=2)) == 1
    async with database.sessions() as session:
        left = (await session.scalars(select(ProcessedUpdate.update_id))).all()
    assert left == [2]


async def test_an_update_id_is_new_only_once(database: Database) -> None:
    async with transaction(database.sessions) as session:
        assert await updates.first_time(session, 42, NOW)
        assert not await updates.first_time(session, 42, NOW)
    async with transaction(database.sessions) as session:
        assert not await updates.first_time(session, 42, NOW)  # after commit, too
