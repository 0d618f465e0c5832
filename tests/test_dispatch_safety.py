"""Delivery under concurrency and crashes: two dispatchers share one PostgreSQL database
without sending anything twice; a bot killed with SIGKILL mid fan-out loses nothing and
sends nothing twice when it comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bot.app import load_vault, utcnow
from bot.cli.setup import initialise
from bot.config import load_instruments
from handlers.charts import Charts
from handlers.delivery import Messenger
from handlers.texts import Texts
from schedules.dispatcher import Dispatcher
from store import checkins, people
from store.crypto import KeyRing
from store.db import create_engine, migrate, session_factory, transaction
from store.models import CheckIn, CheckInState
from store.vault import Vault
from tests.botapi import FakeBotAPI
from tests.conftest import POSTGRES_URL, postgres_database
from tests.rig import eventually, rig_settings

INSTRUMENTS = load_instruments(None, Path("."))
ROOT = Path(__file__).resolve().parent.parent


async def _clients_with_due_checkins(
    sessions: async_sessionmaker[AsyncSession], vault: Vault, fake: FakeBotAPI, count: int
) -> list[int]:
    """`count` enrolled clients (Telegram ids 800000+i), each with one check-in due now."""
    now = utcnow()
    ttl = timedelta(days=1)
    async with transaction(sessions) as session:
        therapist, _ = await people.add_therapist(
            session, vault, name="Therapist Ada", is_admin=False, now=now, invite_ttl=ttl
        )
        ids = []
        for n in range(count):
            tg = 800_000 + n
            client, invite = await people.invite_client(
                session,
                vault,
                therapist_id=therapist.id,
                label=f"Client {n}",
                timezone="UTC",
                schedule_template=None,
                now=now,
                invite_ttl=ttl,
            )
            opened = await people.open_invite(session, token=invite.token, now=now)
            assert opened is not None
            await people.redeem_invite(
                session, vault, invite=opened, telegram_user_id=tg, chat_id=tg, now=now
            )
            await checkins.queue_now(
                session,
                client_id=client.id,
                instruments=["alliance"],
                now=now,
                window=timedelta(hours=24),
            )
            fake.user(tg).open_chat()
            ids.append(tg)
    return ids


def _sends(fake: FakeBotAPI, chats: Sequence[int]) -> dict[int, int]:
    return {chat: fake.count("sendMessage", chat_id=chat, ok=True) for chat in chats}


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs RAPPORT_TEST_POSTGRES_URL")
async def test_two_dispatchers_deliver_each_of_1000_slots_exactly_once() -> None:
    async with postgres_database() as url, FakeBotAPI() as fake:
        engines = [create_engine(url), create_engine(url)]
        await migrate(engines[0])
        vault = Vault(KeyRing.generate())
        chats = await _clients_with_due_checkins(session_factory(engines[0]), vault, fake, 1000)
        bot = fake.make_bot()
        await bot.initialize()
        dispatchers = [
            Dispatcher(
                session_factory(engine),
                vault,
                INSTRUMENTS,
                Messenger(bot, Texts(), Charts()),
                utcnow,
                batch=50,
            )
            for engine in engines
        ]
        reports = await asyncio.gather(*(d.tick() for d in dispatchers))
        await bot.shutdown()
        async with session_factory(engines[0])() as session:
            states = (await session.scalars(select(CheckIn.state))).all()
        for engine in engines:
            await engine.dispose()
    assert all(report.sent > 0 for report in reports)  # both did a share of the work
    assert sum(report.sent for report in reports) == 1000
    assert set(_sends(fake, chats).values()) == {1}
    assert set(states) == {CheckInState.SENT}


def _bot_env(fake: FakeBotAPI, data_dir: Path, url: str) -> dict[str, str]:
    """`rapport run` as a practice starts it, pointed at the fake (the rig's settings); a
    short lease so that a restarted process settles the dead one's claims soon."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(
        RAPPORT_BOT_TOKEN=fake.token,
        RAPPORT_TELEGRAM_API_URL=fake.root,
        RAPPORT_DATA_DIR=str(data_dir),
        RAPPORT_DATABASE_URL=url,
        RAPPORT_DISPATCH_INTERVAL="0.2",
        RAPPORT_DISPATCH_LEASE="2",
        RAPPORT_SEND_RATE="60",
    )
    return env


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(cwd / "rapport.log").open("ab"),
    )


REMINDER = "gentle reminder"  # the bot sends these clients only check-ins and reminders


def _reached(fake: FakeBotAPI) -> int:
    """Clients who got something from the bot so far (a check-in or a reminder)."""
    return len({m.chat_id for m in fake.messages})


def _got_at_least(fake: FakeBotAPI, clients: int) -> bool:
    return _reached(fake) >= clients


async def _settled(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Every check-in sent, and every one in doubt reminded."""
    async with sessions() as session:
        rows = (await session.scalars(select(CheckIn))).all()
    return all(
        row.state == CheckInState.SENT and (row.message_id or row.reminded_at) for row in rows
    )


def _delivery(fake: FakeBotAPI, chats: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """Per chat, what reached the client: check-in messages, reminders carrying the
    check-in (its question and buttons), and ordinary reminders."""
    found = {}
    for chat in chats:
        texts = [(m.content, bool(m.reply_markup)) for m in fake.chat_messages(chat)]
        checkin = sum(1 for t, _ in texts if REMINDER not in t)
        carrying = sum(1 for t, buttons in texts if REMINDER in t and buttons)
        ordinary = sum(1 for t, buttons in texts if REMINDER in t and not buttons)
        found[chat] = (checkin, carrying, ordinary)
    return found


def _assert_each_reached_once(
    fake: FakeBotAPI, chats: Sequence[int], rows: Sequence[CheckIn]
) -> tuple[int, int]:
    """Each check-in reached its client as a check-in message or as a reminder carrying it;
    no check-in message twice, no reminder twice. Returns (in doubt, carried)."""
    delivery = _delivery(fake, chats)
    assert all(checkin <= 1 for checkin, _, _ in delivery.values())  # nothing twice
    assert all(carrying + ordinary <= 1 for _, carrying, ordinary in delivery.values())
    lost = [chat for chat, (checkin, carrying, _) in delivery.items() if not checkin + carrying]
    assert lost == []  # nothing lost
    in_doubt = [row for row in rows if row.message_id is None]
    assert all(row.reminded_at is not None for row in in_doubt)  # each in doubt reminded
    carried = sum(carrying for _, carrying, _ in delivery.values())
    assert carried == len(in_doubt)  # only those in doubt: a confirmed one is not carried
    return len(in_doubt), carried


async def test_three_sigkills_mid_fanout_lose_nothing_and_send_nothing_twice(
    tmp_path: Path,
) -> None:
    """The real `rapport run`, killed with SIGKILL three times during a fan-out of 300
    (early, in the middle, near the end) and started again each time."""
    async with FakeBotAPI() as fake:
        url = f"sqlite+aiosqlite:///{tmp_path / 'rapport.db'}"
        settings = rig_settings(fake, tmp_path, url)
        await initialise(settings)
        engine = create_engine(url)
        sessions = session_factory(engine)
        chats = await _clients_with_due_checkins(sessions, load_vault(settings), fake, 300)
        env = _bot_env(fake, tmp_path, url)
        process = _start(env, tmp_path)
        try:
            for at in (3, 150, 291):  # 1%, 50%, 97% of the clients reached
                await fake.wait_for(partial(_got_at_least, fake, at), timeout=60)
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                process = _start(env, tmp_path)
            await eventually(partial(_settled, sessions), timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        async with sessions() as session:
            rows = (await session.scalars(select(CheckIn))).all()
        await engine.dispose()

    assert len(rows) == 300
    in_doubt, carried = _assert_each_reached_once(fake, chats, rows)
    print(f"3 kills: {in_doubt} in doubt, each carried by its reminder ({carried})")
    assert in_doubt <= 3 * 8  # at most the requests in flight at each kill (the window)


async def _outage(database: str, seconds: float) -> None:
    """The test database refuses connections, and every session on it is terminated,
    again and again, for `seconds`; then it accepts connections again."""
    assert POSTGRES_URL is not None
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            loop = asyncio.get_running_loop()
            until = loop.time() + seconds
            try:
                while loop.time() < until:
                    await conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :name AND pid <> pg_backend_pid()"
                        ),
                        {"name": database},
                    )
                    await asyncio.sleep(0.1)
            finally:
                await conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    finally:
        await admin.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(POSTGRES_URL is None, reason="needs RAPPORT_TEST_POSTGRES_URL")
async def test_a_database_outage_mid_fanout_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """The real `rapport run` on PostgreSQL; mid fan-out of 200 its database refuses
    connections and has its sessions terminated for 8 seconds, twice. The bot lives on."""
    async with postgres_database() as url, FakeBotAPI() as fake:
        settings = rig_settings(fake, tmp_path, url)
        await initialise(settings)
        engine = create_engine(url)
        sessions = session_factory(engine)
        chats = await _clients_with_due_checkins(sessions, load_vault(settings), fake, 200)
        await engine.dispose()  # the test's own connections would be cut too
        env = _bot_env(fake, tmp_path, url) | {"RAPPORT_SEND_RATE": "15"}
        process = _start(env, tmp_path)
        try:
            name = make_url(url).database
            assert name is not None
            for at in (30, 110):
                await fake.wait_for(partial(_got_at_least, fake, at), timeout=60)
                await _outage(name, 8)
            await eventually(partial(_settled, sessions), timeout=60)
            assert process.poll() is None  # it survived
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        async with sessions() as session:
            rows = (await session.scalars(select(CheckIn))).all()
        await engine.dispose()

    assert len(rows) == 200
    in_doubt, carried = _assert_each_reached_once(fake, chats, rows)
    print(f"2 outages: {in_doubt} in doubt, each carried by its reminder ({carried})")
    assert in_doubt <= 2 * 8  # at most the requests in flight at each outage (the window)
