"""Scheduled check-ins through the real bot: a weekly rule fires at the client's local time,
a reminder follows, the unanswered check-in is recorded missed; a client who blocks the bot
gets nothing more and their therapist is told."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from store import plans
from store.db import transaction
from store.models import CheckIn, CheckInState, Client, ClientStatus
from tests.conftest import practice_rig
from tests.rig import eventually, first_question, join, link

CONFIG = """
[checkins]
reminder_hours = 4

[templates.weekly]
[[templates.weekly.rules]]
kind = "weekly"
weekdays = ["monday"]
at = "09:00"
instruments = ["alliance"]
"""
MONDAY_0900_BERLIN = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)


async def test_weekly_rule_reminder_and_missed(tmp_path: Path) -> None:
    async with practice_rig(tmp_path, CONFIG, at=MONDAY_0900_BERLIN - timedelta(minutes=30)) as rig:
        therapist_id, t_token = await rig.add_therapist()
        client_id, c_token = await rig.invite(therapist_id, label="Client Wu")
        async with transaction(rig.services.sessions) as session:
            client_row = await session.get(Client, client_id)
            assert client_row is not None
            rule = {"weekdays": ["monday"], "at": "09:00", "instruments": ["alliance"]}
            await plans.set_schedule(
                session,
                client_row,
                [("weekly", json.dumps(rule))],
                template="weekly",
                now=rig.clock(),
            )
        therapist, client = rig.fake.user(5101), rig.fake.user(6101)
        await link(therapist, t_token)
        await join(client, c_token)
        await rig.fake.wait_for(lambda: rig.fake.count("getUpdates") > 5)  # a few ticks pass
        assert len(client.messages) == 1  # only the welcome: 08:30 is too early

        rig.clock.set(MONDAY_0900_BERLIN + timedelta(seconds=1))
        question = await first_question(rig, client)
        assert "1/5" in question.content

        async def recorded_as_sent() -> bool:
            async with rig.services.sessions() as session:
                found = await session.scalar(select(CheckIn).where(CheckIn.client_id == client_id))
            return found is not None and found.state == CheckInState.SENT

        await eventually(recorded_as_sent)
        async with rig.services.sessions() as session:
            row = await session.scalar(select(CheckIn).where(CheckIn.client_id == client_id))
        assert row is not None and row.slot_at == MONDAY_0900_BERLIN
        assert row.sent_at is not None and row.sent_at >= MONDAY_0900_BERLIN
        assert row.reminder_at is not None
        assert row.reminder_at - row.sent_at == timedelta(hours=4)

        rig.clock.advance(timedelta(hours=4))
        reminder = await client.wait_for_message(contains="gentle reminder", timeout=10)
        # Open until 08:00 UTC next day: the client's own day and time, 09:00 CET on Tuesday.
        assert "still open until Tue 09:00." in reminder.content
        rig.clock.advance(timedelta(hours=1))
        dispatcher = rig.app.bot_data.dispatcher
        assert dispatcher is not None
        ticks = dispatcher.ticks
        await rig.fake.wait_for(lambda: dispatcher.ticks >= ticks + 3)  # three more ticks ran
        assert sum("gentle reminder" in m.content for m in client.messages) == 1  # only once

        rig.clock.set(MONDAY_0900_BERLIN + timedelta(hours=24, seconds=1))

        async def missed() -> bool:
            async with rig.services.sessions() as session:
                checkin = await session.get(CheckIn, row.id)
            return checkin is not None and checkin.state == CheckInState.MISSED

        await eventually(missed)
        client.press_button(question.message_id, "7")
        await rig.fake.wait_for(lambda: all(p.answered for p in rig.fake.presses.values()))
        assert list(rig.fake.presses.values())[-1].answer.get("text") == "This check-in is closed."


async def test_blocked_client_gets_nothing_and_the_therapist_is_told(tmp_path: Path) -> None:
    async with practice_rig(tmp_path, CONFIG, at=MONDAY_0900_BERLIN - timedelta(minutes=30)) as rig:
        therapist_id, t_token = await rig.add_therapist()
        client_id, c_token = await rig.invite(therapist_id, label="Client Wu")
        therapist, client = rig.fake.user(5102), rig.fake.user(6102)
        await link(therapist, t_token)
        await join(client, c_token)
        client.block()
        notice = await therapist.wait_for_message(contains="blocked the bot", timeout=10)
        assert "Client Wu" in notice.content
        async with rig.services.sessions() as session:
            row = await session.get(Client, client_id)
        assert row is not None and row.status == ClientStatus.UNREACHABLE

        client.unblock()
        await therapist.wait_for_message(contains="unblocked", timeout=10)
        async with rig.services.sessions() as session:
            row = await session.get(Client, client_id)
        assert row is not None and row.status == ClientStatus.ACTIVE
