"""Engine, sessions and schema migrations."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aiosqlite
from sqlalchemy import Connection, event, inspect, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:  # alembic is imported only to migrate (it costs ~0.1 s to import)
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


BUSY_TIMEOUT_MS = 10_000  # how long a SQLite statement waits for another writer's lock


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine with the settings every Rapport process needs.

    SQLite: WAL so readers never block the writer, foreign keys on (erasure relies on
    cascades), and a busy timeout so the CLI and the bot can share the file. Connections are
    `SQLiteConnection`s and are not pinged on checkout: a local file does not drop
    connections, and the ping was a statement per transaction. Other databases:
    `pool_pre_ping`, since a server can drop a connection. Errors never show a statement's
    parameters (sealed values, blind indexes): they would reach the logs.
    """
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, echo=echo, hide_parameters=True)
    _private_database_file(make_url(url).database)
    engine: AsyncEngine

    async def connect() -> SQLiteConnection:
        dialect = engine.sync_engine.dialect
        args, kwargs = dialect.create_connect_args(engine.url)
        kwargs["timeout"] = BUSY_TIMEOUT_MS / 1000  # sqlite3's name for the busy timeout
        connection = SQLiteConnection(partial(sqlite3.connect, *args, **kwargs), 64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connect
        await connection
        return connection

    engine = create_async_engine(url, echo=echo, async_creator=connect, hide_parameters=True)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _private_database_file(database: str | None) -> None:
    """The SQLite file readable by its owner only (0600), and so its WAL and shared-memory
    files too: SQLite creates those with the main file's permissions.

    A new file is created 0600 before SQLite opens it (SQLite itself would create it 0644
    under the usual umask); the files of an older installation lose their group and other
    permissions. A directory that does not exist is left for SQLite to report.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except FileNotFoundError:
        return
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(name.stat().st_mode)
            if mode & 0o077:
                name.chmod(mode & 0o700)
                log.info("made %s readable by its owner only", name.name)
        except FileNotFoundError:
            continue


_INTERACTIVE: ContextVar[asyncio.Task[Any] | None] = ContextVar("interactive", default=None)


@contextmanager
def interactive() -> Iterator[None]:
    """Inside, this task's SQLite statements run in the event loop's own thread.

    For the unit of work of one Telegram update: a few short statements, for each of which a
    trip to the connection's thread and back costs more than the statement itself
    (docs/performance.md). A statement that finds another connection holding the write lock
    goes to the connection's thread after all and waits there, so the event loop never waits
    for a lock. Tasks started inside (jobs) are not affected. No effect on PostgreSQL.
    """
    token = _INTERACTIVE.set(asyncio.current_task())
    try:
        yield
    finally:
        _INTERACTIVE.reset(token)


class SQLiteConnection(aiosqlite.Connection):
    """aiosqlite's connection with fewer trips to its thread.

    aiosqlite runs every call on the connection's own thread and waits for the answer
    through the event loop; SQLAlchemy's adapter makes four such calls per SELECT (cursor,
    execute, fetchall, close) and three per INSERT or UPDATE. Here a statement and the
    fetching of its rows are one call; a rollback with no transaction open (the pool's reset
    after every commit) is none, since SQLite would do nothing with it; and inside
    `interactive()` calls run in the event loop's thread unless they would wait for a lock.
    """

    _waits = True  # the busy timeout is BUSY_TIMEOUT_MS (set at connect), not 0

    async def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def rollback(self) -> None:
        if self._connection is not None and not self._connection.in_transaction:
            return
        await super().rollback()

    async def run(
        self, sql: str, parameters: Any, many: bool
    ) -> tuple[Any, list[Any], int, int | None]:
        result = await self._execute(_run_statement, self._conn, sql, parameters, many)
        return cast(tuple[Any, list[Any], int, int | None], result)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        connection = self._connection
        if connection is None or not self._running:
            raise ValueError("Connection closed")
        if _INTERACTIVE.get() is asyncio.current_task():
            if self._waits:
                connection.execute("PRAGMA busy_timeout=0")
                self._waits = False
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
            # Another connection holds the write lock: wait for it on the connection's
            # thread (the failed statement changed nothing; it is simply run again).
        return await super()._execute(self._waiting, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _waiting(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """On the connection's thread: run `fn` with the busy timeout in force."""
        if not self._waits:
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._waits = True
        return fn(*args, **kwargs)


def _run_statement(
    connection: sqlite3.Connection, sql: str, parameters: Any, many: bool
) -> tuple[Any, list[Any], int, int | None]:
    """On the connection's thread: execute, fetch every row, close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor:
    """The part of aiosqlite's cursor that SQLAlchemy's adapter uses, rows fetched up front."""

    def __init__(self, connection: SQLiteConnection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self._next = 0  # the first row not fetched yet
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        return await self._run(sql, parameters, many=False)

    async def executemany(self, sql: str, parameters: Any) -> OneTripCursor:
        return await self._run(sql, parameters, many=True)

    async def _run(self, sql: str, parameters: Any, many: bool) -> OneTripCursor:
        self.description, self._rows, self.rowcount, self.lastrowid = await self._connection.run(
            sql, parameters, many
        )
        self._next = 0
        return self

    async def fetchone(self) -> Any:
        rows = await self.fetchmany(1)
        return rows[0] if rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        end = len(self._rows) if size is None else min(len(self._rows), self._next + size)
        taken, self._next = self._rows[self._next : end], end
        return taken

    async def fetchall(self) -> list[Any]:
        taken = self._rows[self._next :] if self._next else self._rows
        self._rows, self._next = [], 0
        return taken

    async def close(self) -> None:
        self._rows, self._next = [], 0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Every new SQLite connection: WAL, foreign keys, and `secure_delete`, set explicitly
    (some SQLite builds have it on by default, many do not): deleted rows are overwritten
    with zeros, so an erased client's bytes do not linger in free space of the file."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error.

    A unit of work that erased someone (`erased_from`) is scrubbed once it has committed:
    see `scrub`.
    """
    async with sessions() as session:
        async with session.begin():
            yield session
        tables = session.info.pop(_ERASED_FROM, None)
        if tables:
            bind = session.bind
            assert isinstance(bind, AsyncEngine), "Rapport's sessions are bound to an engine"
            await scrub(bind, tables)


_ERASED_FROM = "rapport.erased_from"  # session.info: the tables an erasure deleted from


def erased_from(session: AsyncSession, tables: Iterable[str]) -> None:
    """Note that this unit of work erases rows of `tables` (a data key, a client's rows):
    once it commits, `transaction` scrubs them."""
    session.info.setdefault(_ERASED_FROM, set()).update(tables)


async def scrub(engine: AsyncEngine, tables: Iterable[str]) -> None:
    """After an erasure has committed: leave no copy of the deleted rows where the database
    keeps old data.

    SQLite: `secure_delete` (set on every connection) has zeroed the rows in their pages, but
    the write-ahead log still holds the pages as they were before, and it stays on disk as long
    as any connection is open (the running bot's). A TRUNCATE checkpoint copies the log into
    the file and empties it; it waits (up to the busy timeout) for readers to finish.

    PostgreSQL: VACUUM of the tables, so the dead rows are pruned and their space is free for
    reuse (the bytes stay in that free space until it is reused, and in WAL segments and
    archives until they are recycled). VACUUM cannot run in a transaction: an autocommit
    connection of its own.

    The erasure itself has committed and stands: a scrub that fails is logged, not raised, and
    the next one (or SQLite's own checkpoints, PostgreSQL's autovacuum) catches up.
    """
    names = sorted(tables)
    token = _INTERACTIVE.set(None)  # may wait for other connections: never in the event loop
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                busy, _, _ = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
                if busy:
                    log.warning(
                        "after an erasure the SQLite WAL could not be emptied (the database "
                        "stayed busy); it will be at a later checkpoint"
                    )
            elif conn.dialect.name == "postgresql":
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for name in names:  # one by one: a table that fails leaves the others done
                    quoted = conn.dialect.identifier_preparer.quote(name)
                    try:
                        await autocommit.exec_driver_sql(f"VACUUM {quoted}")
                    except SQLAlchemyError as error:
                        _unscrubbed(error)
    except SQLAlchemyError as error:
        _unscrubbed(error)
    finally:
        _INTERACTIVE.reset(token)


def _unscrubbed(error: SQLAlchemyError) -> None:
    log.warning("after an erasure the database could not be scrubbed: %s", type(error).__name__)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


# Any fixed number: held while a process migrates a PostgreSQL database.
MIGRATION_LOCK = 0x5261_7070_6F72_74  # "Rapport"


async def migrate(engine: AsyncEngine) -> None:
    """Create or upgrade the schema to the newest revision; safe to run at every start.

    On PostgreSQL the migration holds a transaction-level advisory lock, so several processes
    starting at once migrate one after the other: the first upgrades, the others then find
    the schema up to date. (SQLite serialises writers by itself.)

    A schema already at the newest revision (every start of the bot, every `rapport`
    command after the first) is seen without alembic: `at_head`.
    """
    if await at_head(engine):
        return
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(.*)$", re.MULTILINE)


def head_revisions() -> frozenset[str]:
    """The newest revisions of the migrations, read from the files' text without alembic:
    those that no other names as its `down_revision`. Empty if a file does not say its
    revision plainly (then `at_head` leaves the question to alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            return frozenset()
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return frozenset(revisions - parents)


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database's revisions are exactly the newest ones (`head_revisions`).
    Anything else (no version table, an older or unknown revision, a file not read) is
    False, and `migrate` runs alembic, which decides."""
    heads = head_revisions()
    if not heads:
        return False
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return False
        found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()
        return frozenset(found) == heads


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
