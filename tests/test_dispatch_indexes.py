"""What keeps an idle dispatcher tick cheap with many clients, on real databases: migration
0006 (its indexes, and the backfill that lets an older database be planned), the schema still
matching the models, the planner finding whose plan runs out and keeping to its budget, an
idle tick that reads no table in full, and migrations that several processes may start at
once."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import load_instruments
from review import decide as review
from schedules.dispatcher import Attempting, Dispatcher
from schedules.planner import Planner
from schedules.rules import Weekly
from store import checkins, plans
from store.alerts import PendingAlert
from store.checkins import Outgoing, Reminder
from store.db import alembic_config, create_engine, migrate, session_factory, transaction
from store.models import Base, CheckIn, CheckInState, Client, ClientStatus
from store.notices import PendingNotice
from store.outbox import SendOutcome
from store.vault import Vault
from tests.conftest import POSTGRES_URL, Database, database_url, postgres_database
from tests.factories import NOW, team

INSTRUMENTS = load_instruments(None, Path("."))
WINDOW = timedelta(hours=24)
WEEKLY = Weekly(weekdays=(0, 3), at=time(9), instruments=("alliance",))
PLANNER = Planner(quiet=None, window=WINDOW)


class Idle:
    """A messenger for ticks that must find nothing to send."""

    async def send_checkin(
        self, outgoing: Outgoing, attempting: Attempting
    ) -> tuple[SendOutcome, int | None]:
        raise AssertionError("an idle tick sent a check-in")

    async def send_alerts(self, group: Sequence[PendingAlert]) -> tuple[SendOutcome, int | None]:
        raise AssertionError("an idle tick sent an alert")

    async def send_notice(self, notice: PendingNotice) -> tuple[SendOutcome, int | None]:
        raise AssertionError("an idle tick sent a notice")

    async def send_reminder(self, reminder: Reminder, attempting: Attempting) -> SendOutcome:
        raise AssertionError("an idle tick sent a reminder")


async def _give_rule(database: Database, client_id: object, now: datetime) -> None:
    async with transaction(database.sessions) as session:
        client = await session.get(Client, client_id)
        assert client is not None
        rules = [(WEEKLY.kind, json.dumps(WEEKLY.to_spec()))]
        await plans.set_schedule(session, client, rules, template=None, now=now)


async def _to_plan(database: Database, now: datetime) -> list[object]:
    async with transaction(database.sessions) as session:
        due = await plans.clients_to_plan(session, before=now + PLANNER.horizon / 2, limit=10)
        return [client.id for client in due]


async def test_clients_to_plan_finds_a_client_whose_plan_runs_out(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    assert await _to_plan(database, NOW) == []  # no active rule yet: nothing to plan
    await _give_rule(database, made.client.id, NOW)
    assert await _to_plan(database, NOW) == [made.client.id]  # planning starts now
    async with transaction(database.sessions) as session:
        assert await PLANNER.plan(session, NOW) == 1
    assert await _to_plan(database, NOW) == []  # planned two days ahead
    assert await _to_plan(database, NOW + timedelta(hours=23)) == []
    assert await _to_plan(database, NOW + timedelta(hours=25)) == [made.client.id]  # runs out
    async with transaction(database.sessions) as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        client.status = ClientStatus.PAUSED
    assert await _to_plan(database, NOW + timedelta(hours=25)) == []  # paused: not planned


async def test_the_planner_keeps_to_its_budget_client_by_client(
    database: Database, vault: Vault
) -> None:
    ids = []
    for n in range(3):
        made = await team(
            database.sessions,
            vault,
            therapist_tg=5100 + n,
            client_tg=7100 + n,
            label=f"Client {n}",
            name=f"Therapist {n}",
        )
        await _give_rule(database, made.client.id, NOW)
        ids.append(made.client.id)
    spent = Planner(quiet=None, window=WINDOW, budget=0)  # the budget runs out at once
    for left in (2, 1, 0):
        async with transaction(database.sessions) as session:
            assert await spent.plan(session, NOW) == 1  # one client, then the tick moves on
        assert len(await _to_plan(database, NOW)) == left
    async with database.sessions() as session:
        ends = (await session.scalars(select(Client.planned_until))).all()
    assert ends == [NOW + PLANNER.horizon] * 3  # each planned once, two days ahead


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", remember)


async def test_an_idle_tick_reads_no_table_in_full(database: Database, vault: Vault) -> None:
    """On SQLite, whose query plans do not depend on statistics (Rapport never runs ANALYZE):
    every statement of a tick that finds nothing to do is answered from an index."""
    if database.kind != "sqlite":
        pytest.skip("PostgreSQL's plans depend on its statistics of the data")
    made = await team(database.sessions, vault)
    await _give_rule(database, made.client.id, NOW)
    dispatcher = Dispatcher(
        database.sessions,
        vault,
        INSTRUMENTS,
        Idle(),
        lambda: NOW,
        planner=PLANNER,
        reminder_delay=timedelta(hours=8),
    )
    assert (await dispatcher.tick()).planned == 1
    with _statements(database.engine) as seen:
        report = await dispatcher.tick()
    assert not any(vars(report).values())  # idle: planned ahead, nothing due
    selects = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 7
    async with database.engine.connect() as conn:
        for statement, parameters in selects:
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)).all()
            scans = [row[-1] for row in plan if str(row[-1]).startswith("SCAN")]
            assert scans == [], f"{statement}\n{plan}"


async def test_close_expired_uses_the_expression_of_the_open_expiry_index(
    database: Database, vault: Vault
) -> None:
    """The index serves only a query with the same expression: a check-in past its window is
    still closed, and the query is the one the index was made for."""
    made = await team(database.sessions, vault)
    async with transaction(database.sessions) as session:
        queued = await checkins.queue_now(
            session, client_id=made.client.id, instruments=["alliance"], now=NOW, window=WINDOW
        )
    with _statements(database.engine) as seen:
        async with transaction(database.sessions) as session:
            assert await review.close_expired(session, vault, NOW + WINDOW, INSTRUMENTS) == 1
    assert "CASE WHEN state IN ('due', 'sent', 'in_progress') THEN expires_at END" in seen[0][0]
    async with database.sessions() as session:
        row = await session.get(CheckIn, queued.id)
    assert row is not None and row.state == CheckInState.MISSED


def _down_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def _index_names(connection: Connection) -> dict[str, set[str]]:
    with warnings.catch_warnings():  # SQLite cannot reflect the index on an expression
        warnings.filterwarnings("ignore", message=".*expression-based index")
        return {
            table: {str(ix["name"]) for ix in inspect(connection).get_indexes(table)}
            for table in ("client", "checkin")
        }


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_migration_0006_upgrades_an_existing_database(
    kind: str, tmp_path: Path, vault: Vault
) -> None:
    async with database_url(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            # The rows are made with today's models, then the schema goes back to 0005 (rows
            # made at 0005 would miss the columns of later revisions).
            await migrate(engine)
            database = Database(kind, url, engine, session_factory(engine))
            made = await team(database.sessions, vault)
            await _give_rule(database, made.client.id, NOW)
            async with engine.begin() as conn:
                await conn.run_sync(_down_to, "0005")
            async with transaction(database.sessions) as session:  # as before planned_until
                await session.execute(update(Client).values(planned_until=None))
            before = datetime.now(UTC)
            await migrate(engine)
            async with engine.connect() as conn:
                indexes = await conn.run_sync(_index_names)
            async with database.sessions() as session:
                client = await session.get(Client, made.client.id)
            assert client is not None and client.planned_until is not None
            assert before <= client.planned_until <= datetime.now(UTC)  # "plan from now"
            assert "ix_client_paused_until" in indexes["client"]
            if kind == "postgres":  # SQLite does not reflect an index on an expression
                assert "ix_checkin_open_expiry" in indexes["checkin"]
            # The client is found and planned as before the migration.
            now = datetime.now(UTC)
            assert await _to_plan(database, now) == [made.client.id]
            async with transaction(database.sessions) as session:
                assert await PLANNER.plan(session, now) == 1
        finally:
            await engine.dispose()


def _differences(connection: Connection) -> list[Any]:
    """What alembic's autogenerate would change to make the schema match the models."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    with warnings.catch_warnings():  # SQLite cannot reflect the index on an expression
        warnings.filterwarnings("ignore", message=".*expression-based index")
        found = list(compare_metadata(context, Base.metadata))
    # PostgreSQL stores that expression rewritten (casts, ANY (ARRAY[...])), so it never equals
    # the model's text; that the index exists is checked by the migration test above.
    return [
        diff
        for diff in found
        if not (
            connection.dialect.name == "postgresql"
            and diff[0] in ("add_index", "remove_index")
            and diff[1].name == "ix_checkin_open_expiry"
        )
    ]


async def test_the_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs RAPPORT_TEST_POSTGRES_URL")
async def test_processes_starting_at_once_migrate_one_after_the_other() -> None:
    async with postgres_database() as url:
        engines = [create_engine(url) for _ in range(3)]
        try:
            starts = asyncio.gather(*(migrate(engine) for engine in engines))
            await asyncio.wait_for(starts, timeout=120)  # without the lock they can deadlock
            async with engines[0].connect() as conn:
                version = await conn.execute(text("SELECT version_num FROM alembic_version"))
                head = ScriptDirectory.from_config(alembic_config()).get_current_head()
                assert [row[0] for row in version] == [head]
        finally:
            for engine in engines:
                await engine.dispose()
