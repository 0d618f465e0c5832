"""What a client sees and does, through the real bot over HTTP: consent, a whole check-in with
Back, Skip and a comment, a restart half way, their commands, erasure, and the safety net."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.texts import DEFAULTS
from handlers.therapist_views import OUT_OF_DATE
from store.crypto import DecryptionError
from store.models import (
    Alert,
    Answer,
    AuditEvent,
    CheckIn,
    CheckInState,
    Client,
    ClientStatus,
    DataKeyRow,
    Invite,
    Notice,
)
from store.vault import unseal
from tests.botapi import FakeBotAPI
from tests.conftest import database_url, practice_rig
from tests.rig import (
    Rig,
    dispatched,
    enrolled,
    first_question,
    join,
    link,
    press_latest,
    received,
    start_rig,
)

DATA = Path(__file__).parent / "data"


async def _client_row(rig: Rig, client_id: uuid.UUID) -> Client | None:
    async with rig.services.sessions() as session:
        return await session.get(Client, client_id)


async def test_not_now_stores_nothing_and_the_link_still_works(rig: Rig) -> None:
    therapist_id, _ = await rig.add_therapist()
    client_id, token = await rig.invite(therapist_id)
    client = rig.fake.user(6002)
    client.send_text(f"/start {token}")
    offer = await client.wait_for_message(contains="Do you agree")
    assert "no way to get urgent help" in offer.content and "112" in offer.content
    full = await press_latest(client, DEFAULTS["full_text_button"])
    for needed in (
        "encrypted",
        "not end-to-end encrypted",
        "no way to get urgent help",
        "/pause",
        "/stop",
        "/mydata",
        "/delete",
        "112",
    ):
        assert needed in full.content, needed
    declined = await press_latest(client, DEFAULTS["not_now_button"])
    assert "nothing has been saved" in declined.content
    row = await _client_row(rig, client_id)
    assert row is not None and row.telegram_hash is None and row.chat_enc is None
    assert row.status == ClientStatus.INVITED and row.consent_at is None

    await join(client, token)  # later, the same link
    row = await _client_row(rig, client_id)
    assert row is not None and row.status == ClientStatus.ACTIVE
    assert row.consent_version == rig.services.texts.consent_version("en")


async def test_full_checkin_with_back_skip_and_comment(rig: Rig, tmp_path: Path) -> None:
    therapist, client, client_id = await enrolled(rig)
    await rig.send_checkin(client_id)
    first = await first_question(rig, client)
    assert "1/5" in first.content and first.buttons[:11] == [str(v) for v in range(11)]
    assert DEFAULTS["back_button"] not in first.buttons  # nothing to go back to

    await press_latest(client, "3")
    second = await press_latest(client, DEFAULTS["back_button"])
    assert "1/5" in second.content and "✓ 3" in second.buttons  # the earlier answer, marked
    for value in ["9", "9", "10", "9"]:
        shown = await press_latest(client, value)
    assert "5/5" in shown.content and shown.buttons[:3] == ["No", "A little", "Yes"]
    prompt = await press_latest(client, "No")
    assert "Anything you'd like your therapist to know" in prompt.content
    client.send_text("Thanks, the last session really helped.")
    await client.wait_for_message(contains="Thank you")

    async with rig.services.sessions() as session:
        checkin = await session.scalar(select(CheckIn).where(CheckIn.client_id == client_id))
        assert checkin is not None and checkin.state == CheckInState.COMPLETED
        key = await rig.services.vault.key(session, client_id)
        assert unseal(key, checkin, "comment_enc").startswith("Thanks, the last session")
        raised = await session.scalar(
            select(func.count()).select_from(Alert).where(Alert.client_id == client_id)
        )
    assert raised == 0  # 37/40, no tension, a kind comment: no alert, not even for the brief
    await dispatched(rig)  # a tick that could have sent one has run
    # Notices (joined, paused, ...) may come; an alert is what carries Acknowledge.
    assert [m.content for m in therapist.messages if "Acknowledge" in m.buttons] == []


async def test_optional_item_skip_and_risk_item_safety_net(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with practice_rig(
        tmp_path, f'[instruments]\ndirectory = "{DATA / "instruments"}"\n'
    ) as rig:
        therapist, client, client_id = await enrolled(rig)
        _, bystander_token = await rig.add_therapist("Therapist Bo")
        bystander = rig.fake.user(5999)
        await link(bystander, bystander_token)
        await rig.send_checkin(client_id, "mood_check")
        first = await first_question(rig, client)
        assert DEFAULTS["skip_button"] in first.buttons
        second = await press_latest(client, DEFAULTS["skip_button"])
        assert "2/2" in second.content and DEFAULTS["skip_button"] not in second.buttons
        client.press_button(second, "Several days")
        crisis = await client.wait_for_message(contains="Please don't wait")
        assert "112" in crisis.content
        alert = await therapist.wait_for_message(contains="Urgent", timeout=10)
        assert "Client Mo" in alert.content and "harm" in alert.content
        assert len(bystander.messages) == 1  # only the link confirmation
        async with rig.services.sessions() as session:
            answers = await session.scalar(
                select(func.count()).select_from(CheckIn).where(CheckIn.client_id == client_id)
            )
            urgent = (await session.scalars(select(Alert))).all()
        assert answers == 1 and [(a.rule, a.severity) for a in urgent] == [("risk", "urgent")]


async def test_risk_comment_shows_crisis_resources_and_alerts(rig: Rig) -> None:
    therapist, client, client_id = await enrolled(rig)
    await rig.send_checkin(client_id)
    await first_question(rig, client)
    for value in ["10", "10", "10", "10", "No"]:
        await press_latest(client, value)
    client.send_text("Honestly some days I want to die.")
    crisis = await client.wait_for_message(contains="Please don't wait")
    assert "emergency" in crisis.content
    alert = await therapist.wait_for_message(contains="Urgent", timeout=10)
    assert "risk phrase" in alert.content and "Client Mo" in alert.content
    assert "some days" not in alert.content  # the comment itself is not repeated


async def test_restart_half_way_resumes_where_it_stopped(tmp_path: Path) -> None:
    async with database_url("sqlite", tmp_path) as url, FakeBotAPI() as fake:
        async with start_rig(fake, tmp_path, url) as rig:
            _therapist, client, client_id = await enrolled(rig)
            await rig.send_checkin(client_id)
            await first_question(rig, client)
            await press_latest(client, "8")
            await press_latest(client, "7")
        # The bot is down; the client taps meanwhile and Telegram holds the update.
        client.press_button(client.last_message, "6")
        async with start_rig(fake, tmp_path, url) as rig:
            fourth = await client.wait_for_message(contains="4/5")
            assert "4/5" in fourth.content
            for value in ["9", "No"]:
                await press_latest(client, value)
            await press_latest(client, DEFAULTS["no_comment_button"])
            async with rig.services.sessions() as session:
                checkin = await session.scalar(select(CheckIn))
                assert checkin is not None and checkin.state == CheckInState.COMPLETED


async def test_stale_and_closed_buttons_change_nothing(rig: Rig) -> None:
    _therapist, client, client_id = await enrolled(rig)
    await rig.send_checkin(client_id)
    first = await first_question(rig, client)
    stale_data = first.button_data[5]  # "5" on question 1
    await press_latest(client, "8")
    client.press(first.message_id, stale_data)  # the old button, pressed again
    await rig.fake.wait_for(lambda: all(p.answered for p in rig.fake.presses.values()))
    assert "2/5" in client.last_message.content
    client.send_text("hello?")
    assert (await client.wait_for_message()).content.startswith(DEFAULTS["use_buttons"])
    for value in ["8", "8", "8", "No"]:
        await press_latest(client, value)
    await press_latest(client, DEFAULTS["no_comment_button"])
    press = client.press(first.message_id, stale_data)  # after completion
    await rig.fake.wait_for(lambda: rig.fake.presses[press.query_id].answered)
    assert rig.fake.presses[press.query_id].answer.get("text") == DEFAULTS["checkin_closed"]


async def test_pause_resume_and_stop(rig: Rig) -> None:
    therapist, client, client_id = await enrolled(rig)
    client.send_text("/pause 7")
    assert "paused for 7 days, until" in (await client.wait_for_message()).content
    notice = await therapist.wait_for_message(contains="paused check-ins", timeout=10)
    assert "Client Mo" in notice.content
    row = await _client_row(rig, client_id)
    assert row is not None and row.status == ClientStatus.PAUSED

    client.send_text("/pause forever")
    assert "whole number" in (await client.wait_for_message()).content
    client.send_text("/resume")
    assert (await client.wait_for_message()).content == DEFAULTS["resumed"]
    await therapist.wait_for_message(contains="resumed", timeout=10)

    client.send_text("/stop")
    assert "stopped" in (await client.wait_for_message()).content
    await therapist.wait_for_message(contains="stopped check-ins", timeout=10)
    row = await _client_row(rig, client_id)
    assert row is not None and row.status == ClientStatus.STOPPED


async def test_a_stopped_client_cannot_pause_or_resume_their_way_back(rig: Rig) -> None:
    therapist, client, client_id = await enrolled(rig)
    client.send_text("/stop")
    await client.wait_for_message(contains="stopped")
    await therapist.wait_for_message(contains="stopped check-ins", timeout=10)
    told = len(therapist.messages)

    for command in ("/pause 2", "/resume"):
        client.send_text(command)
        reply = await client.wait_for_message()
        assert reply.content == DEFAULTS["stopped_no_change"], command
        assert "ask your therapist" in reply.content
    row = await _client_row(rig, client_id)
    assert row is not None and row.status == ClientStatus.STOPPED and row.paused_until is None
    async with rig.services.sessions() as session:
        changes = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.target_id == client_id,
                AuditEvent.action.in_(("client.paused", "client.resumed")),
            )
        )
    assert changes == 0

    # The next thing the therapist hears about this client is that they left: no note about
    # a pause or a return came before it.
    client.send_text("/delete")
    await client.wait_for_message(contains="cannot be undone")
    await press_latest(client, DEFAULTS["delete_button"])
    await received(rig, therapist, "left Rapport", after=told)  # it may come before the edit
    assert ["left Rapport" in m.content for m in therapist.messages[told:]] == [True]


async def test_the_therapist_restarts_a_stopped_client(rig: Rig) -> None:
    therapist, client, client_id = await enrolled(rig)
    client.send_text("/stop")
    await client.wait_for_message(contains="stopped")
    therapist.send_text("/schedule Client Mo")
    shown = await therapist.wait_for_message(contains="Client Mo: stopped")
    assert "Resume check-ins" not in shown.buttons
    assert shown.reply_markup is not None
    [restart] = [
        b["callback_data"]
        for row in shown.reply_markup["inline_keyboard"]
        for b in row
        if b["text"] == "Restart check-ins"
    ]
    therapist.press(shown, restart)
    told = await client.wait_for_message()
    assert told.content == DEFAULTS["resumed_by_therapist"]
    row = await _client_row(rig, client_id)
    assert row is not None and row.status == ClientStatus.ACTIVE
    again = therapist.press(shown, restart)  # the same button again: nothing changes
    await rig.fake.wait_for(lambda: rig.fake.presses[again.query_id].answered)
    assert rig.fake.presses[again.query_id].answer.get("text") == OUT_OF_DATE


async def test_mydata_sends_everything_decrypted(rig: Rig) -> None:
    _therapist, client, client_id = await enrolled(rig)
    await rig.send_checkin(client_id)
    await first_question(rig, client)
    for value in ["7", "6", "5", "4", "A little"]:
        await press_latest(client, value)
    client.send_text("A bit much homework")
    await client.wait_for_message(contains="Thank you")
    client.send_text("/mydata")
    document = await client.wait_for_message(predicate=lambda m: m.document is not None)
    assert document.document is not None and document.document_name == "rapport-my-data.json"
    data = json.loads(document.document)
    assert (
        data["client"]["label"] == "Client Mo" and data["client"]["telegram_chat_id"] == client.id
    )
    [checkin] = data["checkins"]
    assert [(a["item"], a["value"]) for a in checkin["answers"]] == [
        ("bond", 7),
        ("goals", 6),
        ("approach", 5),
        ("overall", 4),
        ("tension", 1),
    ]
    assert checkin["comment"] == "A bit much homework"
    assert {a["rule"] for a in data["alerts"]} >= {"low_alliance"}


async def test_delete_erases_everything_after_confirmation(rig: Rig) -> None:
    therapist, client, client_id = await enrolled(rig)
    await rig.send_checkin(client_id)
    await first_question(rig, client)
    for value in ["2", "2", "2", "2", "Yes"]:
        await press_latest(client, value)
    await press_latest(client, DEFAULTS["no_comment_button"])
    async with rig.services.sessions() as session:
        old_answer_blob = await session.scalar(select(Answer.value_enc))
        key_before = await rig.services.vault.key(session, client_id)
    assert old_answer_blob is not None

    client.send_text("/delete")
    await client.wait_for_message(contains="cannot be undone")
    cancelled = await press_latest(client, DEFAULTS["cancel_button"])
    assert cancelled.content == DEFAULTS["delete_cancelled"]
    assert await _client_row(rig, client_id) is not None

    client.send_text("/delete")
    await client.wait_for_message(contains="cannot be undone")
    done = await press_latest(client, DEFAULTS["delete_button"])
    assert done.content == DEFAULTS["deleted"]
    await therapist.wait_for_message(contains="left Rapport", timeout=10)

    async with rig.services.sessions() as session:
        left = {
            model.__tablename__: await session.scalar(
                select(func.count()).select_from(model).where(column == client_id)
            )
            for model, column in [
                (Client, Client.id),
                (CheckIn, CheckIn.client_id),
                (Answer, Answer.client_id),
                (Alert, Alert.client_id),
                (Invite, Invite.client_id),
                (DataKeyRow, DataKeyRow.owner_id),
            ]
        }
        assert set(left.values()) == {0}, left
        with pytest.raises(DecryptionError, match="erased"):
            await rig.services.vault.key(session, client_id)
        audits = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.target_id == client_id, AuditEvent.action == "client.erase"
                )
            )
        ).all()
        notices = (await session.scalars(select(Notice))).all()
    assert len(audits) == 1 and audits[0].detail is None
    assert notices == []  # delivered, then purged: nothing names the client any more
    # A copy of the old ciphertext (a backup) no longer opens: its key is gone.
    assert key_before.id.bytes == old_answer_blob[1:17]

    client.send_text("/help")
    assert (await client.wait_for_message()).content == DEFAULTS["invitation_only"]


async def test_changed_consent_text_asks_again_before_the_next_checkin(tmp_path: Path) -> None:
    ask_again = "[consent]\nask_again = true\n"  # the practice wants that
    async with practice_rig(tmp_path, ask_again) as rig:
        _therapist, client, client_id = await enrolled(rig)
        from store.db import transaction

        async with transaction(rig.services.sessions) as session:
            row = await session.get(Client, client_id)
            assert row is not None
            row.consent_version = "an-older-text"
        await rig.send_checkin(client_id)
        await rig.fake.wait_for(
            lambda: next(
                (m for m in client.messages if "how Rapport works has changed" in m.content),
                None,
            ),
            timeout=10,
        )
        full = await press_latest(client, DEFAULTS["full_text_button"])  # the full text, in place
        assert "how Rapport works has changed" in full.content
        assert "Read automatically" in full.content
        assert DEFAULTS["full_text_button"] not in full.buttons
        first = await press_latest(client, DEFAULTS["agree_button"])
        assert "1/5" in first.content
        row = await _client_row(rig, client_id)
        assert row is not None
        assert row.consent_version == rig.services.texts.consent_version("en")


MENU = ["help", "pause", "resume", "stop", "mydata", "delete", "privacy", "progress", "language"]


async def test_commands_are_registered_for_the_menu_per_language(rig: Rig) -> None:
    default = rig.fake.commands_for()
    assert [c["command"] for c in default] == MENU
    assert default[0]["description"] == "What this bot does and what you can do"
    german = rig.fake.commands_for(language_code="de")
    spanish = rig.fake.commands_for(language_code="es")
    assert [c["command"] for c in german] == [c["command"] for c in spanish] == MENU
    assert german[0]["description"] == "Was dieser Bot macht und was Sie tun können"
    assert spanish[8]["description"] == "El idioma en el que Rapport le escribe"
    assert rig.fake.commands_for(language_code="en") == default


async def test_client_sees_only_the_scores_the_practice_allows(tmp_path: Path) -> None:
    async with practice_rig(
        tmp_path, '[checkins]\ninstruments = ["alliance", "who5"]\nshow_scores = ["who5"]\n'
    ) as rig:
        _therapist, client, client_id = await enrolled(rig)
        await rig.send_checkin(client_id)
        await first_question(rig, client)
        for value in ["9", "9", "9", "9", "No"] + ["More than half of the time"] * 5:
            await press_latest(client, value)
        await press_latest(client, DEFAULTS["no_comment_button"])
        closing = client.last_message.content
    assert "Your WHO-5 Well-Being Index: 60 of 100." in closing
    assert "36" not in closing and "alliance" not in closing.lower()
