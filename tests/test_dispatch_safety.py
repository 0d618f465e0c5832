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
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from tests.rig import rig_settings

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


async def _wait(predicate_async: object, timeout: float) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await predicate_async():  # type: ignore[operator]
            return
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.2)


async def test_sigkill_mid_fanout_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        url = f"sqlite+aiosqlite:///{tmp_path / 'rapport.db'}"
        settings = rig_settings(fake, tmp_path, url)
        await initialise(settings)
        engine = create_engine(url)
        sessions = session_factory(engine)
        chats = await _clients_with_due_checkins(sessions, load_vault(settings), fake, 300)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(
            RAPPORT_BOT_TOKEN=fake.token,
            RAPPORT_TELEGRAM_API_URL=fake.root,
            RAPPORT_DATA_DIR=str(tmp_path),
            RAPPORT_DATABASE_URL=url,
            RAPPORT_DISPATCH_INTERVAL="0.2",
            RAPPORT_DISPATCH_LEASE="2",
        )

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        first = start()
        try:
            await fake.wait_for(lambda: fake.count("sendMessage") >= 60, timeout=60)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            sent_before_restart = fake.count("sendMessage")
            assert sent_before_restart < 300  # it really died mid fan-out
            second = start()
            try:

                async def settled() -> bool:
                    async with sessions() as session:
                        states = (await session.scalars(select(CheckIn.state))).all()
                    return set(states) <= {CheckInState.SENT}

                await _wait(settled, timeout=90)
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=20)
        finally:
            if first.poll() is None:
                first.kill()
        async with sessions() as session:
            rows = (await session.scalars(select(CheckIn))).all()
        await engine.dispose()

    sends = _sends(fake, chats)
    assert max(sends.values()) == 1  # nothing twice
    unconfirmed = [row for row in rows if row.message_id is None]
    assert len(unconfirmed) <= 40  # at most two chunks of 20 were in flight when it died
    assert sum(sends.values()) >= 300 - len(unconfirmed)  # everything else arrived
