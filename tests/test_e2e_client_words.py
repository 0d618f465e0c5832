"""What a client reads, through the real bot over HTTP: times in their own day and time, the
tension question, free text outside a check-in (scanned for risk, never kept), the "not read in
real time" line wherever text is invited, the reply to a risk answer, the practice's helplines,
and the consent text (a short first screen, the full text a tap away)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from alliance.safety import OUTSIDE_CHECKIN
from handlers.local_time import day_time
from handlers.texts import DEFAULTS
from store import plans
from store.db import transaction
from store.models import Alert, AuditEvent, CheckIn, Client
from store.vault import unseal
from tests.botapi import FakeUser
from tests.conftest import practice_rig
from tests.rig import Rig, enrolled, first_question, link, press_latest
from tests.test_cli_admin import rapport

DATA = Path(__file__).parent / "data"
MONDAY_NOON_UTC = datetime(2026, 3, 23, 12, 0, tzinfo=UTC)  # 13:00 in Berlin (CET)


async def _enrolled(
    rig: Rig, client_tg: int = 6401, therapist_tg: int = 5401
) -> tuple[FakeUser, FakeUser, uuid.UUID]:
    return await enrolled(rig, "Client Jo", therapist_tg, client_tg)


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
    async with practice_rig(tmp_path, at=MONDAY_NOON_UTC) as rig:
        therapist, client, _client_id = await _enrolled(rig)
        client.send_text("/pause 3")
        paused = await client.wait_for_message(contains="paused for 3 days, until")
        # Three days from Monday 13:00 in Berlin, not a UTC date.
        assert "paused for 3 days, until Thu 13:" in paused.content, paused.content
        assert "2026-03-26" not in paused.content
        notice = await therapist.wait_for_message(contains="paused check-ins", timeout=10)
        assert "until Thu 26 Mar 13:" in notice.content
        assert "(Europe/Berlin time)" in notice.content


# --- text outside the comment step: scanned for risk, answered, never kept -----------------


async def test_a_risk_phrase_outside_a_checkin_brings_help_and_an_alert_and_is_not_kept(
    rig: Rig,
) -> None:
    therapist, client, client_id = await _enrolled(rig)
    _, other_token = await rig.add_therapist("Therapist Bo")
    bystander = rig.fake.user(5499)
    await link(bystander, other_token)
    client.send_text("I can't go on")  # no check-in is open, no comment awaited
    crisis = await client.wait_for_message(contains="Please don't wait")
    assert "Your therapist will be told" in crisis.content
    assert "not in real time" in crisis.content and "not kept" in crisis.content
    assert "112" in crisis.content  # the crisis resources, at once
    assert "buttons above" not in crisis.content
    alert = await therapist.wait_for_message(contains="Urgent", timeout=10)
    assert "Client Jo" in alert.content
    assert "wrote a risk phrase in a message outside a check-in" in alert.content
    assert "go on" not in alert.content  # neither the text nor the phrase matched in it
    assert len(bystander.messages) == 1  # only the link confirmation: not their client

    async with rig.services.sessions() as session:
        [row] = (await session.scalars(select(Alert))).all()
        key = await rig.services.vault.key(session, client_id)
        reason, context = unseal(key, row, "reason_enc"), unseal(key, row, "context_enc")
        checkins = await session.scalar(select(func.count()).select_from(CheckIn))
        audit = (await session.scalars(select(AuditEvent))).all()
    assert (row.rule, row.severity, row.checkin_id) == ("risk", "urgent", None)
    assert reason == OUTSIDE_CHECKIN and "go on" not in context
    assert checkins == 0  # nothing stored it as a comment
    assert not any("go on" in f"{event.detail}" for event in audit)
    if rig.database_url.startswith("sqlite"):
        await _checkpoint(rig)
        for file in rig.data_dir.glob("rapport.db*"):
            assert b"go on" not in file.read_bytes(), file.name


async def _checkpoint(rig: Rig) -> None:
    async with rig.services.sessions() as session:
        await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


async def test_a_second_risk_after_an_acknowledged_one_alerts_again(rig: Rig) -> None:
    therapist, client, _client_id = await _enrolled(rig)
    client.send_text("some days I want to die")
    first = await therapist.wait_for_message(contains="Urgent", timeout=10)
    therapist.press_button(first, "Acknowledge")
    await rig.fake.wait_for(lambda: all(p.answered for p in rig.fake.presses.values()))
    client.send_text("I want to die")  # the client is told their therapist hears: they do
    await client.wait_for_message(contains="Please don't wait")
    second = await therapist.wait_for_message(contains="Urgent", timeout=10)
    assert second.message_id != first.message_id


async def test_text_while_a_checkin_waits_for_a_button_points_to_it(rig: Rig) -> None:
    _therapist, client, client_id = await _enrolled(rig)
    await rig.send_checkin(client_id)
    await first_question(rig, client)
    client.send_text("hello?")
    reply = await client.wait_for_message()
    assert reply.content.startswith(DEFAULTS["use_buttons"])
    assert "doesn't keep messages typed here" in reply.content
    assert "112" in reply.content  # where to go for urgent help
    async with rig.services.sessions() as session:
        checkin = await session.scalar(select(CheckIn))
    assert checkin is not None and checkin.comment_enc is None


CONTACT_CONFIG = """
[practice]
contact = "phone 030 1234 5678 (weekdays 9-17), or email praxis@example.org"
"""


async def test_text_with_no_checkin_open_says_when_the_next_is_due_and_how_to_reach(
    tmp_path: Path,
) -> None:
    async with practice_rig(tmp_path, CONTACT_CONFIG, at=MONDAY_NOON_UTC) as rig:
        _therapist, client, client_id = await _enrolled(rig)
        client.send_text("Is anyone there?")
        unscheduled = await client.wait_for_message()
        assert unscheduled.content.startswith(DEFAULTS["free_text_unscheduled"])

        async with transaction(rig.services.sessions) as session:
            row = await session.get(Client, client_id)
            assert row is not None
            rule = {"weekdays": ["wednesday"], "at": "18:00", "instruments": ["alliance"]}
            await plans.set_schedule(
                session, row, [("weekly", json.dumps(rule))], template=None, now=rig.clock()
            )
        client.send_text("Is anyone there?")
        reply = await client.wait_for_message()
        lines = reply.content.split("\n\n")
        assert lines[0] == (
            "No check-in is open right now; your next one is due Wed 18:00. To reach your "
            "therapist or the practice: phone 030 1234 5678 (weekdays 9-17), or email "
            "praxis@example.org."
        )
        assert lines[1].startswith("Rapport doesn't keep messages typed here, and nobody")
        assert "112" in reply.content

        client.send_text("/pause 3")
        await client.wait_for_message(contains="paused for 3 days")
        client.send_text("Is anyone there?")
        paused = await client.wait_for_message()
        assert paused.content.startswith(
            "No check-in is open right now: your check-ins are paused until Thu 13:"
        )
        client.send_text("/stop")
        await client.wait_for_message(contains="stopped")
        client.send_text("Is anyone there?")
        stopped = await client.wait_for_message()
        assert stopped.content.startswith(DEFAULTS["free_text_stopped"])
        assert "praxis@example.org" in stopped.content


# --- "not read in real time" wherever text is invited; the reply to a risk ------------------


async def test_every_surface_that_invites_text_says_it_is_not_read_in_real_time(
    rig: Rig,
) -> None:
    _therapist, client, client_id = await _enrolled(rig)
    await rig.send_checkin(client_id)
    await first_question(rig, client)
    for value in ["9", "9", "9", "9"]:
        await press_latest(client, value)
    prompt = await press_latest(client, "No")
    assert "not read in real time" in prompt.content and "/help" in prompt.content
    client.send_text("All good, thanks.")
    thanks = await client.wait_for_message(contains="Thank you")
    assert "Nobody reads them in real time: for urgent help, see /help." in thanks.content
    client.send_text("/help")
    shown = await client.wait_for_message(contains="/pause")
    assert "Nobody reads this chat in real time" in shown.content
    assert "no way to get urgent help" in shown.content and "112" in shown.content


HELPLINES = f"""
[instruments]
directory = "{DATA / "instruments"}"

[crisis]
helplines = [
  {{ name = "Emergency services", contact = "112" }},
  {{ name = "Crisis line, day and night", contact = "0800 111 0 111" }},
]
"""


async def test_a_risk_answer_is_told_what_really_happens_with_the_practices_helplines(
    tmp_path: Path,
) -> None:
    async with practice_rig(tmp_path, HELPLINES) as rig:
        therapist, client, client_id = await _enrolled(rig)
        await rig.send_checkin(client_id, "mood_check")
        await first_question(rig, client)
        await press_latest(client, "Well")
        await press_latest(client, "Several days")  # the risk item
        crisis = await client.wait_for_message(contains="Please don't wait")
        assert "Thank you for telling us" not in crisis.content  # nobody is reading
        assert crisis.content.startswith(
            "Your therapist will be told about this answer, but not in real time: nobody is "
            "reading this chat now."
        )
        assert crisis.content.endswith(
            "emergency department:\n• Emergency services: 112\n"
            "• Crisis line, day and night: 0800 111 0 111"
        )
        await therapist.wait_for_message(contains="Urgent", timeout=10)
        client.send_text("/help")
        shown = await client.wait_for_message(contains="/pause")
        assert "• Crisis line, day and night: 0800 111 0 111" in shown.content
        assert "in North America" not in shown.content  # the default crisis text gives way


def test_a_text_without_its_crisis_part_fails_config_check(tmp_path: Path) -> None:
    bad = tmp_path / "rapport.toml"
    bad.write_text(
        "[crisis]\n"
        'helplines = [{ name = "", contact = "112" }]\n'
        "[texts.en]\n"
        'help = "Tap the buttons."\n'
        'crisis = "Call 112."\n'
        'crisis_helplines = "Call:"\n'
        "[texts.de]\n"
        'risk_resources = "Bitte warten Sie nicht."\n'
    )
    checked = rapport(tmp_path, "config", "check", str(bad))
    assert checked.returncode == 1
    out = checked.stdout
    assert (
        f"{bad}: texts.en.help: must contain {{crisis}} (where to get urgent help); add "
        "{crisis} where it should appear, or remove the key to keep the default"
    ) in out
    assert f"{bad}: texts.de.risk_resources: must contain {{crisis}}" in out
    assert f"{bad}: texts.en.crisis_helplines: must contain {{helplines}}" in out
    assert f"{bad}: crisis.helplines.0.name:" in out
    good = tmp_path / "good.toml"
    good.write_text('[texts.en]\nhelp = "Tap the buttons. {crisis}"\n')
    assert rapport(tmp_path, "config", "check", str(good)).returncode == 0


# --- consent: a short first screen, the full text a tap away ---------------------------------

FULL_TEXT_CLAIMS = (
    "answers and comments",  # who sees what
    "administrator of the practice",  # the alert fallback when the therapist is unreachable
    "Read automatically",  # automatic scanning of answers, comments and free text
    "for signs that you may be at risk",
    "signs of strain between you and your therapist",
    "read before your next session",  # the brief
    "outside a check-in are only checked for risk and never kept",
    "nobody reads your answers in real time",
    "stored encrypted",
    "not end-to-end encrypted",
    "for 365 days",  # the practice's retention period, from its config
    "erased automatically",
    "/pause",
    "/stop",
    "/mydata",
    "/delete",
    "112",
)


async def test_the_consent_screen_is_short_and_the_full_text_is_a_tap_away(rig: Rig) -> None:
    therapist_id, _ = await rig.add_therapist()
    client_id, token = await rig.invite(therapist_id)
    client = rig.fake.user(6411)
    client.send_text(f"/start {token}")
    offer = await client.wait_for_message(contains="Do you agree")
    crisis = rig.services.texts.crisis("en")
    own_words = offer.content.replace(crisis, "").split()
    assert len(own_words) <= 60, len(own_words)  # a phone screen, not a page
    assert "Nobody reads them in real time" in offer.content and crisis in offer.content
    assert offer.buttons == [
        DEFAULTS["agree_button"],
        DEFAULTS["not_now_button"],
        DEFAULTS["full_text_button"],
    ]
    full = await press_latest(client, DEFAULTS["full_text_button"])
    assert full.message_id == offer.message_id  # the same message, edited
    for claim in FULL_TEXT_CLAIMS:
        assert claim in full.content, claim
    assert full.content.endswith("Do you agree to take part?")
    assert full.buttons == [DEFAULTS["agree_button"], DEFAULTS["not_now_button"]]
    welcome = await press_latest(client, DEFAULTS["agree_button"])
    assert welcome.content == DEFAULTS["client_welcome"]
    async with rig.services.sessions() as session:
        row = await session.get(Client, client_id)
    assert row is not None and row.consent_version == rig.services.texts.consent_version("en")

    client.send_text("/privacy")
    shown = await client.wait_for_message(contains="How Rapport works")
    assert "Read automatically" in shown.content and "Do you agree" not in shown.content


async def test_a_changed_consent_text_asks_no_one_again_unless_the_practice_wants_it(
    rig: Rig,
) -> None:
    _therapist, client, client_id = await _enrolled(rig)
    async with transaction(rig.services.sessions) as session:
        row = await session.get(Client, client_id)
        assert row is not None
        row.consent_version = "an-older-text"  # agreed before the text changed
    await rig.send_checkin(client_id)
    first = await first_question(rig, client)  # straight to the check-in
    assert "1/5" in first.content
    assert not any("has changed" in m.content for m in client.messages)
    async with rig.services.sessions() as session:
        row = await session.get(Client, client_id)
    assert row is not None and row.consent_version == "an-older-text"  # as they agreed
