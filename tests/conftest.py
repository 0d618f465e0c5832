"""Shared fixtures: real SQLite and PostgreSQL databases, real keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store.crypto import KeyRing
from store.db import create_engine, migrate, session_factory
from store.vault import Vault
from tests.botapi import FakeBotAPI
from tests.rig import Clock, Rig, start_rig

POSTGRES_URL = os.environ.get("RAPPORT_TEST_POSTGRES_URL")
NO_POSTGRES = "PostgreSQL tests need RAPPORT_TEST_POSTGRES_URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"


@dataclass
class Database:
    """A fresh, migrated database: a SQLite file, or a PostgreSQL schema of its own."""

    kind: str
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    path: Path | None = None


async def _postgres_admin(statement: str) -> None:
    assert POSTGRES_URL is not None
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test; yields its URL and drops it after."""
    assert POSTGRES_URL is not None
    name = f"rapport_t_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with database_url(request.param, tmp_path) as url:
        engine = create_engine(url)
        await migrate(engine)
        path = tmp_path / "rapport.db" if request.param == "sqlite" else None
        try:
            yield Database(request.param, url, engine, session_factory(engine), path)
        finally:
            await engine.dispose()


@asynccontextmanager
async def database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL for a new, empty database of `kind`; PostgreSQL ones skip without a server."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'rapport.db'}"
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_database() as url:
        yield url


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def vault(keyring: KeyRing) -> Vault:
    return Vault(keyring)


@asynccontextmanager
async def practice_rig(
    tmp_path: Path, config: str | None = None, *, at: datetime | None = None, kind: str = "sqlite"
) -> AsyncIterator[Rig]:
    """The real bot against a new fake Bot API, on a new `kind` database: `config` is the
    practice's rapport.toml (none when None), and the rig's clock reads `at` (real time when
    None)."""
    path = None
    if config is not None:
        path = tmp_path / "rapport.toml"
        path.write_text(config)
    clock = Clock()
    if at is not None:
        clock.set(at)
    async with (
        database_url(kind, tmp_path) as url,
        FakeBotAPI() as fake,
        start_rig(fake, tmp_path, url, clock=clock, config=path) as started,
    ):
        yield started


@pytest.fixture(params=["sqlite", "postgres"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    """The real bot against the fake Bot API, on SQLite and on PostgreSQL."""
    async with practice_rig(tmp_path, kind=request.param) as started:
        yield started
