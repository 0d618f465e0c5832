"""Alerts through the real bot: a client's falling answers give their therapist one message
with a chart (and nobody else anything); Acknowledge, Snooze and History work; a forged
button from another therapist changes nothing; a second bad check-in updates the open alert."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from store.models import Alert, AlertState, AuditEvent
from tests.botapi import BotMessage
from tests.rig import Rig, answer_checkin, eventually, join, link


async def _alerts(rig: Rig) -> list[Alert]:
    async with rig.services.sessions() as session:
        return list((await session.scalars(select(Alert).order_by(Alert.rule))).all())


async def test_falling_answers_alert_the_therapist_once_with_a_chart(rig: Rig) -> None:
    therapist_id, t_token = await rig.add_therapist("Therapist Ada")
    other_id, o_token = await rig.add_therapist("Therapist Bo")
    client_id, c_token = await rig.invite(therapist_id, label="Client Kim")
    therapist, other, client = rig.fake.user(5201), rig.fake.user(5202), rig.fake.user(6201)
    await link(therapist, t_token)
    await link(other, o_token)
    await join(client, c_token)

    for _ in range(3):  # the usual: at the ceiling
        await answer_checkin(rig, client, client_id, ["10", "10", "10", "10", "No"])
    # Only the link's and the joining's messages: no alert for a steady client.
    assert [m for m in therapist.messages if "joined Rapport" not in m.content][1:] == []
    await answer_checkin(rig, client, client_id, ["8", "5", "8", "8", "A little"])

    alert = await therapist.wait_for_message(contains="Possible rupture", timeout=15)
    assert alert.photo is not None and alert.photo.startswith(b"\x89PNG")  # the trend chart
    assert "Client Kim" in alert.content
    assert "Client Kim's alliance answers fell well below their usual (40 to 29" in alert.content
    assert "some tension" in alert.content and "SD" not in alert.content
    assert alert.buttons == ["Acknowledge", "Snooze 1 day", "History", "Why?"]
    assert sum("Possible rupture" in m.content for m in therapist.messages) == 1  # one message
    assert len(other.messages) == 1  # the other therapist: only their own link confirmation
    assert {a.rule for a in await _alerts(rig)} >= {"alliance_drop", "low_alliance", "tension"}

    # Another therapist forges the buttons: refused, audited, nothing changes.
    other.press(alert.message_id, alert.button_data[0])
    forged_history = other.press(alert.message_id, alert.button_data[2])
    await rig.fake.wait_for(lambda: rig.fake.presses[forged_history.query_id].answered)
    assert rig.fake.presses[forged_history.query_id].answer.get("text") == (
        "This is not one of your clients."
    )
    assert all(a.state == AlertState.OPEN for a in await _alerts(rig))
    async with rig.services.sessions() as session:
        refused = (
            await session.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused"))
        ).all()
    assert {(r.action, r.actor_id) for r in refused} == {
        ("alert.acknowledge", other_id),
        ("history.read", other_id),
    }

    therapist.press_button(alert, "History")
    table = await therapist.wait_for_message(contains="check-ins 1-4")  # after the chart
    assert "alliance 29/40 · tension: A little" in table.content
    chart = therapist.messages[-2]
    assert chart.photo is not None and chart.photo.startswith(b"\x89PNG")
    assert "Client Kim: the last 4 check-ins" in chart.content

    therapist.press_button(alert, "Snooze 1 day")
    await therapist.wait_for_message(contains="Snoozed")
    assert all(a.state == AlertState.SNOOZED for a in await _alerts(rig))
    rig.clock.advance(timedelta(days=1, minutes=1))
    again = await therapist.wait_for_message(contains="Possible rupture", timeout=15)
    again_alert: BotMessage = again
    therapist.press_button(again_alert, "Acknowledge")
    await therapist.wait_for_message(contains="Acknowledged")
    assert all(a.state == AlertState.ACKNOWLEDGED for a in await _alerts(rig))


async def test_a_worse_check_in_updates_the_open_alert(rig: Rig) -> None:
    therapist_id, t_token = await rig.add_therapist()
    client_id, c_token = await rig.invite(therapist_id, label="Client Lee")
    therapist, client = rig.fake.user(5211), rig.fake.user(6211)
    await link(therapist, t_token)
    await join(client, c_token)
    for values in (["10", "9", "9", "10"], ["10", "10", "10", "10"], ["10", "10", "9", "10"]):
        await answer_checkin(rig, client, client_id, [*values, "No"])  # usual: 38-40
    await answer_checkin(rig, client, client_id, ["10", "9", "9", "9", "No"])  # 37: 1 SD below

    async def kept_for_the_brief() -> bool:
        rows = [a for a in await _alerts(rig) if a.rule == "alliance_drop"]
        return len(rows) == 1 and rows[0].delivery == "brief"

    await eventually(kept_for_the_brief)  # a mild drop waits for the brief: nothing pushed
    [first] = [a for a in await _alerts(rig) if a.rule == "alliance_drop"]
    assert first.next_delivery_at is None and first.delivered_at is None

    await answer_checkin(rig, client, client_id, ["9", "8", "8", "8", "No"])  # 33: far below

    async def updated() -> bool:
        rows = [a for a in await _alerts(rig) if a.rule == "alliance_drop"]
        return len(rows) == 1 and rows[0].severity == "high" and rows[0].delivery == "push"

    await eventually(updated)
    rows = [a for a in await _alerts(rig) if a.rule == "alliance_drop"]
    assert [a.id for a in rows] == [first.id]  # the same alert, now high, not a second one
    await therapist.wait_for_message(contains="fell well below their usual", timeout=15)


async def test_an_alert_sent_to_an_admin_keeps_no_message_id_of_the_therapists_chat(
    rig: Rig,
) -> None:
    """The therapist never linked Telegram, so a practice admin gets the alert. The alert row
    must not keep that message's id: it names a message in the admin's chat, and whatever
    acts on the alert later (the dashboard's Acknowledge) edits the therapist's own chat."""
    therapist_id, _never_linked = await rig.add_therapist("Therapist Ada")
    _admin_id, a_token = await rig.add_therapist("Admin Bo", is_admin=True)
    client_id, c_token = await rig.invite(therapist_id, label="Client Ray")
    admin, client = rig.fake.user(5231), rig.fake.user(6231)
    await link(admin, a_token)
    await join(client, c_token)
    await answer_checkin(rig, client, client_id, ["5", "4", "5", "5", "Yes"])  # 19 of 40

    reached = await admin.wait_for_message(contains="Client Ray", timeout=15)
    assert "could not be reached" in reached.content

    async def delivered() -> bool:
        return any(a.delivered_at is not None for a in await _alerts(rig))

    await eventually(delivered)
    assert all(a.message_id is None for a in await _alerts(rig) if a.delivery == "push")
