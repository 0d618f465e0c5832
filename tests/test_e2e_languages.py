"""Clients in their own language, through the real bot over HTTP: a German-speaking client
reads German from the consent to the last question (WHO-5 in its published German version),
plural forms and dates follow each shipped language, /language switches and is stored, a
German risk phrase is understood, and the menus are set per language_code."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from handlers.texts import DEFAULTS
from store.models import Alert, AuditEvent, Client
from tests.botapi import FakeUser
from tests.rig import Rig, first_question, link, press_latest


async def _client_row(rig: Rig, client_id: uuid.UUID) -> Client:
    async with rig.services.sessions() as session:
        row = await session.get(Client, client_id)
    assert row is not None
    return row


async def _joined(
    rig: Rig, language_code: str, client_tg: int = 7001, agree: str = "Ich bin einverstanden"
) -> tuple[FakeUser, FakeUser, uuid.UUID, tuple[str, list[str]]]:
    """A therapist and a client whose Telegram speaks `language_code`; returns the consent
    offer the client saw (text and buttons), after they agreed with the button `agree`."""
    therapist_id, t_token = await rig.add_therapist()
    client_id, c_token = await rig.invite(therapist_id, label="Client Lena")
    therapist = rig.fake.user(client_tg - 1000)
    client = rig.fake.user(client_tg, "Lena", language_code=language_code)
    await link(therapist, t_token)
    client.send_text(f"/start {c_token}")
    offer = await client.wait_for_message()
    seen = (offer.content, list(offer.buttons))  # the message is edited in place next
    await press_latest(client, agree)
    return therapist, client, client_id, seen


async def test_a_german_speaking_client_reads_german_throughout(rig: Rig) -> None:
    _therapist, client, client_id, (offer, buttons) = await _joined(rig, "de-DE")
    assert offer.startswith("Willkommen bei Rapport")
    assert "Sind Sie einverstanden" in offer and "112" in offer
    assert buttons == ["Ich bin einverstanden", "Jetzt nicht", "Den ganzen Text lesen"]
    welcome = client.last_message
    assert welcome.content.startswith("Danke, alles ist eingerichtet.")
    row = await _client_row(rig, client_id)
    assert row.language == "de"
    assert row.consent_version == rig.services.texts.consent_version("de")
    assert row.consent_version != rig.services.texts.consent_version("en")

    # The whole check-in: the alliance items (Rapport's own German), then WHO-5 (published).
    await rig.send_checkin(client_id, "alliance", "who5")
    first = await first_question(rig, client)
    lines = first.content.split("\n")
    assert lines[0] == "Wie arbeiten wir zusammen?  ·  1/10"
    assert lines[2].startswith("Ein paar Tipper zu Ihrer letzten Sitzung")  # the intro
    assert "gehört, verstanden und respektiert" in first.content
    assert "0 = Gar nicht  ·  10 = Völlig" in first.content
    for value in ["8", "8", "7"]:
        shown = await press_latest(client, value)
    assert "Zurück" in shown.buttons[-1]
    tension = await press_latest(client, "8")
    assert tension.buttons[:3] == ["Nein", "Ein wenig", "Ja"]
    assert "Spannungen oder Missverständnisse" in tension.content
    who5 = await press_latest(client, "Nein")
    assert who5.content.startswith("WHO-5-Fragebogen zum Wohlbefinden  ·  6/10")
    assert "Die folgenden Aussagen betreffen Ihr Wohlbefinden" in who5.content
    assert "In den letzten zwei Wochen war ich froh und guter Laune." in who5.content
    assert who5.buttons[:6] == [
        "Zu keinem Zeitpunkt",
        "Ab und zu",
        "Etwas weniger als die Hälfte der Zeit",
        "Etwas mehr als die Hälfte der Zeit",
        "Meistens",
        "Die ganze Zeit",
    ]
    for _ in range(5):
        shown = await press_latest(client, "Meistens")
    assert shown.content.startswith("Möchten Sie Ihrer Therapeutin")
    assert "Kein Kommentar" in shown.buttons
    thanks = await press_latest(client, "Kein Kommentar")
    assert thanks.content.startswith("Danke! Ihre Antworten sind")

    client.send_text("/help")
    help_text = await client.wait_for_message()
    assert help_text.content.startswith("Rapport schickt Ihnen kurze Check-ins")
    assert "/language - die Sprache" in help_text.content
    client.send_text("Hallo?")
    standing = await client.wait_for_message()
    assert standing.content.startswith("Gerade ist kein Check-in offen, und es ist noch keiner")
    assert "Rapport speichert hier geschriebene Nachrichten nicht" in standing.content


@pytest.mark.parametrize(
    ("code", "agree", "one", "many"),
    [
        ("en", DEFAULTS["agree_button"], "paused for 1 day, until", "paused for 2 days, until"),
        ("de", "Ich bin einverstanden", "für 1 Tag pausiert, bis Di., ", "für 2 Tage pausiert"),
        ("es", "Acepto", "durante 1 día, hasta el mar, ", "durante 2 días, hasta"),
    ],
)
async def test_plural_forms_and_dates_in_each_shipped_language(
    rig: Rig, code: str, agree: str, one: str, many: str
) -> None:
    rig.clock.set(rig.clock().replace(year=2026, month=3, day=23, hour=11))  # a Monday
    _therapist, client, _client_id, _offer = await _joined(rig, code, agree=agree)
    client.send_text("/pause 1")
    assert one in (await client.wait_for_message()).content
    client.send_text("/resume")
    await client.wait_for_message()
    client.send_text("/pause 2")
    assert many in (await client.wait_for_message()).content


async def test_language_switches_and_is_stored_and_used_from_then_on(rig: Rig) -> None:
    _therapist, client, client_id, _offer = await _joined(rig, "en", agree=DEFAULTS["agree_button"])
    client.send_text("/language")
    choice = await client.wait_for_message()
    assert choice.content == DEFAULTS["language_choose"]
    assert choice.buttons == ["Deutsch", "✓ English", "Español"]

    # Someone else's press (forged data) changes nothing.
    stranger = rig.fake.user(7999, language_code="de")
    forged = stranger.press(choice.message_id, choice.button_data[2])
    await rig.fake.wait_for(lambda: rig.fake.presses[forged.query_id].answered)
    assert (await _client_row(rig, client_id)).language == "en"

    confirmed = await press_latest(client, "Español")
    assert confirmed.content == "A partir de ahora, Rapport le escribe en español."
    row = await _client_row(rig, client_id)
    assert row.language == "es"
    async with rig.services.sessions() as session:
        audited = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "client.language")
        )
    assert audited is not None and audited.detail == "en -> es"
    chat = {"type": "chat", "chat_id": client.id}
    await rig.fake.wait_for(lambda: rig.fake.commands_for(chat))
    assert rig.fake.commands_for(chat)[0]["description"].startswith("Qué hace este bot")

    client.send_text("/help")
    assert (await client.wait_for_message()).content.startswith("Rapport le envía")
    await rig.send_checkin(client_id, "alliance")
    first = await first_question(rig, client)
    assert first.content.startswith("¿Cómo estamos trabajando juntos?  ·  1/5")

    client.send_text("/language")
    again = await client.wait_for_message()
    assert again.content == "¿En qué idioma quiere que le escriba Rapport?"
    assert "✓ Español" in again.buttons
    back = await press_latest(client, "English")
    assert back.content == "From now on, Rapport writes to you in English."
    assert (await _client_row(rig, client_id)).language == "en"


async def test_a_german_risk_phrase_outside_a_checkin_is_understood(rig: Rig) -> None:
    _therapist, client, client_id, _offer = await _joined(rig, "de")
    client.send_text("Ich will nicht mehr leben.")
    reply = await client.wait_for_message()
    assert reply.content.startswith("Ihre Therapeutin bzw. Ihr Therapeut erfährt")
    assert "112" in reply.content
    async with rig.services.sessions() as session:
        alert = await session.scalar(select(Alert).where(Alert.client_id == client_id))
    assert alert is not None and alert.severity == "urgent"


async def test_a_language_telegram_has_but_rapport_not_reads_the_practices(rig: Rig) -> None:
    _therapist, _client, client_id, (offer, _buttons) = await _joined(
        rig, "it", agree=DEFAULTS["agree_button"]
    )
    assert offer.startswith("Welcome to Rapport")
    assert (await _client_row(rig, client_id)).language == "en"
