"""A therapist's commands through the real bot: each works for the therapist whose client it
is, and is refused (plainly, changing nothing, with an audit row) for anyone else; forged
buttons; the therapists' own command menu; reassignment moves access; the weekly digest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers import digest
from handlers import therapist_views as views
from handlers.texts import DEFAULTS
from store.models import Alert, AlertState, AuditEvent, Client, ClientStatus, SessionLog
from tests.botapi import BotMessage, FakeUser
from tests.conftest import practice_rig
from tests.rig import Rig, answer_checkin, eventually, join, link, received

CONFIG = """
[practice]
timezone = "Europe/Berlin"

[checkins]
default_template = "weekly"

[templates.weekly]
description = "Mondays at nine"
[[templates.weekly.rules]]
kind = "weekly"
weekdays = ["monday"]
at = "09:00"
instruments = ["alliance"]

[templates.post-session]
description = "A day after each session"
[[templates.post-session.rules]]
kind = "after_session"
after_hours = 24
instruments = ["alliance"]
"""
# A Thursday morning in Berlin; the digest test moves on to the next Monday.
START = datetime(2026, 3, 26, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def trig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with practice_rig(tmp_path, CONFIG, at=START, kind=request.param) as started:
        yield started


class Practice:
    """Two linked therapists, Ada (with client Kim) and Bo (with client Lee)."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.ada, self.bo = rig.fake.user(7101), rig.fake.user(7102)
        self.kim, self.lee = rig.fake.user(8101), rig.fake.user(8102)

    async def setup(self) -> Practice:
        self.ada_id, ada_token = await self.rig.add_therapist("Therapist Ada")
        self.ada_token = ada_token
        self.bo_id, bo_token = await self.rig.add_therapist("Therapist Bo")
        self.kim_id, kim_token = await self.rig.invite(self.ada_id, label="Kim")
        self.lee_id, lee_token = await self.rig.invite(self.bo_id, label="Lee")
        await link(self.ada, ada_token)
        await link(self.bo, bo_token)
        await join(self.kim, kim_token)
        await join(self.lee, lee_token)
        # Each therapist is told their client joined, by the dispatcher: wait for it, so that
        # it cannot arrive later in place of a reply a test waits for.
        await received(self.rig, self.ada, "Kim joined Rapport")
        await received(self.rig, self.bo, "Lee joined Rapport")
        return self


async def ask(user: FakeUser, text: str, contains: str | None = None) -> BotMessage:
    user.send_text(text)
    return await user.wait_for_message(contains=contains)


async def refusals(rig: Rig, actor: uuid.UUID) -> list[tuple[str, uuid.UUID | None]]:
    async with rig.services.sessions() as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.outcome == "refused", AuditEvent.actor_id == actor)
            .order_by(AuditEvent.at)
        )
        return [(row.action, row.target_id) for row in rows.all()]


async def client_row(rig: Rig, client_id: uuid.UUID) -> Client:
    async with rig.services.sessions() as session:
        row = await session.get(Client, client_id)
    assert row is not None
    return row


async def pressed(rig: Rig, user: FakeUser, message: BotMessage | int, data: str) -> str | None:
    """Press (possibly forged) button data and return the bot's short answer."""
    press = user.press(message, data)
    await rig.fake.wait_for(lambda: rig.fake.presses[press.query_id].answered)
    answer = rig.fake.presses[press.query_id].answer
    assert answer is not None
    text: str | None = answer.get("text")
    return text


async def test_menus_and_who_may_use_the_commands(trig: Rig) -> None:
    p = await Practice(trig).setup()
    scope_ada = {"type": "chat", "chat_id": p.ada.id}
    assert [c["command"] for c in trig.fake.commands_for(scope_ada)] == [
        c.command for c in views.THERAPIST_COMMANDS
    ]
    assert "clients" not in [c["command"] for c in trig.fake.commands_for()]  # clients' menu

    assert (await ask(p.kim, "/clients")).content == views.THERAPISTS_ONLY
    stranger = trig.fake.user(9999)
    assert (await ask(stranger, "/history Kim")).content == DEFAULTS["invitation_only"]
    assert "/session" in (await ask(p.ada, "/help")).content
    assert (await ask(p.ada, "/pause")).content == DEFAULTS["clients_only"]
    assert await pressed(trig, p.ada, 1, "h:not-a-client:0:0") == views.REFUSED  # malformed

    # The therapist's link, opened again from another account: refused, the link stays Ada's.
    second = trig.fake.user(7199)
    assert (await ask(second, f"/start {p.ada_token}")).content == DEFAULTS["invitation_only"]
    assert (await ask(second, "/clients")).content == DEFAULTS["invitation_only"]
    assert "Your clients" in (await ask(p.ada, "/clients")).content


async def test_clients_shows_only_ones_own_with_scores_and_alerts(trig: Rig) -> None:
    p = await Practice(trig).setup()
    for values in (["10", "10", "10", "10", "No"],) * 3 + (["6", "5", "6", "6", "Yes"],):
        await answer_checkin(trig, p.kim, p.kim_id, values, then=timedelta(days=2))
    await p.ada.wait_for_message(contains="Possible rupture", timeout=15)

    listing = await ask(p.ada, "/clients", contains="Your clients")
    assert "Kim - active" in listing.content and "Lee" not in listing.content
    assert "alliance 23/40 (↓ from 40)" in listing.content
    assert "100% done (4/4)" in listing.content
    # The plural form fits the count ("1 open alert", "3 open alerts"), no "alert(s)".
    count = int(listing.content.split("⚠️ ")[1].split(" ")[0])
    assert f"⚠️ {count} open alert{'s' if count != 1 else ''}\n" in listing.content
    assert listing.buttons == ["Kim"]

    other = await ask(p.bo, "/clients", contains="Your clients")
    assert "Lee - active" in other.content and "Kim" not in other.content
    assert "no check-ins due yet" in other.content

    # The client list's button opens the history; Bo forging it for Kim is refused.
    assert await pressed(trig, p.bo, listing.message_id, listing.button_data[0] or "") == (
        views.REFUSED
    )
    assert ("client.pick", None) not in await refusals(trig, p.bo_id)
    assert ("history.read", p.kim_id) in await refusals(trig, p.bo_id)
    p.ada.press_button(listing, "Kim")
    await p.ada.wait_for_message(contains="Kim: check-ins 1-4")


async def test_history_by_label_with_pages_and_refusals(trig: Rig) -> None:
    p = await Practice(trig).setup()
    scores = [str(v) for v in (10, 9, 8, 7, 10, 9, 8, 7, 10, 9)]
    for value in scores:
        await answer_checkin(trig, p.kim, p.kim_id, [value, "9", "9", "9", "No"])

    p.ada.send_text("/history kim")
    page = await p.ada.wait_for_message(contains="Kim: check-ins 1-8, newest first")
    chart = p.ada.messages[-2]
    assert chart.photo is not None and "Kim: the last 10 check-ins" in chart.content
    assert page.buttons == ["‹ Older"]
    assert "alliance 36/40" in page.content.splitlines()[1]  # the newest: 9+9+9+9

    p.ada.press_button(page, "‹ Older")
    older = await p.ada.wait_for_message(contains="Kim: check-ins 9-10")
    assert older.message_id == page.message_id  # turned in place
    assert older.buttons == ["Newer ›"]
    assert "alliance 36/40" in older.content and "alliance 37/40" in older.content

    # Bo: the label is not found (exactly as a label nobody has), and the forged page button
    # changes nothing; both are audited without the label.
    assert (await ask(p.bo, "/history Kim")).content == views.not_found("Kim", "history")
    assert await pressed(trig, p.bo, page.message_id, page.button_data[0] or "") == views.REFUSED
    assert await refusals(trig, p.bo_id) == [("history.read", None), ("history.read", p.kim_id)]
    async with trig.services.sessions() as session:
        details = (await session.scalars(select(AuditEvent.detail))).all()
    assert not any("Kim" in (d or "") for d in details)

    # Without a label: a button per client.
    listing = await ask(p.ada, "/history", contains="Whose history?")
    assert listing.buttons == ["Kim"]


async def test_alerts_lists_open_ones_with_buttons(trig: Rig) -> None:
    p = await Practice(trig).setup()
    assert (await ask(p.ada, "/alerts")).content == "No open alerts."
    for values in (["10", "10", "10", "10", "No"],) * 3 + (["6", "5", "6", "6", "Yes"],):
        await answer_checkin(trig, p.kim, p.kim_id, values, then=timedelta(days=2))
    await p.ada.wait_for_message(contains="Possible rupture", timeout=15)

    p.ada.send_text("/alerts")
    shown = await p.ada.wait_for_message(contains="Possible rupture with Kim")
    assert shown.buttons == ["Acknowledge", "Snooze 1 day", "History", "Why?"]
    assert (await ask(p.bo, "/alerts")).content == "No open alerts."

    assert await pressed(trig, p.bo, shown.message_id, shown.button_data[0] or "") == (
        views.REFUSED
    )
    async with trig.services.sessions() as session:
        states = set((await session.scalars(select(Alert.state))).all())
    assert states == {AlertState.OPEN}

    p.ada.press_button(shown, "Acknowledge")
    await p.ada.wait_for_message(contains="Acknowledged")
    async with trig.services.sessions() as session:
        states = set((await session.scalars(select(Alert.state))).all())
    assert states == {AlertState.ACKNOWLEDGED}
    assert (await ask(p.ada, "/alerts")).content == "No open alerts."


async def test_invite_from_telegram_with_a_template_button(trig: Rig) -> None:
    p = await Practice(trig).setup()
    invite = await ask(p.ada, "/invite Sam", contains="Invite for Sam")
    assert "https://t.me/" in invite.content and "?start=" in invite.content
    assert invite.buttons == ["post-session", "standard", "✓ weekly"]  # standard: built in
    token = invite.content.split("?start=")[1].split()[0]

    assert (await ask(p.ada, "/invite sam")).content.startswith("You already have a client")
    assert await pressed(trig, p.bo, invite.message_id, invite.button_data[0] or "") == (
        views.REFUSED
    )

    p.ada.press_button(invite, "post-session")
    changed = await p.ada.wait_for_message(contains="Schedule: post-session")
    assert "24 hours after each session" in changed.content

    sam = trig.fake.user(8103)
    await join(sam, token)
    async with trig.services.sessions() as session:
        row = await session.scalar(
            select(Client)
            .where(Client.therapist_id == p.ada_id)
            .where(Client.id.not_in([p.kim_id]))
        )
    assert row is not None and row.status == ClientStatus.ACTIVE
    assert row.schedule_template == "post-session"
    assert ("schedule.set", row.id) in await refusals(trig, p.bo_id)


async def test_session_and_schedule_with_pause_buttons(trig: Rig) -> None:
    p = await Practice(trig).setup()
    logged = await ask(p.ada, "/session Kim yesterday 15:30", contains="logged")
    assert "Wed 25 Mar 15:30 (Europe/Berlin)" in logged.content
    async with trig.services.sessions() as session:
        at = await session.scalar(select(SessionLog.at).where(SessionLog.client_id == p.kim_id))
    assert at is not None and at.astimezone(UTC) == datetime(2026, 3, 25, 14, 30, tzinfo=UTC)
    assert "did not work" in (await ask(p.ada, "/session Kim someday")).content
    assert (await ask(p.bo, "/session Kim")).content == views.not_found("Kim", "session")
    picker = await ask(p.ada, "/session", contains="Log a session that starts now")
    p.ada.press_button(picker, "Kim")
    await p.ada.wait_for_message(contains="Session with Kim logged for Thu 26 Mar 09:00")

    refused = await ask(p.bo, "/schedule Kim", contains="No client of yours")
    assert refused.content == views.not_found("Kim", "schedule")
    shown = await ask(p.ada, "/schedule Kim", contains="Kim: active")
    assert shown.buttons[-3:] == ["Pause 7 days", "Pause 14 days", "Pause 28 days"]
    forged = shown.button_data[-3] or ""
    assert await pressed(trig, p.bo, shown.message_id, forged) == views.REFUSED
    assert (await client_row(trig, p.kim_id)).status == ClientStatus.ACTIVE

    p.ada.press_button(shown, "Pause 7 days")
    paused = await p.ada.wait_for_message(contains="Kim: paused until")
    told = await received(trig, p.kim, "Your therapist paused your check-ins")
    assert "until Thu 2 Apr 10:00" in told.content  # the client's local day and time
    assert (await client_row(trig, p.kim_id)).status == ClientStatus.PAUSED
    assert not any("paused check-ins" in m.content for m in p.ada.messages)  # no self-notice

    resume = paused.button_data[paused.buttons.index("Resume check-ins")] or ""
    p.ada.press_button(paused, "Resume check-ins")
    await received(trig, p.kim, "Your therapist started your check-ins again")
    await eventually(lambda: _status_is(trig, p.kim_id, ClientStatus.ACTIVE))
    # The same Resume again (an old message): nothing to resume, and it says so.
    assert await pressed(trig, p.ada, paused.message_id, resume) == views.OUT_OF_DATE
    assert sum("started your check-ins again" in m.content for m in p.kim.messages) == 1
    assert [a for a, _ in await refusals(trig, p.bo_id)] == [
        "session.add",
        "schedule.read",
        "client.pause",
    ]


async def _status_is(rig: Rig, client_id: uuid.UUID, status: ClientStatus) -> bool:
    return (await client_row(rig, client_id)).status == status


async def test_weekly_digest_on_the_chosen_day_once(trig: Rig) -> None:
    p = await Practice(trig).setup()
    await answer_checkin(trig, p.kim, p.kim_id, ["9", "9", "9", "9", "No"], then=timedelta())
    assert "off" in (await ask(p.ada, "/digest")).content
    on = await ask(p.ada, "/digest on mon 08:00")
    assert "monday at 08:00 (Europe/Berlin)" in on.content
    assert "neither a weekday nor a time" in (await ask(p.ada, "/digest on someday")).content

    assert await digest.send_due(trig.app.bot, trig.services) == 0  # Thursday: not yet

    trig.clock.set(datetime(2026, 3, 30, 6, 5, tzinfo=UTC))  # Monday 08:05 in Berlin
    assert await digest.send_due(trig.app.bot, trig.services) == 1
    week = p.ada.last_message
    assert "check-ins answered: 1 of 1 (100%)" in week.content
    assert "• Kim: 1/1 answered · alliance 36/40 · wellbeing -" in week.content
    assert not any("Your week in" in m.content for m in p.bo.messages)

    assert "Your week in Rapport" in week.content
    trig.clock.advance(timedelta(hours=3))
    assert await digest.send_due(trig.app.bot, trig.services) == 0  # that day again: nothing
    assert sum("Your week in Rapport" in m.content for m in p.ada.messages) == 1
    assert "off" in (await ask(p.ada, "/digest off")).content


async def test_a_digest_telegram_did_not_take_is_sent_at_the_next_run_and_only_once(
    trig: Rig,
) -> None:
    p = await Practice(trig).setup()
    await ask(p.ada, "/digest on mon 08:00")
    trig.clock.set(datetime(2026, 3, 30, 6, 5, tzinfo=UTC))  # Monday 08:05 in Berlin
    trig.fake.fail("sendMessage", 502, chat_id=p.ada.id)  # Telegram's gateway: not delivered
    assert await digest.send_due(trig.app.bot, trig.services) == 0
    assert not any("Your week in Rapport" in m.content for m in p.ada.messages)

    trig.clock.advance(timedelta(minutes=5))
    assert await digest.send_due(trig.app.bot, trig.services) == 1
    trig.clock.advance(timedelta(minutes=5))
    assert await digest.send_due(trig.app.bot, trig.services) == 0
    assert sum("Your week in Rapport" in m.content for m in p.ada.messages) == 1

    # A digest Telegram refused outright (here: a chat it does not know) is not repeated.
    trig.clock.set(datetime(2026, 4, 6, 6, 5, tzinfo=UTC))  # the next Monday
    trig.fake.fail("sendMessage", 400, "Bad Request: chat not found", chat_id=p.ada.id)
    assert await digest.send_due(trig.app.bot, trig.services) == 0
    trig.clock.advance(timedelta(minutes=5))
    assert await digest.send_due(trig.app.bot, trig.services) == 0
    assert sum("Your week in Rapport" in m.content for m in p.ada.messages) == 1


async def test_reassignment_moves_history_and_alert_access(trig: Rig) -> None:
    p = await Practice(trig).setup()
    for values in (["10", "10", "10", "10", "No"],) * 3 + (["6", "5", "6", "6", "Yes"],):
        await answer_checkin(trig, p.kim, p.kim_id, values, then=timedelta(days=2))
    alert = await p.ada.wait_for_message(contains="Possible rupture", timeout=15)

    await trig.cli("client", "reassign", "--client", str(p.kim_id), "--therapist", str(p.bo_id))
    assert (await ask(p.ada, "/history Kim")).content == views.not_found("Kim", "history")
    assert await pressed(trig, p.ada, alert.message_id, alert.button_data[0] or "") == (
        views.REFUSED
    )
    p.bo.send_text("/history Kim")
    await p.bo.wait_for_message(contains="Kim: check-ins 1-4", timeout=10)
    listing = await ask(p.bo, "/clients", contains="Your clients")
    assert "Kim" in listing.content and "Lee" in listing.content
    async with trig.services.sessions() as session:
        owners = set((await session.scalars(select(Alert.therapist_id))).all())
    assert owners == {p.bo_id}


async def test_a_deactivated_therapist_is_refused(trig: Rig) -> None:
    p = await Practice(trig).setup()
    await trig.cli("client", "reassign", "--client", str(p.lee_id), "--therapist", str(p.ada_id))
    await trig.cli("therapist", "deactivate", "--therapist", str(p.bo_id))
    scope_bo = {"type": "chat", "chat_id": p.bo.id}
    assert trig.fake.commands_for(scope_bo)  # the menu of their time as a therapist
    # Deactivation unlinks the account: Bo is a stranger to the bot now, and the menu goes.
    assert (await ask(p.bo, "/clients")).content == DEFAULTS["invitation_only"]
    await trig.fake.wait_for(lambda: trig.fake.commands_for(scope_bo) == [], message="no menu")
    listing = await ask(p.ada, "/clients", contains="Your clients")
    assert listing.buttons == ["Kim", "Lee"]
