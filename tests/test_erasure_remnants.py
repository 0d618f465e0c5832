"""After an erasure no copy of the erased client's bytes is left where the database keeps old
data: on SQLite neither in the database file nor in its write-ahead log, while another
connection (the running bot) keeps the WAL alive; on PostgreSQL the tables are vacuumed."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from store import admin
from store.db import _sqlite_pragmas, create_engine, migrate, session_factory, transaction
from store.models import Alert, Answer, CheckIn, Client, DataKeyRow
from store.retention import run_retention
from store.vault import Vault
from tests.conftest import POSTGRES_URL, Database, postgres_database
from tests.factories import NOW, team
from tests.test_cli_admin import ok_json, practice, rapport
from tests.test_store_admin import CLIENT_TG, COMMENT, LABEL, _checkin

# More than a year after every client's joining (the audit log's times are the real clock's).
LATER = datetime.now(UTC) + timedelta(days=400)


async def _client_bytes(database: Database, client_id: uuid.UUID) -> dict[str, bytes]:
    """Every secret the database holds for the client: the wrapped data key and each sealed
    value (label, chat, answers, comment, alert reasons), as stored."""
    async with database.sessions() as session:
        client = await session.get(Client, client_id)
        key = await session.scalar(select(DataKeyRow).where(DataKeyRow.owner_id == client_id))
        assert client is not None and key is not None and client.chat_enc is not None
        found = {"wrapped data key": key.wrapped, "label": client.label_enc}
        found["chat"] = client.chat_enc
        checkins = (
            await session.scalars(select(CheckIn).where(CheckIn.client_id == client_id))
        ).all()
        for checkin in checkins:
            if checkin.comment_enc is not None:
                found[f"comment {checkin.id}"] = checkin.comment_enc
        answers = await session.scalars(
            select(Answer).where(Answer.checkin_id.in_([c.id for c in checkins]))
        )
        for answer in answers:
            found[f"answer {answer.id}"] = answer.value_enc
        for alert in await session.scalars(select(Alert).where(Alert.client_id == client_id)):
            found[f"alert {alert.id}"] = alert.reason_enc
    assert any(name.startswith("answer") for name in found)
    assert any(name.startswith("comment") for name in found)
    return found


def _left_in(path: Path, secrets: dict[str, bytes]) -> list[str]:
    """Which of the secrets' bytes the file still holds (a missing file holds none).

    Read by another process: closing a file descriptor of the database in this one would drop
    the POSIX locks of this process's own connections (the running bot's), and the erasing
    process would then think itself the last connection and remove the WAL on its own.
    """
    if not path.exists():
        return []
    raw = subprocess.run(["cat", str(path)], capture_output=True, check=True).stdout
    return [name for name, blob in secrets.items() if blob in raw]


async def _erase_by_retention(database: Database, vault: Vault, client_id: uuid.UUID) -> None:
    """Automatic erasure: the warning, then (the warning period over) the erasure."""
    later = LATER
    for expected in ("warned", "erased"):
        async with transaction(database.sessions) as session:
            report = await run_retention(session, vault, now=later, inactive_days=30, warn_days=1)
        assert getattr(report, expected) == [client_id]
        later += timedelta(days=2)


@pytest.mark.parametrize("how", ["rapport erase", "retention"])
async def test_erasure_leaves_no_bytes_in_the_sqlite_file_or_its_wal(
    tmp_path: Path, how: str
) -> None:
    db_file = tmp_path / "data" / "rapport.db"
    wal = db_file.with_name("rapport.db-wal")
    async with practice(tmp_path) as (database, vault):  # this engine plays the running bot
        made = await team(database.sessions, vault, client_tg=CLIENT_TG, label=LABEL)
        other = await team(
            database.sessions, vault, therapist_tg=5002, client_tg=CLIENT_TG + 1, label="Other"
        )
        await _checkin(database, vault, made.client.id, [8, 4, 9, 9, 1], at=NOW, comment=COMMENT)
        recently = LATER - timedelta(days=1)  # the other client is active: retention keeps them
        await _checkin(
            database, vault, other.client.id, [8, 8, 8, 8, 1], at=recently, user=CLIENT_TG + 1
        )
        secrets = await _client_bytes(database, made.client.id)
        assert _left_in(db_file, secrets) + _left_in(wal, secrets)  # the test can see them
        async with database.engine.connect() as held:  # the bot's connection, kept open
            await held.execute(select(Client.id))
            if how == "rapport erase":
                erased = rapport(
                    tmp_path, "erase", "--client", str(made.client.id), "--yes", "--json"
                )
                assert ok_json(erased)["erased"] is True
            else:
                await _erase_by_retention(database, vault, made.client.id)
            assert wal.exists()  # the bot's connection keeps the WAL
            assert _left_in(db_file, secrets) == []
            assert _left_in(wal, secrets) == []
            async with database.sessions() as session:  # the other client is untouched
                assert await session.get(Client, other.client.id) is not None


def test_every_sqlite_connection_sets_secure_delete(tmp_path: Path) -> None:
    """Explicitly: many SQLite builds (Debian's) have it on by default, many others do not."""
    connection = sqlite3.connect(tmp_path / "rapport.db")
    try:
        connection.execute("PRAGMA secure_delete = OFF")  # as a library built without it
        _sqlite_pragmas(connection, None)  # what the engine runs on every new connection
        assert connection.execute("PRAGMA secure_delete").fetchone() == (1,)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.skipif(POSTGRES_URL is None, reason="needs RAPPORT_TEST_POSTGRES_URL")
async def test_erasure_on_postgresql_vacuums_the_tables(vault: Vault) -> None:
    async with postgres_database() as url:
        engine = create_engine(url)
        try:
            await migrate(engine)
            database = Database("postgres", url, engine, session_factory(engine))
            made = await team(database.sessions, vault, client_tg=CLIENT_TG, label=LABEL)
            await _checkin(database, vault, made.client.id, [1, 2, 0, 1, 9], at=NOW)
            async with transaction(database.sessions) as session:
                await admin.erase_client(session, vault, made.client.id, NOW)
            async with engine.connect() as conn:
                vacuumed = set(
                    (
                        await conn.scalars(
                            text(
                                "SELECT relname FROM pg_stat_user_tables "
                                "WHERE last_vacuum IS NOT NULL"
                            )
                        )
                    ).all()
                )
        finally:
            await engine.dispose()
    assert {"data_key", "client", "invite", "checkin", "answer", "alert"} <= vacuumed
