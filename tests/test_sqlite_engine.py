"""The SQLite engine: an update's statements run in the event loop's thread, yet the bot never
waits there for another writer (the CLI, a job) to release the database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import updates
from store.db import create_engine, interactive, migrate, session_factory, transaction
from store.models import ProcessedUpdate
from tests.factories import NOW


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[tuple[Path, async_sessionmaker[AsyncSession]]]:
    path = tmp_path / "rapport.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    try:
        yield path, session_factory(engine)
    finally:
        await engine.dispose()


async def _record(sessions: async_sessionmaker[AsyncSession], update_id: int) -> bool:
    """An update's unit of work, as handlers.context.unit_of_work runs it."""
    with interactive():
        async with transaction(sessions) as session:
            return await updates.first_time(session, update_id, NOW)


async def _count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(ProcessedUpdate)) or 0)


class OtherWriter:
    """Another process writing (the CLI, say): holds SQLite's write lock on its own thread
    until the event loop has shown that it kept running meanwhile, or for 5 s at most."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.holding, self.loop_ran = threading.Event(), threading.Event()
        self.loop_blocked = False
        self._thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        self.holding.set()
        self.loop_blocked = not self.loop_ran.wait(5)
        connection.execute("COMMIT")
        connection.close()

    async def __aenter__(self) -> OtherWriter:
        self._thread.start()
        await asyncio.to_thread(self.holding.wait)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.loop_ran.set()
        await asyncio.to_thread(self._thread.join)

    async def let_the_loop_run(self, waiting: asyncio.Task[bool]) -> None:
        for _ in range(5):  # polling, jobs and other coroutines get their turns meanwhile
            await asyncio.sleep(0.01)
        assert not waiting.done()  # still waiting for the lock
        self.loop_ran.set()


async def test_an_update_meeting_another_writer_waits_without_blocking_the_bot(
    sqlite: tuple[Path, async_sessionmaker[AsyncSession]],
) -> None:
    path, sessions = sqlite
    async with OtherWriter(path) as writer:
        update = asyncio.create_task(_record(sessions, 1))
        await writer.let_the_loop_run(update)
        assert await update is True
    assert not writer.loop_blocked
    assert await _count(sessions) == 1


async def test_a_job_started_by_an_update_waits_without_blocking_the_bot_too(
    sqlite: tuple[Path, async_sessionmaker[AsyncSession]],
) -> None:
    path, sessions = sqlite

    async def job() -> bool:
        async with transaction(sessions) as session:
            return await updates.first_time(session, 2, NOW)

    async with OtherWriter(path) as writer:
        with interactive():
            started = asyncio.create_task(job())  # as Services.kick() starts the dispatcher
        await writer.let_the_loop_run(started)
        assert await started is True
    assert not writer.loop_blocked


async def test_a_failed_statement_in_an_update_rolls_the_whole_update_back(
    sqlite: tuple[Path, async_sessionmaker[AsyncSession]],
) -> None:
    _path, sessions = sqlite
    assert await _record(sessions, 3)
    with pytest.raises(IntegrityError), interactive():
        async with transaction(sessions) as session:
            assert await updates.first_time(session, 4, NOW)
            await session.execute(insert(ProcessedUpdate).values(update_id=3, processed_at=NOW))
    assert await _count(sessions) == 1  # update 4 went with the failed statement
    assert await _record(sessions, 4)  # and the connection is usable again


async def test_streamed_rows_come_in_order_and_complete(
    sqlite: tuple[Path, async_sessionmaker[AsyncSession]],
) -> None:
    _path, sessions = sqlite
    for update_id in range(10, 15):
        assert await _record(sessions, update_id)
    async with sessions() as session:
        result = await session.stream(
            select(ProcessedUpdate.update_id).order_by(ProcessedUpdate.update_id)
        )
        parts = [[row.update_id for row in part] async for part in result.partitions(2)]
    assert parts == [[10, 11], [12, 13], [14]]
