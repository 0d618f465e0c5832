"""The two tiers through the real bot: a mild sign pushes nothing and waits for the brief the
therapist gets before the client's next logged session (once, never in quiet hours); a strong
rupture pushes one message at once; `minimal` keeps the brief free of anything clinical."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers import brief, digest
from store.models import Alert, Brief
from tests.botapi import BotMessage, FakeUser
from tests.conftest import practice_rig
from tests.rig import Rig, answer_checkin, dispatched, eventually, join, link

CONFIG = """
[practice]
timezone = "Europe/Berlin"

[quiet_hours]
start = "21:00"
end = "08:00"

[alerts]
detail = "{detail}"
"""
# A Thursday morning in Berlin.
START = datetime(2026, 3, 26, 8, 0, tzinfo=UTC)


async def _rig(request: pytest.FixtureRequest, tmp_path: Path, detail: str) -> AsyncIterator[Rig]:
    async with practice_rig(
        tmp_path, CONFIG.format(detail=detail), at=START, kind=request.param
    ) as started:
        yield started


@pytest.fixture(params=["sqlite", "postgres"])
async def full(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async for started in _rig(request, tmp_path, "full"):
        yield started


@pytest.fixture(params=["sqlite"])
async def minimal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async for started in _rig(request, tmp_path, "minimal"):
        yield started


async def _alerts(rig: Rig) -> list[Alert]:
    async with rig.services.sessions() as session:
        return list((await session.scalars(select(Alert).order_by(Alert.rule))).all())


async def _team(rig: Rig) -> tuple[FakeUser, FakeUser, uuid.UUID]:
    therapist_id, t_token = await rig.add_therapist("Therapist Ada")
    client_id, c_token = await rig.invite(therapist_id, label="Kim")
    therapist, client = rig.fake.user(7301), rig.fake.user(8301)
    await link(therapist, t_token)
    await join(client, c_token)
    for values in (["10", "10", "10", "10"], ["10", "9", "10", "10"], ["10", "10", "10", "10"]):
        await answer_checkin(rig, client, client_id, [*values, "No"], then=timedelta(days=1))
    return therapist, client, client_id


async def _log_session(rig: Rig, therapist: FakeUser, when: str) -> None:
    therapist.send_text(f"/session Kim {when}")
    await therapist.wait_for_message(contains="logged")


async def test_a_mild_sign_waits_for_the_brief_before_the_session(full: Rig) -> None:
    rig = full
    therapist, client, client_id = await _team(rig)
    # One mild sign: "a little" tension, scores at the client's usual level.
    await answer_checkin(rig, client, client_id, ["10", "10", "9", "10", "A little"], timedelta(0))
    await eventually(lambda: _has_tension(rig))
    [alert] = await _alerts(rig)
    assert (alert.rule, alert.delivery, alert.next_delivery_at) == ("tension", "brief", None)
    await dispatched(rig)  # a tick that would have pushed it has run
    pushed = [m for m in therapist.messages if "Kim" in m.content and "joined" not in m.content]
    assert pushed == []  # nothing on the therapist's phone tonight
    # No session is known yet, so the thanks promises no "before your next session".
    thanks = [m.content for m in client.messages if m.content.startswith("Thank you")]
    assert thanks and all("before your next session" not in t for t in thanks)

    # A session tomorrow at 10:00 Berlin (08:00 UTC); the brief is due two hours before.
    await _log_session(rig, therapist, "tomorrow 10:00")
    session_at = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # the clock moved 3 days above
    rig.clock.set(session_at - timedelta(hours=3))
    assert await brief.send_due(rig.app.bot, rig.services) == 0  # not yet
    rig.clock.set(session_at - timedelta(hours=2))
    assert await brief.send_due(rig.app.bot, rig.services) == 1
    sent = _brief(therapist)
    assert sent.photo is not None and sent.photo.startswith(b"\x89PNG")  # the trend chart
    assert "tension" in sent.content and "To open with" in sent.content
    assert "tension (" not in sent.content and "SD" not in sent.content  # no rule ids, no stats
    assert len(sent.content) < 600
    assert await brief.send_due(rig.app.bot, rig.services) == 0  # once per session
    await answer_checkin(rig, client, client_id, ["10"] * 4 + ["No"], timedelta(0))
    assert "before your next session" in client.messages[-1].content  # now one is known
    [alert] = await _alerts(rig)
    assert alert.briefed_at is not None and alert.delivered_at is not None
    async with rig.services.sessions() as session:
        rows = (await session.scalars(select(Brief))).all()
    assert [(r.session_at, r.delivered_at is not None) for r in rows] == [(session_at, True)]


def _brief(therapist: FakeUser) -> BotMessage:
    """The brief the therapist has received (send_due returns after Telegram took it)."""
    [sent] = [m for m in therapist.messages if "Before your session with Kim" in m.content]
    return sent


async def _has_tension(rig: Rig) -> bool:
    return any(a.rule == "tension" for a in await _alerts(rig))


async def test_a_brief_never_arrives_in_quiet_hours(full: Rig) -> None:
    rig = full
    therapist, _client, _client_id = await _team(rig)
    # A session at 08:30 Berlin: two hours before is 06:30, inside quiet hours (21:00-08:00),
    # so the brief goes out the evening before, before 21:00.
    await _log_session(rig, therapist, "tomorrow 08:30")
    session_at = datetime(2026, 3, 30, 6, 30, tzinfo=UTC)
    evening = datetime(2026, 3, 29, 18, 55, tzinfo=UTC)  # 20:55 Berlin (summer time)
    rig.clock.set(evening - timedelta(minutes=10))
    assert await brief.send_due(rig.app.bot, rig.services) == 0
    rig.clock.set(evening)
    assert await brief.send_due(rig.app.bot, rig.services) == 1
    sent = _brief(therapist)
    assert "Nothing of note" in sent.content
    rig.clock.set(session_at - timedelta(hours=2))
    assert await brief.send_due(rig.app.bot, rig.services) == 0


async def test_a_strong_rupture_is_pushed_at_once_in_plain_words(full: Rig) -> None:
    rig = full
    therapist, client, client_id = await _team(rig)
    rig.clock.set(datetime(2026, 3, 30, 10, 0, tzinfo=UTC))  # daytime: no quiet hours
    await answer_checkin(rig, client, client_id, ["7", "5", "6", "7", "Yes"], timedelta(0))
    alert = await therapist.wait_for_message(contains="Kim", timeout=15)
    for raw in ("low_alliance", "alliance_drop", "tension (", " SD "):
        assert raw not in alert.content
    assert "25" in alert.content  # the client's own numbers: 25 of 40
    assert {a.delivery for a in await _alerts(rig)} == {"push"}
    about_kim = [m for m in therapist.messages if "Kim" in m.content]
    assert sum("joined Rapport" not in m.content for m in about_kim) == 1  # one message


async def test_minimal_brief_carries_nothing_clinical(minimal: Rig) -> None:
    rig = minimal
    therapist, client, client_id = await _team(rig)
    await answer_checkin(rig, client, client_id, ["10", "10", "9", "10", "A little"], timedelta(0))
    await eventually(lambda: _has_tension(rig))
    await _log_session(rig, therapist, "tomorrow 10:00")
    rig.clock.set(datetime(2026, 3, 30, 6, 0, tzinfo=UTC))
    assert await brief.send_due(rig.app.bot, rig.services) == 1
    sent = _brief(therapist)
    assert sent.photo is None
    assert "1 signal since the last session" in sent.content
    for clinical in ("tension", "40", "alliance", "wrote"):
        assert clinical not in sent.content


async def test_without_a_session_time_the_signals_go_into_the_weekly_digest(full: Rig) -> None:
    rig = full
    therapist, client, client_id = await _team(rig)  # the clock is now Sunday 29 March
    await answer_checkin(rig, client, client_id, ["10", "10", "9", "10", "A little"], timedelta(0))
    await eventually(lambda: _has_tension(rig))
    therapist.send_text("/digest on mon 08:00")
    await therapist.wait_for_message(contains="weekly digest")
    assert await brief.send_due(rig.app.bot, rig.services) == 0  # no session: no brief
    rig.clock.set(datetime(2026, 3, 30, 6, 30, tzinfo=UTC))  # Monday 08:30 in Berlin
    assert await digest.send_due(rig.app.bot, rig.services) == 1
    [sent] = [m for m in therapist.messages if "Your week in Rapport" in m.content]
    assert "No session time known" in sent.content
    assert "Kim said there was some tension" in sent.content
    [alert] = await _alerts(rig)
    assert alert.briefed_at is not None  # carried once: the next digest does not repeat it


async def test_a_brief_telegram_did_not_take_is_sent_again_and_only_once(full: Rig) -> None:
    rig = full
    therapist, _client, _client_id = await _team(rig)
    await _log_session(rig, therapist, "tomorrow 10:00")
    session_at = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    rig.clock.set(session_at - timedelta(hours=2))
    rig.fake.fail("sendPhoto", 502, chat_id=therapist.id)  # the gateway: surely not delivered
    assert await brief.send_due(rig.app.bot, rig.services) == 0
    assert [m for m in therapist.messages if "Before your session" in m.content] == []
    assert await brief.send_due(rig.app.bot, rig.services) == 0  # its retry is not due yet
    rig.clock.advance(timedelta(minutes=1))
    assert await brief.send_due(rig.app.bot, rig.services) == 1  # tried again
    rig.clock.advance(timedelta(minutes=10))
    assert await brief.send_due(rig.app.bot, rig.services) == 0  # and only once
    assert len([m for m in therapist.messages if "Before your session" in m.content]) == 1
