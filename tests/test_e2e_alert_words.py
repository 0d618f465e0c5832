"""Alerts in plain words, through the real bot and the Bot API fake: the Why? button gives the
client's therapist the rules and numbers (and is refused, with an audit row, for anyone else);
an alert too long for a photo caption arrives as the chart and then the text with the buttons;
and each detail level keeps its promise in the alert, History, Why?, /alerts and /clients."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from handlers import callbacks
from handlers import therapist_views as views
from store.models import AuditEvent
from tests.botapi import FakeUser
from tests.conftest import practice_rig
from tests.rig import Rig, answer_checkin, join, link, received

CEILING = ["10", "10", "10", "10", "No"]
RUPTURE = ["8", "5", "8", "8", "Yes"]  # 29 of 40 after three 40s, tension "yes"
CRITICAL = "Honestly this feels like a waste of time, my sister says so too."


async def enrol(
    rig: Rig, label: str = "Kim"
) -> tuple[uuid.UUID, FakeUser, uuid.UUID, FakeUser, uuid.UUID, FakeUser]:
    """Ada with her client, and Bo, another therapist of the practice."""
    ada_id, ada_token = await rig.add_therapist("Therapist Ada")
    bo_id, bo_token = await rig.add_therapist("Therapist Bo")
    client_id, client_token = await rig.invite(ada_id, label=label)
    ada, bo, client = rig.fake.user(7301), rig.fake.user(7302), rig.fake.user(8301)
    await link(ada, ada_token)
    await link(bo, bo_token)
    await join(client, client_token)
    return ada_id, ada, bo_id, bo, client_id, client


async def answered(rig: Rig, user: FakeUser, press: str) -> str | None:
    """Press button data (possibly forged) and return the bot's short answer."""
    done = user.press(user.last_message, press)
    await rig.fake.wait_for(lambda: rig.fake.presses[done.query_id].answered)
    answer = rig.fake.presses[done.query_id].answer
    assert answer is not None
    text: str | None = answer.get("text")
    return text


async def audited(rig: Rig, action: str) -> list[tuple[uuid.UUID | None, str]]:
    async with rig.services.sessions() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.at)
        )
        return [(row.actor_id, row.outcome) for row in rows.all()]


def why_data(client_id: uuid.UUID) -> str:
    return callbacks.encode(callbacks.Tap(callbacks.WHY, client_id, 0, 0))


async def test_why_shows_the_rules_and_numbers_to_the_clients_therapist_only(
    tmp_path: Path,
) -> None:
    async with practice_rig(tmp_path) as rig:
        ada_id, ada, bo_id, bo, client_id, client = await enrol(rig)
        for _ in range(3):
            await answer_checkin(rig, client, client_id, CEILING)
        await answer_checkin(rig, client, client_id, RUPTURE)
        alert = await received(rig, ada, "Possible rupture with Kim")
        assert alert.photo is not None  # text and chart fit one photo with its caption
        assert "Kim's alliance answers fell well below their usual (40 to 29 of 40)" in (
            alert.content
        )
        said = "Kim said there was tension between you in or since the last session."
        assert said in alert.content
        assert "alliance_drop" not in alert.content and "SD" not in alert.content
        assert len(alert.content) < 600
        assert alert.buttons == ["Acknowledge", "Snooze 1 day", "History", "Why?"]

        # Bo presses Ada's Why? (a forwarded or forged button): refused, audited, nothing shown.
        why = alert.button_data[alert.buttons.index("Why?")] or ""
        assert why == why_data(client_id) and len(why.encode()) <= 64
        assert await answered(rig, bo, why) == views.REFUSED
        assert not any("Why Rapport flagged" in m.content for m in bo.messages)

        ada.press_button(alert, "Why?")
        reason = await received(rig, ada, "Why Rapport flagged Kim")
        assert "• alliance_drop (high): Alliance 29/40" in reason.content
        assert "SD below this client's usual 40" in reason.content
        assert "• tension (high)" in reason.content and "Numbers: value 2" in reason.content
        assert "Numbers: total 29, max_total 40" in reason.content
        assert "Sent now: " in reason.content
        assert await audited(rig, "alert.why") == [(bo_id, "refused"), (ada_id, "ok")]


async def test_an_alert_too_long_for_a_caption_comes_as_chart_then_text(tmp_path: Path) -> None:
    # A long label (a practice may write notes into it) makes the text pass 1,024 characters.
    label = "Kim " + " ".join(["(Tuesdays, couples work, referred by the GP practice)"] * 9)
    async with practice_rig(tmp_path) as rig:
        _, ada, _, _, client_id, client = await enrol(rig, label=label)
        for _ in range(3):
            await answer_checkin(rig, client, client_id, CEILING)
        await answer_checkin(rig, client, client_id, RUPTURE)
        text = await received(rig, ada, "Possible rupture with Kim")
        assert text.photo is None and len(text.content) > 1024
        assert text.buttons == ["Acknowledge", "Snooze 1 day", "History", "Why?"]
        assert re.search(r"…and \d more in History\.", text.content)  # whole sentences only
        chart = ada.messages[ada.messages.index(text) - 1]
        assert chart.photo is not None and chart.photo.startswith(b"\x89PNG")
        assert chart.buttons == []
        assert sum(m.photo is not None for m in ada.messages) == 1


MINIMAL = '[alerts]\ndetail = "minimal"\n'


async def test_minimal_sends_nothing_clinical_in_the_alert_history_and_why(
    tmp_path: Path,
) -> None:
    async with practice_rig(tmp_path, MINIMAL) as rig:
        _, ada, _, _, client_id, client = await enrol(rig)
        for _ in range(3):
            await answer_checkin(rig, client, client_id, CEILING)
        await answer_checkin(rig, client, client_id, RUPTURE, then=timedelta(), comment=CRITICAL)
        alert = await received(rig, ada, "Check-in news for Kim")
        assert alert.photo is None  # no chart
        assert alert.buttons == ["Acknowledge", "Snooze 1 day"]
        assert "practice's records" in alert.content

        ada.send_text("/history Kim")
        history = await ada.wait_for_message(contains="Kim:")
        assert "practice's records" in history.content

        ada.press(alert, why_data(client_id))  # a Why? button from before the setting changed
        why = await ada.wait_for_message(contains="Why Rapport flagged Kim")

        ada.send_text("/alerts")
        listed = await ada.wait_for_message(contains="Check-in news for Kim")

        ada.send_text("/clients")
        clients = await ada.wait_for_message(contains="Your clients")
        assert "alliance" not in clients.content and "wellbeing" not in clients.content

        for shown in (alert, history, why, listed):
            assert not re.search(r"\d", shown.content), shown.content  # no score, no date
            for clinical in ("waste", "sister", "alliance", "tension", "critical", "risk"):
                assert clinical not in shown.content.lower(), (clinical, shown.content)
        assert all(m.photo is None for m in ada.messages)  # no chart anywhere


async def test_scores_shows_scores_but_no_comment_words_anywhere(tmp_path: Path) -> None:
    async with practice_rig(tmp_path, '[alerts]\ndetail = "scores"\n') as rig:
        _, ada, _, _, client_id, client = await enrol(rig)
        for _ in range(3):
            await answer_checkin(rig, client, client_id, CEILING)
        await answer_checkin(rig, client, client_id, RUPTURE, then=timedelta(), comment=CRITICAL)
        alert = await received(rig, ada, "Possible rupture with Kim")
        assert "(40 to 29 of 40)" in alert.content and alert.photo is not None
        assert "Kim wrote something critical of the therapy." in alert.content

        ada.press_button(alert, "Why?")
        why = await ada.wait_for_message(contains="Why Rapport flagged Kim")
        assert "critical_comment (warn): The comment has confrontation markers" in why.content
        ada.press_button(alert, "History")
        history = await ada.wait_for_message(contains="Kim: check-ins 1-4")
        assert "alliance 29/40" in history.content

        for shown in (alert, why, history):
            assert "waste" not in shown.content and "sister" not in shown.content
