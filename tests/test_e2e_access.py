"""Strangers, stale links, duplicate updates and the token: what the bot refuses, and what it
keeps to itself."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot import logs
from handlers.texts import DEFAULTS
from store.models import AuditEvent, CheckIn, Client, ClientStatus, Therapist
from tests.botapi import FakeUser
from tests.factories import TTL
from tests.rig import Rig, first_question, join


async def _people_snapshot(rig: Rig) -> tuple[int, int, int, list[bytes | None]]:
    async with rig.services.sessions() as session:
        therapists = await session.scalar(select(func.count()).select_from(Therapist))
        audits = await session.scalar(select(func.count()).select_from(AuditEvent))
        hashes = (await session.scalars(select(Client.telegram_hash))).all()
        clients = len(hashes)
    return therapists or 0, audits or 0, clients, sorted(h or b"" for h in hashes)


async def _reply_to(user: FakeUser, text: str) -> str:
    user.send_text(text)
    return (await user.wait_for_message()).content


async def test_strangers_are_turned_away_and_leave_no_trace(rig: Rig) -> None:
    therapist_link = await rig.cli("therapist", "add", "--name", "Therapist Ada")
    invite = await rig.cli("client", "invite", "--therapist", therapist_link["therapist_id"])
    used = await rig.cli("client", "invite", "--therapist", therapist_link["therapist_id"])
    client = rig.fake.user(4001)
    await join(client, used["token"])
    before = await _people_snapshot(rig)

    stranger = rig.fake.user(4999)
    for attempt in [
        "/start",
        "/start not-a-real-token-but-long-enough",
        f"/start {used['token']}",  # someone else's, already used
        f"/start {invite['token']}x",  # one character off
        "hello?",
    ]:
        assert await _reply_to(stranger, attempt) == DEFAULTS["invitation_only"], attempt
    rig.clock.advance(TTL + timedelta(seconds=1))
    assert await _reply_to(stranger, f"/start {invite['token']}") == DEFAULTS["invitation_only"]

    assert await _people_snapshot(rig) == before


async def test_duplicated_update_is_processed_once(rig: Rig) -> None:
    added = await rig.cli("therapist", "add", "--name", "Therapist Ada")
    invited = await rig.cli("client", "invite", "--therapist", added["therapist_id"])
    client = rig.fake.user(4002)
    await join(client, invited["token"])
    await rig.cli("checkin", "send", "--client", invited["client_id"])
    shown = await first_question(rig, client)
    press = client.press_button(shown, "7")
    await client.wait_for_message(contains="2/5")

    rig.fake.replay_update(press.update_id)
    await rig.fake.wait_for_updates_consumed()
    client.press_button(client.last_message, "6")  # a fresh tap after the replay
    await client.wait_for_message(contains="3/5")
    async with rig.services.sessions() as session:
        # The one sent; the built-in schedule's planned ones wait for another day.
        checkin = await session.scalar(select(CheckIn).where(CheckIn.sent_at.is_not(None)))
    assert checkin is not None and checkin.position == 2  # the replay did not count twice


async def test_forged_button_from_another_client_changes_nothing(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    added = await rig.cli("therapist", "add", "--name", "Therapist Ada")
    mine = await rig.cli("client", "invite", "--therapist", added["therapist_id"])
    theirs = await rig.cli("client", "invite", "--therapist", added["therapist_id"])
    owner, intruder = rig.fake.user(4003), rig.fake.user(4004)
    await join(owner, mine["token"])
    await join(intruder, theirs["token"])
    await rig.cli("checkin", "send", "--client", mine["client_id"])
    shown = await first_question(rig, owner)
    data = shown.button_data[3]

    intruder.open_chat()
    press = intruder.press(shown.message_id, data)  # the owner's button data, replayed
    await rig.fake.wait_for(lambda: rig.fake.presses[press.query_id].answered)
    assert rig.fake.presses[press.query_id].answer.get("text") == DEFAULTS["not_yours"]
    async with rig.services.sessions() as session:
        checkin = await session.scalar(select(CheckIn).where(CheckIn.sent_at.is_not(None)))
        refused = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.outcome == "refused")
        )
    assert checkin is not None and checkin.position == 0
    assert refused == 1
    assert not owner.last_message.edited
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("does not own it" in w for w in warnings)
    assert not any(str(n) in w for w in warnings for n in (4003, 4004, checkin.id))


async def test_token_and_ids_never_reach_the_logs(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logs.configure("DEBUG", secrets=[rig.fake.token])  # as with RAPPORT_LOG_LEVEL=DEBUG
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # httpx logs full URLs, token included
    try:
        added = await rig.cli("therapist", "add", "--name", "Therapist Ada")
        invited = await rig.cli("client", "invite", "--therapist", added["therapist_id"])
        client = rig.fake.user(7351946082, "Zebulonia")  # an id no port or counter matches
        await join(client, invited["token"])
        rig.fake.fail("sendMessage", 500, times=2)  # the check-in send fails, then retries
        rig.fake.drop_connection("getUpdates")
        await rig.cli("checkin", "send", "--client", invited["client_id"])
        await first_question(rig, client)
    finally:
        logs.configure("INFO")
    assert "bot" in caplog.text.lower() and "[REDACTED]" in caplog.text  # URLs were logged
    assert rig.fake.token not in caplog.text
    assert "INSERT INTO" not in caplog.text and "UPDATE checkin" not in caplog.text  # no SQL
    assert rig.fake.token.split(":")[1] not in caplog.text
    for secret in ("7351946082", "Zebulonia", invited["token"]):  # id, name, invite link
        assert secret not in caplog.text  # messages and tracebacks alike
    for record in caplog.records:
        assert rig.fake.token not in record.getMessage()


async def _invite_state(rig: Rig, client_id: str) -> tuple[Client | None, list[AuditEvent]]:
    async with rig.services.sessions() as session:
        client = await session.get(Client, uuid.UUID(client_id))
        refusals = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.like("invite.%"), AuditEvent.outcome == "refused")
                .order_by(AuditEvent.at)
            )
        ).all()
    return client, list(refusals)


async def _forge(rig: Rig, user: FakeUser, data: str) -> None:
    """Press a button with `data` on the last message in the user's own chat; wait for it."""
    query_id = user.press(user.last_message, data).query_id
    await rig.fake.wait_for(lambda: rig.fake.presses[query_id].answered)
    await rig.fake.wait_for_updates_consumed()


async def test_an_invitation_is_bound_to_the_account_that_opened_it(rig: Rig) -> None:
    added = await rig.cli("therapist", "add", "--name", "Therapist Ada")
    invited = await rig.cli("client", "invite", "--therapist", added["therapist_id"])
    invitee, stranger, second = (
        rig.fake.user(4101),
        rig.fake.user(4102, "Mallory"),
        rig.fake.user(4103),
    )
    invitee.send_text(f"/start {invited['token']}")
    offer = await invitee.wait_for_message(contains="Do you agree")
    agree = offer.button_data[offer.buttons.index(DEFAULTS["agree_button"])]
    assert agree is not None and agree.startswith("c:")

    # A stranger writes to the bot, then presses a button carrying the invite's data.
    assert await _reply_to(stranger, "/start") == DEFAULTS["invitation_only"]
    for data in (agree, agree[:-1] + "0"):  # "I agree", then "Not now"
        await _forge(rig, stranger, data)
        assert stranger.last_message.content == DEFAULTS["invitation_only"]
    client, refusals = await _invite_state(rig, invited["client_id"])
    assert client is not None and client.status == ClientStatus.INVITED
    assert client.telegram_hash is None and client.chat_enc is None
    assert [r.action for r in refusals] == ["invite.consent_refused"] * 2
    for row in refusals:  # who was refused is not written down, only that it happened
        assert row.actor_id is None and row.target_id == client.id
        assert "4102" not in f"{row.detail} {row.actor_kind}"

    # A second account with the token itself: the first opener keeps the invitation.
    assert await _reply_to(second, f"/start {invited['token']}") == DEFAULTS["invitation_only"]
    _, refusals = await _invite_state(rig, invited["client_id"])
    assert [r.action for r in refusals][-1] == "invite.open_refused"

    # The invitee opens the link again from the same account, and joins.
    invitee.send_text(f"/start {invited['token']}")
    await invitee.wait_for_message(contains="Do you agree")
    invitee.press_button(offer, DEFAULTS["agree_button"])
    await invitee.wait_for_message(contains="you're all set")
    client, _ = await _invite_state(rig, invited["client_id"])
    assert client is not None and client.status == ClientStatus.ACTIVE
    assert client.telegram_hash == rig.services.vault.telegram_hash(4101)
