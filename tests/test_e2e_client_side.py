"""The client's side, through the real bot over HTTP: check-ins arrive on a fresh install with
no config file, an instrument's instructions come with its first question, the therapist hears
when a client joins, and /progress shows a client their own trend."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.texts import DEFAULTS
from store.models import CheckIn
from tests.conftest import practice_rig
from tests.rig import (
    Rig,
    answer_checkin,
    enrolled,
    first_question,
    join,
    link,
    press_latest,
)

BERLIN = ZoneInfo("Europe/Berlin")
ALLIANCE_INTRO = "A few taps about your last session and your work with your therapist."
WHO5_INTRO = "Over the last two weeks, how often has this been true for you?"


# --- 1 and 3: a fresh install schedules check-ins by itself, and the therapist is told -------


async def test_a_fresh_install_without_config_sends_an_invited_client_a_checkin(
    tmp_path: Path,
) -> None:
    async with practice_rig(tmp_path) as rig:  # no rapport.toml anywhere
        assert rig.settings.config is None
        therapist_id, t_token = await rig.add_therapist()
        therapist, client = rig.fake.user(5311), rig.fake.user(6311)
        await link(therapist, t_token)
        # The README's quick start: invite with the command line, nothing else.
        invited = await rig.cli(
            "client",
            "invite",
            "--therapist",
            str(therapist_id),
            "--label",
            "A.B.",
            "--timezone",
            "Europe/Berlin",
        )
        assert invited["template"] == "standard"
        client_id = uuid.UUID(invited["client_id"])

        await join(client, invited["token"])
        joined_day = rig.clock().astimezone(BERLIN).date()
        first_due = datetime.combine(joined_day + timedelta(days=1), time(18, 0), BERLIN)

        # The therapist hears that A.B. joined, and when the first check-in is due there.
        notice = await therapist.wait_for_message(contains="joined Rapport", timeout=10)
        assert notice.content.startswith("A.B. joined Rapport; their first check-in is due on")
        assert f"{first_due:%a} {first_due.day} {first_due:%b} at 18:00" in notice.content
        assert "(Europe/Berlin time)" in notice.content

        shown = await rig.cli("schedule", "show", "--client", str(client_id))
        assert shown["template"] == "standard"
        assert [rule["kind"] for rule in shown["rules"]] == ["every_n_days", "every_n_days"]
        assert shown["next"][0]["local"] == first_due.isoformat()
        assert shown["next"][1]["local"] == (first_due + timedelta(days=7)).isoformat()

        rig.clock.set(first_due - timedelta(minutes=1))
        dispatcher = rig.app.bot_data.dispatcher
        assert dispatcher is not None
        ticks = dispatcher.ticks
        await rig.fake.wait_for(lambda: dispatcher.ticks >= ticks + 3)
        assert not any("1/" in m.content for m in client.messages)  # not before it is due

        rig.clock.set(first_due + timedelta(seconds=1))
        question = await first_question(rig, client)
        # Alliance and WHO-5 together, one message: 5 + 5 questions, then a comment.
        assert "1/10" in question.content and ALLIANCE_INTRO in question.content
        async with rig.services.sessions() as session:
            row = await session.scalar(select(CheckIn).where(CheckIn.client_id == client_id))
        assert row is not None and row.schedule_id is not None
        assert row.slot_at == first_due and row.instruments == "alliance,who5"


async def test_the_therapist_hears_when_a_client_without_a_schedule_joins(rig: Rig) -> None:
    therapist, _client, _client_id = await enrolled(rig, label="Client Lu")
    notice = await therapist.wait_for_message(contains="joined Rapport", timeout=10)
    assert notice.content.startswith("Client Lu joined Rapport; no check-ins are scheduled yet.")


# --- 2: an instrument's instructions come with its first question ---------------------------


async def test_each_instruments_intro_comes_with_its_first_question(rig: Rig) -> None:
    _therapist, client, client_id = await enrolled(rig)
    await rig.send_checkin(client_id, "alliance", "who5")
    question = await first_question(rig, client)
    assert question.content.index(ALLIANCE_INTRO) < question.content.index("I felt heard")
    for value in ["8", "8", "8", "8"]:
        second = await press_latest(client, value)
        assert ALLIANCE_INTRO not in second.content
    who5 = await press_latest(client, "No")  # the last alliance item: on to WHO-5
    lines = who5.content.splitlines()
    assert lines[0].startswith("WHO-5 Well-Being Index") and "6/10" in lines[0]
    assert lines.index(WHO5_INTRO) < lines.index("I have felt cheerful and in good spirits.")
    next_item = await press_latest(client, "Most of the time")
    assert "7/10" in next_item.content and WHO5_INTRO not in next_item.content
    back = await press_latest(client, DEFAULTS["back_button"])
    assert WHO5_INTRO in back.content  # back on the first WHO-5 question: shown again


# --- 4: /progress --------------------------------------------------------------------------

PROGRESS_CONFIG = '[checkins]\nshow_scores = ["alliance"]\n'


async def test_progress_sends_the_chart_and_a_plain_reading(tmp_path: Path) -> None:
    async with practice_rig(tmp_path, PROGRESS_CONFIG) as rig:
        _therapist, client, client_id = await enrolled(rig)
        client.send_text("/progress")
        nothing = await client.wait_for_message(contains="haven't completed a check-in")
        assert "not watched in real time" in nothing.content

        for _ in range(3):
            await answer_checkin(rig, client, client_id, ["9", "9", "9", "9", "No"])
        closing = client.last_message.content  # show_scores: the score, then the same words
        assert "36 of 40. Your answers about your work with your therapist have been steady." in (
            closing
        )

        client.send_text("/progress")
        chart = await client.wait_for_message(predicate=lambda m: m.photo is not None)
        assert chart.photo is not None and chart.photo.startswith(b"\x89PNG")
        assert "Your answers about your work with your therapist have been steady." in (
            chart.content
        )
        assert "not watched in real time" in chart.content

        await answer_checkin(rig, client, client_id, ["3", "3", "3", "3", "No"])
        photos = sum(m.photo is not None for m in client.messages)
        client.send_text("/progress")
        lower = await client.wait_for_message(
            predicate=lambda m: (
                m.photo is not None and sum(n.photo is not None for n in client.messages) > photos
            )
        )
        assert (
            "have been lower lately; it may help to talk about it in your next session"
            in lower.content
        )


async def test_progress_turned_off_is_not_offered(tmp_path: Path) -> None:
    async with practice_rig(tmp_path, "[checkins]\nclient_progress = false\n") as rig:
        _therapist, client, client_id = await enrolled(rig)
        await answer_checkin(rig, client, client_id, ["9", "9", "9", "9", "No"])
        client.send_text("/progress")
        off = await client.wait_for_message(contains="not available")
        assert off.content == DEFAULTS["progress_off"]
        assert not any(m.photo is not None for m in client.messages)
        client.send_text("/help")
        shown = await client.wait_for_message(contains="/pause")
        assert "/progress" not in shown.content
        assert "progress" not in [c["command"] for c in rig.fake.commands_for()]
