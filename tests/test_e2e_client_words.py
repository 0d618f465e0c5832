"""What a client reads, through the real bot over HTTP: times in their own day and time, the
tension question, free text outside a check-in (scanned for risk, never kept), the "not read in
real time" line wherever text is invited, the reply to a risk answer, the practice's helplines,
and the consent text (a short first screen, the full text a tap away)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from handlers.local_time import day_time
from tests.botapi import BotMessage, FakeBotAPI, FakeUser
from tests.conftest import database_url
from tests.rig import Clock, Rig, join, link, start_rig

MONDAY_NOON_UTC = datetime(2026, 3, 23, 12, 0, tzinfo=UTC)  # 13:00 in Berlin (CET)


async def _enrolled(
    rig: Rig, client_tg: int = 6401, therapist_tg: int = 5401
) -> tuple[FakeUser, FakeUser, uuid.UUID]:
    therapist_id, t_token = await rig.add_therapist()
    client_id, c_token = await rig.invite(therapist_id, label="Client Jo")
    therapist, client = rig.fake.user(therapist_tg), rig.fake.user(client_tg)
    await link(therapist, t_token)
    await join(client, c_token)
    return therapist, client, client_id


async def _press(user: FakeUser, label: str) -> BotMessage:
    shown = next(m.message_id for m in reversed(user.messages) if label in m.buttons)
    user.press_button(shown, label)
    return await user.wait_for_message(predicate=lambda m: m.message_id == shown)


# --- times in the client's own day and time --------------------------------------------------


def test_a_moment_is_said_as_a_local_day_and_time() -> None:
    now = MONDAY_NOON_UTC
    assert day_time(now + timedelta(hours=5), "Europe/Berlin", now) == "Mon 18:00"
    assert day_time(now + timedelta(days=1), "Europe/Berlin", now) == "Tue 13:00"
    assert day_time(now + timedelta(days=1), "America/New_York", now) == "Tue 08:00"
    # A week or more ahead, the weekday alone would be ambiguous: the date too.
    assert day_time(now + timedelta(days=7), "Europe/Berlin", now) == "Mon 30 Mar 14:00"  # CEST
    assert day_time(now + timedelta(days=14), "Asia/Tokyo", now) == "Mon 6 Apr 21:00"


async def test_a_pause_ends_at_the_clients_local_day_and_time(tmp_path: Path) -> None:
    clock = Clock()
    clock.set(MONDAY_NOON_UTC)
    async with (
        database_url("sqlite", tmp_path) as url,
        FakeBotAPI() as fake,
        start_rig(fake, tmp_path, url, clock=clock) as rig,
    ):
        therapist, client, _client_id = await _enrolled(rig)
        client.send_text("/pause 3")
        paused = await client.wait_for_message(contains="paused until")
        # Three days from Monday 13:00 in Berlin, not a UTC date.
        assert "paused until Thu 13:" in paused.content, paused.content
        assert "2026-03-26" not in paused.content
        notice = await therapist.wait_for_message(contains="paused check-ins", timeout=10)
        assert "until Thu 26 Mar 13:" in notice.content
        assert "(Europe/Berlin time)" in notice.content
